"""Random screening: propose the items of a library in a seeded random order. The baseline any
search method must beat (PMO found latent-space methods near it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


class Screening:
    """Items of a library in a seeded random order, each proposed once."""

    name = "screening"

    def __init__(self, library: Sequence[str], seed: int = 0):
        if len(library) == 0:
            raise ValueError("screening needs a non-empty library")
        self.library = list(library)
        self.order = np.random.default_rng(seed).permutation(len(self.library))
        self.position = 0

    def ask(self, n: int) -> list[str]:
        """The next n items of the shuffled library."""
        picked = self.order[self.position : self.position + n]
        self.position += len(picked)
        return [self.library[i] for i in picked]

    def tell(self, items: list[str], scores: np.ndarray) -> None:
        """Screening learns nothing from scores."""

    def state(self) -> dict[str, Any]:
        """How far through the shuffled library it is."""
        return {"position": self.position}

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a saved position."""
        self.position = int(state["position"])
