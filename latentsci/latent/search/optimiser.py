"""The interface every optimiser implements, and the loop that runs one against a budgeted
oracle, resumable after a stop.

An optimiser never sees the oracle: it proposes (`ask`), is told the scores (`tell`), and can
save and restore its state as JSON (`state`, `restore`). The loop asks for a batch, scores it
through the oracle, tells, and saves the state after every round; a resumed run restores the
state, and whatever it proposes again is answered from the oracle's log for free.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from latentsci.latent.search.budget import BudgetedOracle


@runtime_checkable
class Optimiser(Protocol):
    """Proposes items, learns from their scores, and saves its state."""

    name: str

    def ask(self, n: int) -> list[str]:
        """Up to n proposals (fewer, or none, when it has nothing left to propose)."""

    def tell(self, items: list[str], scores: np.ndarray) -> None:
        """The scores of the last proposals (0 for invalid items, NaN past the budget)."""

    def state(self) -> dict[str, Any]:
        """Everything needed to continue, as JSON-able values."""

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a saved state."""


def _save_state(path: Path, state: dict) -> None:
    """Write a state atomically (a crash mid-write keeps the previous one)."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(state))
    os.replace(temporary, path)


def run_search(optimiser: Optimiser, oracle: BudgetedOracle, state_file: Path,
               batch_size: int = 100, patience: int = 5, progress=None) -> dict[str, float]:
    """Ask, score, tell until the budget is spent, the optimiser runs dry, or `patience` rounds
    in a row bring no new call; the state is saved after every round."""
    state_file = Path(state_file)
    round_number = 0
    if state_file.is_file():
        saved = json.loads(state_file.read_text())
        optimiser.restore(saved["optimiser"])
        round_number = int(saved["round"])
    idle = 0
    while not oracle.finished and idle < patience:
        proposals = optimiser.ask(batch_size)
        if not proposals:
            break
        before = oracle.calls
        scores = oracle(proposals, round=round_number)
        optimiser.tell(proposals, scores)
        round_number += 1
        idle = idle + 1 if oracle.calls == before else 0
        _save_state(state_file, {"round": round_number, "optimiser": optimiser.state()})
        if progress is not None:
            scores = oracle.scores()
            progress(oracle.calls, oracle.budget, float(scores.max()) if len(scores) else None)
    return {"calls": float(oracle.calls), "rounds": float(round_number),
            "invalid": float(oracle.invalid), "finished": float(oracle.finished)}
