"""Tiny stage kinds for the fault tests: one that finishes at once, one that waits for a file, and
one that works in checkpointed steps and logs each step to MLflow (resuming like training does).

Run as a script it is a workflow driver (`python tests/fault_stages.py PIPELINE.toml ...`), so a
test can kill a real driver in the middle of a stage.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from latentsci.pipeline.driver import main
from latentsci.pipeline.stage import Stage, StageConfig, StageContext, StageResult, stage_kinds

AFTER_STEP: list[Callable[[int], None]] = []  # in-process tests hook in here (e.g. cut MLflow)


class QuickConfig(StageConfig):
    text: str = "done"


def quick(config: QuickConfig, ctx: StageContext) -> StageResult:
    """Write one file and finish."""
    out = ctx.out_dir / "quick.txt"
    out.write_text(config.text)
    return StageResult(outputs={"note": str(out)})


class WaitConfig(StageConfig):
    flag: str  # the file whose appearance lets the stage finish
    timeout_s: float = 120.0
    in_ray: bool = False  # wait in a Ray task (the driver blocked in ray.get, as real stages are)


def _until(flag: str, timeout_s: float) -> None:
    """Poll for the flag file."""
    deadline = time.time() + timeout_s
    while not Path(flag).exists():
        if time.time() > deadline:
            raise TimeoutError(f"no {flag} after {timeout_s} s")
        time.sleep(0.1)


def wait_for(config: WaitConfig, ctx: StageContext) -> StageResult:
    """Block until the flag file exists (so a test can act while a driver is mid-stage)."""
    if config.in_ray:
        import ray

        def until(flag: str, timeout_s: float) -> None:
            """_until, self-contained: pickled by value (the workers cannot import this file)."""
            import os.path
            import time as clock

            deadline = clock.time() + timeout_s
            while not os.path.exists(flag) and clock.time() < deadline:
                clock.sleep(0.1)

        waiting = ray.remote(num_cpus=0)(until).remote(config.flag, config.timeout_s)
        (ctx.out_dir / "waiting").write_text(str(os.getpid()))
        ray.get(waiting)
    else:
        (ctx.out_dir / "waiting").write_text(str(os.getpid()))
        _until(config.flag, config.timeout_s)
    out = ctx.out_dir / "waited.txt"
    out.write_text("ok")
    return StageResult(outputs={"waited": str(out)})


class StepsConfig(StageConfig):
    steps: int = 5


def step_value(step: int) -> float:
    """What step `step` computes (deterministic, so a resumed run must end with the same total)."""
    return float(step * step + 1)


def steps(config: StepsConfig, ctx: StageContext) -> StageResult:
    """Do `steps` steps, each logged to MLflow and then checkpointed under the state folder; a
    rerun resumes after the last checkpoint, as training does."""
    assert ctx.state_dir is not None
    ctx.state_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = ctx.state_dir / "checkpoint.json"
    state = json.loads(checkpoint.read_text()) if checkpoint.exists() else {"next": 0, "total": 0.0}
    resumed_from = state["next"]
    for step in range(state["next"], config.steps):
        value = step_value(step)
        ctx.tracker.log_step(ctx.mlflow_run_id, {"value": value}, step)
        state = {"next": step + 1, "total": state["total"] + value}
        tmp = checkpoint.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, checkpoint)
        for hook in AFTER_STEP:
            hook(step)
    out = ctx.out_dir / "total.json"
    out.write_text(json.dumps(state))
    return StageResult(outputs={"total": str(out)},
                       metrics={"total": state["total"], "resumed_from": resumed_from})


STAGES = stage_kinds(
    Stage("quick", QuickConfig, quick, gives=("note",)),
    Stage("wait_for", WaitConfig, wait_for, gives=("waited",)),
    Stage("steps", StepsConfig, steps, gives=("total",)),
)

if __name__ == "__main__":
    sys.exit(main(STAGES, prog="fault_stages"))
