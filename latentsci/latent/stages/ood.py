"""The OOD stages: `ood_fit` fits and calibrates a detector on a store's training rows and reports
how well it separates held-out rows from shifted sets; `ood_gate` keeps or rejects the items a
stage before it made (samples, a store's rows) with the detector, saying why."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from latentsci.errors import InputDataError
from latentsci.latent.ood import OODConfig
from latentsci.pipeline.stage import ONE, ONE_OR_MORE, OPTIONAL, InputFile, Stage, StageConfig
from latentsci.pipeline.stage import StageContext, StageResult


class OODFitConfig(StageConfig, OODConfig):
    """The detector's settings (OODConfig), which store it is fitted on, and what it is shown."""

    fit_on: str | None = None  # the needed stage whose store is fitted on (default: the first)
    inside_split: str = "valid"  # rows of that store scored as in-distribution in the report
    shifted: dict[str, InputFile] = Field(default_factory=dict)  # name -> file of items
    max_items: int = Field(default=2000, gt=0)  # per set scored in the report (a seeded draw)
    # a column of the shifted stores whose values are also reported apart (fields: F, viscosity)
    report_by: str | None = None


def _draw(n: int, limit: int, seed: int) -> np.ndarray:
    """Up to `limit` of n row numbers, a seeded draw in row order."""
    return np.sort(np.random.default_rng(seed).permutation(n)[:limit])


def _stores(config: OODFitConfig, ctx: StageContext) -> tuple[str, dict[str, str]]:
    """(the store fitted on, {stage name: store} of the other needed stages: shifted sets)."""
    givers = {rec.name: rec.outputs["store"] for rec in ctx.givers("store")}
    fit_on = config.fit_on or next(iter(givers))
    if fit_on not in givers:
        raise InputDataError(f"stage {ctx.name}: fit_on = {fit_on!r} is not a needed stage "
                             f"with a store (those are: {', '.join(givers)})")
    return givers.pop(fit_on), givers


def _inside_rows(store, config: OODFitConfig) -> np.ndarray:
    """The fitted store's rows of `inside_split`: in-distribution, never fitted or calibrated on."""
    if "split" not in store.property_names:
        raise InputDataError(f"{store.path}: no split column, so no held-out rows to report on")
    rows = np.flatnonzero(store.column("split") == config.inside_split)
    if len(rows) == 0:
        raise InputDataError(f"{store.path}: no rows of split {config.inside_split!r} to report "
                             f"on (set inside_split)")
    return rows[_draw(len(rows), config.max_items, config.seed)]


def _shifted_scores(config: OODFitConfig, detector, fitted, codec, others: dict[str, str]):
    """Scores of every shifted set: the other needed stores and the item files."""
    from latentsci.latent.ood_fit import gate, read_items, score_store
    from latentsci.latent.ood_report import report_scores
    from latentsci.store import LatentStore

    out = {}
    for name, path in others.items():
        store = LatentStore.open(path)
        rows = _draw(len(store), config.max_items, config.seed)
        out[name] = report_scores(score_store(detector, fitted, codec, store, rows))
        out.update(_by_value(config.report_by, store, rows, name, out[name]))
    for name, path in config.shifted.items():
        items = read_items(codec, path)
        items = [items[i] for i in _draw(len(items), config.max_items, config.seed)]
        out[name] = report_scores(gate(detector, fitted, codec, items=items))
    return out


def _by_value(column: str | None, store, rows: np.ndarray, name: str,
              scores: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """A shifted store's scores split by the values of `column` ("NAME.COLUMN_VALUE" each), so
    a near and a far shift in one store are reported apart; nothing when it has no such column."""
    if column is None or column not in store.property_names:
        return {}
    values = np.asarray(store.column(column))[rows]
    return {f"{name}.{column}_{value}": {k: v[values == value] for k, v in scores.items()}
            for value in np.unique(values)}


def ood_fit(config: OODFitConfig, ctx: StageContext) -> StageResult:
    """Fit, calibrate and save the detector; the AUROC/AUPR/FPR table and score histograms."""
    import pandas as pd

    from latentsci.latent import load_codec, store_codec
    from latentsci.latent.ood_files import save_detector
    from latentsci.latent.ood_fit import fit_detector, score_store
    from latentsci.latent.ood_report import report_scores, separation_table
    from latentsci.plots import score_histograms
    from latentsci.store import LatentStore

    fit_path, others = _stores(config, ctx)
    store = LatentStore.open(fit_path)
    codec = load_codec(ctx.output("codec")) if ctx.givers("codec") else store_codec(store)
    settings = OODConfig(**config.model_dump(include=set(OODConfig.model_fields)))
    detector = fit_detector(store, settings, codec)
    folder = save_detector(detector, ctx.out_dir / "detector")
    inside_verdict = score_store(detector, store, codec, store, _inside_rows(store, config))
    inside = report_scores(inside_verdict)
    shifted = _shifted_scores(config, detector, store, codec, others)
    tables = [separation_table(inside, scores).assign(set=name) for name, scores in shifted.items()]
    report = ctx.out_dir / "ood_report.csv"
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    table.to_csv(report, index=False)
    plot = score_histograms(inside, shifted, ctx.out_dir / "ood_scores.png",
                            f"scores of held-out {config.inside_split!r} rows and shifted sets")
    metrics = {"threshold": detector.threshold, "kept_inside": float(inside_verdict.keep.mean()),
               "fit_rows": float(len(detector.fit_rows))}
    for row in table.itertuples() if len(table) else ():
        if row.detector == "combined":
            metrics[f"auroc_{row.set}"] = float(row.auroc)
    return StageResult(outputs={"detector": str(folder), "report": str(report)},
                       metrics=metrics, artifacts=[report, plot, folder / "detector.json"])


class OODGateConfig(StageConfig):
    """What to score with the needed stage's detector: `samples` or a store's rows (default:
    whichever of the two the needed stages give)."""

    score: Literal["samples", "store"] | None = None


def _scored_role(config: OODGateConfig, ctx: StageContext) -> str:
    """The role whose items are scored: the one asked for, or the one the needs give."""
    if config.score is not None:
        return config.score
    given = [role for role in ("samples", "store") if ctx.givers(role)]
    if len(given) != 1:
        raise InputDataError(f"stage {ctx.name}: needs give {' and '.join(given) or 'neither'} "
                             f"of samples and store; set score = \"samples\" or \"store\"")
    return given[0]


def ood_gate(config: OODGateConfig, ctx: StageContext) -> StageResult:
    """Keep or reject every item with the detector: a scored table and the rejects with reasons."""
    from latentsci.latent.ood_files import open_detector
    from latentsci.latent.ood_fit import gate, read_items, score_store
    from latentsci.latent.ood_report import verdict_table
    from latentsci.store import LatentStore

    # the needed codec when there is one (checked against the detector), else the recorded one
    model = ctx.output("codec") if ctx.givers("codec") else None
    detector, fitted, codec = open_detector(ctx.output("detector"), model)
    if _scored_role(config, ctx) == "samples":
        items = read_items(codec, ctx.output("samples"))
        table = verdict_table(gate(detector, fitted, codec, items=items), items)
    else:
        store = LatentStore.open(ctx.output("store"))
        table = verdict_table(score_store(detector, fitted, codec, store), ids=list(store.ids))
    scores, rejects = ctx.out_dir / "scores.parquet", ctx.out_dir / "rejects.csv"
    table.to_parquet(scores, index=False)
    table.loc[~table["keep"]].drop(columns="keep").to_csv(rejects, index=False)
    kept = int(table["keep"].sum())
    return StageResult(outputs={"scores": str(scores), "rejects": str(rejects)},
                       metrics={"scored": float(len(table)), "kept": float(kept),
                                "rejected": float(len(table) - kept),
                                "unreadable": float((~table["encoded"]).sum())},
                       artifacts=[rejects])


def _gate_reads(config: OODGateConfig) -> dict[str, str]:
    """A detector, the items to score, and optionally the codec (checked against the detector)."""
    scored = {config.score: ONE} if config.score else {"samples": OPTIONAL, "store": OPTIONAL}
    return {"detector": ONE, **scored, "codec": OPTIONAL}


OOD_FIT = Stage("ood_fit", OODFitConfig, ood_fit, reads={"store": ONE_OR_MORE, "codec": OPTIONAL},
                gives=("detector", "report"))
OOD_GATE = Stage("ood_gate", OODGateConfig, ood_gate, reads=_gate_reads,
                 gives=("scores", "rejects"))
