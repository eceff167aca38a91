"""The PMO table at 2,000 calls (issue 16): every latent method beside screening and Graph GA.

    python bench/pmo_latent_table.py [--runs RUNS_FOLDER] [--truncate PMO_RUNS_FOLDER]

Latent methods: their finished result.json files, from the archive (bench/pmo/METHOD) and from
`--runs` (a sweep still going, e.g. runs/pmo_latent/state/benchmark-*/runs). Screening and
Graph GA: their 10,000-call runs cut at the first 2,000 calls, read from
bench/pmo/at_2000.csv. `--truncate runs/pmo/state/benchmark-*/runs` remakes that file from
those runs' call logs (the call logs are not committed; the CSV is). A 10,000-call run cut at
2,000 calls scored the same molecules a 2,000-call run would have, given the same seed and batch
size, since neither method looks at the budget before its last batch.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from latentsci.latent.search.auc import top_auc, top_mean
from latentsci.latent.search.calls import CallLog

ROOT = Path(__file__).resolve().parents[1]
ARCHIVE = ROOT / "bench" / "pmo"
CUT = ARCHIVE / "at_2000.csv"
BUDGET = 2000
LATENT = ("latent_random", "gradient", "bo")


def truncated(runs: Path, budget: int = BUDGET) -> pd.DataFrame:
    """AUC top-1/10/100 of every run's first `budget` counted calls, from its call log."""
    rows = []
    for folder in sorted(runs.glob("*/*/seed*/calls")):
        method, task, seed = folder.parts[-4], folder.parts[-3], int(folder.parts[-2][4:])
        calls = CallLog(folder).read()
        calls = calls[calls["index"] >= 0].sort_values("index")
        scores = calls["score"].to_numpy(dtype=float)[:budget]
        row = {"method": method, "task": task, "seed": seed, "calls": len(scores)}
        for k in (1, 10, 100):
            row[f"auc_top{k}"] = top_auc(scores, k, budget, finished=True)
            row[f"top{k}"] = top_mean(np.nan_to_num(scores, nan=0.0), k)
        rows.append(row)
    return pd.DataFrame(rows)


def latent_results(extra: list[Path]) -> pd.DataFrame:
    """Every finished latent-method run at BUDGET calls (archive first, then running sweeps)."""
    found: dict[tuple, dict] = {}
    for base in [ARCHIVE, *extra]:
        for method in LATENT:
            for path in sorted((base / method).glob("*/seed*/result.json")):
                result = json.loads(path.read_text())
                if result.get("finished", 1.0) and result.get("calls", 0) <= BUDGET:
                    found[(method, result["task"], result["seed"])] = result
    return pd.DataFrame(found.values())


def table(results: pd.DataFrame) -> pd.DataFrame:
    """Mean +- sd of AUC top-10 per task (rows) and method (columns), with seeds counted."""
    grouped = results.groupby(["task", "method"])["auc_top10"]
    cells = (grouped.mean().map("{:.3f}".format) + " +- " + grouped.std(ddof=0).map("{:.3f}".format)
             + " (" + grouped.size().astype(str) + ")")
    return cells.unstack("method")


def markdown(frame: pd.DataFrame) -> str:
    """A frame as a Markdown table (index first), empty cells blank."""
    head = [frame.index.name or "", *map(str, frame.columns)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, row in frame.iterrows():
        lines.append("| " + " | ".join([str(key), *("" if pd.isna(v) else str(v) for v in row)])
                     + " |")
    return "\n".join(lines)


def main() -> None:
    """Print the table (and remake the cut runs' CSV when asked)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=Path, action="append", default=[])
    parser.add_argument("--truncate", type=Path)
    args = parser.parse_args()
    if args.truncate is not None:
        truncated(args.truncate).to_csv(CUT, index=False)
        print(f"wrote {CUT}")
    cut = pd.read_csv(CUT)
    results = pd.concat([cut, latent_results(args.runs)], ignore_index=True)
    print(markdown(table(results)))
    complete = results.groupby(["method", "task"]).size().unstack("method").notna()
    tasks = complete.index[complete.all(axis=1)]
    means = results[results["task"].isin(tasks)].groupby(["method", "task"])["auc_top10"].mean()
    print(f"\nsum of mean AUC top-10 over the {len(tasks)} tasks every method has finished:")
    for method, total in means.groupby("method").sum().sort_values(ascending=False).items():
        print(f"  {method:14s} {total:.3f}")


if __name__ == "__main__":
    main()
