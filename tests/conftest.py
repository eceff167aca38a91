"""Shared fixtures: one real embedded Ray per test session, tiny molecule files, pipelines."""

from __future__ import annotations

import os
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SMILES = [
    "CCO", "c1ccccc1", "CC(=O)Oc1ccccc1C(=O)O", "CCN(CC)CC", "c1ccc2ccccc2c1",
    "CC(C)Cc1ccc(cc1)C(C)C(=O)O", "O=C(O)c1ccccc1", "Cc1ccccc1", "CCCCCC", "C1CCCCC1",
    "c1ccncc1", "OCC(O)CO", "CC(=O)Nc1ccc(O)cc1", "COc1ccccc1", "Clc1ccccc1",
    "CC1=CC(=O)C=CC1=O", "NC(=O)c1ccccc1", "C1CCOC1", "c1ccoc1", "CCOC(=O)C",
]


# An S3 API on loopback (moto's server; it stands in for a real bucket), started before anything
# else so that Ray's workers, started later, inherit its address and dummy keys as a cluster's
# nodes would have theirs. Working copies and fetched models go to a temporary cache, not ~.
_S3: dict = {}
os.environ["LATENTSCI_CACHE"] = tempfile.mkdtemp(prefix="latentsci-cache-")


def pytest_configure(config):
    """Start the S3 server on a free port and point AWS_* at it (skipped without moto)."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        return
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    _S3.update(server=server, endpoint=f"http://{host}:{port}")
    os.environ.update(AWS_ENDPOINT_URL=_S3["endpoint"], AWS_ACCESS_KEY_ID="moto-test-key",
                      AWS_SECRET_ACCESS_KEY="moto-test-secret", AWS_DEFAULT_REGION="us-east-1")


def pytest_unconfigure(config):
    """Stop the S3 server."""
    if "server" in _S3:
        _S3["server"].stop()


@pytest.fixture(scope="session")
def s3_server() -> str:
    """The session's S3 endpoint (the test is skipped, saying why, without moto)."""
    if "endpoint" not in _S3:
        pytest.skip("moto is not installed: pip install -e '.[test]'")
    return _S3["endpoint"]


@pytest.fixture
def s3_bucket(s3_server) -> str:
    """A fresh bucket for one test: its s3:// URL."""
    import uuid

    import fsspec

    name = f"t-{uuid.uuid4().hex[:12]}"
    fsspec.filesystem("s3", skip_instance_cache=True).mkdir(name)
    return f"s3://{name}"


@pytest.fixture(scope="session")
def ray_cluster():
    """The embedded Ray the driver itself would start (loopback, token auth on), once per session."""
    from latentsci.runtime import connect, disconnect

    info = connect(num_cpus=2)
    yield info
    disconnect()


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op torch thread for a module of tiny convolutions: on 2 shared cores they run
    tens of times slower when threads contend."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def smiles_file(tmp_path: Path) -> Path:
    """A .smi file with one bad SMILES, a salt and a duplicate in the middle."""
    lines = SMILES[:5] + ["C1CC(", "[Na+].[Cl-].CCN", "OCC"] + SMILES[5:]
    path = tmp_path / "mols.smi"
    path.write_text("\n".join(lines) + "\n")
    return path


def write_pipeline(folder: Path, source: Path, extra: str = "", fp: bool = True) -> Path:
    """A small molecules pipeline over `source` (ingest, then fingerprints unless fp=False)."""
    text = f"""
        [pipeline]
        name = "tiny"
        workflow = "molecules"

        [stages.ingest]
        kind = "ingest"
        source = "{source}"
        batch_size = 4
        split = {{ method = "scaffold", fractions = {{ train = 0.6, valid = 0.2, test = 0.2 }} }}
        {extra}
    """
    if fp:
        text += """
        [stages.fingerprints]
        kind = "fingerprints"
        needs = ["ingest"]
        n_bits = 32
        rows_per_shard = 8
        """
    path = folder / "tiny.toml"
    path.write_text(textwrap.dedent(text))
    return path


def cli_env() -> dict[str, str]:
    """Environment for CLI subprocesses: the project importable, no terminal progress bars."""
    env = dict(os.environ, CI="1", PYTHONPATH=str(ROOT))
    env.pop("RAY_ADDRESS", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def latentsci_cmd(*args: str) -> list[str]:
    """The `latentsci` console command, run through this interpreter."""
    return [sys.executable, "-m", "latentsci.cli", *args]


def session_processes(sid: int) -> list:
    """Every live process in session `sid`: a driver started in its own session and what it
    started (its embedded Ray)."""
    import psutil

    found = []
    for proc in psutil.process_iter():
        try:
            if os.getsid(proc.pid) == sid and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return found


def train_worker_processes() -> list:
    """Ray Train worker processes of this test session's cluster (to kill one mid-run)."""
    import psutil

    me = psutil.Process(os.getpid())
    return [p for p in me.children(recursive=True)
            if p.cmdline() and p.cmdline()[0].startswith("ray::RayTrainWorker")]


def train_killing_one_worker(train, run_folder: Path) -> list[dict]:
    """Run `train()` (2 Ray Train workers) in a thread, SIGKILL one worker once the first
    checkpoint is recorded under `run_folder`, and return what `train()` returned."""
    import signal
    import threading
    import time

    out = {}

    def run():
        try:
            out["history"] = train()
        except Exception as exc:  # surfaced by the assertion below
            out["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    snapshot = run_folder / "checkpoint_manager_snapshot.json"
    deadline = time.time() + 180
    while not snapshot.exists() and time.time() < deadline and thread.is_alive():
        time.sleep(0.2)
    workers = train_worker_processes()
    assert snapshot.exists() and len(workers) == 2
    os.kill(workers[1].pid, signal.SIGKILL)
    thread.join(timeout=300)
    assert "error" not in out, out.get("error")
    return out["history"]
