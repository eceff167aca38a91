"""JT-VAE's constrained optimisation protocol, as pure functions: similarity to the start is
Tanimoto on unfolded Morgan r=2 count fingerprints; a start succeeds when a molecule at least
`delta` similar scores higher than the start, and its improvement is the best such gain."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rdkit import Chem, DataStructs
from rdkit.Chem import rdFingerprintGenerator

_MORGAN2 = rdFingerprintGenerator.GetMorganGenerator(radius=2)


def count_similarity(start: str, others: Sequence[str]) -> np.ndarray:
    """Tanimoto of each molecule to the start on Morgan r=2 counts (NaN if unreadable)."""
    reference = Chem.MolFromSmiles(start)
    out = np.full(len(others), np.nan)
    if reference is None:
        return out
    anchor = _MORGAN2.GetSparseCountFingerprint(reference)
    for i, text in enumerate(others):
        mol = Chem.MolFromSmiles(text)
        if mol is not None:
            out[i] = DataStructs.TanimotoSimilarity(anchor, _MORGAN2.GetSparseCountFingerprint(mol))
    return out


def similarity_guard(start: str, delta: float):
    """A guard rejecting proposals less than `delta` similar to the start: they can never count,
    so no oracle call is spent on them (similarity costs no call)."""

    def guard(items: list[str]) -> list[str | None]:
        values = count_similarity(start, items)
        return [None if v >= delta else f"similarity to the start below {delta}" for v in values]

    return guard


def improvements(scores: np.ndarray, similarity: np.ndarray, start_score: float,
                 delta: float) -> np.ndarray:
    """Gain over the start of each molecule similar enough (NaN for the others)."""
    gain = np.asarray(scores, float) - start_score
    return np.where(np.asarray(similarity) >= delta, gain, np.nan)


def start_outcome(gains: np.ndarray) -> tuple[bool, float]:
    """(success, improvement): the best positive gain among the similar-enough molecules."""
    positive = gains[np.isfinite(gains) & (gains > 0)]
    return (True, float(positive.max())) if len(positive) else (False, float("nan"))


def protocol_summary(outcomes: list[tuple[bool, float]]) -> dict[str, float]:
    """Mean and sd of the improvement over successes, and the success rate."""
    gains = np.array([g for ok, g in outcomes if ok])
    return {"starts": float(len(outcomes)),
            "success_rate": float(len(gains) / len(outcomes)) if outcomes else float("nan"),
            "improvement_mean": float(gains.mean()) if len(gains) else float("nan"),
            "improvement_sd": float(gains.std(ddof=0)) if len(gains) else float("nan")}
