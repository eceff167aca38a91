"""The PMO tables of issue 16: every latent method beside screening and Graph GA at 2,000 calls,
and latent BO and gradient at 10,000 (`--budget 10000`, on the tasks they ran).

    python bench/pmo_latent_table.py [--runs RUNS_FOLDER] [--truncate PMO_RUNS_FOLDER]
    python bench/pmo_latent_table.py --budget 10000 [--runs runs/pmo_latent10k/state/benchmark-*/runs]

At 10,000 calls the latent runs come from bench/pmo_latent10k (the `latent10k` profile's
archive) and screening and Graph GA from their own 10,000-call runs in bench/pmo.

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
LONG = 10000
LONG_ARCHIVE = ROOT / "bench" / "pmo_latent10k"


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


def latent_results(extra: list[Path], archive: Path = ARCHIVE, budget: int = BUDGET,
                   methods: tuple[str, ...] = LATENT) -> pd.DataFrame:
    """Every finished run of `methods` at `budget` calls (archive first, then running sweeps)."""
    found: dict[tuple, dict] = {}
    for base in [archive, *extra]:
        for method in methods:
            for path in sorted((base / method).glob("*/seed*/result.json")):
                result = json.loads(path.read_text())
                if result.get("calls", 0) <= budget:  # a run stopped early counts, noted
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
    parser.add_argument("--budget", type=int, choices=(BUDGET, LONG), default=BUDGET)
    args = parser.parse_args()
    if args.truncate is not None:
        truncated(args.truncate).to_csv(CUT, index=False)
        print(f"wrote {CUT}")
    if args.budget == LONG:
        latent = latent_results(args.runs, LONG_ARCHIVE, LONG, ("gradient", "bo"))
        if latent.empty:
            print(f"no finished 10,000-call latent runs yet (archive: {LONG_ARCHIVE})")
            return
        reference = latent_results([], ARCHIVE, LONG, ("screening", "graph_ga"))
        reference = reference[reference["task"].isin(set(latent["task"]))]
        results = pd.concat([reference, latent], ignore_index=True)
    else:
        results = pd.concat([pd.read_csv(CUT), latent_results(args.runs)], ignore_index=True)
    print(markdown(table(results)))
    early = results[results["calls"] < args.budget] if "calls" in results else results.iloc[:0]
    for row in early.sort_values(["method", "task", "seed"]).itertuples():
        print(f"\n{row.method} {row.task} seed {row.seed}: stopped at {row.calls:.0f} calls "
              "(no new molecule for several rounds), scored as PMO does over the full budget")
    complete = results.groupby(["method", "task"]).size().unstack("method").notna()
    tasks = complete.index[complete.all(axis=1)]
    means = results[results["task"].isin(tasks)].groupby(["method", "task"])["auc_top10"].mean()
    print(f"\nsum of mean AUC top-10 over the {len(tasks)} tasks every method has finished:")
    for method, total in means.groupby("method").sum().sort_values(ascending=False).items():
        print(f"  {method:14s} {total:.3f}")


if __name__ == "__main__":
    main()
