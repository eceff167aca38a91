"""Desirability modifiers: how a raw property (a similarity, a TPSA, an atom count) becomes a
score in [0, 1] an objective can combine, in the forms GuacaMol defined and PMO reuses.

    clipped(x; upper, lower=0)  linear from 0 at `lower` to 1 at `upper`, clipped to [0, 1]
                                (upper < lower gives the decreasing ramp)
    gaussian(x; mu, sigma)      exp(-(x - mu)^2 / (2 sigma^2))
    min_gaussian(x; mu, sigma)  1 for x <= mu, the Gaussian's right half above (smaller is fine)
    max_gaussian(x; mu, sigma)  1 for x >= mu, the Gaussian's left half below (larger is fine)
    thresholded(x; threshold)   min(x, threshold) / threshold

Combinations: the weighted arithmetic mean, and the weighted geometric mean
prod_i s_i^(w_i / sum w), which is 0 as soon as one term is 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Clipped:
    """Linear ramp from 0 at `lower` to 1 at `upper`, clipped."""

    upper: float
    lower: float = 0.0

    def __call__(self, x: float) -> float:
        """The ramp's value at x."""
        return float(np.clip((x - self.lower) / (self.upper - self.lower), 0.0, 1.0))


@dataclass(frozen=True)
class Gaussian:
    """A bell of width sigma around mu."""

    mu: float
    sigma: float

    def __call__(self, x: float) -> float:
        """The bell's value at x."""
        return float(np.exp(-0.5 * ((x - self.mu) / self.sigma) ** 2))


@dataclass(frozen=True)
class MinGaussian:
    """1 up to mu, then the Gaussian's decay: a property that should stay below mu."""

    mu: float
    sigma: float

    def __call__(self, x: float) -> float:
        """1 for x <= mu, else the bell."""
        return 1.0 if x <= self.mu else Gaussian(self.mu, self.sigma)(x)


@dataclass(frozen=True)
class MaxGaussian:
    """The Gaussian's rise up to mu, then 1: a property that should reach at least mu."""

    mu: float
    sigma: float

    def __call__(self, x: float) -> float:
        """1 for x >= mu, else the bell."""
        return 1.0 if x >= self.mu else Gaussian(self.mu, self.sigma)(x)


@dataclass(frozen=True)
class Thresholded:
    """x / threshold, capped at 1."""

    threshold: float

    def __call__(self, x: float) -> float:
        """min(x, threshold) / threshold."""
        return float(min(x, self.threshold) / self.threshold)


def arithmetic_mean(scores: Sequence[float], weights: Sequence[float] | None = None) -> float:
    """Weighted mean of the terms."""
    w = np.ones(len(scores)) if weights is None else np.asarray(weights, dtype=float)
    return float(np.dot(w, scores) / w.sum())


def geometric_mean(scores: Sequence[float], weights: Sequence[float] | None = None) -> float:
    """Weighted geometric mean of the terms (0 if any term is 0)."""
    s = np.asarray(scores, dtype=float)
    w = np.ones(len(s)) if weights is None else np.asarray(weights, dtype=float)
    if (s <= 0).any():
        return 0.0
    return float(np.exp(np.dot(w, np.log(s)) / w.sum()))
