"""A full disk while a latent store is written: one clear line naming the store, the store left
incomplete, and readers refusing it.

The disk is a real small tmpfs the test mounts (CI runs as root). Where mounting is not allowed,
the unit test injects ENOSPC at the store layer instead (zarr's local file writer raises it once
the bytes written pass the same budget), and the pipeline test, whose writers are Ray worker
processes that no patch reaches, is skipped.
"""

import errno
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from latentsci.errors import StoreError
from latentsci.pipeline.driver import main
from latentsci.store import LatentStore
from workflows.molecules import STAGES

from conftest import write_pipeline


def _mount_tmpfs(folder: Path, size: str) -> bool:
    """Mount a tmpfs of `size` on `folder`; False where this process may not mount."""
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs",
                           str(folder)], capture_output=True)
    return done.returncode == 0


def _unmount(folder: Path) -> None:
    subprocess.run(["umount", str(folder)], check=True)


@pytest.fixture
def small_disk(tmp_path, monkeypatch):
    """A 64 KiB disk: a tmpfs where we may mount one, else a store layer that runs out at 64 KiB."""
    disk = tmp_path / "disk"
    mounted = _mount_tmpfs(disk, "64k")
    if not mounted:
        import zarr.storage._local as local

        put, budget = local._put, {"left": 64 << 10}

        def filling_put(path, value, exclusive=False):
            size = len(value.as_buffer_like())
            if size > budget["left"]:
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
            budget["left"] -= size
            return put(path, value, exclusive)

        monkeypatch.setattr(local, "_put", filling_put)
    yield disk
    if mounted:
        _unmount(disk)


def test_full_disk_leaves_the_store_incomplete_and_refused(small_disk):
    path = small_disk / "latents.zarr"
    store = LatentStore.create(path, n_rows=256, dim=64, properties={"qed": "float64"},
                               rows_per_shard=64)
    ones = np.ones((64, 64), dtype=np.float32)
    with pytest.raises(StoreError) as caught:
        for start in range(0, 256, 64):  # 16 KiB of z per block: the disk fills at block 2 or 3
            store.write_rows(start, ones, [f"m{i}" for i in range(start, start + 64)],
                             {"qed": np.full(64, 0.5)})
    line = str(caught.value)
    assert "\n" not in line and line.startswith(f"{path}: No space left on device while writing "
                                                "rows [")
    assert line.endswith("the store is left incomplete (readers refuse it): free space and rerun")
    assert not store.complete and store.missing_blocks()
    with pytest.raises(StoreError, match="blocks never written"):
        store.finalize()
    with pytest.raises(StoreError, match="store is incomplete"):
        LatentStore.open(path)
    assert LatentStore.open(path, allow_incomplete=True).complete is False


def test_a_stage_writing_from_ray_workers_onto_a_full_disk(tmp_path, ray_cluster, capsys,
                                                          smiles_file):
    """The fingerprints stage's Ray tasks fill a 384 KiB disk holding the stages' outputs:
    the run stops with one line naming the store, which stays incomplete and refused, and the
    stage is not recorded as finished."""
    run_dir = tmp_path / "run"
    stages = run_dir / "stages"
    if not _mount_tmpfs(stages, "384k"):
        pytest.skip("cannot mount a tmpfs here (needs root): the store-level test covers ENOSPC")
    try:
        pipeline = write_pipeline(tmp_path, smiles_file)
        text = pipeline.read_text().replace("n_bits = 32", "n_bits = 8192")  # 32 KiB a row
        pipeline.write_text(text)
        code = main(STAGES, [str(pipeline), "--run-dir", str(run_dir), "--address",
                             ray_cluster.address, "--tracking-uri",
                             f"sqlite:///{tmp_path / 'mlflow.db'}"])
        # in-process, MLflow's own INFO records reach pytest's stderr (a CLI run logs them)
        err = [line for line in capsys.readouterr().err.splitlines() if "mlflow." not in line]
        assert code == 2 and len(err) == 1, err
        store = next(stages.glob("fingerprints-*/fingerprints.zarr"))
        assert err[0].startswith(f"error: {store}: No space left on device while ")
        assert err[0].endswith("the store is left incomplete (readers refuse it): free space "
                               "and rerun")
        with pytest.raises(StoreError, match="store is incomplete"):
            LatentStore.open(store)
        assert list(json.loads((run_dir / "manifest.json").read_text())["stages"]) == ["ingest"]
    finally:
        _unmount(stages)
