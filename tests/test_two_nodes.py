"""Several Ray nodes on one machine: a job submitted to a head and a worker node (token auth on,
custom resources forcing work onto both) gives the stores and metrics of a one-node run, and a
worker node killed in the middle of an encode fan-out costs nothing: its tasks run again
elsewhere and the store is row for row that of a clean run.

The nodes are real `ray start` processes on loopback (tests/ray_nodes.py); the head checks node
health every half second so a killed node is declared dead in seconds, not Ray's default ~30 s.
"""

from __future__ import annotations

import json
import signal
import subprocess
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest

from conftest import ROOT, cli_env, latentsci_cmd
from ray_nodes import Cluster, Node, start_head, task_nodes

SLOT = {"latentsci_slot": 1}  # one per node: at most one task per node at a time, so all work
FAST_HEALTH = {"RAY_health_check_period_ms": "500", "RAY_health_check_timeout_ms": "500",
               "RAY_health_check_failure_threshold": "4"}
MODEL = ROOT / "data" / "models" / "zinc-vae-v2"
ENCODED = 4000  # rows the node-kill test encodes, in 20 tasks of 200

pytestmark = pytest.mark.slow  # a few real Ray nodes and whole pipelines: minutes on 2 cores


@pytest.fixture(scope="module")
def two_nodes():
    """A head and one worker node, each with one CPU and one latentsci slot."""
    cluster = start_head(cli_env(), num_cpus=1, resources=SLOT, extra_env=FAST_HEALTH)
    try:
        cluster.add_node(num_cpus=1, resources=SLOT)
        yield cluster
    finally:
        cluster.shutdown()


def _env(cluster: Cluster) -> dict[str, str]:
    """A user's shell for this cluster: its token and the slot every task asks for."""
    return dict(cli_env(), RAY_AUTH_TOKEN=cluster.token, LATENTSCI_TASK_RESOURCES=json.dumps(SLOT))


def _cli(env: dict, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """The latentsci CLI from the project root."""
    return subprocess.run(latentsci_cmd(*args), cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _wait_for_job(env: dict, job_id: str, url: str, timeout: float = 480) -> tuple[str, str]:
    """The job's final status and its logs."""
    status, deadline = "", time.time() + timeout
    while time.time() < deadline and status not in ("SUCCEEDED", "FAILED", "STOPPED"):
        time.sleep(2)
        out = _cli(env, "status", job_id, "--address", url)
        status = out.stdout.split()[1] if out.returncode == 0 and out.stdout.split() else ""
    return status, _cli(env, "logs", job_id, "--address", url).stdout


def _manifest(run_dir: Path) -> dict:
    """The run's manifest: stage records by name."""
    return json.loads((run_dir / "manifest.json").read_text())


def _stage_dir(run_dir: Path, name: str) -> Path:
    """The (single) output folder of a stage in a run directory."""
    found = sorted((run_dir / "stages").glob(f"{name}-*"))
    assert len(found) == 1, found
    return found[0]


def _store_table(run_dir: Path, stage: str, file: str) -> pd.DataFrame:
    """Every row of a stage's latent store (refused unless complete): ids, properties and z."""
    from latentsci.store import LatentStore

    store = LatentStore.open(_stage_dir(run_dir, stage) / file)
    return store.table(slice(None), with_z=True)


def _metrics(run_dir: Path) -> dict[str, dict]:
    """Each stage's metrics, without timings (which differ between any two runs)."""
    stages = _manifest(run_dir)["stages"]
    return {name: {k: v for k, v in record.get("metrics", {}).items() if "seconds" not in k}
            for name, record in stages.items()}


def test_submitted_ingest_on_two_nodes_equals_a_one_node_run(two_nodes, tmp_path):
    env = _env(two_nodes)
    pipeline = ROOT / "pipelines" / "zinc_ingest.toml"
    submitted = _cli(env, "submit", str(pipeline), "--profile", "smoke", "--address",
                     two_nodes.dashboard, "--run-dir", str(tmp_path / "two"))
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip().splitlines()[-1]
    status, logs = _wait_for_job(env, job_id, two_nodes.dashboard)
    assert status == "SUCCEEDED", logs[-3000:]
    assert "Ray: cluster at " in logs  # the job's driver joined the cluster, no Ray of its own

    one = _cli(cli_env(), "run", str(pipeline), "--profile", "smoke", "--run-dir",
               str(tmp_path / "one"))
    assert one.returncode == 0, one.stderr[-3000:]
    # same stage ids: the slot setting is an execution setting, kept out of them
    assert sorted(p.name for p in (tmp_path / "two" / "stages").iterdir()) == sorted(
        p.name for p in (tmp_path / "one" / "stages").iterdir())
    assert _metrics(tmp_path / "two") == _metrics(tmp_path / "one")
    for stage in ("ingest_train", "ingest_valid"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(_stage_dir(tmp_path / "two", stage) / "molecules.parquet"),
            pd.read_parquet(_stage_dir(tmp_path / "one", stage) / "molecules.parquet"))
    two_rows = _store_table(tmp_path / "two", "fingerprints", "fingerprints.zarr")
    assert len(two_rows) > 5000
    pd.testing.assert_frame_equal(two_rows, _store_table(tmp_path / "one", "fingerprints",
                                                         "fingerprints.zarr"))
    # both nodes did the work: ingest batches and fingerprint blocks ran on each of them
    nodes = {n.node_id for n in two_nodes.nodes if n.process.poll() is None}
    assert len(nodes) == 2
    for task in ("process_smiles_batch", "embed_block"):
        ran_on = {t["node"] for t in task_nodes(two_nodes, task) if t["state"] == "FINISHED"}
        assert ran_on == nodes, (task, ran_on, nodes)


def _encode_pipeline(folder: Path) -> Path:
    """The shipped molecule model encoding 4,000 ZINC molecules, in 20 blocks of 200."""
    text = f"""
        [pipeline]
        name = "encode_nodes"
        workflow = "molecules"

        [stages.model]
        kind = "codec"
        path = "{MODEL}"

        [stages.ingest]
        kind = "ingest"
        source = "{ROOT / 'data' / 'molecules' / 'zinc_valid_24k.smi'}"
        limit = {ENCODED}
        batch_size = 1000
        split = {{ method = "none", fractions = {{ heldout = 1.0 }} }}

        [stages.encode]
        kind = "encode"
        needs = ["ingest", "model"]
        rows_per_shard = 200
    """
    path = folder / "encode.toml"
    path.write_text(textwrap.dedent(text))
    return path


def _wait_until(condition: Callable[[], bool], driver: subprocess.Popen, what: str,
                log: Path, timeout: float = 300) -> None:
    """Poll `condition` every 20 ms until it holds; fail if the driver ends or time runs out."""
    deadline = time.time() + timeout
    while not condition():
        if driver.poll() is not None or time.time() > deadline:
            raise AssertionError(f"{what}: never happened (driver exit {driver.poll()})\n"
                                 f"{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.02)


def _z_chunk_written(run_dir: Path) -> bool:
    """Whether the encode stage's store has a z chunk file yet (its first block written)."""
    return any(p.is_file() for p in run_dir.glob("stages/encode-*/latents.zarr/z/c/**/*"))


def _running(node: Node, task: str) -> bool:
    """Whether a worker process of `node` is executing `task` now (Ray titles it ray::TASK)."""
    try:
        tree = psutil.Process(node.process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return False
    for proc in tree:
        try:
            if proc.cmdline()[:1] == [f"ray::{task}"]:
                return True
        except psutil.Error:
            continue
    return False


def test_a_worker_node_killed_mid_encode_loses_nothing(two_nodes, tmp_path):
    victim = two_nodes.add_node(num_cpus=1, resources=SLOT)
    pipeline = _encode_pipeline(tmp_path)
    run_dir, log = tmp_path / "killed", tmp_path / "driver.out"
    with log.open("w") as out:
        driver = subprocess.Popen(latentsci_cmd("run", str(pipeline), "--address", two_nodes.gcs,
                                                "--run-dir", str(run_dir)),
                                  cwd=ROOT, env=_env(two_nodes), stdout=out,
                                  stderr=subprocess.STDOUT)
    try:
        # In the middle of the fan-out: a block is in the store, and the victim holds another.
        _wait_until(lambda: _z_chunk_written(run_dir), driver, "a first encoded block", log)
        _wait_until(lambda: _running(victim, "encode_block"), driver,
                    "an encode task running on the third node", log)
        victim.stop(signal.SIGKILL)  # the machine dies with a block of its own in hand
        assert driver.wait(timeout=300) == 0, log.read_text(errors="replace")[-3000:]
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait(timeout=30)

    attempts = task_nodes(two_nodes, "encode_block")
    finished = {t["task"]: t for t in attempts if t["state"] == "FINISHED"}
    assert len(finished) == ENCODED // 200, attempts  # one finished attempt per block
    lost = {t["task"] for t in attempts if t["node"] == victim.node_id} - {
        task for task, t in finished.items() if t["node"] == victim.node_id}
    assert lost, attempts  # the victim died with work in hand ...
    for task in lost:  # ... and each such block ran again, on a node still alive
        assert finished[task]["attempt"] > 0 and finished[task]["node"] != victim.node_id, (
            finished[task])
    assert "[encode] done" in log.read_text()

    clean = _cli(cli_env(), "run", str(pipeline), "--run-dir", str(tmp_path / "clean"))
    assert clean.returncode == 0, clean.stderr[-3000:]
    killed_rows = _store_table(run_dir, "encode", "latents.zarr")
    assert len(killed_rows) == ENCODED
    # Row for row equal: every block is encoded by one single-threaded task in eval mode,
    # whichever node runs it, so the numbers are the same bit for bit.
    pd.testing.assert_frame_equal(killed_rows, _store_table(tmp_path / "clean", "encode",
                                                            "latents.zarr"))
    np.testing.assert_array_equal(_z_std(run_dir), _z_std(tmp_path / "clean"))
    assert _metrics(run_dir) == _metrics(tmp_path / "clean")


def _z_std(run_dir: Path) -> np.ndarray:
    """The posterior std of every row the encode stage stored."""
    from latentsci.store import LatentStore

    return LatentStore.open(_stage_dir(run_dir, "encode") / "latents.zarr").group["z_std"][:]
