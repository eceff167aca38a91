"""MOSES metrics on small hand-checked cases."""

import math
from collections import Counter

import numpy as np
import pytest
from rdkit import Chem

from latentsci.molecules.metrics import moses_metrics
from latentsci.molecules.metrics.filters import passes_filters
from latentsci.molecules.metrics.moses import fraction_unique, fraction_valid, novelty
from latentsci.molecules.metrics.similarity import (
    average_agg_tanimoto,
    cosine_similarity,
    fingerprints,
    fragment_counts,
    internal_diversity,
    scaffold_counts,
    tanimoto,
)


def test_validity_counts_empty_and_unparsable_as_invalid():
    assert fraction_valid(["CCO", "C1CC(", "", "c1ccccc1"]) == 0.5
    assert fraction_valid(["C.CC"]) == 1.0  # MOSES counts mixtures as valid


def test_unique_at_k_uses_the_first_k():
    assert fraction_unique(["CCO", "CCO", "c1ccccc1"], k=3) == pytest.approx(2 / 3)
    assert fraction_unique(["CCO", "CCO", "c1ccccc1"], k=2) == 0.5
    with pytest.warns(UserWarning, match="unique@10: only 3 valid samples"):
        assert fraction_unique(["CCO", "CCN", "CCC"], k=10) == 1.0


def test_novelty_over_distinct_samples():
    assert novelty(["CCO", "CCO", "c1ccccc1", "CCN"], {"CCO"}) == pytest.approx(2 / 3)


def test_tanimoto_by_hand():
    a = np.array([[1, 1, 0, 0]], dtype=np.float32)
    b = np.array([[1, 0, 1, 0], [0, 0, 0, 0]], dtype=np.float32)
    np.testing.assert_allclose(tanimoto(a, b), [[1 / 3, 0.0]])
    assert tanimoto(b[1:], b[1:])[0, 0] == 1.0  # two empty fingerprints are identical


def test_internal_diversity_by_hand():
    disjoint = np.array([[1, 1, 0, 0], [0, 0, 1, 1]], dtype=np.float32)
    assert internal_diversity(disjoint, p=1) == pytest.approx(0.5)  # rows: mean(1, 0) = 0.5
    assert internal_diversity(disjoint, p=2) == pytest.approx(1 - math.sqrt(0.5))
    same = fingerprints([Chem.MolFromSmiles("CCO")] * 3)
    assert internal_diversity(same) == pytest.approx(0.0)


def test_snn_is_mean_of_best_match():
    ref = np.array([[1, 1, 0, 0], [0, 0, 1, 1]], dtype=np.float32)
    gen = np.array([[1, 0, 0, 0], [0, 0, 1, 1]], dtype=np.float32)
    assert average_agg_tanimoto(ref, gen, agg="max") == pytest.approx((0.5 + 1.0) / 2)


def test_fragments_and_scaffolds():
    mols = [Chem.MolFromSmiles(s) for s in ["CCOC(=O)c1ccccc1", "c1ccc2ccccc2c1", "c1ccccc1"]]
    frags = fragment_counts(mols[:1])
    assert frags == Counter({"[1*]C([6*])=O": 1, "[16*]c1ccccc1": 1, "[3*]O[3*]": 1, "[4*]CC": 1})
    assert scaffold_counts(mols) == Counter({"c1ccc2ccccc2c1": 1})  # one-ring scaffolds dropped
    assert cosine_similarity(Counter(a=1, b=1), Counter(a=1, b=1)) == pytest.approx(1.0)
    assert cosine_similarity(Counter(a=1), Counter(b=2)) == 0.0
    assert cosine_similarity(Counter(a=3, b=4), Counter(a=1)) == pytest.approx(0.6)
    assert math.isnan(cosine_similarity(Counter(), Counter(a=1)))


@pytest.mark.parametrize("smiles, passes", [
    ("CCO", True), ("c1ccccc1", True), ("C1CCCCCCC1", False), ("C1CCCCCC1", True),
    ("[NH4+]", False), ("CC[Se]C", False), ("CC=O", False), ("ClCCC", False), ("Nc1ccccc1", True),  # MCF15 is a Kekule SMARTS: it misses aromatic rings, as in MOSES
    ("BrC(Br)Br", False),
])
def test_filters(smiles, passes):
    assert passes_filters(Chem.MolFromSmiles(smiles)) is passes


TRAIN = ["CCO", "c1ccccc1", "CC(=O)Oc1ccccc1C(=O)O", "CCN(CC)CC", "c1ccc2ccccc2c1"]
TEST = ["CC(C)Cc1ccc(cc1)C(C)C(=O)O", "O=C(O)c1ccccc1", "Cc1ccccc1", "CCCCCC", "C1CCCCC1",
        "c1ccc2ccccc2c1", "CC(=O)Nc1ccc(O)cc1", "COc1ccccc1"]


def test_all_metrics_against_itself_and_a_shifted_set():
    same = moses_metrics(TEST, TRAIN, TEST, ks=(5,))
    assert same["valid"] == 1.0 and same["unique@5"] == 1.0
    assert same["SNN/Test"] == pytest.approx(1.0)
    assert same["Frag/Test"] == pytest.approx(1.0) and same["Scaf/Test"] == pytest.approx(1.0)
    assert all(same[p] == pytest.approx(0.0, abs=1e-9) for p in ("logP", "SA", "QED", "weight"))
    assert abs(same["FCD/Test"]) < 1e-3
    assert same["Novelty"] == pytest.approx(7 / 8)  # naphthalene is in train
    other = moses_metrics(TRAIN + ["C1CC(", ""], TRAIN, TEST, ks=(5,))
    assert other["valid"] == pytest.approx(5 / 7)
    assert other["FCD/Test"] > 1.0 and other["Novelty"] == 0.0
    # expectations straight from RDKit and scipy: the 5 valid samples are TRAIN
    from rdkit import DataStructs
    from rdkit.Chem import Descriptors, rdFingerprintGenerator
    from scipy.stats import wasserstein_distance

    train_mols = [Chem.MolFromSmiles(s) for s in TRAIN]
    test_mols = [Chem.MolFromSmiles(s) for s in TEST]
    morgan = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=1024)  # MOSES: r=2, 1024
    test_fps = [morgan.GetFingerprint(m) for m in test_mols]
    # SNN: mean over generated molecules of the best Tanimoto to any test molecule
    snn = np.mean([max(DataStructs.BulkTanimotoSimilarity(morgan.GetFingerprint(m), test_fps))
                   for m in train_mols])
    assert 0.3 < snn < 1.0  # naphthalene matches exactly, the rest only partly
    assert other["SNN/Test"] == pytest.approx(snn, rel=1e-6)
    weight = wasserstein_distance([Descriptors.MolWt(m) for m in test_mols],
                                  [Descriptors.MolWt(m) for m in train_mols])
    assert other["weight"] == pytest.approx(weight, rel=1e-9)


def test_evaluate_cli(tmp_path):
    import json
    import subprocess

    from conftest import ROOT, cli_env, latentsci_cmd

    samples, train, test = tmp_path / "s.smi", tmp_path / "train.csv", tmp_path / "test.smi"
    samples.write_text("\n".join(TEST[:4] + ["", "C1CC("] + TEST[4:]) + "\n")
    train.write_text("smiles\n" + "\n".join(TRAIN) + "\n")
    test.write_text("\n".join(TEST) + "\n")
    out = subprocess.run(latentsci_cmd("evaluate", "--samples", str(samples), "--train", str(train),
                                       "--test", str(test), "-k", "4", "--json"),
                         cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    metrics = json.loads(out.stdout)
    assert metrics["valid"] == pytest.approx(8 / 10) and metrics["unique@4"] == 1.0
    assert metrics["SNN/Test"] == pytest.approx(1.0)
    missing = subprocess.run(latentsci_cmd("evaluate", "--samples", str(tmp_path / "no.smi"),
                                           "--train", str(train), "--test", str(test)),
                             cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2
    assert missing.stderr.strip() == f"error: {tmp_path / 'no.smi'}: no such file"
