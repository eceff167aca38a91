"""The stages that bring fields in: `simulate` (a solver fanned out over Ray tasks into a Zarr
field store) and `import_fields` (a user's Zarr or HDF5 array, checked)."""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from latentsci.errors import InputDataError
from latentsci.fields.data.sources import check_finite, open_fields
from latentsci.fields.plots import rollout_frames
from latentsci.fields.solvers.gray_scott import GrayScottConfig
from latentsci.fields.solvers.navier_stokes import NavierStokesConfig
from latentsci.fields.solvers.simulate import GENERATORS, simulate_to_zarr
from latentsci.fields.stages.common import write_split
from latentsci.pipeline.stage import InputPath, Stage, StageConfig, StageContext, StageResult


class SimulateConfig(StageConfig):
    """Which solver, how many trajectories, and how they are spread over Ray tasks."""

    generator: Literal["navier_stokes", "gray_scott"]
    trajectories: int = Field(gt=0)
    test_trajectories: int = Field(default=0, ge=0)  # the last ones; never trained on
    per_task: int = Field(default=8, gt=0)
    cpus_per_task: int = Field(default=1, gt=0)  # also the task's torch threads
    gpus_per_task: float = Field(default=0, ge=0, le=1)  # > 0: solve on CUDA (0.25: 4 per GPU)
    execution_fields: ClassVar[frozenset[str]] = frozenset({"cpus_per_task", "gpus_per_task"})
    seed: int = 0
    navier_stokes: NavierStokesConfig = Field(default_factory=NavierStokesConfig)
    gray_scott: GrayScottConfig = Field(default_factory=GrayScottConfig)


def simulate(config: SimulateConfig, ctx: StageContext) -> StageResult:
    """Fan the solver out over Ray; blown-up trajectories are reported, not stored."""
    if config.test_trajectories >= config.trajectories:
        raise InputDataError(f"stage {ctx.name}: test_trajectories must leave some to train on")
    solver = getattr(config, config.generator)
    path = ctx.store_address("fields.zarr")
    rejects = simulate_to_zarr(path, config.generator, solver, config.trajectories,
                               config.per_task, config.seed,
                               {"test_from": config.trajectories - config.test_trajectories,
                                **ctx.provenance()}, ctx.progress,
                               cpus_per_task=config.cpus_per_task,
                               gpus_per_task=config.gpus_per_task)
    report = ctx.out_dir / "rejects.csv"
    pd.DataFrame(rejects, columns=["trajectory", "reason", *GENERATORS[config.generator].parameters]
                 ).to_csv(report, index=False)
    source = open_fields(path)
    first = int(np.flatnonzero(source.valid)[0]) if source.valid.any() else 0
    frames = source.read(np.array([first]))[0]
    picks = sorted({0, len(frames) // 3, 2 * len(frames) // 3, len(frames) - 1})
    plot = rollout_frames(frames, {}, picks, ctx.out_dir / "trajectory.png",
                          title=f"{config.generator}, trajectory {first}")
    return StageResult(outputs={"fields": str(path), "rejects": str(report),
                                "split": write_split(ctx, config.trajectories
                                                      - config.test_trajectories)},
                       metrics={"trajectories": float(source.valid.sum()),
                                "rejected": float(len(rejects))},
                       artifacts=[plot, report])


class ImportConfig(StageConfig):
    """A user's field array: Zarr (trajectory, time, channel, x, y) or The Well's HDF5."""

    path: InputPath
    test_trajectories: int = Field(default=0, ge=0)


def import_fields(config: ImportConfig, ctx: StageContext) -> StageResult:
    """Check a user's fields (layout, dtype, no NaN) and hand them on."""
    source = open_fields(config.path)
    check_finite(source)
    if config.test_trajectories >= source.shape[0]:
        raise InputDataError(f"stage {ctx.name}: test_trajectories must leave some to train on")
    return StageResult(outputs={"fields": str(config.path),
                                "split": write_split(ctx, source.shape[0]
                                                      - config.test_trajectories)},
                       metrics={"trajectories": float(source.valid.sum())})


# version 2: NS initial vorticity at the FNO generator's power (was twice it), so old runs regenerate
SIMULATE = Stage("simulate", SimulateConfig, simulate, version="2",
                 gives=("fields", "rejects", "split"))
IMPORT_FIELDS = Stage("import_fields", ImportConfig, import_fields, gives=("fields", "split"))
