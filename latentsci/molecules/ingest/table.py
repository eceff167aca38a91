"""Molecule ingest: parsed batches -> one de-duplicated, split table plus a reject report."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pandas as pd
from pydantic import Field, model_validator

from latentsci.molecules.chem import DESCRIPTOR_NAMES, ParsedMolecule, Reject, random_split, scaffold_split
from latentsci.pipeline.stage import InputFile, StageConfig
from latentsci.molecules.ingest import SmilesRecords, read_smiles_file


class SplitConfig(StageConfig):
    """How rows are assigned to train/valid/test: none (all one split), random or scaffold."""

    method: Literal["none", "random", "scaffold"] = "none"
    fractions: dict[str, float] = Field(default_factory=lambda: {"train": 1.0})
    seed: int = 0

    @model_validator(mode="after")
    def _fractions_sum_to_one(self) -> SplitConfig:
        if not self.fractions or any(f < 0 for f in self.fractions.values()):
            raise ValueError("fractions must be non-negative and name at least one split")
        if abs(sum(self.fractions.values()) - 1.0) > 1e-6:
            raise ValueError(f"fractions must sum to 1, got {sum(self.fractions.values()):g}")
        return self


class IngestConfig(StageConfig):
    """Parameters of the `ingest` stage."""

    # one file, or several read as one set (de-duplicated and split together; the report and
    # table say which file each row came from)
    source: InputFile | list[InputFile]
    format: Literal["auto", "smi", "csv", "parquet"] = "auto"
    smiles_column: str = "smiles"
    carry_columns: list[str] = Field(default_factory=list)
    keep_largest_fragment: bool = True
    max_heavy_atoms: int | None = Field(default=None, gt=0)
    deduplicate: bool = True
    id_prefix: str | None = None
    batch_size: int = Field(default=2000, gt=0)
    limit: int | None = Field(default=None, gt=0)  # the first N records of each file (smoke runs)
    split: SplitConfig = Field(default_factory=SplitConfig)


def read_sources(config: IngestConfig) -> SmilesRecords:
    """The SMILES records of the configured file, or of all files in order; with several, a
    `source` column names each row's file."""
    paths = config.source if isinstance(config.source, list) else [config.source]
    parts = [_first(read_smiles_file(p, config.format, config.smiles_column,
                                     config.carry_columns), config.limit) for p in paths]
    if len(parts) == 1:
        return parts[0]
    extra = {c: [v for part in parts for v in part.extra[c]] for c in config.carry_columns}
    extra["source"] = [p.name for p, part in zip(paths, parts) for _ in range(len(part))]
    return SmilesRecords([n for part in parts for n in part.lines],
                         [t for part in parts for t in part.texts], extra)


def _first(records: SmilesRecords, limit: int | None) -> SmilesRecords:
    """The first `limit` records of a file (all without a limit)."""
    if limit is None or limit >= len(records):
        return records
    return SmilesRecords(records.lines[:limit], records.texts[:limit],
                         {k: v[:limit] for k, v in records.extra.items()})


def batches(records: SmilesRecords, size: int) -> list[list[str]]:
    """SMILES texts in batches, the unit of work of one parse task."""
    return [records.texts[i : i + size] for i in range(0, len(records), size)]


def assemble(records: SmilesRecords, parsed: list[ParsedMolecule | Reject], config: IngestConfig,
             id_prefix: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The molecule table (deduplicated, split, with ids) and the reject report (line, input, reason)."""
    rows, rejects, first_line = [], [], {}
    carried = [*config.carry_columns, *(["source"] if "source" in records.extra else [])]
    for index, (line, text, result) in enumerate(zip(records.lines, records.texts, parsed)):
        where = _where(records, index, line)
        if isinstance(result, Reject):
            rejects.append((where, text, result.reason))
            continue
        if config.deduplicate and result.smiles in first_line:
            rejects.append((where, text, f"duplicate of line {first_line[result.smiles]}"))
            continue
        first_line.setdefault(result.smiles, where)
        extra = {c: records.extra[c][index] for c in carried}
        rows.append({"line": line, "input": text, "smiles": result.smiles,
                     "scaffold": result.scaffold, **result.descriptors, **extra})
    columns = ["line", "input", "smiles", "scaffold", *DESCRIPTOR_NAMES, *carried]
    table = pd.DataFrame(rows, columns=columns)
    table.insert(0, "id", [f"{id_prefix}-{i}" for i in range(len(table))])
    table["split"] = assign_splits(table, config.split)
    report = pd.DataFrame(rejects, columns=["line", "input", "reason"])
    return table, report


def _where(records: SmilesRecords, index: int, line: int) -> int | str:
    """A record's line number, prefixed by its file when several files were read."""
    source = records.extra.get("source")
    return f"{source[index]}:{line}" if source is not None else line


def assign_splits(table: pd.DataFrame, split: SplitConfig) -> list[str]:
    """Split label of every row under the configured method."""
    if split.method == "none":
        return [next(iter(split.fractions))] * len(table)
    if split.method == "random":
        return list(random_split(len(table), split.fractions, split.seed))
    return list(scaffold_split(table["scaffold"].tolist(), split.fractions, split.seed))


def write_outputs(table: pd.DataFrame, report: pd.DataFrame, out_dir: Path) -> dict[str, Path]:
    """Parquet table and CSV reject report in the stage folder."""
    paths = {"molecules": out_dir / "molecules.parquet", "rejects": out_dir / "rejects.csv"}
    table.to_parquet(paths["molecules"], index=False)
    report.to_csv(paths["rejects"], index=False)
    return paths


def summary(records: SmilesRecords, table: pd.DataFrame, report: pd.DataFrame) -> dict[str, float]:
    """Counts logged as metrics: read, kept, rejected (and why), per split."""
    duplicates = int(report["reason"].str.startswith("duplicate").sum()) if len(report) else 0
    metrics = {"read": len(records), "kept": len(table), "rejected": len(report) - duplicates,
               "duplicates": duplicates}
    for name, count in table["split"].value_counts().items():
        metrics[f"split_{name}"] = int(count)
    return metrics
