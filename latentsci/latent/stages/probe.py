"""The `probe` stage: simple models read properties off frozen latents, next to the domain's
baseline features, over group-aware splits (latentsci/latent/probe.py).

Two kinds of target, either or both:
- `sets`: files of items with a target column (molecules: MoleculeNet CSVs), encoded through the
  codec here; compared with the domain's baseline features (ECFP4), split by its groups
  (scaffolds);
- `columns`: columns of a needed store (fields: viscosity, F, k), probed from its z rows, split
  by `group_column` (fields: trajectory, so frames of one trajectory stay on one side).
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from latentsci.errors import InputDataError
from latentsci.latent.probe import Task
from latentsci.pipeline.stage import OPTIONAL, InputFile, Stage, StageConfig
from latentsci.pipeline.stage import StageContext, StageResult


class ProbeSet(BaseModel):
    """A file of items (a column named by the domain, e.g. smiles) with one target column."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    file: InputFile
    target: str
    task: Task = "regression"


class ProbeConfig(StageConfig):
    """What to probe and how many group-aware splits (each a different seed)."""

    sets: dict[str, ProbeSet] = Field(default_factory=dict)
    columns: dict[str, Task] = Field(default_factory=dict)  # store column -> task
    group_column: str | None = None  # store column whose values stay on one side of a split
    splits: int = Field(default=5, ge=2)
    test_share: float = Field(default=0.2, gt=0, lt=1)
    seed: int = 0
    max_rows: int = Field(default=20000, gt=0)  # of a store, a seeded draw

    @model_validator(mode="after")
    def _something(self) -> ProbeConfig:
        """At least one target."""
        if not self.sets and not self.columns:
            raise ValueError("give sets (files of items with a target) or columns (of a store)")
        return self


def _set_frame(spec: ProbeSet, codec, pieces, config: ProbeConfig):
    """Probe rows of one item file: latents against the baseline features, split by groups."""
    import pandas as pd

    from latentsci.latent.probe import run_probe

    table = pd.read_parquet(spec.file) if spec.file.suffix == ".parquet" else pd.read_csv(
        spec.file)
    column = pieces.item_column or "item"
    for needed in (column, spec.target):
        if needed not in table:
            raise InputDataError(f"{spec.file}: no column {needed!r} (columns: "
                                 f"{', '.join(map(str, table.columns))})")
    items = [str(s).strip() for s in table[column]]
    features = {"latent": codec.encode(items).z}
    if pieces.baseline_features is not None:
        features[pieces.baseline_name or "baseline"] = pieces.baseline_features(items)
    groups = pieces.groups(items) if pieces.groups is not None else np.arange(len(items))
    y = pd.to_numeric(table[spec.target], errors="coerce").to_numpy(dtype=float)
    return run_probe(features, y, spec.task, groups, config.splits, config.test_share,
                     config.seed)


def _column_frame(name: str, task: Task, store, config: ProbeConfig):
    """Probe rows of one store column from the store's z rows."""
    from latentsci.latent.probe import run_probe

    y = np.asarray(store.column(name), dtype=float)  # one line naming the columns if absent
    rows = np.sort(np.random.default_rng(config.seed).permutation(len(store))[:config.max_rows])
    groups = (store.column(config.group_column)[rows] if config.group_column
              else np.arange(len(rows)))
    return run_probe({"latent": store.vectors(rows)}, y[rows], task, groups, config.splits,
                     config.test_share, config.seed)


def probe(config: ProbeConfig, ctx: StageContext) -> StageResult:
    """Every probe's scores per split, their summary, and a chart."""
    import pandas as pd

    from latentsci.latent import load_codec, store_codec
    from latentsci.latent.domain import domain_pieces
    from latentsci.latent.probe import probe_summary
    from latentsci.plots import probe_chart
    from latentsci.store import LatentStore

    store = LatentStore.open(ctx.output("store")) if ctx.givers("store") else None
    frames = []
    if config.sets:
        if ctx.givers("codec"):
            codec = load_codec(ctx.output("codec"))
        elif store is not None:
            codec = store_codec(store)
        else:
            raise InputDataError(f"stage {ctx.name}: probing sets needs a codec or a store in needs")
        pieces = domain_pieces(codec)
        frames += [_set_frame(spec, codec, pieces, config).assign(set=name)
                   for name, spec in config.sets.items()]
    if config.columns:
        if store is None:
            raise InputDataError(f"stage {ctx.name}: probing columns needs a store in needs")
        frames += [_column_frame(name, task, store, config).assign(set=name)
                   for name, task in config.columns.items()]
    scores = pd.concat(frames, ignore_index=True)
    summary = probe_summary(scores)
    paths = {"scores": ctx.out_dir / "probe_scores.csv", "summary": ctx.out_dir / "probe.csv"}
    scores.to_csv(paths["scores"], index=False)
    summary.to_csv(paths["summary"], index=False)
    chart = probe_chart(summary, ctx.out_dir / "probe.png")
    metrics = {f"{r.set}_{r.features.split(' ')[0].lower()}_{r.model}": float(r.mean)
               for r in summary.itertuples()}
    return StageResult(outputs={"probe": str(paths["summary"]), "scores": str(paths["scores"])},
                       metrics=metrics, artifacts=[paths["summary"], paths["scores"], chart])


PROBE = Stage("probe", ProbeConfig, probe, reads={"codec": OPTIONAL, "store": OPTIONAL},
              gives=("probe",))
