"""Chemistry as pure functions of SMILES and RDKit molecules (no Ray, no store, no tracking)."""

from latentsci.molecules.chem.molecules import (
    DESCRIPTOR_NAMES,
    ParsedMolecule,
    Reject,
    describe,
    parse_smiles,
    process_smiles_batch,
)
from latentsci.molecules.chem.splits import random_split, scaffold_split

__all__ = [
    "DESCRIPTOR_NAMES",
    "ParsedMolecule",
    "Reject",
    "describe",
    "parse_smiles",
    "process_smiles_batch",
    "random_split",
    "scaffold_split",
]
