"""Molecular graphs for the GNN encoder: atom and bond features as PyG `Data` (pure functions)."""

from __future__ import annotations

import torch
from rdkit import Chem
from torch_geometric.data import Data

from latentsci.molecules.chem import Reject

ELEMENTS = ("C", "N", "O", "F", "S", "Cl", "Br", "I", "P", "B", "Si", "Se")
CHARGES = (-1, 0, 1)
DEGREES = tuple(range(6))
HYDROGENS = tuple(range(5))
HYBRIDISATIONS = (
    Chem.HybridizationType.S, Chem.HybridizationType.SP, Chem.HybridizationType.SP2,
    Chem.HybridizationType.SP3, Chem.HybridizationType.SP3D, Chem.HybridizationType.SP3D2,
)
BOND_TYPES = (Chem.BondType.SINGLE, Chem.BondType.DOUBLE, Chem.BondType.TRIPLE,
              Chem.BondType.AROMATIC)
ATOM_DIM = len(ELEMENTS) + len(DEGREES) + len(CHARGES) + 1 + len(HYBRIDISATIONS) + len(HYDROGENS) + 1
BOND_DIM = len(BOND_TYPES) + 2


def _one_hot(value, choices) -> list[float]:
    """One-hot over a fixed vocabulary (caller has checked membership or clipped)."""
    return [float(value == c) for c in choices]


def atom_features(atom: Chem.Atom) -> list[float]:
    """Element, degree, formal charge, aromaticity, hybridisation, H count, ring membership."""
    return (_one_hot(atom.GetSymbol(), ELEMENTS)
            + _one_hot(min(atom.GetDegree(), DEGREES[-1]), DEGREES)
            + _one_hot(atom.GetFormalCharge(), CHARGES)
            + [float(atom.GetIsAromatic())]
            + _one_hot(atom.GetHybridization(), HYBRIDISATIONS)
            + _one_hot(min(atom.GetTotalNumHs(), HYDROGENS[-1]), HYDROGENS)
            + [float(atom.IsInRing())])


def bond_features(bond: Chem.Bond) -> list[float]:
    """Bond type, conjugation, ring membership."""
    return (_one_hot(bond.GetBondType(), BOND_TYPES)
            + [float(bond.GetIsConjugated()), float(bond.IsInRing())])


def vocabulary_problem(mol: Chem.Mol) -> str | None:
    """Why a molecule falls outside the featuriser's vocabulary, or None when it fits."""
    for atom in mol.GetAtoms():
        if atom.GetSymbol() not in ELEMENTS:
            return f"atom {atom.GetSymbol()} outside the featuriser's vocabulary"
        if atom.GetFormalCharge() not in CHARGES:
            return (f"formal charge {atom.GetFormalCharge():+d} on {atom.GetSymbol()} outside "
                    f"the featuriser's vocabulary (-1, 0, +1)")
    for bond in mol.GetBonds():
        if bond.GetBondType() not in BOND_TYPES:
            return f"bond type {bond.GetBondType()} outside the featuriser's vocabulary"
    return None


def mol_to_graph(mol: Chem.Mol) -> Data | Reject:
    """A PyG graph with both directions of every bond, or a Reject naming what does not fit."""
    problem = vocabulary_problem(mol)
    if problem:
        return Reject(problem)
    x = torch.tensor([atom_features(a) for a in mol.GetAtoms()], dtype=torch.float32)
    pairs, feats = [], []
    for bond in mol.GetBonds():
        i, j, f = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx(), bond_features(bond)
        pairs += [(i, j), (j, i)]
        feats += [f, f]
    edge_index = torch.tensor(pairs, dtype=torch.long).t().reshape(2, -1)
    edge_attr = torch.tensor(feats, dtype=torch.float32).reshape(-1, BOND_DIM)
    return Data(x=x, edge_index=edge_index, edge_attr=edge_attr)
