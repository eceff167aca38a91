"""The PMO tasks and objective families on hand-worked cases: each rediscovery target scores 1
on its own task, an exact formula scores 1 on its isomer task, MPO components checked alone and
recombined by hand, the hop targets' known scores, and bad arguments refused in one line."""

import math

import pytest
from rdkit import Chem
from rdkit.Chem import Descriptors

from latentsci.latent.search import OracleError, get_objective, list_objectives
from latentsci.latent.search.modifiers import (Clipped, Gaussian, MaxGaussian, MinGaussian,
                                               Thresholded, arithmetic_mean, geometric_mean)
from latentsci.molecules.oracles import pmo
from latentsci.molecules.oracles.terms import Isomer, Similarity

PMO_20 = ["celecoxib_rediscovery", "troglitazone_rediscovery", "thiothixene_rediscovery",
          "albuterol_similarity", "mestranol_similarity", "isomers_c7h8n2o2",
          "isomers_c9h10n2o2pf2cl", "median1", "median2", "osimertinib_mpo", "fexofenadine_mpo",
          "ranolazine_mpo", "perindopril_mpo", "amlodipine_mpo", "sitagliptin_mpo",
          "zaleplon_mpo", "valsartan_smarts", "deco_hop", "scaffold_hop", "qed"]


def score(task: str, smiles: str) -> float:
    """One molecule's score on a task."""
    return get_objective(task).score([smiles])[0]


def test_all_twenty_tasks_are_listed_and_score_in_the_unit_interval():
    assert set(PMO_20) <= set(list_objectives())
    for task in PMO_20:
        value = score(task, "CC(=O)Oc1ccccc1C(=O)O")  # aspirin
        assert 0.0 <= value <= 1.0, task


@pytest.mark.parametrize("task, target", [("celecoxib_rediscovery", pmo.CELECOXIB),
                                          ("troglitazone_rediscovery", pmo.TROGLITAZONE),
                                          ("thiothixene_rediscovery", pmo.THIOTHIXENE),
                                          ("albuterol_similarity", pmo.ALBUTEROL),
                                          ("mestranol_similarity", pmo.MESTRANOL)])
def test_a_target_scores_one_on_its_own_task(task, target):
    assert score(task, target) == pytest.approx(1.0)
    assert score(task, "CCO") < 0.3


def test_modifiers_by_hand():
    assert Clipped(0.8)(0.4) == pytest.approx(0.5) and Clipped(0.8)(0.9) == 1.0
    assert Clipped(0.8)(-0.1) == 0.0
    assert MinGaussian(0.85, 0.1)(0.5) == 1.0
    assert MinGaussian(0.85, 0.1)(0.95) == pytest.approx(math.exp(-0.5))
    assert MaxGaussian(100, 10)(130) == 1.0
    assert MaxGaussian(100, 10)(80) == pytest.approx(math.exp(-2.0))
    assert Gaussian(3, 0.5)(2) == pytest.approx(math.exp(-2.0))
    assert Thresholded(0.5)(0.25) == 0.5 and Thresholded(0.5)(0.9) == 1.0
    assert geometric_mean([0.25, 1.0]) == pytest.approx(0.5)
    assert geometric_mean([0.5, 0.0, 0.8]) == 0.0
    assert geometric_mean([0.25, 1.0], [2, 0]) == pytest.approx(0.25)
    assert arithmetic_mean([0.0, 1.0], [1, 3]) == pytest.approx(0.75)


def test_isomer_scores_by_hand():
    isomer = "NC(=O)c1ccc(N)cc1O"  # C7H8N2O2
    assert score("isomers_c7h8n2o2", isomer) == pytest.approx(1.0)
    # one oxygen short: O term exp(-1/2), total atoms 18 of 19: exp(-1/8); three terms of 1
    expected = (math.exp(-0.5) * math.exp(-0.125)) ** (1 / 5)
    assert score("isomers_c7h8n2o2", "NC(=O)c1ccc(N)cc1") == pytest.approx(expected)
    assert Isomer("C9H10N2O2PF2Cl")(Chem.MolFromSmiles("NC(=O)c1cc(F)c(F)c(Cl)c1CP(N)(=O)O")) \
        < 1.0
    assert get_objective("isomer:C2H6O").score(["COC"])[0] == pytest.approx(1.0)


def test_osimertinib_mpo_is_its_four_components_recombined():
    mol = Chem.MolFromSmiles(pmo.OSIMERTINIB)
    parts = [Clipped(0.8)(1.0), MinGaussian(0.85, 0.1)(1.0),  # itself: both similarities 1
             MaxGaussian(100, 10)(Descriptors.TPSA(mol)),
             MinGaussian(1, 1)(Descriptors.MolLogP(mol))]
    assert parts[1] == pytest.approx(math.exp(-1.125))  # too close to osimertinib is penalised
    assert score("osimertinib_mpo", pmo.OSIMERTINIB) == pytest.approx(geometric_mean(parts))


def test_sitagliptin_and_valsartan_by_hand():
    # sitagliptin itself: its own logP, TPSA and formula (1 each), similarity 1 -> exp(-50)
    assert score("sitagliptin_mpo", pmo.SITAGLIPTIN) == pytest.approx(math.exp(-50) ** 0.25)
    assert score("valsartan_smarts", pmo.SITAGLIPTIN) == 0.0  # no valsartan substructure
    valsartan = "CCCCC(=O)N(Cc1ccc(cc1)-c1ccccc1-c1nn[nH]n1)C(C(C)C)C(=O)O"
    assert score("valsartan_smarts", valsartan) > 0.0


def test_hop_targets_and_median_tasks():
    assert score("deco_hop", pmo.HOP_TARGET) == pytest.approx(0.5)
    assert score("scaffold_hop", pmo.HOP_TARGET) == pytest.approx(2 / 3)
    camphor = Similarity(pmo.MENTHOL)(Chem.MolFromSmiles(pmo.CAMPHOR))
    assert score("median1", pmo.CAMPHOR) == pytest.approx(math.sqrt(camphor))
    assert score("amlodipine_mpo", pmo.AMLODIPINE) == pytest.approx(math.exp(-2.0) ** 0.5)  # 2 rings
    # perindopril has no aromatic ring: Gaussian(2, 0.5) of 0 is exp(-8)
    assert score("perindopril_mpo", pmo.PERINDOPRIL) == pytest.approx(math.exp(-8.0) ** 0.5)


def test_count_similarity_is_the_sum_of_minima_over_the_sum_of_maxima():
    from rdkit.Chem import rdFingerprintGenerator

    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2)
    a, b = (generator.GetSparseCountFingerprint(Chem.MolFromSmiles(s)).GetNonzeroElements()
            for s in ("CCO", "CCCO"))
    shared = sum(min(a.get(k, 0), b.get(k, 0)) for k in set(a) | set(b))
    by_hand = shared / (sum(a.values()) + sum(b.values()) - shared)
    assert by_hand == pytest.approx(0.5)  # 6 shared environments of 12 in all
    assert get_objective("similarity:ecfp4:CCCO").score(["CCO"])[0] == pytest.approx(by_hand)
    assert get_objective("similarity:ecfp4:CCO").score(["OCC"])[0] == pytest.approx(1.0)


@pytest.mark.parametrize("name, message", [
    ("similarity:ecfp9:CCO", "expected similarity:FINGERPRINT:SMILES"),
    ("similarity:ecfp4:C1CC", "valid target SMILES"),
    ("isomer:C2Q", "unknown element 'Q'"),
    ("smarts:[C", "not a valid SMARTS"),
])
def test_bad_objective_arguments_are_one_line(name, message):
    with pytest.raises(OracleError, match=message):
        get_objective(name)


def test_a_bad_smarts_prints_nothing_but_our_line(capfd):
    capfd.readouterr()
    with pytest.raises(OracleError, match="not a valid SMARTS"):
        get_objective("smarts_absent:[N+(")
    captured = capfd.readouterr()
    assert "SMARTS Parse Error" not in captured.err + captured.out
