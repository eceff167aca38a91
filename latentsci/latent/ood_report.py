"""How well a detector separates in-distribution items from a shifted set: AUROC, AUPR and the
false positive rate at 95% true positive rate, in-distribution as the positive class.

Scores are "higher = further out". Items a codec could not encode score +inf: they stay in every
number (worst score), never dropped.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _finite(values: np.ndarray, cap: float) -> np.ndarray:
    """+inf (unencodable) as a score above every finite one, for the metric functions."""
    return np.where(np.isposinf(values), cap, values)


def separation(inside: np.ndarray, outside: np.ndarray, tpr: float = 0.95) -> dict[str, float]:
    """AUROC, AUPR (in-distribution positive) and FPR at `tpr` of one score."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    inside, outside = np.asarray(inside, float), np.asarray(outside, float)
    finite = np.concatenate([inside, outside])
    finite = finite[np.isfinite(finite)]
    cap = (finite.max() + 1.0) if len(finite) else 1.0
    a, b = _finite(inside, cap), _finite(outside, cap)
    labels = np.r_[np.ones(len(a)), np.zeros(len(b))]
    scores = -np.r_[a, b]  # higher = more in-distribution
    threshold = np.quantile(a, tpr)  # keeps `tpr` of the in-distribution items
    return {"auroc": float(roc_auc_score(labels, scores)),
            "aupr": float(average_precision_score(labels, scores)),
            f"fpr_at_{round(tpr * 100)}tpr": float(np.mean(b <= threshold)),
            "inside": float(len(a)), "outside": float(len(b)),
            "unencodable_inside": float(np.isposinf(inside).sum()),
            "unencodable_outside": float(np.isposinf(outside).sum())}


def separation_table(inside: dict[str, np.ndarray], outside: dict[str, np.ndarray]) -> pd.DataFrame:
    """One row per detector (and `combined`) scored on both sets."""
    rows = [{"detector": name, **separation(inside[name], outside[name])}
            for name in inside if name in outside]
    return pd.DataFrame(rows)


def report_scores(verdict) -> dict[str, np.ndarray]:
    """A gate's raw scores and its combined score, with items the codec could not read at +inf."""
    return {**verdict.raw, "combined": np.where(verdict.encoded, verdict.score, np.inf)}


def verdict_table(verdict, items: list | None = None, ids: list | None = None) -> pd.DataFrame:
    """One row per scored item: its id or item (when given), score, keep, reason, whether the
    codec could read it, raw scores."""
    frame = pd.DataFrame({"score": verdict.score, "keep": verdict.keep,
                          "reason": verdict.reasons, "encoded": verdict.encoded, **verdict.raw})
    if items is not None and all(isinstance(i, str) for i in items):
        frame.insert(0, "item", items)
    if ids is not None:
        frame.insert(0, "id", ids)
    return frame
