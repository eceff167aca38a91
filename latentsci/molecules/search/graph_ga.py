"""Graph GA (Jensen 2019) as PMO runs it, behind the ask/tell interface.

PMO's settings: a population of 120 drawn at random (with replacement) from a molecule pool;
each generation a mating pool of 120 draws proportional to score + 1e-10, 70 children (crossover
of two random mating-pool members, then mutation with probability 0.067; failures dropped, not
replaced), population and children merged, deduplicated and cut to the best 120. It stops when
the mean of the 100 best scores seen improves by less than 1e-3 for 5 generations in a row.
PMO drew its pool from ZINC250k; ours is the bundled ZINC files, which are QED-enriched.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from latentsci.molecules.search.graph_mutations import mutate
from latentsci.molecules.search.graph_operators import crossover


@dataclass(frozen=True)
class GraphGAConfig:
    """PMO's Graph GA hyperparameters (mol_opt's defaults)."""

    population_size: int = 120
    offspring_size: int = 70
    mutation_rate: float = 0.067
    patience: int = 5
    ring_single_joins: bool = False  # True: keep ring crossover's single-bond joins too


class GraphGA:
    """A population of molecules evolved by graph crossover and mutation."""

    name = "graph_ga"

    def __init__(self, pool: Sequence[str], seed: int = 0, config: GraphGAConfig | None = None):
        if len(pool) == 0:
            raise ValueError("graph_ga needs a non-empty starting pool")
        self.pool, self.config = list(pool), config or GraphGAConfig()
        self.rng = random.Random(seed)
        self.population: list[tuple[str, float]] = []
        self.seen: dict[str, float] = {}  # every scored molecule (for the stopping rule)
        self.stalled, self.started = 0, False

    def ask(self, n: int) -> list[str]:
        """The starting draw, then each generation's children (at most n)."""
        if not self.started:
            return [self.rng.choice(self.pool) for _ in range(min(self.config.population_size, n))]
        if self.stalled >= self.config.patience:
            return []
        scores = np.array([s for _, s in self.population]) + 1e-10
        members = [m for m, _ in self.population]
        mating = self.rng.choices(members, weights=scores.tolist(), k=self.config.population_size)
        children = []
        for _ in range(min(self.config.offspring_size, n)):
            child = crossover(self.rng.choice(mating), self.rng.choice(mating), self.rng,
                              self.config.ring_single_joins)
            if child is not None:
                child = mutate(child, self.config.mutation_rate, self.rng)
            if child is not None:
                children.append(child)
        return children

    def _top100(self) -> float:
        """Mean of the 100 best scores seen."""
        return float(np.mean(sorted(self.seen.values(), reverse=True)[:100])) if self.seen else 0.0

    def tell(self, items: list[str], scores: np.ndarray) -> None:
        """Merge the scored items into the population and keep the best."""
        before = self._top100() if len(self.seen) > 100 else None
        merged = dict(self.population)
        for item, score in zip(items, scores):
            if np.isfinite(score) and item not in merged:
                merged[item] = float(score)
                self.seen.setdefault(item, float(score))
        ranked = sorted(merged.items(), key=lambda kv: -kv[1])
        self.population = ranked[: self.config.population_size]
        if self.started and before is not None:
            self.stalled = self.stalled + 1 if self._top100() - before < 1e-3 else 0
        self.started = True

    def state(self) -> dict[str, Any]:
        """Population, everything seen, the stopping count and the random state, as JSON."""
        version, internal, gauss = self.rng.getstate()
        return {"population": self.population, "seen": self.seen, "stalled": self.stalled,
                "started": self.started, "rng": [version, list(internal), gauss],
                "config": asdict(self.config)}

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a saved state."""
        self.population = [(m, float(s)) for m, s in state["population"]]
        self.seen = {m: float(s) for m, s in state["seen"].items()}
        self.stalled, self.started = int(state["stalled"]), bool(state["started"])
        version, internal, gauss = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss))
