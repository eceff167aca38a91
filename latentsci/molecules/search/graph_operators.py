"""Jensen's (2019) graph crossover and mutation, with the probabilities and reaction templates
GuacaMol's and PMO's Graph GA use, drawing every choice from one seeded `random.Random`.

Crossover: half the time cut both parents at an acyclic single bond and join a fragment of each;
otherwise cut a ring in each (two bonds of a 4-atom ring path, or both ring bonds of a branching
ring atom) and close the fragments into new rings. PMO's ring crossover keeps only the double-bond
joins of its first step (a list reset inside its loop); `ring_single_joins=True` keeps both, as
mol_ga later fixed. A child must sanitise, have more than 5 heavy atoms and fewer than a size
drawn from N(39.15, 3.5), and (ring children, mutants) no ring above 6 atoms, no ring allene and
no double bond in a 3- or 4-ring. Mutation: one of seven edits, each a reaction template.
"""

from __future__ import annotations

import random
from functools import lru_cache

from rdkit import Chem, RDLogger
from rdkit.Chem import AllChem

from latentsci.molecules.oracles.terms import parsed_smarts

AVERAGE_SIZE, SIZE_STDEV = 39.15, 3.50
RDLogger.DisableLog("rdApp.*")  # reaction templates warn on every unmapped atom they delete


def mol_ok(mol: Chem.Mol, rng: random.Random) -> bool:
    """Sanitises, and its heavy atoms lie between 5 and a size drawn around 39."""
    try:
        Chem.SanitizeMol(mol)
    except ValueError:
        return False
    target = SIZE_STDEV * rng.gauss(0.0, 1.0) + AVERAGE_SIZE
    return 5 < mol.GetNumAtoms() < target


def ring_ok(mol: Chem.Mol) -> bool:
    """No ring above 6 atoms, no ring allene, no double bond inside a 3- or 4-ring."""
    if not mol.HasSubstructMatch(parsed_smarts("[R]")):
        return True
    if mol.HasSubstructMatch(parsed_smarts("[R]=[R]=[R]")):
        return False
    if max(len(r) for r in mol.GetRingInfo().AtomRings()) > 6:
        return False
    return not mol.HasSubstructMatch(parsed_smarts("[r3,r4]=[r3,r4]"))


def _fragments(mol: Chem.Mol, bonds: list[int]) -> tuple | None:
    """The molecule cut at bonds with an isotope-1 dummy at each cut end, if it falls in two."""
    cut = Chem.FragmentOnBonds(mol, bonds, addDummies=True,
                               dummyLabels=[(1, 1)] * len(bonds))
    try:
        parts = Chem.GetMolFrags(cut, asMols=True, sanitizeFrags=True)
    except ValueError:
        return None
    return parts if len(parts) == 2 else None


def _cut(mol: Chem.Mol, rng: random.Random) -> tuple | None:
    """Two fragments from a random acyclic single bond."""
    matches = mol.GetSubstructMatches(parsed_smarts("[*]-;!@[*]"))
    if not matches:
        return None
    a, b = rng.choice(matches)
    return _fragments(mol, [mol.GetBondBetweenAtoms(a, b).GetIdx()])


def _cut_ring(mol: Chem.Mol, rng: random.Random) -> tuple | None:
    """Two fragments from two ring bonds (up to 10 tries)."""
    for _ in range(10):
        if rng.random() < 0.5:
            matches = mol.GetSubstructMatches(parsed_smarts("[R]@[R]@[R]@[R]"))
            pick = lambda m: [(m[0], m[1]), (m[2], m[3])]  # noqa: E731
        else:
            matches = mol.GetSubstructMatches(parsed_smarts("[R]@[R;!D2]@[R]"))
            pick = lambda m: [(m[0], m[1]), (m[1], m[2])]  # noqa: E731
        if not matches:
            return None
        pairs = pick(rng.choice(matches))
        parts = _fragments(mol, [mol.GetBondBetweenAtoms(a, b).GetIdx() for a, b in pairs])
        if parts is not None:
            return parts
    return None


@lru_cache(maxsize=None)
def _reaction(template: str):
    """A parsed reaction template, once per process."""
    return AllChem.ReactionFromSmarts(template)


def _react(template: str, *reactants: Chem.Mol, first_only: bool = False) -> list[Chem.Mol]:
    """The products of a reaction template (only the first product set, if asked)."""
    reaction = _reaction(template)
    products = reaction.RunReactants(reactants)
    return [p[0] for p in (products[:1] if first_only else products)]


def _ring_crossover(a: Chem.Mol, b: Chem.Mol, rng: random.Random,
                    single_joins: bool) -> Chem.Mol | None:
    """A child closing ring fragments of both parents into new rings (up to 10 tries)."""
    joins = ["[*:1]~[1*].[1*]~[*:2]>>[*:1]-[*:2]", "[*:1]~[1*].[1*]~[*:2]>>[*:1]=[*:2]"]
    closes = ["([*:1]~[1*].[1*]~[*:2])>>[*:1]-[*:2]", "([*:1]~[1*].[1*]~[*:2])>>[*:1]=[*:2]"]
    for _ in range(10):
        fa, fb = _cut_ring(a, rng), _cut_ring(b, rng)
        if fa is None or fb is None:
            return None
        joined: list[Chem.Mol] = []
        for template in joins:
            if not single_joins:
                joined = []  # as PMO: only the last template's products are kept
            for x in fa:
                for y in fb:
                    joined += _react(template, x, y, first_only=True)
        children = [c for m in joined if mol_ok(m, rng) for t in closes for c in _react(t, m)]
        children = [c for c in children if mol_ok(c, rng) and ring_ok(c)]
        if children:
            return rng.choice(children)
    return None


def _chain_crossover(a: Chem.Mol, b: Chem.Mol, rng: random.Random) -> Chem.Mol | None:
    """A child joining a fragment of each parent cut at an acyclic bond (up to 10 tries)."""
    for _ in range(10):
        fa, fb = _cut(a, rng), _cut(b, rng)
        if fa is None or fb is None:
            return None
        children = [c for x in fa for y in fb
                    for c in _react("[*:1]-[1*].[1*]-[*:2]>>[*:1]-[*:2]", x, y, first_only=True)]
        children = [c for c in children if mol_ok(c, rng)]
        if children:
            return rng.choice(children)
    return None


def crossover(a_smiles: str, b_smiles: str, rng: random.Random,
              ring_single_joins: bool = False) -> str | None:
    """A child of two parents, unlike either (canonical SMILES), or None after 10 tries."""
    parents = []
    for text in (a_smiles, b_smiles):
        mol = Chem.MolFromSmiles(text)
        if mol is None:
            return None
        Chem.Kekulize(mol, clearAromaticFlags=True)
        parents.append(mol)
    seen = {Chem.CanonSmiles(a_smiles), Chem.CanonSmiles(b_smiles)}
    for _ in range(10):
        if rng.random() <= 0.5:
            child = _chain_crossover(parents[0], parents[1], rng)
        elif parents[0].HasSubstructMatch(parsed_smarts("[R]")) or \
                parents[1].HasSubstructMatch(parsed_smarts("[R]")):
            child = _ring_crossover(parents[0], parents[1], rng, ring_single_joins)
        else:
            child = None
        if child is not None:
            text = Chem.MolToSmiles(child)
            if text not in seen:
                return text
    return None
