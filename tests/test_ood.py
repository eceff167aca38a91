"""OOD checks on a real store of the shipped model: detectors fitted on training rows,
calibrated on held-out ones, saved in plain files, separating ZINC from tiny molecules."""

import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from latentsci.errors import InputDataError
from latentsci.latent import load_codec
from latentsci.latent.codec import CodecError
from latentsci.latent.ood import OODConfig
from latentsci.latent.ood_files import load_detector, save_detector
from latentsci.latent.ood_fit import fit_detector, gate
from latentsci.latent.ood_report import report_scores, separation, separation_table
from latentsci.molecules.tasks import encode_table
from latentsci.molecules.vae.shipped import shipped_model_dir
from latentsci.store import LatentStore

FAR = ["CCO", "CC", "C#N", "OCO", "CCCO", "NCCN", "C=O", "CC(C)O", "OC(=O)C", "CN", "CCl",
       "C1CC1", "O=CO", "NC=O", "CCN", "COC", "CS", "C=C", "N#N", "CC#C"]


def retrained_copy(folder):
    """The shipped model with one weight changed: another codec."""
    copy = folder / "retrained"
    shutil.copytree(shipped_model_dir(), copy)
    state = torch.load(copy / "model.pt", weights_only=True)
    first = next(iter(state))
    state[first] = state[first] + 1.0
    torch.save(state, copy / "model.pt")
    return copy


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, ray_cluster):
    """400 held-out ZINC molecules (300 'train', 100 'test') encoded by the shipped model."""
    smiles = (shipped_model_dir() / "heldout_sample.smi").read_text().split()[:400]
    table = pd.DataFrame({"id": [f"z{i}" for i in range(400)], "smiles": smiles,
                          "split": ["train"] * 300 + ["test"] * 100})
    path = tmp_path_factory.mktemp("ood") / "zinc.zarr"
    encode_table(table, str(shipped_model_dir()), path, {"smiles": "str", "split": "str"}, {},
                 128, False)
    store = LatentStore.open(path)
    codec = load_codec(shipped_model_dir())
    config = OODConfig(k=5, calibration_rows=60)
    return store, codec, fit_detector(store, config, codec), smiles


def test_detectors_separate_zinc_from_tiny_molecules(fitted):
    store, codec, detector, smiles = fitted
    inside, outside = gate(detector, store, codec, items=smiles[300:]), gate(
        detector, store, codec, items=FAR)
    assert set(inside.raw) == {"mahalanobis", "knn", "reconstruction", "similarity"}
    table = separation_table(report_scores(inside), report_scores(outside))
    combined = table.set_index("detector").loc["combined"]
    assert combined["auroc"] > 0.9 and combined["inside"] == 100 and combined["outside"] == 20
    # calibrated to keep about 95% of held-out in-distribution molecules
    assert 0.8 <= inside.keep.mean() <= 1.0 and outside.keep.mean() < inside.keep.mean()


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_knn_alone_ranks_tiny_molecules_further(fitted, metric):
    store, codec, _, smiles = fitted
    detector = fit_detector(store, OODConfig(k=5, calibration_rows=60, detectors=["knn"],
                                             knn_metric=metric), codec)
    inside, outside = (report_scores(gate(detector, store, codec, items=s))
                       for s in (smiles[300:], FAR))
    auroc = separation(inside["knn"], outside["knn"])["auroc"]
    # Euclidean between standardised latents separates them; cosine ranks them as near
    assert auroc > 0.85 if metric == "euclidean" else auroc < 0.85


def test_an_unencodable_item_is_out_with_its_reason(fitted):
    store, codec, detector, smiles = fitted
    verdict = gate(detector, store, codec, items=[smiles[350], "C1CC(", "[U+6]"])
    assert verdict.score[1] == 1.0 and not verdict.keep[1] and "SMILES" in verdict.reasons[1]
    assert verdict.score[2] == 1.0 and not verdict.keep[2]
    # z rows alone: the latent detectors only, a NaN row rejected with a reason
    z = store.vectors(np.array([310, 320]))
    z[1, 0] = np.nan
    rows = gate(detector, store, codec, z=z)
    assert set(rows.raw) == {"mahalanobis", "knn"} and rows.reasons[1] == "z row holds NaN or inf"


def test_a_saved_detector_scores_the_same_and_checks_its_codec(fitted, tmp_path):
    store, codec, detector, smiles = fitted
    folder = save_detector(detector, tmp_path / "det")
    again = load_detector(folder, codec=codec, store=store)
    before = gate(detector, store, codec, items=smiles[300:320]).score
    assert np.array_equal(gate(again, store, codec, items=smiles[300:320]).score, before)
    assert {p.name for p in folder.iterdir()} == {"detector.json", "arrays.npz", "reference.txt"}
    copy = retrained_copy(tmp_path)
    with pytest.raises(CodecError, match="their weights differ"):
        load_detector(folder, codec=load_codec(copy))
    with pytest.raises(InputDataError, match="not an OOD detector"):
        load_detector(tmp_path)


def test_molecule_latents_have_no_summary_to_compare(fitted):
    store, codec, detector, _ = fitted
    assert detector.space == "latent"  # "auto": the molecule domain has no latent summary
    with pytest.raises(Exception, match="has no latent summary"):
        fit_detector(store, OODConfig(k=5, calibration_rows=60, detectors=["mahalanobis"],
                                      space="summary"), codec)


def test_separation_counts_unencodable_items_with_the_worst_score():
    inside = np.array([0.1, 0.2, 0.3, np.inf])
    outside = np.array([0.9, np.inf])
    result = separation(inside, outside)
    assert result["unencodable_inside"] == 1 and result["unencodable_outside"] == 1
    assert 0.5 < result["auroc"] < 1.0  # the unencodable in-distribution item costs ranking
    with pytest.raises(ValueError, match="unknown detector 'nope'"):
        OODConfig(detectors=["nope"])


def test_cli_fits_scores_and_reports(fitted, tmp_path):
    import json
    import subprocess

    from conftest import cli_env, latentsci_cmd

    store, _, _, smiles = fitted
    run = lambda *a: subprocess.run(latentsci_cmd(*a), capture_output=True, text=True,  # noqa
                                    env=cli_env(), timeout=300)
    fit = run("ood", "fit", "--store", str(store.path), "--out", str(tmp_path / "det"), "-k", "5",
              "--detectors", "mahalanobis", "knn", "similarity")
    assert fit.returncode == 0, fit.stderr
    assert fit.stdout.startswith("fitted mahalanobis, knn, similarity on ")
    (tmp_path / "far.smi").write_text("\n".join(FAR + ["C1CC("]) + "\n")
    (tmp_path / "in.smi").write_text("\n".join(smiles[300:]) + "\n")
    scored = run("ood", "score", "--detector", str(tmp_path / "det"), "--smiles",
                 str(tmp_path / "far.smi"), "--json")
    rows = json.loads(scored.stdout)
    assert len(rows) == 21 and rows[-1]["keep"] is False and "SMILES" in rows[-1]["reason"]
    report = run("ood", "score", "--detector", str(tmp_path / "det"), "--smiles",
                 str(tmp_path / "far.smi"), "--reference", str(tmp_path / "in.smi"), "--json")
    table = {r["detector"]: r for r in json.loads(report.stdout)}
    assert set(table) == {"mahalanobis", "knn", "similarity", "combined"}
    assert table["combined"]["outside"] == 21 and table["combined"]["unencodable_outside"] == 1
    missing = run("ood", "score", "--detector", str(tmp_path), "--smiles", str(tmp_path / "far.smi"))
    assert missing.returncode == 2 and "not an OOD detector" in missing.stderr


def test_max_tanimoto_fanned_out_on_ray_matches_one_process(ray_cluster):
    from latentsci.molecules.domain import max_tanimoto

    smiles = (shipped_model_dir() / "heldout_sample.smi").read_text().split()
    queries, reference = smiles[:60] + ["C1CC("], smiles[100:300]
    one = max_tanimoto(queries, reference, per_task=10**6)
    fanned = max_tanimoto(queries, reference, per_task=7)  # 9 Ray tasks
    np.testing.assert_array_equal(one, fanned)
    assert np.isnan(fanned[-1]) and np.all((fanned[:-1] > 0) & (fanned[:-1] <= 1))


def test_the_search_gate_rejects_far_proposals_and_refuses_another_codec(fitted, tmp_path):
    import subprocess

    from latentsci.latent.search.guards import ood_guard

    from conftest import ROOT, cli_env, latentsci_cmd

    store, codec, detector, smiles = fitted
    folder = save_detector(detector, tmp_path / "det")
    reasons = ood_guard(folder, codec)(FAR + smiles[300:320])
    assert sum(r is not None for r in reasons[: len(FAR)]) >= 15  # tiny molecules: out
    assert sum(r is None for r in reasons[len(FAR):]) >= 15  # held-out ZINC: kept
    assert all("out of distribution" in r for r in reasons if r is not None)
    copy = retrained_copy(tmp_path)
    done = subprocess.run(latentsci_cmd("optimize", "--objective", "qed", "--method",
                                        "latent_random",
                                        "--budget", "10", "--model", str(copy), "--gate",
                                        str(folder), "--out", str(tmp_path / "x.csv")),
                          cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "their weights differ" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "x.csv").exists()
