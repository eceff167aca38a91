"""The MOSES `Filters` rule set: ring size, charge, allowed atoms, MCF and PAINS substructures."""

from __future__ import annotations

import csv
from functools import lru_cache
from importlib import resources

from rdkit import Chem

ALLOWED_ATOMS = frozenset({"C", "N", "S", "O", "F", "Cl", "Br", "H"})


@lru_cache(maxsize=1)
def filter_patterns() -> tuple[Chem.Mol, ...]:
    """MCF and PAINS SMARTS shipped with the package (see data/SOURCES.md)."""
    folder = resources.files("latentsci.molecules.metrics") / "data"
    with (folder / "mcf.csv").open() as handle:
        smarts = [row["smarts"] for row in csv.DictReader(handle)]
    with (folder / "wehi_pains.csv").open() as handle:
        smarts += [row[0] for row in csv.reader(handle) if row]
    patterns = tuple(Chem.MolFromSmarts(s.strip()) for s in smarts)
    if any(p is None for p in patterns):
        raise RuntimeError("a bundled filter SMARTS failed to parse")
    return patterns


def passes_filters(mol: Chem.Mol | None) -> bool:
    """True when a molecule passes every MOSES filter rule, checked in MOSES's order."""
    if mol is None:
        return False
    if any(len(ring) >= 8 for ring in mol.GetRingInfo().AtomRings()):
        return False
    if any(atom.GetFormalCharge() != 0 for atom in mol.GetAtoms()):
        return False
    if any(atom.GetSymbol() not in ALLOWED_ATOMS for atom in mol.GetAtoms()):
        return False
    with_h = Chem.AddHs(mol)
    if any(with_h.HasSubstructMatch(pattern) for pattern in filter_patterns()):
        return False
    flat = Chem.MolToSmiles(mol, isomericSmiles=False)
    return bool(flat) and Chem.MolFromSmiles(flat) is not None
