"""Probing latents: group-aware splits, ridge/MLP and logistic/MLP scores on synthetic data, and
the probe stage on the shipped model next to ECFP4."""

import json
import subprocess
import textwrap

import numpy as np
import pandas as pd
import pytest
from rdkit import Chem
from rdkit.Chem import Crippen

from latentsci.latent.probe import group_splits, probe_summary, run_probe
from latentsci.molecules.vae.shipped import shipped_model_dir

from conftest import ROOT, cli_env, latentsci_cmd


def test_splits_keep_each_group_on_one_side():
    groups = np.repeat(np.arange(30), 4)
    splits = group_splits(groups, 5, 0.2, seed=3)
    assert len(splits) == 5
    for train, test in splits:
        assert not set(groups[train]) & set(groups[test]) and len(test) == 24
    assert not np.array_equal(splits[0][1], splits[1][1])  # a different draw each split


def test_a_property_written_in_the_latents_is_read_and_noise_is_not():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(300, 8))
    y = z @ rng.normal(size=8) + 0.05 * rng.normal(size=300)
    z[7, 0] = np.nan  # an item the codec could not encode: left out, counted
    frame = run_probe({"latent": z, "noise": rng.normal(size=(300, 8))}, y, "regression",
                      np.arange(300), n_splits=3)
    summary = probe_summary(frame).set_index(["features", "model"])["mean"]
    assert summary["latent", "ridge"] < 0.2 < summary["noise", "ridge"]
    assert summary["none", "mean"] == pytest.approx(np.std(y), rel=0.3)  # the floor: no features
    assert summary["latent", "mlp"] < summary["noise", "mlp"]
    assert (frame["left_out"] == 1).all() and (frame["train"] + frame["test"] == 299).all()
    labels = (z[:, 1] > 0).astype(float)
    auc = probe_summary(run_probe({"latent": z}, labels, "classification", np.arange(300), 3))
    floor = auc[auc["features"] == "none"]
    assert list(floor["model"]) == ["prior"] and floor["mean"].item() == pytest.approx(0.5)
    auc = auc[auc["features"] != "none"]
    assert (auc["mean"] > 0.95).all() and set(auc["model"]) == {"logistic", "mlp"}


def test_more_than_two_classes_named_by_any_values_are_scored_by_balanced_accuracy():
    rng = np.random.default_rng(1)
    presets = np.array([0.014, 0.029, 0.058])  # Gray-Scott F values name the presets
    which = rng.integers(0, 3, size=240)
    z = rng.normal(size=(240, 6))
    z[:, 2] += 4.0 * which  # the class sits along one latent
    frame = run_probe({"latent": z, "noise": rng.normal(size=(240, 6))}, presets[which],
                      "classification", np.arange(240), n_splits=3)
    summary = probe_summary(frame).set_index(["features", "model"])["mean"]
    assert set(frame["metric"]) == {"balanced_accuracy"}
    assert summary["latent", "logistic"] > 0.8 and summary["noise", "logistic"] < 0.5  # chance 1/3


def test_probe_stage_on_the_shipped_model_next_to_ecfp4(ray_cluster, tmp_path):
    smiles = (shipped_model_dir() / "heldout_sample.smi").read_text().split()[:120]
    logp = [Crippen.MolLogP(Chem.MolFromSmiles(s)) for s in smiles]
    pd.DataFrame({"smiles": smiles + ["C1CC("], "logp": logp + [1.0]}).to_csv(
        tmp_path / "set.csv", index=False)
    pipeline = tmp_path / "probe.toml"
    base = textwrap.dedent(f"""
        [pipeline]
        name = "probe"
        workflow = "molecules"

        [stages.model]
        kind = "codec"
        path = "{shipped_model_dir()}"

        [stages.probe]
        kind = "probe"
        needs = ["model"]
        splits = 2
        sets = {{ logp = {{ file = "{tmp_path / 'set.csv'}", target = "TARGET" }} }}
    """)
    run_dir = tmp_path / "run"
    command = latentsci_cmd("run", str(pipeline), "--run-dir", str(run_dir), "--address",
                            ray_cluster.address)
    pipeline.write_text(base.replace("TARGET", "logP"))  # a column the file does not have
    bad = subprocess.run(command, cwd=ROOT, env=cli_env(), capture_output=True, text=True)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert "set.csv: no column 'logP' (columns: smiles, logp)" in bad.stdout + bad.stderr
    pipeline.write_text(base.replace("TARGET", "logp"))
    done = subprocess.run(command, cwd=ROOT, env=cli_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    stage = json.loads((run_dir / "manifest.json").read_text())["stages"]["probe"]
    summary = pd.read_csv(stage["outputs"]["probe"])
    assert set(summary["features"]) == {"none", "latent", "ECFP4 (Morgan radius 2, 2048 bits)"}
    assert set(summary["model"]) == {"mean", "ridge", "mlp"} and (summary["splits"] == 2).all()
    scores = pd.read_csv(stage["outputs"]["scores"])
    assert (scores["left_out"] == 1).all()  # the unparsable SMILES, counted
    # logP is in the VAE's property head's training signal: latents beat predicting the mean
    ridge = summary.set_index(["features", "model"]).loc[("latent", "ridge"), "mean"]
    assert ridge < np.std(logp) and stage["metrics"]["logp_latent_ridge"] == ridge
