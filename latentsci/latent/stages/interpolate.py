"""The `interpolate` stage: paths between pairs of a latent store's rows, decoded through its
codec across Ray tasks and scored (points, per-path metrics, strips and histograms); with an
`ood_fit` stage in its needs, every point's OOD score too."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from latentsci.pipeline.stage import ONE, OPTIONAL, InputFile, Stage, StageConfig
from latentsci.pipeline.stage import StageContext, StageResult


class InterpolateConfig(StageConfig):
    """Which pairs (one of `random`, `neighbours`, `pairs`), how many points, which method."""

    method: Literal["lerp", "slerp", "norm"] = "slerp"
    steps: int = Field(default=8, ge=2)
    random: int | None = Field(default=None, gt=0)  # N random pairs (1000 if no source is set)
    neighbours: int | None = Field(default=None, gt=0)  # each row with its K-th neighbour
    pairs: InputFile | None = None  # CSV with start,end id columns
    where: str | None = None  # rows random/neighbours draw from
    limit: int | None = Field(default=None, gt=0)
    seed: int = 0
    per_task: int = Field(default=64, gt=0)
    strips: int = Field(default=6, ge=0)  # paths drawn in the strip picture

    @model_validator(mode="after")
    def _one_source(self) -> InterpolateConfig:
        """Pairs come from exactly one place."""
        given = [k for k in ("random", "neighbours", "pairs") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give one of random, neighbours, pairs (got {', '.join(given)})")
        return self


def _pairs(config: InterpolateConfig, store):
    """The pairs the config asks for."""
    from latentsci.latent import pairs as select

    if config.pairs is not None:
        return select.pairs_from_file(config.pairs, store)
    rows = select.candidate_rows(store, config.where, config.limit)
    if config.neighbours is not None:
        return select.neighbour_pairs(store, rows, config.neighbours)
    return select.random_pairs(rows, config.random or 1000, config.seed)


def _pictures(result, pieces, ctx: StageContext, strips: int) -> list:
    """Metric histograms, and a strip of decoded items for the first few paths."""
    from latentsci.plots import metric_histograms

    columns = [c for c in result.paths.columns if c not in ("path", "start_id", "end_id")]
    plots = [metric_histograms(result.paths, columns, ctx.out_dir / "path_metrics.png")]
    if strips and pieces.draw_paths is not None and len(result.paths):
        chosen = result.paths["path"].tolist()[:strips]
        if result.frames is not None:
            items = [list(result.frames[p]) for p in range(len(chosen))]
        else:
            by_path = result.points.groupby("path")["item"].apply(list)
            items = [by_path[p] for p in chosen]
        plots.append(pieces.draw_paths(items, ctx.out_dir / "paths.png"))
    return plots


def interpolate(config: InterpolateConfig, ctx: StageContext) -> StageResult:
    """Decode and score the paths; write them with the refused pairs and the pictures."""
    import pandas as pd

    from latentsci.latent.domain import domain_pieces
    from latentsci.latent.interpolation import (interpolate_store, score_points, summary,
                                                write_interpolation)
    from latentsci.store import LatentStore

    store = LatentStore.open(ctx.output("store"))
    model = ctx.shared(ctx.output("codec")) if ctx.givers("codec") else None
    pairs = _pairs(config, store)
    result = interpolate_store(store, pairs, config.steps, config.method, model,
                               config.per_task, ctx.progress)
    if ctx.givers("detector"):
        result = score_points(result, store, pairs, config.steps, config.method,
                              Path(ctx.output("detector")), model)
    wants = ".zarr" if result.frames is not None else ".parquet"
    written = write_interpolation(result, ctx.out_dir / f"interpolation{wants}")
    rejects = ctx.out_dir / "rejects.csv"
    pd.DataFrame(pairs.rejects, columns=["where", "reason"]).to_csv(rejects, index=False)
    plots = _pictures(result, domain_pieces(result.kind), ctx, config.strips)
    points = written.get("frames", written["points"])
    return StageResult(outputs={"interpolation": str(points), "paths": str(written["paths"]),
                                "rejects": str(rejects)},
                       metrics={**summary(result), "paths": float(len(result.paths)),
                                "refused": float(len(pairs.rejects))},
                       artifacts=[written["paths"], rejects, *plots])


INTERPOLATE = Stage("interpolate", InterpolateConfig, interpolate,
                    reads={"store": ONE, "codec": OPTIONAL, "detector": OPTIONAL},
                    gives=("interpolation", "paths", "rejects"))
