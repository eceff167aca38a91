"""The constrained-optimisation table from one `latentsci optimize --start` run: success rate and
mean +- sd of the improvement over successes at delta 0.4 and 0.6, in the score searched and in
the other penalized logP (every scored molecule and start rescored; no oracle budget involved).

    .venv/bin/python bench/constrained_table.py bench/constrained/gradient_plogp_seed0.csv.gz

(the molecules file may be gzipped, as the committed one is; NAME.starts.csv lies beside it).

Both deltas come from the same search: the search never sees delta, which only decides which of
its molecules count.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from latentsci.latent.search.objective import get_objective
from latentsci.molecules.search.constrained import improvements, protocol_summary, start_outcome


def rescored(objective_name: str, smiles: list[str]) -> dict[str, float]:
    """Scores of distinct molecules under an objective."""
    objective = get_objective(objective_name)
    distinct = list(dict.fromkeys(smiles))
    keys = [objective.canonical(s) for s in distinct]
    values = objective.score([k for k in keys if k is not None])
    found = dict(zip([k for k in keys if k is not None], values))
    return {s: float(found.get(k, np.nan)) if k else np.nan for s, k in zip(distinct, keys)}


def table(molecules: pd.DataFrame, starts: pd.DataFrame, score: str) -> list[dict]:
    """One row per delta: the protocol's numbers over every start (failed ones count)."""
    values = rescored(score, list(molecules["smiles"]) + list(starts["start_smiles"]))
    rows = []
    for delta in (0.4, 0.6):
        outcomes = []
        for start in starts["start_smiles"]:
            mine = molecules[molecules["start_smiles"] == start]
            if mine.empty or not np.isfinite(values[start]):
                outcomes.append((False, np.nan))
                continue
            gains = improvements(mine["smiles"].map(values).to_numpy(),
                                 mine["similarity"].to_numpy(), values[start], delta)
            outcomes.append(start_outcome(gains))
        rows.append({"score": score, "delta": delta, **protocol_summary(outcomes)})
    return rows


def main() -> None:
    """Print the table in Markdown."""
    parser = argparse.ArgumentParser()
    parser.add_argument("molecules", type=Path)
    args = parser.parse_args()
    molecules = pd.read_csv(args.molecules)
    name = args.molecules.name.removesuffix(".gz").removesuffix(".csv")
    starts = pd.read_csv(args.molecules.with_name(name + ".starts.csv"))
    calls = molecules.groupby("start_smiles").size()
    print(f"{len(starts)} starts, {len(molecules)} scored molecules, calls per start: "
          f"median {calls.median():.0f}, max {calls.max()}")
    print("| score | delta | success | improvement (mean +- sd over successes) |")
    print("|---|---|---|---|")
    for score in ("plogp", "plogp_jtvae"):
        for row in table(molecules, starts, score):
            print(f"| {row['score']} | {row['delta']} | {row['success_rate']:.1%} | "
                  f"{row['improvement_mean']:.2f} +- {row['improvement_sd']:.2f} |")


if __name__ == "__main__":
    main()
