"""What every latent optimiser shares: a Gaussian over the codec's latent space (fitted to the
encoded training items), decoding z rows into new items, and the record of what was scored.

Optimisers move in whitened coordinates u, z = mean + L u, where a norm bound keeps them near
the data (|u| at most the `quantile` of the training latents' whitened norms). Decoding drops
invalid items and repeats of anything already proposed before the oracle sees them; a repeat of
a scored item still teaches the optimiser (its z joins the labelled rows at the known score).
Outside PMO mode a guard (the OOD gate, a domain's caps) rejects proposals, counted by reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from latentsci.latent.codec import Codec

Guard = Callable[[list[str]], list[str | None]]  # items -> None (keep) or why each is rejected


@dataclass(frozen=True)
class LatentGaussian:
    """N(mean, L L^T) over flat latent rows, and the whitened radius that bounds a search."""

    mean: np.ndarray
    scale_tril: np.ndarray
    radius: float

    @classmethod
    def fit(cls, z: np.ndarray, quantile: float = 0.99) -> LatentGaussian:
        """Fitted to encoded items (Ledoit-Wolf shrinkage: a few thousand rows in 64-d)."""
        from sklearn.covariance import LedoitWolf

        z = np.asarray(z, dtype=np.float64)
        z = z[np.isfinite(z).all(axis=1)]
        if len(z) < 2:
            raise ValueError(f"a latent Gaussian needs 2 or more encoded items, got {len(z)}")
        covariance = LedoitWolf().fit(z).covariance_
        scale = np.linalg.cholesky(covariance + 1e-9 * np.eye(z.shape[1]))
        return cls.with_radius(z.mean(axis=0), scale, z, quantile)

    @classmethod
    def with_radius(cls, mean: np.ndarray, scale_tril: np.ndarray, z: np.ndarray | None,
                    quantile: float = 0.99) -> LatentGaussian:
        """A given Gaussian, bounded by the quantile of z's whitened norms (sqrt(d)+3 without z)."""
        base = cls(np.asarray(mean, float), np.asarray(scale_tril, float), float("inf"))
        if z is None or len(z) == 0:
            return cls(base.mean, base.scale_tril, float(np.sqrt(len(base.mean)) + 3.0))
        norms = np.linalg.norm(base.whiten(z), axis=1)
        return cls(base.mean, base.scale_tril, float(np.quantile(norms, quantile)))

    @property
    def dim(self) -> int:
        """Latent size."""
        return len(self.mean)

    def whiten(self, z: np.ndarray) -> np.ndarray:
        """u with z = mean + L u."""
        from scipy.linalg import solve_triangular

        centred = np.asarray(z, float) - self.mean
        return solve_triangular(self.scale_tril, centred.T, lower=True).T

    def colour(self, u: np.ndarray) -> np.ndarray:
        """z rows of whitened u rows."""
        return (self.mean + np.asarray(u, float) @ self.scale_tril.T).astype(np.float32)

    def bound(self, u: np.ndarray) -> np.ndarray:
        """u rows pulled back inside the norm bound."""
        norms = np.linalg.norm(u, axis=1, keepdims=True)
        return u * np.minimum(1.0, self.radius / np.maximum(norms, 1e-12))


class LatentSpace:
    """Decodes z rows into new, guarded items and keeps every labelled z row."""

    def __init__(self, codec: Codec, gaussian: LatentGaussian, canonical: Callable[[str], Any],
                 guard: Guard | None = None):
        self.codec, self.gaussian, self.canonical, self.guard = codec, gaussian, canonical, guard
        self.known: dict[str, float] = {}  # scored item -> score
        self.pending: dict[str, np.ndarray] = {}  # proposed, not yet scored: item -> u
        self.u: list[np.ndarray] = []  # labelled whitened rows (scored items and their repeats)
        self.y: list[float] = []
        self.rejected: Counter[str] = Counter()
        self.repeats = 0

    def decode(self, u: np.ndarray, n: int) -> list[str]:
        """Up to n new items decoded from whitened rows u, in order; repeats of scored items
        labelled at their known score, invalid and guarded ones counted."""
        u = np.asarray(u, dtype=float).reshape(-1, self.gaussian.dim)
        texts = self.codec.decode(self.gaussian.colour(u)) if len(u) else []
        fresh: dict[str, np.ndarray] = {}
        for row, text in zip(u, texts):
            key = self.canonical(text) if text is not None else None
            if key is None:
                self.rejected["not a valid item"] += 1
            elif key in self.known:
                self.u.append(row)
                self.y.append(self.known[key])
                self.repeats += 1
            elif key not in self.pending and key not in fresh:
                fresh[key] = row
            else:
                self.repeats += 1
        items = self._guarded(list(fresh))[:n]
        self.pending.update({item: fresh[item] for item in items})
        return items

    def _guarded(self, items: list[str]) -> list[str]:
        """Items the guard keeps (all without one); the others counted by reason."""
        if self.guard is None or not items:
            return items
        reasons = self.guard(items)
        for reason in reasons:
            if reason is not None:
                self.rejected[reason] += 1
        return [item for item, reason in zip(items, reasons) if reason is None]

    def record(self, items: Sequence[str], scores: np.ndarray) -> None:
        """Scores of proposed items (NaN: past the budget, forgotten so it may come again)."""
        for item, score in zip(items, np.asarray(scores, dtype=float)):
            row = self.pending.pop(item, None)
            if row is None or not np.isfinite(score):
                continue
            self.known[item] = float(score)
            self.u.append(row)
            self.y.append(float(score))

    def labelled(self) -> tuple[np.ndarray, np.ndarray]:
        """Whitened rows and scores of everything labelled so far."""
        if not self.y:
            return np.zeros((0, self.gaussian.dim)), np.zeros(0)
        return np.asarray(self.u), np.asarray(self.y)

    def best_u(self, k: int) -> np.ndarray:
        """The whitened rows of the k best scores."""
        u, y = self.labelled()
        return u[np.argsort(-y, kind="stable")[:k]]

    def state(self) -> dict[str, Any]:
        """Everything labelled, as JSON-able values."""
        return {"known": self.known, "u": np.asarray(self.u).tolist(), "y": self.y,
                "rejected": dict(self.rejected), "repeats": self.repeats}

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a saved state."""
        self.known = {k: float(v) for k, v in state["known"].items()}
        self.u = [np.asarray(row, float) for row in state["u"]]
        self.y = [float(v) for v in state["y"]]
        self.rejected = Counter(state["rejected"])
        self.repeats = int(state["repeats"])
        self.pending = {}


def rng_state(rng: np.random.Generator) -> dict:
    """A generator's state as JSON."""
    return rng.bit_generator.state


def restored_rng(state: dict) -> np.random.Generator:
    """A generator continuing from a saved state."""
    rng = np.random.default_rng()
    rng.bit_generator.state = state
    return rng
