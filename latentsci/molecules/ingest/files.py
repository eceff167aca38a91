"""Read SMILES from .smi/.txt, CSV and the community's ZINC250k CSV into numbered records."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pandas as pd

from latentsci.errors import InputDataError

SmilesFormat = Literal["auto", "smi", "csv", "parquet"]


@dataclass
class SmilesRecords:
    """SMILES texts with the line each came from, plus any columns carried through from a CSV."""

    lines: list[int]
    texts: list[str]
    extra: dict[str, list] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.texts)


def _detect(path: Path, fmt: SmilesFormat) -> str:
    """Pick the reader from the suffix unless the config names one."""
    if fmt != "auto":
        return fmt
    suffix = path.suffix.lower()
    return {".csv": "csv", ".tsv": "csv", ".parquet": "parquet"}.get(suffix, "smi")


def _read_smi(path: Path) -> SmilesRecords:
    """One SMILES per line, optionally followed by whitespace and a name; blank and # lines skipped."""
    lines, texts = [], []
    with path.open(encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            token = line.strip().split(maxsplit=1)
            if token and not token[0].startswith("#"):
                lines.append(number)
                texts.append(token[0])
    return SmilesRecords(lines, texts)


def _read_table(path: Path, column: str, carry: list[str]) -> SmilesRecords:
    """A CSV or Parquet table with a SMILES column; quoted cells with trailing newlines (ZINC250k)
    are stripped."""
    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        if path.suffix.lower() == ".parquet":
            frame = pd.read_parquet(path).astype(str)
        else:
            frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise InputDataError(f"{path}: file holds no SMILES (it is empty)") from None
    frame.columns = [c.strip() for c in frame.columns]
    missing = [c for c in [column, *carry] if c not in frame.columns]
    if missing:
        raise InputDataError(
            f"{path}: no column {missing[0]!r} (columns: {', '.join(frame.columns)})"
        )
    texts = [t.strip() for t in frame[column].tolist()]
    # Row i of the table starts on line i + 2 when no cell spans lines (header is line 1).
    lines = [i + 2 for i in range(len(texts))]
    return SmilesRecords(lines, texts, {c: frame[c].tolist() for c in carry})


def read_smiles_file(
    path: Path, fmt: SmilesFormat = "auto", column: str = "smiles", carry: list[str] | None = None
) -> SmilesRecords:
    """Read every SMILES record of a file, refusing a missing or empty file with one line."""
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"{path}: no such file")
    kind = _detect(path, fmt)
    if kind == "smi" and carry:
        raise InputDataError(f"{path}: carry_columns needs a CSV or Parquet file")
    records = _read_smi(path) if kind == "smi" else _read_table(path, column, carry or [])
    if len(records) == 0:
        raise InputDataError(f"{path}: file holds no SMILES")
    return records


def read_generated(path: Path) -> list[str]:
    """Generated SMILES, one per line, where an empty line is a sample that failed (it counts)."""
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"{path}: no such file")
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    samples = [(line.split() or [""])[0] for line in lines]
    if not samples:
        raise InputDataError(f"{path}: file holds no samples")
    return samples
