"""Token auth with the token in a file, as a Kubernetes Secret mounted into a pod provides it
(RAY_AUTH_TOKEN_PATH, nothing else set): `submit`, `status` and `logs` all work against a real
`ray start --head` with token auth, and a wrong token is one line for each of them. Extends the
token tests of test_cluster.py, on the same loopback head node fixture."""

from __future__ import annotations

import re
import time

from conftest import write_pipeline
from test_cluster import _job_cli, head_node, user_env  # noqa: F401 - head_node is a fixture


def _mounted_secret(folder, token: str):
    """The token as a mounted Secret gives it: a file named after the Secret's key, owner-only,
    no trailing newline."""
    path = folder / "ray-token" / "auth_token"
    path.parent.mkdir()
    path.write_text(token)
    path.chmod(0o600)
    return path


def test_job_verbs_read_the_token_from_a_mounted_secret(head_node, tmp_path, smiles_file):
    url, token = head_node
    env = user_env(tmp_path / "home", RAY_AUTH_TOKEN_PATH=str(_mounted_secret(tmp_path, token)))
    pipeline = write_pipeline(tmp_path, smiles_file, fp=False)
    run_dir = tmp_path / "jobrun"
    submitted = _job_cli(env, "submit", str(pipeline), "--address", url, "--run-dir", str(run_dir))
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"raysubmit_\w+", job_id)
    status, deadline = "", time.time() + 240
    while time.time() < deadline and status not in ("SUCCEEDED", "FAILED", "STOPPED"):
        time.sleep(2)
        out = _job_cli(env, "status", job_id, "--address", url)
        assert out.returncode == 0, out.stderr
        status = out.stdout.split()[1]
    logs = _job_cli(env, "logs", job_id, "--address", url)
    assert logs.returncode == 0 and status == "SUCCEEDED", (status, logs.stdout, logs.stderr)
    assert "[ingest] running ingest" in logs.stdout
    assert (run_dir / "manifest.json").is_file()
    listed = _job_cli(env, "status", "--address", url)
    assert listed.returncode == 0 and job_id in listed.stdout

    (tmp_path / "other").mkdir()
    wrong_token = _mounted_secret(tmp_path / "other", "0" * 32)
    wrong = user_env(tmp_path / "home", RAY_AUTH_TOKEN_PATH=str(wrong_token))
    for args in (["submit", str(pipeline)], ["status"], ["logs", job_id]):
        refused = _job_cli(wrong, *args, "--address", url)
        lines = refused.stderr.strip().splitlines()
        assert refused.returncode == 2 and len(lines) == 1, (args, refused.stderr)
        assert lines[0].startswith(f"error: Ray job server at {url} refused us:"), lines
