"""Fingerprint and fragment similarities behind IntDiv, SNN, Frag and Scaf (MOSES definitions)."""

from __future__ import annotations

from collections import Counter
from functools import lru_cache

import numpy as np
from rdkit import Chem
from rdkit.Chem import AllChem, rdFingerprintGenerator
from rdkit.Chem.Scaffolds import MurckoScaffold

BLOCK = 4096  # rows of the Tanimoto matrix computed at once (bounded memory for 30k x 30k)


@lru_cache(maxsize=1)
def _morgan_1024():
    """MOSES's fingerprint: Morgan radius 2, 1024 bits, no chirality."""
    return rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=1024)


def fingerprints(mols: list[Chem.Mol]) -> np.ndarray:
    """(n, 1024) 0/1 float32 Morgan bit vectors."""
    generator = _morgan_1024()
    out = np.zeros((len(mols), 1024), dtype=np.float32)
    for i, mol in enumerate(mols):
        out[i] = generator.GetFingerprintAsNumPy(mol)
    return out


def tanimoto(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Tanimoto matrix of bit-vector rows: |a&b| / (|a| + |b| - |a&b|), with 0/0 taken as 1."""
    inter = a @ b.T
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        sim = inter / union
    return np.where(union == 0, 1.0, sim)


def average_agg_tanimoto(ref: np.ndarray, gen: np.ndarray, agg: str = "max", p: int = 1) -> float:
    """Mean over gen rows of max_j T(i, j), or of (mean_j T(i, j)^p)^(1/p), over ref rows j."""
    if len(gen) == 0 or len(ref) == 0:
        return float("nan")
    per_row = np.zeros(len(gen), dtype=np.float64)
    for start in range(0, len(gen), BLOCK):
        part = np.zeros(min(BLOCK, len(gen) - start), dtype=np.float64)
        for ref_start in range(0, len(ref), BLOCK):
            sim = tanimoto(gen[start : start + BLOCK], ref[ref_start : ref_start + BLOCK])
            if agg == "max":
                part = np.maximum(part, sim.max(1))
            else:
                part += (sim.astype(np.float64) ** p).sum(1)
        per_row[start : start + len(part)] = part
    if agg == "mean":
        per_row = (per_row / len(ref)) ** (1.0 / p)
    return float(per_row.mean())


def internal_diversity(fps: np.ndarray, p: int = 1) -> float:
    """IntDiv_p: 1 - mean_i (mean_j T(i, j)^p)^(1/p) over all pairs, self-pairs included."""
    return 1.0 - average_agg_tanimoto(fps, fps, agg="mean", p=p)


def fragment_counts(mols: list[Chem.Mol]) -> Counter:
    """BRICS fragments (with their labelled attachment points) counted over all molecules."""
    counts: Counter = Counter()
    for mol in mols:
        counts.update(Chem.MolToSmiles(AllChem.FragmentOnBRICSBonds(mol)).split("."))
    return counts


def scaffold_counts(mols: list[Chem.Mol], min_rings: int = 2) -> Counter:
    """Bemis-Murcko scaffolds with at least `min_rings` rings, counted over all molecules."""
    counts: Counter = Counter()
    for mol in mols:
        try:
            scaffold = MurckoScaffold.GetScaffoldForMol(mol)
        except (ValueError, RuntimeError):
            continue
        smiles = Chem.MolToSmiles(scaffold)
        if smiles and scaffold.GetRingInfo().NumRings() >= min_rings:
            counts[smiles] += 1
    return counts


def cosine_similarity(ref: Counter, gen: Counter) -> float:
    """Cosine of two count vectors over the union of their keys (NaN when either is empty)."""
    if not ref or not gen:
        return float("nan")
    keys = list(ref.keys() | gen.keys())
    r = np.array([ref.get(k, 0) for k in keys], dtype=np.float64)
    g = np.array([gen.get(k, 0) for k in keys], dtype=np.float64)
    return float(r @ g / (np.linalg.norm(r) * np.linalg.norm(g)))
