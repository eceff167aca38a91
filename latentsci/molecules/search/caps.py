"""Caps on what a latent search may propose, against reward hacking (penalized logP rewards long
carbon chains and huge rings): a proposal over the caps is rejected before any oracle call."""

from __future__ import annotations

from collections.abc import Callable

from rdkit import Chem


def cap_reason(smiles: str, max_heavy_atoms: int, max_ring_size: int) -> str | None:
    """Why a molecule breaks the caps, or None when it keeps within them."""
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        return "not a valid SMILES"
    heavy, ring = _size_and_ring(mol)
    if heavy > max_heavy_atoms:
        return f"{heavy} heavy atoms (cap {max_heavy_atoms})"
    if ring > max_ring_size:
        return f"a ring of {ring} atoms (cap {max_ring_size})"
    return None


def _size_and_ring(mol: Chem.Mol) -> tuple[int, int]:
    """Heavy atoms and the largest ring's size of a parsed molecule."""
    rings = [len(ring) for ring in mol.GetRingInfo().AtomRings()]
    return mol.GetNumHeavyAtoms(), max(rings, default=0)


def size_and_largest_ring(smiles: str) -> tuple[int, int]:
    """Heavy atoms and the largest ring's size of a molecule (0, 0 when unreadable)."""
    mol = Chem.MolFromSmiles(smiles)
    return (0, 0) if mol is None else _size_and_ring(mol)


def structure_caps(max_heavy_atoms: int = 50,
                   max_ring_size: int = 8) -> Callable[[list[str]], list[str | None]]:
    """A guard rejecting molecules over the heavy-atom or ring-size cap."""

    def guard(items: list[str]) -> list[str | None]:
        return [cap_reason(s, max_heavy_atoms, max_ring_size) for s in items]

    return guard
