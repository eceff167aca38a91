"""The budgeted oracle every optimiser calls, with PMO's accounting.

- Items are canonicalised first; a call is a new valid canonical item. A repeat (in this batch or
  any earlier one) is answered from the cache and costs nothing; an invalid item scores 0, is
  logged, and costs nothing.
- An item whose score raises (or is not finite) scores 0 with its error logged, and **counts**
  against the budget: the evaluation was attempted, as a docking run that crashes still took its
  time. Its repeat is answered from the cache (the error again), never retried.
- New items beyond the remaining budget are not scored: they come back NaN and are not logged.
- Every counted call goes to the call log (index, item, score, error, method, task, seed, round);
  a new oracle over the same log starts from its cache and count, so a stopped run resumes
  without paying again.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from latentsci.latent.search.calls import CallLog
from latentsci.latent.search.objective import Objective, OracleError
from latentsci.latent.search.pool import OraclePool


class BudgetedOracle:
    """An objective behind a budget, a cache and a call log, scored by a pool of Ray actors."""

    def __init__(self, objective: Objective, budget: int, log: CallLog,
                 method: str = "", task: str = "", seed: int = 0, workers: int = 1,
                 actor_cpus: float = 1.0):
        if budget < 1:
            raise OracleError(f"budget must be at least one call, got {budget}")
        self.objective, self.budget, self.log = objective, int(budget), log
        self.run = {"method": method, "task": task or objective.name, "seed": int(seed)}
        self._pool: OraclePool | None = None
        self._workers, self._actor_cpus = workers, actor_cpus
        self._cache: dict[str, tuple[float, str | None]] = {}
        self._order: list[float] = []  # counted scores in call order
        self.invalid = 0
        self._restore()

    def _restore(self) -> None:
        """Cache and count of the calls already in the log."""
        done = self.log.read()
        counted = done[done["index"] >= 0].sort_values("index")
        for item, score, error in zip(counted["item"], counted["score"], counted["error"]):
            self._cache[item] = (float(score), error if isinstance(error, str) else None)
            self._order.append(float(score))
        self.invalid = int((done["index"] < 0).sum())

    @property
    def calls(self) -> int:
        """Counted calls so far."""
        return len(self._order)

    @property
    def remaining(self) -> int:
        """Calls left in the budget."""
        return max(self.budget - self.calls, 0)

    @property
    def finished(self) -> bool:
        """Whether the budget is spent."""
        return self.calls >= self.budget

    def scores(self) -> np.ndarray:
        """Counted scores in call order (what the AUC is computed from)."""
        return np.asarray(self._order, dtype=float)

    def _pool_of_actors(self) -> OraclePool:
        """The actors, started on first use (a resumed run that is done starts none)."""
        if self._pool is None:
            self._pool = OraclePool(self.objective, self._workers, self._actor_cpus)
        return self._pool

    def __call__(self, items: Sequence[str], round: int = 0) -> np.ndarray:
        """Scores of items in order: cached, newly scored, 0 for invalid, NaN over budget."""
        keys = [self.objective.canonical(item) for item in items]
        out = np.full(len(items), np.nan)
        new = list(dict.fromkeys(k for k in keys if k is not None and k not in self._cache))
        new = new[: self.remaining]
        rows = [self._row(-1, item, 0.0, "not a valid item", round)
                for item, key in zip(items, keys) if key is None]
        if new:
            values, errors = self._pool_of_actors().score(new)
            for key, value, error in zip(new, values, errors):
                self._cache[key] = (float(value), error)
                self._order.append(float(value))
                rows.append(self._row(self.calls - 1, key, float(value), error, round))
        self.invalid += sum(key is None for key in keys)
        self.log.append(pd.DataFrame(rows))
        for i, key in enumerate(keys):
            if key is None:
                out[i] = 0.0
            elif key in self._cache:
                out[i] = self._cache[key][0]
        return out

    def _row(self, index: int, item: str, score: float, error: str | None, round: int) -> dict:
        """One call-log row."""
        return {"index": index, "item": item, "score": score, "error": error, **self.run,
                "round": int(round)}

    def best(self, k: int = 10) -> pd.DataFrame:
        """The k best counted calls (item, score, index), best first (from the cache, which
        holds every counted call in call order: no second read of the log)."""
        calls = pd.DataFrame({"item": list(self._cache), "score": self._order,
                              "index": np.arange(self.calls)})
        return calls.sort_values(["score", "index"], ascending=[False, True]).head(k)

    def close(self) -> None:
        """Stop the actors."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None
