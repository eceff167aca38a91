"""Ray clusters: the embedded one stays on loopback, bad addresses fail fast, jobs run the driver."""

import ipaddress
import os
import re
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from conftest import ROOT, cli_env, latentsci_cmd, write_pipeline
from ray_nodes import start_head


def _is_loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def _listeners(root_pid: int) -> list[tuple[str, int, str]]:
    """(ip, port, process name) of every TCP listener of a process tree."""
    procs = [psutil.Process(root_pid), *psutil.Process(root_pid).children(recursive=True)]
    found = []
    for proc in procs:
        try:
            for conn in proc.net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN:
                    found.append((conn.laddr.ip, conn.laddr.port, proc.name()))
        except psutil.Error:
            continue
    return found


def test_embedded_ray_listens_on_loopback_only(ray_cluster):
    import ray

    ray.get(ray.remote(lambda: 1).remote())  # make sure workers (and their servers) are up
    assert ray_cluster.embedded and ray_cluster.address.startswith("127.0.0.1:")
    listeners = _listeners(os.getpid())
    assert len(listeners) >= 5  # GCS, raylet, object manager, agents, workers: not vacuous
    exposed = [entry for entry in listeners if not _is_loopback(entry[0])]
    assert exposed == []


def test_unreachable_ray_address_is_one_line(tmp_path, smiles_file):
    pipeline = write_pipeline(tmp_path, smiles_file)
    result = subprocess.run(latentsci_cmd("run", str(pipeline), "--address", "127.0.0.1:1"),
                            cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: cannot reach Ray cluster at 127.0.0.1:1: Connection refused"]


def test_unreachable_job_server_is_one_line():
    result = subprocess.run(latentsci_cmd("status", "--address", "http://127.0.0.1:1"), cwd=ROOT,
                            env=cli_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: cannot reach Ray job server at http://127.0.0.1:1: "
                                     "[Errno 111] Connection refused")


@pytest.fixture(scope="module")
def head_node(ray_cluster):
    """A `ray start --head` cluster with the job API, on loopback, stopped by its own PIDs only."""
    cluster = start_head(cli_env())
    yield cluster.dashboard, cluster.token
    cluster.shutdown()


def user_env(home: Path, **extra: str) -> dict[str, str]:
    """A user's shell after the README's cluster steps: the project installed and a token
    exported, nothing else (no RAY_AUTH_MODE, and a HOME with no saved ~/.ray token)."""
    home.mkdir(exist_ok=True)
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "HOME": str(home), "CI": "1"}
    env.update({k: os.environ[k] for k in ("TMPDIR", "LANG") if k in os.environ})
    return {**env, **extra}


def _job_cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(latentsci_cmd(*args), cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_submit_runs_the_driver_as_a_ray_job(head_node, tmp_path, smiles_file):
    url, token = head_node
    # the token from a file, as a Secret mounted into a pod gives it, and nothing else set
    env = user_env(tmp_path / "home",
                   RAY_AUTH_TOKEN_PATH=str(_mounted_secret(tmp_path / "ray-token", token)))
    pipeline = write_pipeline(tmp_path, smiles_file, fp=False)
    run_dir = tmp_path / "jobrun"
    submitted = _job_cli(env, "submit", str(pipeline), "--address", url, "--run-dir", str(run_dir))
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"raysubmit_\w+", job_id)
    status = ""
    deadline = time.time() + 240
    while time.time() < deadline and status not in ("SUCCEEDED", "FAILED", "STOPPED"):
        time.sleep(2)
        out = _job_cli(env, "status", job_id, "--address", url)
        status = out.stdout.split()[1] if out.returncode == 0 and out.stdout.split() else ""
    logs = _job_cli(env, "logs", job_id, "--address", url)
    assert logs.returncode == 0, logs.stderr
    assert status == "SUCCEEDED", logs.stdout
    assert "[ingest] running ingest" in logs.stdout and "Ray: cluster at 127.0.0.1:" in logs.stdout
    assert (run_dir / "manifest.json").is_file()
    # the README's `export RAY_AUTH_TOKEN=...` works the same way
    exported = user_env(tmp_path / "home", RAY_AUTH_TOKEN=token)
    listed = _job_cli(exported, "status", "--address", url)
    assert listed.returncode == 0 and job_id in listed.stdout, listed.stderr
    again = _job_cli(exported, "logs", job_id, "--address", url)
    assert again.returncode == 0 and again.stdout == logs.stdout, again.stderr


def _mounted_secret(folder: Path, token: str) -> Path:
    """The token as a Kubernetes Secret mounted into a pod gives it: a file named after the
    Secret's key, readable by its owner only, with no trailing newline."""
    folder.mkdir(parents=True)
    path = folder / "auth_token"
    path.write_text(token)
    path.chmod(0o600)
    return path


def test_job_verbs_without_a_token_are_one_line(head_node, tmp_path, smiles_file):
    url, _ = head_node
    env = user_env(tmp_path / "home")
    pipeline = write_pipeline(tmp_path, smiles_file, fp=False)
    expected = (f"error: Ray job server at {url} needs an auth token and none is set: export "
                "RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN_PATH, a file holding it); `ray "
                "get-auth-token` on the head node prints it")
    for args in (["submit", str(pipeline)], ["status"], ["logs", "raysubmit_x"]):
        result = _job_cli(env, *args, "--address", url)
        assert result.returncode == 2 and result.stderr.strip().splitlines() == [expected], args
    missing = _job_cli(user_env(tmp_path / "home", RAY_AUTH_TOKEN_PATH=str(tmp_path / "nope")),
                       "status", "--address", url)
    assert missing.returncode == 2 and missing.stderr.strip().splitlines() == [
        f"error: RAY_AUTH_TOKEN_PATH={tmp_path / 'nope'}: no such file (it should hold the "
        "cluster's auth token)"]
    wrong = _job_cli(user_env(tmp_path / "home", RAY_AUTH_TOKEN="0" * 32), "status", "--address",
                     url)
    assert wrong.returncode == 2 and len(wrong.stderr.strip().splitlines()) == 1
    assert wrong.stderr.startswith(f"error: Ray job server at {url} refused us:"), wrong.stderr
    wrong_file = user_env(tmp_path / "home", RAY_AUTH_TOKEN_PATH=str(
        _mounted_secret(tmp_path / "wrong-token", "0" * 32)))
    for args in (["status"], ["logs", "raysubmit_x"]):
        refused = _job_cli(wrong_file, *args, "--address", url)
        assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, args
        assert refused.stderr.startswith(f"error: Ray job server at {url} refused us:"), args


def test_map_batches_keeps_order_and_returns_user_errors_as_themselves(ray_cluster):
    from latentsci.errors import InputDataError
    from latentsci.runtime import map_batches

    def halve_or_refuse(batch: list[int]) -> list[float]:
        """A Ray task that refuses negative numbers the way a stage refuses user input."""
        from latentsci.errors import InputDataError

        if min(batch) < 0:
            raise InputDataError(f"negative value {min(batch)} in batch {batch}")
        return [b / 2 for b in batch]

    assert map_batches(halve_or_refuse, [[4, 2], [6]], desc="halve") == [[2.0, 1.0], [3.0]]
    with pytest.raises(InputDataError) as caught:
        map_batches(halve_or_refuse, [[1], [-3, 5]], desc="halve")
    assert str(caught.value) == "negative value -3 in batch [-3, 5]"  # no Ray traceback


def test_gpu_requests_must_fit_per_node_not_just_in_total():
    from latentsci.runtime.cluster import gpu_shortfall

    assert gpu_shortfall([1.0, 1.0], total=2, per_unit=1) is None  # two 1-GPU workers, two nodes
    assert gpu_shortfall([1.0], total=0.25, per_unit=0.25) is None  # a quarter GPU per task
    assert gpu_shortfall([1.0], total=1.0, per_unit=0.2) is None  # five fifths fit one GPU
    assert gpu_shortfall([0.0, 0.0], total=1, per_unit=1) == (
        "asks for 1 GPUs, but the Ray cluster has 0")
    # two 1-GPU nodes hold 2 GPUs in all, but a task asking for 2 fits on neither
    assert gpu_shortfall([1.0, 1.0], total=2, per_unit=2) == (
        "needs 1 x 2 GPU, each on one node, but the Ray cluster's nodes fit only 0 (largest "
        "node: 1 GPU)")
    # three 1-GPU workers on nodes of 0.5 + 0.5 + 2: 3 GPUs in all, but only 2 workers fit
    assert gpu_shortfall([0.5, 0.5, 2.0], total=3, per_unit=1).startswith(
        "needs 3 x 1 GPU, each on one node, but the Ray cluster's nodes fit only 2")
