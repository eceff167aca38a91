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
from typing import Any

import numpy as np

from latentsci.latent.codec import Codec
from latentsci.latent.gaussian import LatentGaussian

Guard = Callable[[list[str]], list[str | None]]  # items -> None (keep) or why each is rejected


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
