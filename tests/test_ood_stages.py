"""The OOD stages in a molecule pipeline on the shipped model (a `codec` stage, no training):
ingest, encode, fit a detector with a shifted set, sample, gate the samples; and the structure
stage (clusters, MIG/DCI) on the same store."""

import json
import subprocess
import textwrap

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from latentsci.latent.codec import weights_sha256
from latentsci.latent.ood_files import load_detector
from latentsci.molecules.vae.shipped import shipped_model_dir

from conftest import ROOT, cli_env, latentsci_cmd

TINY = ["CCO", "CC", "C#N", "OCO", "CCCO", "NCCN", "C=O", "CC(C)O", "OC(=O)C", "CN", "CCl",
        "C1CC1", "O=CO", "NC=O", "CCN", "COC", "CS", "C=C", "CC#C", "C1CC(", "[U+6]"]


def _pipeline(tmp_path, extra: str = "") -> str:
    """300 held-out ZINC molecules through the shipped model, an OOD detector, gated samples."""
    source, far = tmp_path / "zinc.smi", tmp_path / "tiny.smi"
    smiles = (shipped_model_dir() / "heldout_sample.smi").read_text().split()[:300]
    source.write_text("\n".join(smiles) + "\n")
    far.write_text("\n".join(TINY) + "\n")
    return textwrap.dedent(f"""
        [pipeline]
        name = "ood_stages"
        workflow = "molecules"

        [stages.ingest]
        kind = "ingest"
        source = "{source}"
        split = {{ method = "random", fractions = {{ train = 0.7, valid = 0.15, test = 0.15 }} }}

        [stages.model]
        kind = "codec"
        path = "{shipped_model_dir()}"

        [stages.encode]
        kind = "encode"
        needs = ["ingest", "model"]
        rows_per_shard = 64

        [stages.ood]
        kind = "ood_fit"
        needs = ["encode", "model"]
        k = 5
        calibration_rows = 40
        shifted = {{ tiny = "{far}" }}
        {extra}

        [stages.sample]
        kind = "sample"
        needs = ["model"]
        n = 12
        per_task = 6

        [stages.gate]
        kind = "ood_gate"
        needs = ["ood", "sample"]

        [stages.interpolate]
        kind = "interpolate"
        needs = ["encode", "ood"]
        random = 4
        steps = 3
        strips = 0

        [stages.structure]
        kind = "structure"
        needs = ["encode"]
        classes = "groups"
        top_classes = 4
        factors = ["logp", "qed", "heavy_atoms"]
    """)


def _run(tmp_path, text: str, ray_cluster):
    """Run a pipeline file through the CLI; (process, run folder)."""
    pipeline = tmp_path / "ood.toml"
    pipeline.write_text(text)
    run_dir = tmp_path / "run"
    done = subprocess.run(latentsci_cmd("run", str(pipeline), "--run-dir", str(run_dir),
                                        "--address", ray_cluster.address),
                          cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=600)
    return done, run_dir


def test_ood_stages_fit_report_and_gate(ray_cluster, tmp_path):
    done, run_dir = _run(tmp_path, _pipeline(tmp_path), ray_cluster)
    assert done.returncode == 0, done.stderr[-3000:]
    stages = json.loads((run_dir / "manifest.json").read_text())["stages"]
    assert stages["model"]["outputs"]["codec"] == str(shipped_model_dir())
    detector = load_detector(stages["ood"]["outputs"]["detector"])
    assert detector.codec["weights_sha256"] == weights_sha256(shipped_model_dir())
    report = pd.read_csv(stages["ood"]["outputs"]["report"]).set_index("detector")
    assert set(report["set"]) == {"tiny"}
    assert set(report.index) == {"mahalanobis", "knn", "reconstruction", "similarity", "combined"}
    # the two unreadable SMILES stay in the table as the worst scores, never dropped
    assert report.loc["combined", "outside"] == len(TINY)
    assert report.loc["combined", "unencodable_outside"] == 2
    assert report.loc["combined", "auroc"] > 0.9
    metrics = stages["ood"]["metrics"]
    assert metrics["auroc_tiny"] == report.loc["combined", "auroc"]
    assert 0.7 <= metrics["kept_inside"] <= 1.0
    scores = pd.read_parquet(stages["gate"]["outputs"]["scores"])
    rejects = pd.read_csv(stages["gate"]["outputs"]["rejects"])
    assert len(scores) == 12 and stages["gate"]["metrics"]["kept"] == scores["keep"].sum()
    assert len(rejects) == 12 - scores["keep"].sum() and rejects["reason"].notna().all()
    client = MlflowClient(tracking_uri=f"sqlite:///{run_dir}/mlflow.db")
    logged = {a.path for a in client.list_artifacts(stages["ood"]["mlflow_run_id"])}
    assert {"ood_report.csv", "ood_scores.png", "detector.json"} <= logged
    # with the detector in its needs, every interpolation point has its OOD score
    points = pd.read_parquet(stages["interpolate"]["outputs"]["interpolation"])
    paths = pd.read_parquet(stages["interpolate"]["outputs"]["paths"])
    assert len(points) == 12 and points["ood_score"].between(0, 1).all()
    assert paths["max_ood"].tolist() == points.groupby("path")["ood_score"].max().tolist()
    assert paths["kept"].between(0, 1).all()
    # the same store judged by scaffold clusters (latents beside ECFP4) and property factors
    structure = stages["structure"]["metrics"]
    assert structure["latent_classes"] == structure["baseline_classes"] == 4
    assert -1 <= structure["latent_ari"] <= 1 and 0 <= structure["mig"] <= 1
    assert {"mig_logp", "mig_qed", "dci_disentanglement", "dci_completeness"} <= set(structure)
    assert structure["dci_informativeness"] > 0.3  # properties are readable off the latents
    # the same run folder: a fit_on naming no needed stage fails there in one line
    again, _ = _run(tmp_path, _pipeline(tmp_path, 'fit_on = "encode_zinc"'), ray_cluster)
    assert again.returncode != 0 and "Traceback" not in again.stderr
    assert "fit_on = 'encode_zinc' is not a needed stage with a store" in again.stdout + again.stderr


def test_a_codec_stage_refuses_a_folder_without_a_model(tmp_path):
    from latentsci.latent.stages.codec import CodecConfig

    with pytest.raises(ValueError, match="not a model folder"):
        CodecConfig(path=tmp_path)
    with pytest.raises(ValueError, match="give one of path"):
        CodecConfig()
    pinned = CodecConfig(path=shipped_model_dir())
    assert pinned.weights_sha256 == weights_sha256(shipped_model_dir())
    with pytest.raises(ValueError, match="pinned"):
        CodecConfig(path=shipped_model_dir(), weights_sha256="0" * 64)
