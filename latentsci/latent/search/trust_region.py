"""TuRBO-1's trust region (Eriksson et al. 2019, as in BoTorch's TuRBO tutorial): a box in the
unit cube around the best point, side `length` stretched per dimension by the GP's lengthscales,
doubled after `success_tolerance` improving batches in a row, halved after `failure_tolerance`
failing ones, and reset to its first length (and best) when it shrinks below `length_min`. The GP keeps every
label across a restart (TuRBO-1 starts a new design; here the capped GP forgets old points)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np


@dataclass
class TrustRegion:
    """The state of one trust region."""

    dim: int
    batch: int
    length: float = 0.8
    length_min: float = 0.5**7
    length_max: float = 1.6
    success_tolerance: int = 10
    successes: int = 0
    failures: int = 0
    best: float = -math.inf
    restarts: int = 0

    @property
    def failure_tolerance(self) -> int:
        """Failing batches before shrinking: ceil(max(4, d) / batch), as TuRBO sets it."""
        return math.ceil(max(4.0 / self.batch, float(self.dim) / self.batch))

    def update(self, scores: np.ndarray) -> None:
        """Grow, shrink or restart after a batch's scores."""
        scores = np.asarray(scores, float)
        scores = scores[np.isfinite(scores)]
        if len(scores) == 0:
            return
        first = not math.isfinite(self.best)
        if first or scores.max() > self.best + 1e-3 * abs(self.best):
            self.successes, self.failures = self.successes + 1, 0
        else:
            self.successes, self.failures = 0, self.failures + 1
        if self.successes >= self.success_tolerance:
            self.length, self.successes = min(2.0 * self.length, self.length_max), 0
        elif self.failures >= self.failure_tolerance:
            self.length, self.failures = self.length / 2.0, 0
        self.best = max(self.best, float(scores.max()))
        if self.length < self.length_min:
            self.restart()

    def restart(self) -> None:
        """Start over: first length, counters and best (a collapsed region, or one whose
        every decode is a molecule already seen)."""
        self.length, self.restarts = 0.8, self.restarts + 1
        self.successes, self.failures, self.best = 0, 0, -math.inf

    def box(self, centre: np.ndarray, lengthscales: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper corners in the unit cube, wider along long lengthscales."""
        # clipped as the TuRBO tutorial bounds them, so one huge lengthscale cannot flatten
        # the box along every other dimension
        lengthscales = np.clip(lengthscales, 0.005, 4.0)
        weights = lengthscales / lengthscales.mean()
        weights = weights / np.prod(weights ** (1.0 / len(weights)))
        lower = np.clip(centre - weights * self.length / 2.0, 0.0, 1.0)
        upper = np.clip(centre + weights * self.length / 2.0, 0.0, 1.0)
        return lower, upper

    def state(self) -> dict:
        """JSON-able state."""
        return asdict(self)
