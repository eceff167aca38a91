"""What the field stages share: the train/test split fixed where the fields enter, and the check
that every training worker gets data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from latentsci.errors import InputDataError
from latentsci.pipeline.stage import StageContext


def write_split(ctx: StageContext, test_from: int) -> str:
    """Record the first test trajectory once, where the fields enter; later stages read it."""
    path = ctx.out_dir / "split.json"
    path.write_text(json.dumps({"test_from": test_from}))
    return str(path)


def test_from(ctx: StageContext) -> int:
    """First test trajectory, fixed once by the stage that brought the fields in."""
    return int(json.loads(Path(ctx.output("split")).read_text())["test_from"])


def split(source, first_test: int) -> tuple[list[int], list[int]]:
    """Valid trajectories before `first_test` train, the rest test (the last ones)."""
    valid = np.flatnonzero(source.valid)
    return [int(t) for t in valid if t < first_test], [int(t) for t in valid if t >= first_test]


def enough(ctx: StageContext, count: int, workers: int, what: str) -> None:
    """Refuse to train when some worker would get no data (it would report an untrained model)."""
    if count < max(workers, 1):
        raise InputDataError(f"stage {ctx.name}: {count} {what} for {workers} workers "
                             f"(each worker needs at least one)")
