"""Kill the driver in the middle of a pipeline and rerun: the finished stage is skipped, training
resumes from its last checkpoint, and the result equals an uninterrupted run's bit for bit."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import psutil
import pytest
import torch

from conftest import ROOT, SMILES, cli_env, latentsci_cmd, session_processes

EPOCHS = 3
# Per-epoch wall-clock throughput, and where the attempt that wrote the row began: the only
# numbers of an epoch's row that may differ between a resumed and an uninterrupted run.
NOT_REPRODUCIBLE = {"molecules_per_s", "attempt_start_epoch", "attempt_start_step"}


def _molecules() -> list[str]:
    """About 60 distinct small molecules: enough for several batches per epoch, quick to train."""
    made = [f"{'C' * i}{tail}" for i in range(1, 11) for tail in ("C(=O)O", "N", "OC")]
    made += [f"c1ccccc1{'C' * i}O" for i in range(1, 11)]
    out = list(dict.fromkeys(SMILES + made))
    assert len(out) >= 55
    return out


def _pipeline(folder: Path) -> Path:
    """Ingest, then the molecule VAE's `train` on one worker: tiny model, fixed seed, a
    checkpoint every 3 of the 9 steps of an epoch (so the kill can land mid-epoch)."""
    source = folder / "mols.smi"
    source.write_text("\n".join(_molecules()) + "\n")
    path = folder / "killed.toml"
    path.write_text(textwrap.dedent(f"""
        [pipeline]
        name = "killed"
        workflow = "molecules"

        [stages.ingest]
        kind = "ingest"
        source = "{source}"
        split = {{ method = "random", fractions = {{ train = 0.6, valid = 0.2, test = 0.2 }} }}

        [stages.train]
        kind = "train"
        needs = ["ingest"]
        epochs = {EPOCHS}
        batch_size = 4
        seed = 7
        num_workers = 1
        checkpoint_every_steps = 3
        max_len = 40
        validation_molecules = 4

        [stages.train.model]
        latent_dim = 4
        encoder_hidden = 16
        encoder_layers = 1
        decoder_embed = 8
        decoder_hidden = 16
        decoder_layers = 1
    """))
    return path


def _run(pipeline: Path, run_dir: Path, address: str) -> subprocess.CompletedProcess:
    """`latentsci run` to the end on the test session's Ray (one Ray start fewer than embedded)."""
    result = subprocess.run(latentsci_cmd("run", str(pipeline), "--run-dir", str(run_dir),
                                          "--address", address),
                            cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result


def _stages(run_dir: Path) -> dict:
    """The manifest's finished stages."""
    return json.loads((run_dir / "manifest.json").read_text())["stages"]


def _history(record: dict) -> list[dict]:
    """The train stage's per-epoch history, as its exported model records it."""
    return json.loads((Path(record["outputs"]["codec"]) / "meta.json").read_text())["history"]


def _reproducible(row: dict) -> dict:
    """An epoch's row (or the stage's final_ metrics) without the wall-clock and attempt fields."""
    return {k: v for k, v in row.items() if k.removeprefix("final_") not in NOT_REPRODUCIBLE}


def _checkpoint_steps(run_dir: Path) -> set[int]:
    """Optimiser steps of the train stage's checkpoints on disk (those Ray reported)."""
    steps = set()
    for meta in run_dir.glob("state/train-*/train/checkpoint_*/meta.json"):
        try:
            steps.add(json.loads(meta.read_text())["step"])
        except (OSError, ValueError, KeyError):  # one being written as the driver died
            continue
    return steps


def _recorded(run_dir: Path) -> dict | None:
    """The metrics of the newest train checkpoint Ray recorded (what a rerun resumes from), or
    None while there is none (or Ray is rewriting its snapshot)."""
    for snapshot in run_dir.glob("state/train-*/train/checkpoint_manager_snapshot.json"):
        try:
            return json.loads(snapshot.read_text())["latest_checkpoint_result"]["metrics"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
    return None


def _kill_mid_epoch(pipeline: Path, run_dir: Path) -> tuple[int, set[int]]:
    """Start a driver in its own session and SIGKILL its process group once Ray has recorded a
    mid-epoch train checkpoint (the hard case for a resume); check that every process it started
    dies with it. Returns that checkpoint's step and the steps of the checkpoints left on disk."""
    driver = subprocess.Popen(latentsci_cmd("run", str(pipeline), "--run-dir", str(run_dir)),
                              cwd=ROOT, env=cli_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.time() + 180
        while not (recorded := _recorded(run_dir)) or recorded.get("partial") != 1:
            if driver.poll() is not None:
                pytest.fail(f"the driver ended before the kill:\n{driver.stdout.read()}")
            assert time.time() < deadline, "no mid-epoch train checkpoint within 180 s"
            time.sleep(0.05)
        os.killpg(driver.pid, signal.SIGKILL)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(driver.pid, signal.SIGKILL)
        raise
    finally:
        console = driver.communicate(timeout=60)[0]
    # Ray's workers sit in process groups of their own: they must go because their raylet did
    # (else they could write into the run directory under the rerun's feet).
    left = session_processes(driver.pid)
    _, alive = psutil.wait_procs(left, timeout=30)
    for proc in alive:  # ours: do not leak them into the rest of the session
        proc.kill()
    assert alive == [], f"processes of the killed driver still run: {alive}"
    assert "Ray: embedded at " in console  # the Ray that died was the driver's own
    assert "[train] running train" in console and "[train] done" not in console
    assert "train" not in _stages(run_dir)  # killed in the middle of the stage
    return int(recorded["step"]), _checkpoint_steps(run_dir)


@pytest.mark.slow
def test_rerun_after_killed_driver_skips_ingest_resumes_training_and_matches(tmp_path: Path,
                                                                           ray_cluster):
    pipeline = _pipeline(tmp_path)
    uninterrupted = tmp_path / "a"
    _run(pipeline, uninterrupted, ray_cluster.address)
    a = _stages(uninterrupted)
    assert a["train"]["metrics"]["final_attempt_start_step"] == 0  # from scratch, in one go

    resumed = tmp_path / "b"
    killed_at, left = _kill_mid_epoch(pipeline, resumed)
    rerun = _run(pipeline, resumed, ray_cluster.address)  # the killed one's Ray is gone
    assert f"[ingest] unchanged ({a['ingest']['config_hash']}): skipped" in rerun.stdout
    assert "[ingest] running" not in rerun.stdout and "[train] running train" in rerun.stdout
    b = _stages(resumed)
    assert b["ingest"]["finished_at"] < b["train"]["finished_at"]
    assert b["ingest"]["config_hash"] == a["ingest"]["config_hash"]

    # Resumed, not restarted: the last attempt began at a checkpoint of the killed run, the one
    # seen recorded or a later one (Ray may record another in the moment before the kill lands).
    # Ray records checkpoints some steps behind the worker, so the kill lands anywhere in epochs
    # 0-2; 3 epochs leave it several mid-epoch checkpoints to be seen at before training ends.
    start = int(b["train"]["metrics"]["final_attempt_start_step"])
    assert start in left and killed_at <= start < EPOCHS * _history(a["train"])[0]["step"], (
        start, killed_at, left)
    assert "took over the run directory's stale lock" in rerun.stdout

    # Exact equality, no tolerance. One CPU worker (a single torch thread: Ray sets
    # OMP_NUM_THREADS to the worker's 1 CPU), no all-reduce, fixed seed: the uninterrupted run is
    # bitwise deterministic, and the resume restores everything it depends on: weights, Adam's
    # moments, the step (KL weight) and epoch (learning rate), the epoch's seeded batch order with
    # the batches done skipped, torch's RNG state (the reparameterisation noise) and the stats of
    # the interrupted epoch's spans done (its logged means). The last two travel with each
    # checkpoint since this test found resumes reseeding the RNG and logging part of an epoch.
    assert _reproducible(b["train"]["metrics"]) == _reproducible(a["train"]["metrics"])
    history_a, history_b = _history(a["train"]), _history(b["train"])
    assert len(history_b) == len(history_a) == EPOCHS
    assert history_b[-1]["attempt_start_step"] == start
    assert [_reproducible(r) for r in history_b] == [_reproducible(r) for r in history_a]
    weights_a = torch.load(Path(a["train"]["outputs"]["codec"]) / "model.pt", weights_only=True)
    weights_b = torch.load(Path(b["train"]["outputs"]["codec"]) / "model.pt", weights_only=True)
    assert weights_a.keys() == weights_b.keys()
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
