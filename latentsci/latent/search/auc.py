"""PMO's sample-efficiency metric (Gao et al. 2022): the area under the curve of the mean of the
top-k scores found so far, against the number of oracle calls, over the budget.

    f(n) = mean of the k best scores among the first n calls (fewer than k: of those there are)
    AUC  = [ sum of trapezoids of f taken every `every` calls, from f(0) = 0, up to the last
             call, + (budget - calls) * f(calls) when the run finished early ] / budget

A run that stops before its budget keeps its last value to the budget, so stopping early is
neither rewarded nor punished beyond what it found.
"""

from __future__ import annotations

import numpy as np


def top_mean(scores: np.ndarray, k: int) -> float:
    """Mean of the k largest scores (of all, when there are fewer than k; 0 for none)."""
    scores = np.asarray(scores, dtype=float)
    if len(scores) == 0:
        return 0.0
    return float(np.sort(scores)[::-1][:k].mean())


def top_auc(scores: np.ndarray, k: int, budget: int, every: int = 100,
            finished: bool = True) -> float:
    """The top-k AUC of scores in call order (NaN, e.g. a failed call, counts as 0)."""
    if budget <= 0:
        raise ValueError(f"budget must be positive, got {budget}")
    scores = np.nan_to_num(np.asarray(scores, dtype=float)[:budget], nan=0.0)
    n = len(scores)
    area, previous, at = 0.0, 0.0, 0
    for mark in range(every, n, every):  # every full step strictly before the last call
        now = top_mean(scores[:mark], k)
        area += every * (now + previous) / 2
        previous, at = now, mark
    last = top_mean(scores, k)
    area += (n - at) * (last + previous) / 2
    if finished and n < budget:
        area += (budget - n) * last
    return area / budget
