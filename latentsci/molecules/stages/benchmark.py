"""The `benchmark` stage: the PMO protocol (methods x tasks x seeds under a budget of oracle
calls, scored by the AUC of the top-k curves), each run a Ray task, resumable: a rerun skips
finished runs and resumes stopped ones from their call logs (kept under the stage's state
folder, RUN_DIR/state/benchmark-ID/runs, which outlives a stopped attempt).

Gives `benchmark` (results.csv, one row per run; summary.csv, mean and std over seeds beside
PMO's published AUC top-10), with one nested MLflow run per method and task. PMO mode is PMO's
rules: no filters, no OOD gate.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pandas as pd
from pydantic import Field, ValidationInfo, field_validator, model_validator

from latentsci.pipeline.stage import InputFile, Stage, StageConfig, StageContext, StageResult

PUBLISHED = Path(__file__).resolve().parents[1] / "oracles" / "pmo_published.csv"


class BenchmarkConfig(StageConfig):
    """Which methods, tasks and seeds, the budget, and the molecule library methods start from."""

    methods: list[str] = Field(default_factory=lambda: ["screening", "graph_ga"], min_length=1)
    tasks: list[str] = Field(min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    budget: int = Field(default=10000, ge=1)
    batch_size: int = Field(default=200, ge=1)  # proposals per round at most
    library: InputFile  # molecules the methods start from (Graph GA's pool, the screened set)
    library_size: int | None = Field(default=None, ge=1)  # first N distinct molecules of it
    options: dict[str, dict] = Field(default_factory=dict)  # per method, e.g. graph_ga settings
    # finished results of earlier machines (METHOD/TASK/seedN/result.json), read back instead
    # of rerun when their protocol matches: how a sweep longer than one session carries on
    archive: Path | None = None
    execution_fields: ClassVar[frozenset[str]] = frozenset({"archive"})

    @field_validator("archive")
    @classmethod
    def _beside_pipeline(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        """Relative to the pipeline file's folder, like every other path in it."""
        if path is None or path.is_absolute():
            return path
        return (Path((info.context or {}).get("base_dir", Path.cwd())) / path).resolve()

    @model_validator(mode="after")
    def _known(self) -> BenchmarkConfig:
        """Unknown methods or tasks are refused when the pipeline is checked, before any work."""
        from latentsci.latent.search.harness import check_runs
        from latentsci.latent.search.objective import OracleError

        try:
            check_runs(self.methods, self.tasks, self.budget)
        except OracleError as exc:
            raise ValueError(str(exc)) from None
        return self


def _library(config: BenchmarkConfig) -> list[str]:
    """The distinct SMILES of the library file, the first `library_size` of them if given."""
    from latentsci.molecules.domain import read_molecules

    smiles = list(dict.fromkeys(read_molecules(config.library)))
    return smiles[: config.library_size] if config.library_size else smiles


def published() -> pd.DataFrame:
    """PMO's published AUC top-10 (mean, std) per task for Graph GA, REINVENT and GP BO."""
    return pd.read_csv(PUBLISHED)


def _summary(results: pd.DataFrame) -> pd.DataFrame:
    """Our mean and std over seeds per method and task, with PMO's Graph GA beside."""
    from latentsci.latent.search.harness import summary_table

    table = summary_table(results)
    paper = published()[["task", "graph_ga", "graph_ga_std"]].rename(
        columns={"graph_ga": "pmo_graph_ga", "graph_ga_std": "pmo_graph_ga_std"})
    return table.merge(paper, on="task", how="left")


def _log_children(ctx: StageContext, summary: pd.DataFrame) -> None:
    """One nested MLflow run per method and task, under this stage's run."""
    if ctx.tracker is None or not ctx.mlflow_run_id:
        return
    for row in summary.to_dict("records"):
        metrics = {k: v for k, v in row.items() if isinstance(v, float) and v == v}
        ctx.tracker.child_run(ctx.mlflow_run_id, f"{row['method']}/{row['task']}",
                              {"method": row["method"], "task": row["task"]}, metrics)


def runs_folder(ctx: StageContext) -> Path:
    """Where the runs' call logs, states and results go: the stage's state folder on this
    machine, which a stopped attempt leaves for the rerun to resume from (out_dir is emptied at
    each attempt; --force clears both). With a run directory on object storage it stays on the
    driver's machine, so such a benchmark resumes only there."""
    if ctx.local_state_dir is None:  # a stage run outside the engine
        return ctx.out_dir / "runs"
    return ctx.local_state_dir / "runs"


def benchmark(config: BenchmarkConfig, ctx: StageContext) -> StageResult:
    """Run every (method, task, seed) to its budget; tables and per-task runs to MLflow."""
    from latentsci.latent.search.harness import Run, run_benchmark
    from latentsci.molecules.search.methods import top_molecules

    library = _library(config)
    runs = [Run(m, t, s) for m in config.methods for t in config.tasks for s in config.seeds]
    results = run_benchmark(runs, runs_folder(ctx), config.budget, library,
                            config.batch_size, config.options, top_molecules, ctx.progress,
                            config.archive)
    summary = _summary(results)
    paths = {"results": ctx.out_dir / "results.csv", "summary": ctx.out_dir / "summary.csv"}
    results.to_csv(paths["results"], index=False)
    summary.to_csv(paths["summary"], index=False)
    _log_children(ctx, summary)
    sums = summary.groupby("method")["auc_top10"].sum()
    return StageResult(outputs={"benchmark": str(paths["summary"])},
                       metrics={f"sum_auc_top10_{m}": float(v) for m, v in sums.items()},
                       artifacts=list(paths.values()))


BENCHMARK = Stage("benchmark", BenchmarkConfig, benchmark, reads={}, gives=("benchmark",))
