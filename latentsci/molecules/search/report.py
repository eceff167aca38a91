"""What a search leaves for a reader: its table, a summary, the best-so-far curve and a grid of
the best molecules, written beside the output and logged to one MLflow run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from latentsci.latent.search.auc import top_auc, top_mean


def search_summary(table: pd.DataFrame, budget: int, rejected: dict[str, int]) -> dict[str, float]:
    """Best, top-10 mean, AUC of the top-10 curve, calls and rejects of one search."""
    scores = table["score"].to_numpy(dtype=float) if len(table) else np.zeros(0)
    return {"calls": float(len(scores)), "best": float(scores.max()) if len(scores) else np.nan,
            "top10": top_mean(scores, 10), "auc_top10": top_auc(scores, 10, budget),
            "rejected": float(sum(rejected.values()))}


def pictures(table: pd.DataFrame, folder: Path, title: str, curve: bool = True) -> list[Path]:
    """Best-so-far curve (one search only: starts each count their calls from 1) and the 12
    best molecules."""
    from latentsci.molecules.plots import molecule_grid
    from latentsci.plots import best_so_far

    folder.mkdir(parents=True, exist_ok=True)
    if table.empty:
        return []
    out = []
    if curve:
        out.append(best_so_far(table["call"].to_numpy(float), table["score"].to_numpy(float),
                               folder / "best_so_far.png", title))
    top = table.sort_values("score", ascending=False).drop_duplicates("smiles").head(12)
    out.append(molecule_grid(list(top["smiles"]), folder / "top_molecules.png"))
    return out


def log_search(run_dir: Path, tracking_uri: str | None, params: dict, metrics: dict,
               artifacts: list[Path]) -> str:
    """One MLflow run (experiment `optimize`) with the search's params, metrics and files."""
    from latentsci.tracking import Tracker

    tracker = Tracker(run_dir, experiment="optimize", uri=tracking_uri)
    with tracker.pipeline_run(f"{params['method']}/{params['objective']}",
                              {"latentsci.verb": "optimize"}) as run_id:
        tracker.log_params(params)
        tracker.log_metrics(metrics)
        for path in artifacts:
            tracker.log_artifact(path)
    return run_id
