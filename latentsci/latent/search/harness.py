"""The benchmark harness: methods x tasks x seeds, each run a Ray task against its own budgeted
oracle, with PMO's metrics, resumable (a finished run is read back, a stopped one resumes from
its call log and optimiser state).

Methods are registered by name with a builder `(seed, library, options) -> Optimiser`
(`screening` here; domains add theirs, molecules: `graph_ga`). A run's folder holds its call log
(calls/), optimiser state (state.json) and, once done, result.json, which records the run's
protocol (a digest of budget, batch size, library and the method's options). A sweep longer than
one machine's session carries on from an archive of finished results laid out like the run
folders (METHOD/TASK/seedN/result.json, e.g. committed under bench/): a run whose archived result
has the same protocol is read back instead of run.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from latentsci.latent.search.auc import top_auc, top_mean
from latentsci.latent.search.budget import BudgetedOracle
from latentsci.latent.search.calls import CallLog
from latentsci.latent.search.objective import OracleError, get_objective
from latentsci.latent.search.optimiser import Optimiser, run_search
from latentsci.latent.search.screening import Screening

_METHODS: dict[str, Callable[[int, list[str], dict], Optimiser]] = {}
METHOD_PROVIDERS = ("latentsci.molecules.search.methods", "latentsci.molecules.search.latent")


def register_method(name: str, build: Callable[[int, list[str], dict], Optimiser]) -> None:
    """Make `name` a benchmark method."""
    _METHODS[name] = build


register_method("screening", lambda seed, library, options: Screening(library, seed))


def method_names() -> list[str]:
    """Every registered method."""
    import importlib

    for module in METHOD_PROVIDERS:
        importlib.import_module(module)
    return sorted(_METHODS)


@dataclass(frozen=True)
class Run:
    """One benchmark run: a method on a task with a seed."""

    method: str
    task: str
    seed: int

    def folder(self, root: Path) -> Path:
        """Where this run keeps its calls, state and result."""
        return Path(root) / self.method / self.task / f"seed{self.seed}"


def check_runs(methods: Sequence[str], tasks: Sequence[str], budget: int) -> None:
    """Refuse unknown methods or tasks and an empty budget before any work, in one line."""
    known = method_names()
    for method in methods:
        if method not in known:
            raise OracleError(f"unknown method {method!r} (methods: {', '.join(known)})")
    for task in tasks:
        get_objective(task)
    if budget < 1:
        raise OracleError(f"budget must be at least one call, got {budget}")


def protocol(run: Run, budget: int, library: list[str], batch_size: int, options: dict) -> str:
    """A digest of what a run's result depends on besides its method, task and seed."""
    text = json.dumps({"budget": budget, "batch_size": batch_size,
                       "library": hashlib.sha256("\n".join(library).encode()).hexdigest(),
                       "options": options.get(run.method, {})}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _archived(run: Run, archive: str | None, digest: str, done: Path) -> dict | None:
    """The run's result from the archive when it is there for the same protocol (copied into
    the run's folder so later reruns find it too), else None."""
    if archive is None:
        return None
    found = run.folder(Path(archive)) / "result.json"
    if not found.is_file():
        return None
    result = json.loads(found.read_text())
    if result.get("protocol") != digest:
        return None
    done.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(found, done)
    return result


def run_one(run: Run, root: str, budget: int, library: list[str], batch_size: int,
            options: dict, summarise: Callable[[list[str]], dict] | None = None,
            archive: str | None = None) -> dict:
    """A Ray task: one run to its budget (or the method's own stop), then its metrics."""
    folder = run.folder(Path(root))
    done = folder / "result.json"
    if done.is_file():
        return json.loads(done.read_text())
    digest = protocol(run, budget, library, batch_size, options)
    archived = _archived(run, archive, digest, done)
    if archived is not None:
        return archived
    method_names()
    _one_thread()
    optimiser = _METHODS[run.method](run.seed, library, options.get(run.method, {}))
    oracle = BudgetedOracle(get_objective(run.task), budget, CallLog(folder / "calls"),
                            run.method, run.task, run.seed, actor_cpus=0)
    try:
        summary = run_search(optimiser, oracle, folder / "state.json", batch_size)
    finally:
        oracle.close()
    result = {"method": run.method, "task": run.task, "seed": run.seed, "protocol": digest,
              **summary, **run_metrics(oracle.scores(), budget)}
    if summarise is not None:
        result.update({f"top10_{k}": v for k, v in summarise(list(oracle.best(10)["item"])).items()})
    done.write_text(json.dumps(result, indent=2))
    return result


def _one_thread() -> None:
    """One torch thread per run: each run is a one-CPU task, and a run waiting on its oracle
    hands its CPU to another, so several runs share the cores (two threads each thrash)."""
    import torch

    torch.set_num_threads(1)


def run_metrics(scores: np.ndarray, budget: int) -> dict[str, float]:
    """PMO's numbers of one run: AUC of the top-1/10/100 curves and the final top-k means."""
    out = {}
    for k in (1, 10, 100):
        out[f"auc_top{k}"] = top_auc(scores, k, budget, finished=True)
        out[f"top{k}"] = top_mean(scores, k)
    return out


def summary_table(results: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds of every metric, per method and task."""
    numeric = [c for c in results.columns if c not in ("method", "task", "seed")
               and pd.api.types.is_numeric_dtype(results[c])]
    grouped = results.groupby(["method", "task"])[numeric]
    mean, std = grouped.mean(), grouped.std(ddof=0)
    table = mean.join(std.add_suffix("_std"))
    table["seeds"] = results.groupby(["method", "task"]).size()
    return table.reset_index()


def run_benchmark(runs: list[Run], root: Path, budget: int, library: list[str],
                  batch_size: int = 200, options: dict[str, Any] | None = None,
                  summarise=None, progress: bool = False,
                  archive: Path | None = None) -> pd.DataFrame:
    """Every run as a Ray task (finished ones read back, from `root` or the archive); one row
    of results per run."""
    from latentsci.runtime import map_batches

    rows = map_batches(run_one, runs, desc="benchmark", progress=progress, weight=lambda r: 1,
                       root=str(root),
                       budget=budget, library=library, batch_size=batch_size,
                       options=options or {}, summarise=summarise,
                       archive=str(archive) if archive is not None else None)
    return pd.DataFrame(rows)
