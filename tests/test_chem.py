"""Chemistry helpers: parsing, standardising, descriptors and splits on hand-checked molecules."""

import numpy as np
import pytest

from latentsci.molecules.chem import Reject, parse_smiles, random_split, scaffold_split
from latentsci.molecules.chem.fingerprints import morgan_counts
from latentsci.molecules.chem.molecules import murcko_scaffold, to_mol


def test_canonicalises_and_describes_benzene():
    mol = parse_smiles("C1=CC=CC=C1")
    assert mol.smiles == "c1ccccc1"
    assert mol.descriptors["mw"] == pytest.approx(78.114, abs=1e-3)
    assert mol.descriptors["heavy_atoms"] == 6
    assert mol.descriptors["tpsa"] == 0
    assert 1.0 <= mol.descriptors["sa"] <= 2.0  # benzene is about as easy as molecules get
    assert mol.scaffold == "c1ccccc1"


def test_reasons_for_bad_smiles():
    assert parse_smiles("C1CC(") == Reject("unparsable SMILES")
    assert parse_smiles("   ") == Reject("empty SMILES")
    valence = parse_smiles("C(C)(C)(C)(C)C")
    assert isinstance(valence, Reject) and valence.reason.startswith("invalid chemistry: Explicit valence")


def test_salts_keep_largest_fragment_or_are_rejected():
    assert parse_smiles("[Na+].[O-]C(=O)c1ccccc1").smiles == "O=C([O-])c1ccccc1"
    assert parse_smiles("[Na+].[Cl-].CCN", keep_largest_fragment=False) == Reject(
        "several fragments (salt or mixture)")


def test_size_limit():
    assert parse_smiles("CCCCCCCCCC", max_heavy_atoms=5) == Reject("too large: 10 heavy atoms > 5")


def test_scaffold_of_acyclic_is_empty():
    assert murcko_scaffold(to_mol("CCCC")) == ""
    assert murcko_scaffold(to_mol("Cc1ccccc1CC")) == "c1ccccc1"


def test_random_split_sizes_and_seed():
    labels = random_split(100, {"train": 0.8, "valid": 0.1, "test": 0.1}, seed=3)
    assert (labels == "train").sum() == 80 and (labels == "test").sum() == 10
    assert (labels == random_split(100, {"train": 0.8, "valid": 0.1, "test": 0.1}, 3)).all()
    assert not (labels == random_split(100, {"train": 0.8, "valid": 0.1, "test": 0.1}, 4)).all()


def test_scaffold_split_never_shares_a_scaffold():
    scaffolds = [f"s{i % 17}" for i in range(200)] + [""] * 20
    labels = scaffold_split(scaffolds, {"train": 0.8, "valid": 0.1, "test": 0.1}, seed=0)
    by_scaffold = {}
    for scaffold, label in zip(scaffolds, labels):
        if scaffold:
            by_scaffold.setdefault(scaffold, set()).add(label)
    assert all(len(s) == 1 for s in by_scaffold.values())
    assert set(labels) == {"train", "valid", "test"}
    assert (labels == "train").sum() >= 0.7 * len(labels)


def test_morgan_counts_shape_and_bad_input():
    z = morgan_counts(["CCO", "not a smiles"], radius=2, n_bits=64)
    assert z.shape == (2, 64) and z.dtype == np.float32
    # the expected counts through RDKit's sparse count path (not the dense NumPy call under test)
    from rdkit import Chem
    from rdkit.Chem import rdFingerprintGenerator

    sparse = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=64).GetCountFingerprint(
        Chem.MolFromSmiles("CCO"))
    expected = np.zeros(64, dtype=np.float32)
    for bit, count in sparse.GetNonzeroElements().items():
        expected[bit] = count
    np.testing.assert_array_equal(z[0], expected)
    # by hand: 3 atom environments at radius 0, 3 at radius 1; radius 2 repeats the whole-molecule
    # bond set of the central carbon's radius 1, so 6 features once each (no bit collisions)
    assert z[0].sum() == 6 and z[0].max() == 1
    assert z[1].sum() == 0


@pytest.mark.parametrize("smiles", ["CC(NC(=O)CNC(=O)c1cccc(Br)c1)c1ccccc1Br", "[NH3+]CCc1ccc(O)cc1",
                                    "O=C([O-])c1ccccc1"])
def test_descriptors_equal_rdkit_functions(smiles):
    from rdkit.Chem import QED, Crippen, Descriptors, rdMolDescriptors

    mol = to_mol(smiles)
    got = parse_smiles(smiles).descriptors
    assert got["mw"] == pytest.approx(Descriptors.MolWt(mol))
    assert got["logp"] == pytest.approx(Crippen.MolLogP(mol))
    assert got["tpsa"] == pytest.approx(rdMolDescriptors.CalcTPSA(mol))
    assert got["qed"] == pytest.approx(QED.qed(mol))
