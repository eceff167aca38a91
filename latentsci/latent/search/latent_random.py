"""Latent random sampling: draws from the Gaussian fitted to the encoded training items (or,
searching from one item, around its latent), decoded and proposed when new. The latent-space
counterpart of screening, and the draws the other latent optimisers start from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from latentsci.latent.search.latent_space import LatentSpace, restored_rng, rng_state


@dataclass(frozen=True)
class LatentDraws:
    """Where draws come from: whitened N(origin, spread^2 I) inside the norm bound."""

    spread: float = 1.0
    oversample: int = 2  # rows decoded per wanted item (repeats and rejects are dropped)
    tries: int = 3  # decode rounds per ask before giving back fewer


def draw(space: LatentSpace, rng: np.random.Generator, n: int, origin: np.ndarray | None,
         config: LatentDraws) -> list[str]:
    """Up to n new items decoded from draws around the origin (the Gaussian's mean if None)."""
    centre = np.zeros(space.gaussian.dim) if origin is None else np.asarray(origin, float)
    items: list[str] = []
    for _ in range(config.tries):
        wanted = n - len(items)
        if wanted <= 0:
            break
        u = centre + config.spread * rng.standard_normal((wanted * config.oversample, len(centre)))
        items += space.decode(space.gaussian.bound(u), wanted)
    return items


class LatentRandom:
    """Proposes decodes of random latent draws; learns nothing from scores."""

    name = "latent_random"

    def __init__(self, space: LatentSpace, seed: int = 0, origin: np.ndarray | None = None,
                 config: LatentDraws | None = None):
        self.space, self.origin, self.config = space, origin, config or LatentDraws()
        self.rng = np.random.default_rng(seed)

    def ask(self, n: int) -> list[str]:
        """Up to n new decodes of random draws."""
        return draw(self.space, self.rng, n, self.origin, self.config)

    def tell(self, items: list[str], scores: np.ndarray) -> None:
        """Kept only for the record (and the best-so-far of a report)."""
        self.space.record(items, scores)

    def state(self) -> dict[str, Any]:
        """Random state and what was labelled."""
        return {"rng": rng_state(self.rng), "space": self.space.state()}

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a saved state."""
        self.rng = restored_rng(state["rng"])
        self.space.restore(state["space"])
