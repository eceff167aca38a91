"""Scoring batches in parallel Ray actors, each holding its own copy of the objective (loaded
once, like a model or a docking setup), and isolating an item whose score raises.

An actor scores its share as one batch; if that raises, it scores the items one by one, so one
bad item costs only its own score: it gets the error text, the others their scores.
"""

from __future__ import annotations

import numpy as np
import ray

from latentsci.latent.search.objective import Objective, OracleError


def _one_line(exc: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    text = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _call(objective: Objective, items: list[str]) -> list[float]:
    """The objective's scores of items, one per item or an error."""
    values = [float(v) for v in objective.score(list(items))]
    if len(values) != len(items):
        raise ValueError(f"returned {len(values)} scores for {len(items)} items")
    return values


def score_items(objective: Objective, items: list[str]) -> tuple[list[float], list[str | None]]:
    """Scores of items and an error (or None) for each; a non-finite score is an error and
    scores 0."""
    try:
        values = _call(objective, items)
    except Exception as exc:  # noqa: BLE001  (an objective may raise anything)
        if len(items) == 1:
            return [0.0], [_one_line(exc)]
        parts = [score_items(objective, [item]) for item in items]  # find the culprit
        return [p[0][0] for p in parts], [p[1][0] for p in parts]
    errors = [None if np.isfinite(v) else f"score is {v}" for v in values]
    return [v if np.isfinite(v) else 0.0 for v in values], errors


@ray.remote(num_cpus=1)
class _Scorer:
    """One actor's copy of an objective."""

    def __init__(self, objective: Objective):
        self.objective = objective

    def score(self, items: list[str]) -> tuple[list[float], list[str | None]]:
        """Scores and errors of a share of a batch."""
        return score_items(self.objective, items)


class OraclePool:
    """`workers` actors scoring an objective; a batch is split evenly between them. `cpus` each
    reserves (0 for actors of a benchmark run that already holds a CPU for its optimiser)."""

    def __init__(self, objective: Objective, workers: int = 1, cpus: float = 1.0):
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.objective = objective
        self.actors = [_Scorer.options(num_cpus=cpus).remote(objective) for _ in range(workers)]

    def score(self, items: list[str]) -> tuple[np.ndarray, list[str | None]]:
        """Scores (0 where an item's score failed) and errors, in the order of items."""
        if not items:
            return np.zeros(0), []
        shares = np.array_split(np.arange(len(items)), min(len(self.actors), len(items)))
        refs = [actor.score.remote([items[i] for i in share])
                for actor, share in zip(self.actors, shares)]
        try:
            done = ray.get(refs)
        except ray.exceptions.RayError as exc:  # an actor that could not start or died
            raise OracleError(f"objective {self.objective.name!r}: its scoring actors failed: "
                              f"{_one_line(exc)}") from None
        scores, errors = [], []
        for values, said in done:
            scores.extend(values)
            errors.extend(said)
        return np.asarray(scores, dtype=float), errors

    def close(self) -> None:
        """Stop the actors."""
        for actor in self.actors:
            ray.kill(actor)
        self.actors = []
