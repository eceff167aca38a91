"""The call log of a search run: every oracle call (index, item, score, error, method, task,
seed, round) in Parquet parts, one per scored batch, so a stopped run reads back what it has paid
for and resumes without spending those calls again.

A part is written to a temporary name and renamed, so a crash mid-write leaves no half part.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

COLUMNS = ("index", "item", "score", "error", "method", "task", "seed", "round")


class CallLog:
    """A folder of Parquet parts holding one run's calls (`index` -1: not counted, e.g. an
    invalid item)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def parts(self) -> list[Path]:
        """The written parts, in order."""
        return sorted(self.folder.glob("part-*.parquet"))

    def append(self, calls: pd.DataFrame) -> Path | None:
        """Write one batch's calls as the next part (nothing for an empty batch)."""
        if calls.empty:
            return None
        missing = [c for c in COLUMNS if c not in calls]
        if missing:
            raise ValueError(f"call rows lack columns {missing}")
        parts = self.parts()
        number = int(parts[-1].stem.split("-")[1]) + 1 if parts else 0
        path = self.folder / f"part-{number:06d}.parquet"
        temporary = path.with_suffix(".tmp")
        calls.loc[:, list(COLUMNS)].to_parquet(temporary, index=False)
        os.replace(temporary, path)
        return path

    def read(self) -> pd.DataFrame:
        """Every call so far, in the order they were made."""
        parts = self.parts()
        if not parts:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})
        return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
