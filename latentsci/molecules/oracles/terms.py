"""The terms molecule objectives are made of, each a picklable function of an RDKit molecule:
similarity to a target (GuacaMol's fingerprints), descriptors, isomer (formula) scores and SMARTS
presence, with a desirability modifier, combined by an arithmetic or geometric mean.

Fingerprints, as GuacaMol computes them (RDKit's generators give the same Tanimoto values as the
legacy calls GuacaMol makes):
    ecfp4 / ecfp6   Morgan radius 2 / 3, unfolded count vectors
    fcfp4           Morgan radius 2 on feature invariants, unfolded counts
    ap              atom pairs up to 10 bonds apart, unfolded counts
    phco            Gobbi-Poppinger 2D pharmacophore bits (2-3 points)
Tanimoto of count vectors is sum(min) / (sum(a) + sum(b) - sum(min)).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from rdkit import Chem, DataStructs, rdBase
from rdkit.Chem import Descriptors, rdFingerprintGenerator, rdMolDescriptors

from latentsci.latent.search.modifiers import Gaussian, arithmetic_mean, geometric_mean

FINGERPRINTS = ("ecfp4", "ecfp6", "fcfp4", "ap", "phco")


@lru_cache(maxsize=None)
def _generator(kind: str):
    """One RDKit fingerprint generator per kind and process."""
    if kind == "ecfp4":
        return rdFingerprintGenerator.GetMorganGenerator(radius=2)
    if kind == "ecfp6":
        return rdFingerprintGenerator.GetMorganGenerator(radius=3)
    if kind == "fcfp4":
        features = rdFingerprintGenerator.GetMorganFeatureAtomInvGen()
        return rdFingerprintGenerator.GetMorganGenerator(radius=2,
                                                         atomInvariantsGenerator=features)
    if kind == "ap":
        return rdFingerprintGenerator.GetAtomPairGenerator(maxDistance=10)
    raise ValueError(f"unknown fingerprint {kind!r} (fingerprints: {', '.join(FINGERPRINTS)})")


def fingerprint(mol: Chem.Mol, kind: str):
    """The molecule's fingerprint of a kind."""
    if kind == "phco":
        from rdkit.Chem.Pharm2D import Generate, Gobbi_Pharm2D

        return Generate.Gen2DFingerprint(mol, Gobbi_Pharm2D.factory)
    return _generator(kind).GetSparseCountFingerprint(mol)


@lru_cache(maxsize=256)
def _target_fingerprint(smiles: str, kind: str):
    """A target's fingerprint, computed once per process."""
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise ValueError(f"target is not a valid SMILES: {smiles!r}")
    return fingerprint(mol, kind)


@dataclass(frozen=True)
class Similarity:
    """Tanimoto similarity to a target molecule on one fingerprint."""

    target: str
    kind: str = "ecfp4"

    def __call__(self, mol: Chem.Mol) -> float:
        """Tanimoto of the molecule's fingerprint and the target's."""
        return float(DataStructs.TanimotoSimilarity(fingerprint(mol, self.kind),
                                                    _target_fingerprint(self.target, self.kind)))


DESCRIPTORS: dict[str, Callable[[Chem.Mol], float]] = {
    "logp": Descriptors.MolLogP, "tpsa": Descriptors.TPSA, "bertz": Descriptors.BertzCT,
    "mw": Descriptors.MolWt, "rings": rdMolDescriptors.CalcNumRings,
    "aromatic_rings": rdMolDescriptors.CalcNumAromaticRings,
    "fluorine": lambda mol: sum(a.GetSymbol() == "F" for a in mol.GetAtoms()),
}


@dataclass(frozen=True)
class Descriptor:
    """One RDKit descriptor by name (DESCRIPTORS)."""

    name: str

    def __call__(self, mol: Chem.Mol) -> float:
        """The descriptor's value."""
        return float(DESCRIPTORS[self.name](mol))


def descriptor_of(smiles: str, name: str) -> float:
    """A descriptor of a target molecule (objectives centred on a target's own value)."""
    return Descriptor(name)(Chem.MolFromSmiles(smiles))


def parse_formula(formula: str) -> list[tuple[str, int]]:
    """(element, count) pairs of a molecular formula such as C9H10N2O2PF2Cl."""
    if not re.fullmatch(r"(?:[A-Z][a-z]?\d*)+", formula or ""):
        raise ValueError(f"not a molecular formula: {formula!r}")
    pairs = [(e, int(n) if n else 1) for e, n in re.findall(r"([A-Z][a-z]?)(\d*)", formula)]
    table = Chem.GetPeriodicTable()
    for element, _ in pairs:
        try:
            table.GetAtomicNumber(element)
        except RuntimeError:
            raise ValueError(f"{formula!r}: unknown element {element!r}") from None
    return pairs


@lru_cache(maxsize=64)
def _parsed(formula: str) -> tuple[tuple[str, int], ...]:
    """A formula parsed once per process (isomer terms score every molecule against it)."""
    return tuple(parse_formula(formula))


@dataclass(frozen=True)
class Isomer:
    """How close the molecule's formula is to a target formula (GuacaMol): per element a
    Gaussian (sigma 1) of its atom count, and one (sigma 2) of the total atom count with
    hydrogens, combined by the geometric (default) or arithmetic mean."""

    formula: str
    mean: str = "geometric"

    def __call__(self, mol: Chem.Mol) -> float:
        """The isomer score, 1 for an exact match of the formula."""
        pairs = _parsed(self.formula)
        full = Chem.AddHs(mol)
        counts: dict[str, int] = {}
        for atom in full.GetAtoms():
            counts[atom.GetSymbol()] = counts.get(atom.GetSymbol(), 0) + 1
        terms = [Gaussian(n, 1.0)(counts.get(e, 0)) for e, n in pairs]
        terms.append(Gaussian(sum(n for _, n in pairs), 2.0)(full.GetNumAtoms()))
        return geometric_mean(terms) if self.mean == "geometric" else arithmetic_mean(terms)


@lru_cache(maxsize=256)
def parsed_smarts(smarts: str) -> Chem.Mol:
    """A parsed SMARTS pattern, once per process (RDKit's own parse messages held back: the
    one-line error below says it)."""
    with rdBase.BlockLogs():
        pattern = Chem.MolFromSmarts(smarts)
    if pattern is None:
        raise ValueError(f"not a valid SMARTS: {smarts!r}")
    return pattern


@dataclass(frozen=True)
class Smarts:
    """1 if the molecule has the substructure (0 if not); `inverse` swaps them."""

    smarts: str
    inverse: bool = False

    def __call__(self, mol: Chem.Mol) -> float:
        """Presence (or absence) of the pattern."""
        found = mol.HasSubstructMatch(parsed_smarts(self.smarts))
        return float(found != self.inverse)


@dataclass(frozen=True)
class Modified:
    """A term passed through a desirability modifier."""

    term: Callable[[Chem.Mol], float]
    modifier: Callable[[float], float]

    def __call__(self, mol: Chem.Mol) -> float:
        """modifier(term(mol))."""
        return float(self.modifier(self.term(mol)))


@dataclass(frozen=True)
class Mean:
    """The geometric (default) or arithmetic mean of terms."""

    terms: Sequence[Callable[[Chem.Mol], float]]
    kind: str = "geometric"

    def __call__(self, mol: Chem.Mol) -> float:
        """The mean of every term's score."""
        scores = [term(mol) for term in self.terms]
        return geometric_mean(scores) if self.kind == "geometric" else arithmetic_mean(scores)
