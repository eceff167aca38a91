"""Gradient ascent on latents through a differentiable property predictor fitted to the oracle's
labels (every label is a counted call), refitted each round as labels accumulate.

Each round climbs from the best labelled latents (and the origin, searching from one item) along
the predictor's normalised gradient in whitened coordinates, each climb held inside a trust
region around where it began and the norm bound around the data; the points of every climb are
decoded, best predicted first, and the new ones proposed. The true oracle scores every one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from latentsci.latent.predictor import PredictorConfig, PropertyPredictor, fit_predictor
from latentsci.latent.search.latent_random import LatentDraws, draw
from latentsci.latent.search.latent_space import LatentSpace, restored_rng, rng_state


@dataclass(frozen=True)
class GradientConfig:
    """How many random labels first, how each round climbs, and the predictor's size."""

    initial: int = 100  # labels from random draws before the first fit
    starts: int = 8  # best labelled latents climbed from each round
    steps: int = 20  # gradient steps per climb, each decoded
    step_size: float = 0.25  # whitened units per step (normalised gradient)
    trust_radius: float = 3.0  # whitened distance a climb may go from where it began
    jitter: float = 0.1  # noise on the starting points (repeat climbs differ)
    hidden: int = 128
    epochs: int = 60
    draws: LatentDraws = field(default_factory=LatentDraws)


def climb(predictor: PropertyPredictor, starts: np.ndarray, config: GradientConfig,
          radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Every step's point of normalised-gradient climbs (steps*starts, d), and its prediction."""
    origin = torch.as_tensor(starts, dtype=torch.float32)
    u = origin.clone()
    points, predicted = [], []
    for _ in range(config.steps):
        u.requires_grad_(True)
        value = predictor.predict(u)[:, 0]
        (grad,) = torch.autograd.grad(value.sum(), u)
        with torch.no_grad():
            u = u + config.step_size * grad / grad.norm(dim=1, keepdim=True).clamp_min(1e-12)
            u = origin + _capped(u - origin, config.trust_radius)
            u = _capped(u, radius)
            points.append(u.clone())
            predicted.append(predictor.predict(u)[:, 0])
    return torch.cat(points).cpu().numpy(), torch.cat(predicted).cpu().numpy()


def _capped(v: torch.Tensor, radius: float) -> torch.Tensor:
    """Rows scaled down to at most `radius` in norm."""
    return v * (radius / v.norm(dim=1, keepdim=True).clamp_min(1e-12)).clamp(max=1.0)


class GradientAscent:
    """Latent gradient ascent on a predictor of the objective, fitted to its labels."""

    name = "gradient"

    def __init__(self, space: LatentSpace, seed: int = 0, origin: np.ndarray | None = None,
                 config: GradientConfig | None = None):
        self.space, self.origin, self.config = space, origin, config or GradientConfig()
        self.seed, self.rng = seed, np.random.default_rng(seed)
        self.predictor: PropertyPredictor | None = None
        self.rounds = 0

    def ask(self, n: int) -> list[str]:
        """Random draws until `initial` labels, then decodes along climbs (topped up with
        draws around the best latent when the climbs bring too few new items)."""
        u, y = self.space.labelled()
        if len(y) < self.config.initial:
            return draw(self.space, self.rng, min(n, self.config.initial - len(y)),
                        self.origin, self.config.draws)
        self.rounds += 1
        self._fit(u, y)
        points, predicted = climb(self.predictor, self._starts(), self.config,
                                  self.space.gaussian.radius)
        items = self.space.decode(points[np.argsort(-predicted, kind="stable")], n)
        if len(items) < n:
            items += draw(self.space, self.rng, n - len(items), self.space.best_u(1)[0],
                          self.config.draws)
        return items

    def _fit(self, u: np.ndarray, y: np.ndarray) -> None:
        """Refit the predictor on every label so far, from the last fit's weights."""
        config = PredictorConfig(properties=["score"], hidden=self.config.hidden,
                                 epochs=self.config.epochs, valid_fraction=0.0,
                                 seed=self.seed + self.rounds)
        self.predictor, _ = fit_predictor(u, y, config, start=self.predictor)

    def _starts(self) -> np.ndarray:
        """The best labelled latents (and the origin), jittered."""
        starts = self.space.best_u(self.config.starts)
        if self.origin is not None:
            starts = np.vstack([self.origin[None], starts])
        return starts + self.config.jitter * self.rng.standard_normal(starts.shape)

    def tell(self, items: list[str], scores: np.ndarray) -> None:
        """Labels for the next fit."""
        self.space.record(items, scores)

    def state(self) -> dict[str, Any]:
        """Random state, round count and labels (the predictor is refitted from them)."""
        return {"rng": rng_state(self.rng), "rounds": self.rounds, "space": self.space.state(),
                "config": asdict(self.config)}

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a saved state (the next round refits the predictor from scratch)."""
        self.rng = restored_rng(state["rng"])
        self.rounds = int(state["rounds"])
        self.space.restore(state["space"])
