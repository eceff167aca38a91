"""The molecule-VAE pipeline end to end on tiny data: ingest, train, encode, sample, evaluate."""

import json
import subprocess
import textwrap

import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient
from rdkit import Chem

from latentsci.store import LatentStore

from conftest import ROOT, SMILES, cli_env, latentsci_cmd
from console_lines import foreign_lines


def _heavy_atoms(smiles: str) -> int:
    """Heavy atoms of a SMILES (0 for an empty or unparsable one)."""
    mol = Chem.MolFromSmiles(smiles)
    return mol.GetNumHeavyAtoms() if mol is not None else 0


def test_vae_pipeline(ray_cluster, tmp_path):
    source = tmp_path / "mols.smi"
    source.write_text("\n".join(SMILES + ["CC[Sn](C)(C)C"]) + "\n")
    pipeline = tmp_path / "vae.toml"
    pipeline.write_text(textwrap.dedent(f"""
        [pipeline]
        name = "tiny_vae"
        workflow = "molecules"

        [stages.ingest]
        kind = "ingest"
        source = "{source}"
        split = {{ method = "random", fractions = {{ train = 0.6, valid = 0.2, test = 0.2 }} }}

        [stages.train]
        kind = "train"
        needs = ["ingest"]
        epochs = 2
        batch_size = 4
        checkpoint_every_steps = 2
        max_len = 40
        validation_molecules = 4

        [stages.train.model]
        latent_dim = 8
        encoder_hidden = 32
        encoder_layers = 2
        decoder_embed = 16
        decoder_hidden = 64
        decoder_layers = 1
        properties = ["qed"]

        [stages.encode]
        kind = "encode"
        needs = ["ingest", "train"]
        rows_per_shard = 8

        [stages.sample]
        kind = "sample"
        needs = ["train", "encode"]
        n = 20
        per_task = 10
        latent = "aggregate"

        [stages.evaluate]
        kind = "evaluate"
        needs = ["ingest", "train", "sample"]
        ks = [10]
        reconstruction_molecules = 4
        reconstruction_decodes = 2

        [stages.interpolate]
        kind = "interpolate"
        needs = ["encode"]
        random = 6
        steps = 4
        per_task = 3
        strips = 2
    """))
    run_dir = tmp_path / "run"
    # Through the CLI: the driver then runs as __main__, which Ray workers cannot import from.
    result = subprocess.run(latentsci_cmd("run", str(pipeline), "--run-dir", str(run_dir),
                                          "--address", ray_cluster.address),
                            cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    stages = json.loads((run_dir / "manifest.json").read_text())["stages"]
    assert list(stages) == ["ingest", "train", "encode", "sample", "evaluate", "interpolate"]

    store = LatentStore.open(stages["encode"]["outputs"]["store"])
    assert len(store) == 21 and store.dim == 8 and "z_std" in store.group
    assert store.attrs["model_mlflow_run_id"] == stages["train"]["mlflow_run_id"]
    from latentsci.latent import store_codec
    from latentsci.latent.codec import weights_sha256

    assert store.attrs["codec"]["kind"] == "molecule_vae"  # the store names the codec that wrote it
    assert store_codec(store).weights_sha256 == weights_sha256(stages["train"]["outputs"]["codec"])
    # Tin is outside the featuriser (encoding reads graphs only: SELFIES tokens do not matter).
    rejects = open(stages["encode"]["outputs"]["rejects"]).read().splitlines()[1:]
    assert stages["encode"]["metrics"]["rejected"] == len(rejects) >= 1
    assert "ingest-20,atom Sn outside the featuriser's vocabulary" in rejects
    assert rejects == ["ingest-20,atom Sn outside the featuriser's vocabulary"]
    z = store.vectors(slice(None))
    assert np.flatnonzero(~np.isfinite(z).all(axis=1)).tolist() == [
        store.ids.tolist().index("ingest-20")]  # the NaN row is the rejected molecule's
    samples = open(stages["sample"]["outputs"]["samples"]).read().splitlines()
    assert len(samples) == 20 and stages["sample"]["metrics"]["valid"] == 1.0

    metrics = json.loads(open(stages["evaluate"]["outputs"]["metrics"]).read())
    # MOSES: unique@k is the distinct share of the first k valid samples (all are valid here)
    first = [Chem.CanonSmiles(s) for s in samples[:10]]
    assert metrics["valid"] == 1.0 and metrics["unique@10"] == len(set(first)) / 10
    assert all(np.isfinite(metrics[k]) for k in ("FCD/Test", "SNN/Test", "Novelty", "IntDiv"))
    # exact matches over 4 molecules x 2 posterior draws: a multiple of 1/8
    assert (metrics["recon_accuracy"] * 8) == round(metrics["recon_accuracy"] * 8)
    assert stages["evaluate"]["metrics"]["unique_at_10"] == metrics["unique@10"]

    client = MlflowClient(tracking_uri=f"sqlite:///{run_dir}/mlflow.db")
    # interpolation through the codec the store records: 6 paths of 4 points, pictures logged
    paths = pd.read_parquet(stages["interpolate"]["outputs"]["paths"])
    points = pd.read_parquet(stages["interpolate"]["outputs"]["interpolation"])
    assert len(paths) == 6 and len(points) == 24 and points["item"].str.len().gt(0).all()
    assert stages["interpolate"]["metrics"]["mean_valid"] == 1.0
    logged = {a.path for a in client.list_artifacts(stages["interpolate"]["mlflow_run_id"])}
    assert {"paths.png", "path_metrics.png", "interpolation.paths.parquet"} <= logged
    train_run = stages["train"]["mlflow_run_id"]
    assert [m.step for m in client.get_metric_history(train_run, "loss")] == [0, 1]
    assert "[train] epoch 2/2: loss " in result.stdout  # one console line per epoch
    # Ray Train's controller and workers, checkpoints and MLflow talk into the log, not here
    assert foreign_lines(result.stdout) == [] and result.stderr == ""
    assert result.stdout.count("run directory: ") == 1
    log = (run_dir / "driver.log").read_text()
    assert "RayTrainWorker" in log and "[train] epoch 2/2: loss " in log
    kl_dims = [client.get_metric_history(train_run, f"kl_dim_{d:03d}") for d in range(8)]
    assert all([m.step for m in h] == [0, 1] for h in kl_dims)
    assert client.get_metric_history(train_run, "kl_dim_008") == []
    names = {a.path for a in client.list_artifacts(train_run)}
    assert {"checkpoint", "training_curves.png", "kl_per_dim.png"} <= names
    experiment = client.get_run(train_run).info.experiment_id
    logged = client.search_logged_models(experiment_ids=[experiment])
    assert [m.source_run_id for m in logged] == [train_run]  # mlflow.pytorch.log_model
    from latentsci.molecules.vae import MoleculeVAE

    reloaded = MoleculeVAE.load(f"runs:/{train_run}/checkpoint",
                                tracking_uri=f"sqlite:///{run_dir}/mlflow.db")
    local = MoleculeVAE.load(stages["train"]["outputs"]["codec"])
    assert reloaded.prior.latent_dim == 8
    np.testing.assert_array_equal(reloaded.encode(SMILES[:4]), local.encode(SMILES[:4]))
    assert reloaded.sample(3, seed=0) == local.sample(3, seed=0)  # the same weights, same process

    # The same model through the CLI verbs users call directly.
    model_dir = stages["train"]["outputs"]["codec"]
    cli = dict(cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=300)
    out = subprocess.run(latentsci_cmd("encode", "--model", model_dir, "--smiles", str(source),
                                       "--out", str(tmp_path / "cli.zarr"),
                                       "--address", ray_cluster.address), **cli)
    assert out.returncode == 0, out.stderr[-2000:]
    cli_store = LatentStore.open(tmp_path / "cli.zarr")
    assert len(cli_store) == 21 and cli_store.ids[0] == "line-1"
    # the same molecules in file order, encoded in another process: equal to round-off
    np.testing.assert_allclose(cli_store.vectors(slice(None)), z, rtol=1e-5, atol=1e-5)
    out = subprocess.run(latentsci_cmd("sample", "--model", model_dir, "-n", "7", "--out",
                                       str(tmp_path / "s.smi"), "--address", ray_cluster.address),
                         **cli)
    drawn = (tmp_path / "s.smi").read_text().splitlines()
    assert out.returncode == 0 and len(drawn) == 7 and all(_heavy_atoms(s) > 0 for s in drawn)
    # z drawn from a Gaussian fitted to a store (no split column there: all its rows)
    out = subprocess.run(latentsci_cmd("sample", "--model", model_dir, "-n", "5", "--out",
                                       str(tmp_path / "g.smi"), "--from-store",
                                       str(tmp_path / "cli.zarr"),
                                       "--address", ray_cluster.address), **cli)
    drawn = (tmp_path / "g.smi").read_text().splitlines()
    assert out.returncode == 0 and len(drawn) == 5 and all(_heavy_atoms(s) > 0 for s in drawn)
    out = subprocess.run(latentsci_cmd("sample", "--model", model_dir, "-n", "5", "--out",
                                       str(tmp_path / "g.smi"), "--from-store",
                                       str(tmp_path / "missing.zarr")), **cli)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "missing.zarr" in out.stderr
    out = subprocess.run(latentsci_cmd("sample", "--model", str(tmp_path), "-n", "2", "--out",
                                       str(tmp_path / "x.smi")), **cli)
    assert out.returncode == 2
    assert out.stderr.strip() == (f"error: {tmp_path}: not a latentsci model (expected model.pt "
                                  "and meta.json)")
