"""A user's combination file (combine:FILE.toml): terms by name through modifiers, joined by a
weighted arithmetic or geometric mean, worked by hand; bad files refused in one line."""

import math
import textwrap

import numpy as np
import pytest

from latentsci.latent.search import BudgetedOracle, CallLog, OracleError, get_objective

USER = '''
def heavy_atoms(smiles):
    from rdkit import Chem
    return [float(Chem.MolFromSmiles(s).GetNumHeavyAtoms()) for s in smiles]

def rings(smiles):
    from rdkit import Chem
    from rdkit.Chem import rdMolDescriptors
    # Not MolFromSmiles(s).GetRingInfo(): the temporary molecule can be freed under its ring info.
    return [float(rdMolDescriptors.CalcNumRings(Chem.MolFromSmiles(s))) for s in smiles]
'''


@pytest.fixture
def user_terms(tmp_path, monkeypatch):
    """Two user objectives whose values are easy to work out: heavy atoms and rings."""
    (tmp_path / "combo_terms.py").write_text(USER)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def _write(folder, text: str):
    path = folder / "combo.toml"
    path.write_text(textwrap.dedent(text))
    return f"combine:{path}"


def test_an_arithmetic_mean_of_modified_terms_by_hand(user_terms):
    name = _write(user_terms, '''
        [[terms]]
        objective = "combo_terms:heavy_atoms"
        modifier = { kind = "clipped", upper = 10 }
        [[terms]]
        objective = "combo_terms:rings"
        modifier = { kind = "gaussian", mu = 1, sigma = 1 }
        weight = 3
        ''')
    objective = get_objective(name)
    # CCO: 3 atoms -> 0.3; no ring -> exp(-0.5). c1ccccc1: 6 -> 0.6; one ring -> 1.
    expected = [(0.3 + 3 * math.exp(-0.5)) / 4, (0.6 + 3 * 1.0) / 4]
    np.testing.assert_allclose(objective.score(["CCO", "c1ccccc1"]), expected)
    assert objective.canonical("OCC") == "CCO"
    assert "arithmetic mean of combo_terms:heavy_atoms" in objective.description


def test_a_geometric_mean_is_zero_when_one_term_is(user_terms, ray_cluster):
    name = _write(user_terms, '''
        mean = "geometric"
        [[terms]]
        objective = "combo_terms:rings"
        modifier = { kind = "thresholded", threshold = 2 }
        [[terms]]
        objective = "combo_terms:heavy_atoms"
        modifier = { kind = "max_gaussian", mu = 6, sigma = 2 }
        weight = 2
        ''')
    oracle = BudgetedOracle(get_objective(name), budget=5, log=CallLog(user_terms / "log"))
    scores = oracle(["CCO", "c1ccc2ccccc2c1"])  # no ring -> 0; naphthalene: 1 and 1
    oracle.close()
    np.testing.assert_allclose(scores, [0.0, 1.0])


@pytest.mark.parametrize("body, message", [
    ("[[terms]]\nobjective = \"qed\"\nwieght = 2\n", "terms.0.wieght: Extra inputs"),
    ("[[terms]]\nobjective = \"qed\"\nmodifier = { kind = \"bell\", mu = 1 }\n", "terms.0.modifier"),
    ("mean = \"harmonic\"\n[[terms]]\nobjective = \"qed\"\n", "mean: Input should be"),
    ("terms = []\n", "terms: List should have at least 1 item"),
    ("[[terms]]\nobjective = \"qedd\"\n", "terms.0: unknown objective 'qedd'"),
    ("[[terms]\n", "not TOML"),
])
def test_bad_combination_files_fail_in_one_line(tmp_path, body, message):
    path = tmp_path / "bad.toml"
    path.write_text(body)
    with pytest.raises(OracleError, match=message):
        get_objective(f"combine:{path}")


def test_a_missing_or_nested_combination_is_refused(tmp_path):
    with pytest.raises(OracleError, match="no such combination file"):
        get_objective(f"combine:{tmp_path / 'none.toml'}")
    name = _write(tmp_path, f'''
        [[terms]]
        objective = "combine:{tmp_path / 'combo.toml'}"
        ''')
    with pytest.raises(OracleError, match="cannot hold another"):
        get_objective(name)
