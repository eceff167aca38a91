"""The seven graph edits of Jensen's Graph GA, each a reaction template drawn with the weights
GuacaMol and PMO use; a mutant must pass the same size and ring checks as a crossover child."""

from __future__ import annotations

import random

from rdkit import Chem

from latentsci.molecules.oracles.terms import parsed_smarts
from latentsci.molecules.search.graph_operators import _react, mol_ok, ring_ok

BOND_ORDERS = [0.60, 0.35, 0.05]  # single, double, triple


def _insert_atom(rng: random.Random) -> str:
    """Put a new atom into an existing bond."""
    order = rng.choices([1, 2, 3], BOND_ORDERS)[0]
    if order == 1:
        return "[*:1]~[*:2]>>[*:1]X[*:2]".replace("X", rng.choice(["C", "N", "O", "S"]))
    if order == 2:
        return "[*;!H0:1]~[*:2]>>[*:1]=X-[*:2]".replace("X", rng.choice(["C", "N"]))
    return "[*;!R;!H1;!H0:1]~[*:2]>>[*:1]#X-[*:2]".replace("X", "C")


def _change_bond_order(rng: random.Random) -> str:
    """Make a bond single, double or triple."""
    return rng.choices(["[*:1]!-[*:2]>>[*:1]-[*:2]", "[*;!H0:1]-[*;!H0:2]>>[*:1]=[*:2]",
                        "[*:1]#[*:2]>>[*:1]=[*:2]", "[*;!R;!H1;!H0:1]~[*:2]>>[*:1]#[*:2]"],
                       [0.45, 0.45, 0.05, 0.05])[0]


def _delete_cyclic_bond(rng: random.Random) -> str:
    """Open a ring."""
    return "[*:1]@[*:2]>>([*:1].[*:2])"


def _add_ring(rng: random.Random) -> str:
    """Close a 3- to 6-membered ring along an acyclic chain."""
    return rng.choices([
        "[*;!r;!H0:1]~[*;!r:2]~[*;!r;!H0:3]>>[*:1]1~[*:2]~[*:3]1",
        "[*;!r;!H0:1]~[*!r:2]~[*!r:3]~[*;!r;!H0:4]>>[*:1]1~[*:2]~[*:3]~[*:4]1",
        "[*;!r;!H0:1]~[*!r:2]~[*:3]~[*:4]~[*;!r;!H0:5]>>[*:1]1~[*:2]~[*:3]~[*:4]~[*:5]1",
        "[*;!r;!H0:1]~[*!r:2]~[*:3]~[*:4]~[*!r:5]~[*;!r;!H0:6]>>"
        "[*:1]1~[*:2]~[*:3]~[*:4]~[*:5]~[*:6]1"], [0.05, 0.05, 0.45, 0.45])[0]


def _delete_atom(rng: random.Random) -> str:
    """Remove an atom of degree 1 to 4, reconnecting its neighbours."""
    return rng.choices([
        "[*:1]~[D1:2]>>[*:1]", "[*:1]~[D2:2]~[*:3]>>[*:1]-[*:3]",
        "[*:1]~[D3:2](~[*;!H0:3])~[*:4]>>[*:1]-[*:3]-[*:4]",
        "[*:1]~[D4:2](~[*;!H0:3])(~[*;!H0:4])~[*:5]>>[*:1]-[*:3]-[*:4]-[*:5]",
        "[*:1]~[D4:2](~[*;!H0;!H1:3])(~[*:4])~[*:5]>>[*:1]-[*:3](-[*:4])-[*:5]"],
        [0.25, 0.25, 0.25, 0.1875, 0.0625])[0]


ELEMENTS = ["#6", "#7", "#8", "#9", "#16", "#17", "#35"]
ELEMENT_WEIGHTS = [0.15, 0.15, 0.14, 0.14, 0.14, 0.14, 0.14]


def _change_atom(mol: Chem.Mol, rng: random.Random) -> str | None:
    """Turn an atom of one element into another (None if no listed element is present)."""
    present = [e for e in ELEMENTS if mol.HasSubstructMatch(parsed_smarts(f"[{e}]"))]
    if not present:
        return None
    x = rng.choices(ELEMENTS, ELEMENT_WEIGHTS)[0]
    while x not in present:  # PMO redraws until the molecule has the element
        x = rng.choices(ELEMENTS, ELEMENT_WEIGHTS)[0]
    y = rng.choices(ELEMENTS, ELEMENT_WEIGHTS)[0]
    while y == x:
        y = rng.choices(ELEMENTS, ELEMENT_WEIGHTS)[0]
    return f"[{x}:1]>>[{y}:1]"


def _append_atom(rng: random.Random) -> str:
    """Add a new atom on an atom with hydrogens to spare."""
    order = rng.choices([1, 2, 3], BOND_ORDERS)[0]
    if order == 1:
        return "[*;!H0:1]>>[*:1]-X".replace("X", rng.choice(["C", "N", "O", "F", "S", "Cl", "Br"]))
    if order == 2:
        return "[*;!H0;!H1:1]>>[*:1]=X".replace("X", rng.choice(["C", "N", "O"]))
    return "[*;H3:1]>>[*:1]#X".replace("X", rng.choice(["C", "N"]))


EDIT_WEIGHTS = [0.15, 0.14, 0.14, 0.14, 0.14, 0.14, 0.15]


def mutate(smiles: str, rate: float, rng: random.Random) -> str | None:
    """With probability `rate`, one random edit of the molecule (canonical SMILES; None if 10
    tries give no acceptable mutant); otherwise the molecule unchanged."""
    if rng.random() > rate:
        return smiles
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        return None
    Chem.Kekulize(mol, clearAromaticFlags=True)
    for _ in range(10):
        templates = [_insert_atom(rng), _change_bond_order(rng), _delete_cyclic_bond(rng),
                     _add_ring(rng), _delete_atom(rng), _change_atom(mol, rng),
                     _append_atom(rng)]
        template = rng.choices(templates, EDIT_WEIGHTS)[0]
        if template is None:
            continue
        mutants = [m for m in _react(template, mol) if mol_ok(m, rng) and ring_ok(m)]
        if mutants:
            return Chem.MolToSmiles(rng.choice(mutants))
    return None
