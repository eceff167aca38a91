"""Run directories, stores and checkpoints on object storage: an S3 API on loopback (moto's
server, standing in for a real bucket), reached through fsspec on the same code path as a
local folder."""

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import fsspec
import pandas as pd
import pytest

from latentsci.errors import RunLockError
from latentsci.pipeline.object_lock import ObjectRunLock
from latentsci.pipeline.run_lock import STALE_AFTER_S
from latentsci.store import LatentStore

from conftest import ROOT, SMILES, cli_env, latentsci_cmd

TRAIN_AND_ENCODE = """
    [stages.train]
    kind = "train"
    needs = ["ingest"]
    epochs = 1
    batch_size = 4
    checkpoint_every_steps = 2
    max_len = 40
    validation_molecules = 4

    [stages.train.model]
    latent_dim = 8
    encoder_hidden = 16
    encoder_layers = 1
    decoder_embed = 8
    decoder_hidden = 32
    decoder_layers = 1

    [stages.encode]
    kind = "encode"
    needs = ["ingest", "train"]
    rows_per_shard = 8
"""


def _pipeline(folder, source, train: bool):
    """ingest + fingerprints, and with `train` a one-epoch VAE and its encode stage."""
    text = f"""
        [pipeline]
        name = "on_s3"
        workflow = "molecules"

        [stages.ingest]
        kind = "ingest"
        source = "{source}"
        split = {{ method = "random", fractions = {{ train = 0.6, valid = 0.2, test = 0.2 }} }}

        [stages.fingerprints]
        kind = "fingerprints"
        needs = ["ingest"]
        n_bits = 32
        rows_per_shard = 8
    """
    path = folder / ("full.toml" if train else "short.toml")
    path.write_text(textwrap.dedent(text) + (textwrap.dedent(TRAIN_AND_ENCODE) if train else ""))
    return path


def _run(pipeline, run_dir, ray_cluster, cache, tracking, *extra):
    """The driver through the CLI, its working copies under `cache`."""
    env = dict(cli_env(), LATENTSCI_CACHE=str(cache))
    result = subprocess.run(latentsci_cmd("run", str(pipeline), "--run-dir", str(run_dir),
                                          "--address", ray_cluster.address,
                                          "--tracking-uri", tracking, *extra),
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result.stdout


def _manifest(fs, run_url):
    """The run directory's manifest, read from the bucket."""
    return json.loads(fs.cat_file(f"{run_url}/manifest.json"))["stages"]


@pytest.mark.slow
def test_a_pipeline_on_s3_matches_a_local_run_and_resumes_from_a_fresh_machine(
        ray_cluster, s3_bucket, tmp_path):
    source = tmp_path / "mols.smi"
    source.write_text("\n".join(SMILES) + "\n")
    run_url = f"{s3_bucket}/runs/on_s3"
    tracking = f"sqlite:///{tmp_path}/mlflow.db"
    out = _run(_pipeline(tmp_path, source, train=True), run_url, ray_cluster,
               tmp_path / "cache_a", tracking)
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    stages = _manifest(fs, run_url)
    assert list(stages) == ["ingest", "fingerprints", "train", "encode"]
    assert "run directory: " + run_url in out
    # stores were written in place by the Ray tasks; checkpoints by the Ray Train workers
    for name in ("fingerprints", "encode"):
        assert stages[name]["outputs"]["store"].startswith(run_url + "/stages/")
    assert fs.glob(f"{run_url}/state/train-*/train/checkpoint_*")
    assert fs.exists(f"{run_url}/driver.log")
    assert not fs.exists(f"{run_url}/run.lock")  # released
    # the same stages on a local folder give the same rows
    local = tmp_path / "local"
    _run(_pipeline(tmp_path, source, train=False), local, ray_cluster, tmp_path / "cache_b",
         f"sqlite:///{tmp_path}/mlflow_local.db")
    local_stages = json.loads((local / "manifest.json").read_text())["stages"]
    on_s3 = LatentStore.open(stages["fingerprints"]["outputs"]["store"])
    here = LatentStore.open(local_stages["fingerprints"]["outputs"]["store"])
    assert list(on_s3.ids) == list(here.ids)
    assert (on_s3.group["z"][:] == here.group["z"][:]).all()
    molecules = pd.read_parquet(stages["ingest"]["outputs"]["molecules"])
    pd.testing.assert_frame_equal(molecules, pd.read_parquet(
        local_stages["ingest"]["outputs"]["molecules"]))
    encoded = LatentStore.open(stages["encode"]["outputs"]["store"])  # complete, or it refuses
    assert encoded.n_rows == len(molecules) and list(encoded.ids) == list(molecules["id"])
    # any xarray user, and `latentsci query`, open the store by its URL
    import xarray as xr

    url = stages["fingerprints"]["outputs"]["store"]
    assert xr.open_zarr(url, consolidated=False)["z"].shape == (here.n_rows, 32)
    query = subprocess.run(latentsci_cmd("query", url, "--limit", "3"), cwd=ROOT, env=cli_env(),
                           capture_output=True, text=True, timeout=120)
    assert query.returncode == 0 and here.ids[0] in query.stdout, query.stderr[-2000:]
    # a driver on a fresh machine (an empty cache) finds every stage finished
    again = _run(_pipeline(tmp_path, source, train=True), run_url, ray_cluster,
                 tmp_path / "cache_c", tracking)
    assert again.count("unchanged") == 4, again
    # --force on object storage: the stage's folder in the bucket is replaced, store and all
    encode_folder = stages["encode"]["outputs"]["store"].rsplit("/", 1)[0]
    fs.pipe_file(f"{encode_folder}/leftover.txt", b"from the attempt before")
    forced = _run(_pipeline(tmp_path, source, train=True), run_url, ray_cluster,
                  tmp_path / "cache_c", tracking, "--force", "encode")
    assert forced.count("unchanged") == 3 and "[encode] running" in forced, forced
    assert not fs.exists(f"{encode_folder}/leftover.txt")
    assert LatentStore.open(_manifest(fs, run_url)["encode"]["outputs"]["store"]).n_rows == len(
        molecules)


def test_object_lock_refuses_a_live_run_and_takes_over_a_stale_one(s3_bucket):
    root = f"{s3_bucket}/runs/locked"
    with ObjectRunLock(root) as first:
        with pytest.raises(RunLockError, match=f"pid {os.getpid()}"):
            ObjectRunLock(root).acquire()
        assert first.took_over is None
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    assert not fs.exists(f"{root}/run.lock")
    # a lock left by a run on another host whose heartbeat stopped long ago
    stale = {"pid": 4242, "host": "gone-node", "started": "2026-01-01T00:00:00+00:00",
             "command": "latentsci run x", "process_start": None,
             "beat": time.time() - STALE_AFTER_S - 5}
    fs.pipe_file(f"{root}/run.lock", json.dumps(stale).encode())
    with ObjectRunLock(root) as lock:
        assert lock.took_over is not None and lock.took_over.host == "gone-node"
    # ... and one whose heartbeat is fresh is refused, naming its holder
    fresh = dict(stale, beat=time.time(), host="busy-node")
    fs.pipe_file(f"{root}/run.lock", json.dumps(fresh).encode())
    with pytest.raises(RunLockError, match="busy-node"):
        ObjectRunLock(root).acquire()
    # a dead process on this host is detected at once, whatever its heartbeat
    dead = dict(fresh, host=socket.gethostname(), pid=2 ** 22 + 17)
    fs.pipe_file(f"{root}/run.lock", json.dumps(dead).encode())
    with ObjectRunLock(root) as lock:
        assert lock.took_over.pid == dead["pid"]


def test_an_unreachable_bucket_is_one_line_before_any_work(ray_cluster, s3_server, tmp_path,
                                                           smiles_file):
    from conftest import write_pipeline

    pipeline = write_pipeline(tmp_path, smiles_file)
    result = subprocess.run(latentsci_cmd("run", str(pipeline), "--run-dir",
                                          "s3://no-such-bucket-here/runs/x"),
                            cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no-such-bucket-here" in lines[0], result.stderr
    assert "Ray:" not in result.stdout  # nothing started


@pytest.fixture
def own_s3(s3_server, monkeypatch):
    """A second S3 server for one test (to be stopped by it); filesystems made while it is the
    endpoint are forgotten afterwards, so later tests reach the session's server again."""
    import s3fs
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")  # botocore's retries: seconds, not a minute
    s3fs.S3FileSystem.clear_instance_cache()
    try:
        yield server
    finally:
        server.stop()  # a second stop is harmless
        s3fs.S3FileSystem.clear_instance_cache()


def test_a_bucket_lost_mid_run_is_one_line_and_the_files_stay(own_s3, tmp_path):
    from latentsci.errors import StorageError
    from latentsci.storage.working_copy import WorkingCopy

    fsspec.filesystem("s3", skip_instance_cache=True).mkdir("lost")
    copy = WorkingCopy("s3://lost/run", cache=tmp_path / "cache")
    copy.local.mkdir(parents=True)
    (copy.local / "manifest.json").write_text("{}")
    assert copy.push() == 1 and copy.push() == 0  # only what changed moves
    own_s3.stop()  # the bucket's server goes away mid-run
    (copy.local / "stages").mkdir()
    (copy.local / "stages" / "table.csv").write_text("a\n1\n")
    with pytest.raises(StorageError) as caught:
        copy.push()
    message = str(caught.value)
    assert "s3://lost/run" in message and str(copy.local) in message and "\n" not in message
    assert (copy.local / "stages" / "table.csv").read_text() == "a\n1\n"


def test_processes_fetching_one_model_at_once_each_get_a_whole_copy(s3_bucket, tmp_path,
                                                                    monkeypatch):
    """Ray workers on one node load the same model folder from the bucket at the same moment."""
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    model = f"{s3_bucket}/stages/train-1/model"
    blob = os.urandom(2_000_000)
    fs.pipe({f"{model}/model.pt": blob, f"{model}/meta.json": b'{"format": "x"}'})
    script = ("import sys; from latentsci.storage.fetch import fetched; "
              "p = fetched(sys.argv[1]); "
              "print(p, (p / 'model.pt').stat().st_size, (p / 'meta.json').read_text())")
    env = dict(cli_env(), LATENTSCI_CACHE=str(tmp_path / "cache"))
    procs = [subprocess.Popen([sys.executable, "-c", script, model], env=env, cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-800:] for _, err in outs]
    lines = {out.strip() for out, _ in outs}
    assert len(lines) == 1  # one copy, whole, the same for all
    path, size, meta = lines.pop().split(" ", 2)
    assert int(size) == len(blob) and meta == '{"format": "x"}'
    assert (Path(path) / "model.pt").read_bytes() == blob
    leftovers = list((tmp_path / "cache").rglob(".part-*"))
    assert leftovers == []
    # a retrained model (same size, new bytes) is fetched anew, beside the old copy
    from latentsci.storage.fetch import fetched

    retrained = os.urandom(2_000_000)
    fs.pipe_file(f"{model}/model.pt", retrained)
    monkeypatch.setenv("LATENTSCI_CACHE", str(tmp_path / "cache"))
    again = fetched(model)
    assert again != Path(path) and (again / "model.pt").read_bytes() == retrained
    assert (Path(path) / "model.pt").read_bytes() == blob  # a reader of the old one is unharmed


FIELDS = """
    [pipeline]
    name = "fields_on_s3"
    workflow = "fields"

    [stages.simulate]
    kind = "simulate"
    generator = "gray_scott"
    trajectories = 6
    test_trajectories = 2
    per_task = 3
    gray_scott = { resolution = 16, dx = 0.02, t_final = 400.0, frames = 8, presets = ["spots"] }

    [stages.autoencoder]
    kind = "train_autoencoder"
    needs = ["simulate"]
    epochs = 1
    batch_size = 16
    width = 8
    levels = 2
    blocks = 1
    latent_channels = 2

    [stages.encode]
    kind = "encode"
    needs = ["simulate", "autoencoder"]
    per_task = 3

    [stages.interpolate]
    kind = "interpolate"
    needs = ["encode"]
    random = 2
    steps = 3
    per_task = 2
    strips = 1
"""


@pytest.mark.slow
def test_a_fields_pipeline_on_s3_writes_every_store_and_model_there(ray_cluster, s3_bucket,
                                                                    tmp_path):
    """Stores written by tasks (fields, latents), one written by the driver (the interpolated
    frames), Ray Train reading its initial model from the bucket, and tasks loading the trained
    one from there."""
    pipeline = tmp_path / "fields.toml"
    pipeline.write_text(textwrap.dedent(FIELDS))
    run_url = f"{s3_bucket}/runs/fields"
    _run(pipeline, run_url, ray_cluster, tmp_path / "cache", f"sqlite:///{tmp_path}/f.db")
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    stages = _manifest(fs, run_url)
    assert list(stages) == ["simulate", "autoencoder", "encode", "interpolate"]
    outputs = {f"{s}.{k}": v for s, r in stages.items() for k, v in r["outputs"].items()}
    assert all(v.startswith(run_url + "/") for v in outputs.values()), outputs
    for key in ("simulate.fields", "encode.store", "interpolate.interpolation"):
        assert fs.exists(outputs[key] + "/zarr.json"), key  # a Zarr group in the bucket
    assert fs.exists(outputs["autoencoder.codec"] + "/model.pt")
    assert LatentStore.open(outputs["encode.store"]).n_rows == 6 * 8  # trajectories x frames
    assert fs.glob(f"{run_url}/state/autoencoder-*/autoencoder/checkpoint_*")
