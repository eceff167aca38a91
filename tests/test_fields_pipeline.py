"""The fields pipeline end to end on a tiny grid: simulate, autoencode, encode, two surrogates,
evaluate; then `latentsci rollout` and a user's broken array, all through the CLI."""

import json
import subprocess
import textwrap

import numpy as np
import zarr
from mlflow.tracking import MlflowClient

from latentsci.fields.data.sources import open_fields
from latentsci.store import LatentStore

from conftest import ROOT, cli_env, latentsci_cmd

PIPELINE = """
    [pipeline]
    name = "tiny_fields"
    workflow = "fields"

    [stages.simulate]
    kind = "simulate"
    generator = "{generator}"
    trajectories = 8
    test_trajectories = 2
    per_task = 4
    navier_stokes = {{ resolution = 16, t_final = 4.0, frames = 8, dt = 0.01, viscosity = [1e-2, 1e-3] }}
    gray_scott = {{ resolution = 16, dx = 0.02, t_final = 400.0, frames = 8, presets = ["spots", "maze"] }}

    [stages.autoencoder]
    kind = "train_autoencoder"
    needs = ["simulate"]
    epochs = 2
    batch_size = 16
    width = 8
    levels = 2
    blocks = 1
    latent_channels = 2

    [stages.encode]
    kind = "encode"
    needs = ["simulate", "autoencoder"]
    per_task = 4

    [stages.flow]
    kind = "train_surrogate"
    needs = ["encode"]
    epochs = 2
    batch_size = 8
    width = 16
    blocks = 1
    sampler_steps = 4

    [stages.deterministic]
    kind = "train_surrogate"
    needs = ["encode"]
    objective = "deterministic"
    epochs = 2
    batch_size = 8
    width = 16
    blocks = 1

    [stages.evaluate]
    kind = "evaluate"
    needs = ["encode", "flow", "deterministic"]
    context = 3
    members = 3
"""


def _run(tmp_path, ray_cluster, generator: str) -> tuple[dict, object]:
    pipeline = tmp_path / f"{generator}.toml"
    pipeline.write_text(textwrap.dedent(PIPELINE.format(generator=generator)))
    run_dir = tmp_path / f"run_{generator}"
    result = _cli_run(pipeline, run_dir, ray_cluster)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((run_dir / "manifest.json").read_text())["stages"], run_dir


def _cli_run(pipeline, run_dir, ray_cluster) -> subprocess.CompletedProcess:
    """`latentsci run` of a pipeline file against the test session's cluster."""
    return subprocess.run(latentsci_cmd("run", str(pipeline), "--run-dir", str(run_dir),
                                        "--address", ray_cluster.address),
                          cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=600)


def test_navier_stokes_pipeline_and_rollout_cli(ray_cluster, tmp_path):
    stages, run_dir = _run(tmp_path, ray_cluster, "navier_stokes")
    assert list(stages) == ["simulate", "autoencoder", "encode", "flow", "deterministic",
                            "evaluate"]
    assert stages["autoencoder"]["metrics"]["compression_ratio"] == 8.0  # 256 -> 2 x 4 x 4
    store = LatentStore.open(stages["encode"]["outputs"]["store"])
    assert len(store) == 8 * 9 and store.dim == 32 and store.attrs["latent_shape"] == [2, 4, 4]
    rows = store.table(slice(None))
    assert rows["id"].iloc[10] == "traj-00001/t-0001" and rows["trajectory"].iloc[10] == 1
    assert set(rows["viscosity"]) == {1e-2, 1e-3}
    assert (rows["split"] == "test").sum() == 2 * 9
    metrics = json.loads(open(stages["evaluate"]["outputs"]["metrics"]).read())
    for name in ("flow", "deterministic"):
        assert len(metrics[f"{name}/vrmse_by_lead"]) == 9 - 3
        assert np.isfinite(metrics[f"{name}/vrmse_by_lead"]).all()
        # predicting zero scores rel_l2 = 1 exactly, so a forecast at or above 1 is worse than
        # none; this 2-epoch run scores about 0.65 for both surrogates
        assert 0 < metrics[f"{name}/rel_l2"] < 1.0, metrics[f"{name}/rel_l2"]
        for band in ("low", "mid", "high"):
            # relative power errors: at the last lead the nu = 1e-2 test trajectory has decayed
            # to ~1e-7 of its shell-1 power in shells 2-4, so any decoder noise there reads as
            # errors of tens to hundreds here (about 12-470 in a run); a blown-up forecast
            # (10x amplitude: 100x power) goes past 1e4, and 0 would mean a perfect spectrum
            value = metrics[f"{name}/spectrum_{band}"]
            assert np.isfinite(value) and 0 < value < 1e4, (band, value)
    # an over-confident ensemble at this size (about 0.13 in a run); 0 would mean the members
    # collapsed onto one forecast, far above 1 a spread far wider than the error
    assert 0.01 < metrics["flow/spread_skill_ratio"] < 2.0, metrics["flow/spread_skill_ratio"]
    assert len(metrics["flow/spread_by_lead"]) == 9 - 3 and min(metrics["flow/spread_by_lead"]) > 0
    assert "deterministic/spread_by_lead" not in metrics
    assert stages["flow"]["metrics"]["parameters"] == stages["deterministic"]["metrics"]["parameters"]
    client = MlflowClient(tracking_uri=f"sqlite:///{run_dir}/mlflow.db")
    names = {a.path for a in client.list_artifacts(stages["evaluate"]["mlflow_run_id"])}
    assert {"vrmse_vs_lead.png", "rollout.png", "spectra_last_lead.png", "metrics.json"} <= names

    cli = dict(cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=300)
    fields = stages["simulate"]["outputs"]["fields"]
    out = subprocess.run(latentsci_cmd("rollout", "--surrogate", stages["flow"]["outputs"]["surrogate"],
                                       "--initial", fields, "--steps", "5", "--members", "2",
                                       "--out", str(tmp_path / "forecast.zarr")), **cli)
    assert out.returncode == 0, out.stderr[-2000:]
    forecast = open_fields(tmp_path / "forecast.zarr")
    assert forecast.shape == (16, 5, 1, 16, 16)
    assert forecast.parameters["member"].tolist() == [0.0, 1.0] * 8
    assert forecast.parameters["source_trajectory"].tolist() == np.repeat(np.arange(8.0), 2).tolist()
    fields_out = forecast.read(np.arange(16))
    assert np.isfinite(fields_out).all()
    # the two members of each trajectory are distinct draws of the flow surrogate, not copies
    for t in range(8):
        assert not np.allclose(fields_out[2 * t], fields_out[2 * t + 1]), t

    broken = tmp_path / "broken.zarr"
    zarr.create_array(str(broken), shape=(2, 3, 16, 16), dtype="float32")
    out = subprocess.run(latentsci_cmd("rollout", "--surrogate", stages["flow"]["outputs"]["surrogate"],
                                       "--initial", str(broken), "--steps", "2", "--out",
                                       str(tmp_path / "x.zarr")), **cli)
    assert out.returncode == 2 and out.stderr == (
        f"error: {broken}: array has 4 dimensions (2, 3, 16, 16); expected 5: "
        "(trajectory, time, channel, x, y)\n"), out.stderr


def test_gray_scott_pipeline_carries_feed_and_kill_and_reruns_nothing(ray_cluster, tmp_path):
    stages, run_dir = _run(tmp_path, ray_cluster, "gray_scott")
    assert stages["simulate"]["metrics"]["rejected"] == 0  # dx 0.02: patterns fit on 16 x 16
    store = LatentStore.open(stages["encode"]["outputs"]["store"])
    rows = store.table(slice(None))
    assert {(f, k) for f, k in zip(rows["F"], rows["k"])} == {(0.030, 0.062), (0.029, 0.057)}
    metrics = json.loads(open(stages["evaluate"]["outputs"]["metrics"]).read())
    # predicting each frame's spatial mean scores VRMSE ~1, and a decoder that forgets to undo
    # the normalisation scores several times that (u and v have means well above their spread).
    # This 2-epoch one scores about 0.9, close to the mean's 1, so the bound leaves room for
    # other machines' round-off in training and still catches a broken decoder.
    assert 0 < metrics["recon_vrmse"] < 1.5, metrics["recon_vrmse"]
    assert len(metrics["flow/vrmse_by_lead"]) == 5
    # more threads and workers say how to run, not what to compute: nothing reruns
    pipeline = tmp_path / "gray_scott.toml"
    text = pipeline.read_text()
    edited = (text.replace('kind = "simulate"\n', 'kind = "simulate"\ncpus_per_task = 2\n')
              .replace('kind = "train_autoencoder"\n',
                       'kind = "train_autoencoder"\nnum_workers = 2\n'))
    assert edited.count("cpus_per_task = 2") == edited.count("num_workers = 2") == 1
    pipeline.write_text(edited)
    again = _cli_run(pipeline, run_dir, ray_cluster)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("unchanged") == len(stages), again.stdout  # simulate included


def test_import_fields_reads_the_well_and_names_a_nan(ray_cluster, tmp_path):
    import h5py

    def well(path, poison: bool):
        with h5py.File(path, "w") as f:
            f.attrs["n_spatial_dims"] = 2
            f.attrs["simulation_parameters"] = ["nu"]
            f.attrs["nu"] = 0.01
            data = np.random.default_rng(0).standard_normal((2, 4, 8, 8)).astype("float32")
            if poison:
                data[1, 2, 3, 3] = np.nan
            f.create_group("t0_fields").create_dataset("tracer", data=data)
            dims = f.create_group("dimensions")
            dims.attrs["spatial_dims"] = ["x", "y"]
            dims.create_dataset("time", data=np.arange(4.0))
        return path

    cli = dict(cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=300)
    for poison in (False, True):
        source = well(tmp_path / f"well_{poison}.hdf5", poison)
        pipeline = tmp_path / f"import_{poison}.toml"
        pipeline.write_text(textwrap.dedent(f"""
            [pipeline]
            name = "import"
            workflow = "fields"

            [stages.fields]
            kind = "import_fields"
            path = "{source.name}"
        """))
        out = subprocess.run(latentsci_cmd("run", str(pipeline), "--run-dir",
                                           str(tmp_path / f"run_{poison}"),
                                           "--address", ray_cluster.address), **cli)
        if not poison:
            assert out.returncode == 0, out.stderr[-2000:]
            stages = json.loads((tmp_path / "run_False" / "manifest.json").read_text())["stages"]
            assert stages["fields"]["outputs"]["fields"] == str(source)
            # what the stage measured and handed on: both trajectories valid, none held out
            assert stages["fields"]["metrics"] == {"trajectories": 2.0}
            split = json.loads(open(stages["fields"]["outputs"]["split"]).read())
            assert split == {"test_from": 2}
            imported = open_fields(stages["fields"]["outputs"]["fields"])
            np.testing.assert_array_equal(  # the Well's (traj, time, x, y) gains a channel axis
                imported.read(np.arange(2)),
                np.random.default_rng(0).standard_normal((2, 4, 8, 8)).astype("float32")[:, :, None])
        else:
            assert out.returncode == 2
            last = out.stderr.strip().splitlines()[-1]
            # data[1, 2, 3, 3] is the NaN: trajectory 1, time 2 of the one channel
            assert last.endswith(f"{source.name}: t0_fields/tracer holds NaN at trajectory 1, "
                                 "time 2 (channel 'tracer')"), last
