"""Run planned stages in order: skip what finished with the same id, record what finishes."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path

from latentsci.pipeline.hashing import flatten, hashable
from latentsci.pipeline.manifest import Manifest
from latentsci.pipeline.spec import PipelineSpec, PlannedStage, downstream
from latentsci.pipeline.stage import StageContext, StageRecord
from latentsci.runtime.console import say
from latentsci.storage.location import Address, as_address, exists, join, remove
from latentsci.storage.working_copy import WorkingCopy
from latentsci.tracking import Tracker


def stage_dir(run_dir: Path, planned: PlannedStage) -> Path:
    """Outputs of a stage live in a folder named by its config id."""
    return Path(run_dir) / "stages" / f"{planned.name}-{planned.config_hash}"


def state_address(root: Address, planned: PlannedStage) -> Address:
    """Checkpoints of a stage live under state/, written in place by the training workers."""
    return join(root, "state", f"{planned.name}-{planned.config_hash}")


def local_state_dir(copy: WorkingCopy, planned: PlannedStage) -> Path:
    """The stage's state folder on the driver's machine: the state folder itself for a local run
    directory; for one on object storage, its local twin (never uploaded: what a stage keeps
    there resumes on this machine only)."""
    return Path(state_address(copy.local, planned))


def _check_outputs(name: str, outputs: dict[str, str], gives: tuple[str, ...] = ()) -> None:
    """A stage returns every output it declares, each an existing file or folder (a finished
    stage is recognised by their existence)."""
    undeclared = [role for role in gives if role not in outputs]
    if undeclared:
        raise RuntimeError(f"stage {name}: declares output {undeclared[0]!r} but did not return it")
    missing = [k for k, v in outputs.items() if not exists(as_address(v))]
    if missing:
        raise RuntimeError(f"stage {name}: output {missing[0]!r} = {outputs[missing[0]]!r} is "
                           f"not an existing file or folder, so the stage could never be skipped")


def _inputs(manifest: Manifest, planned: PlannedStage, copy: WorkingCopy) -> dict:
    """The records of the needed stages, their outputs where this driver reads them."""
    return {n: replace(manifest.stages[n], outputs={k: str(copy.local_of(v)) for k, v in
                                                    manifest.stages[n].outputs.items()})
            for n in planned.needs}


def _run_one(planned: PlannedStage, manifest: Manifest, copy: WorkingCopy, tracker: Tracker,
             tags: dict[str, str], progress: bool, forced: bool) -> StageRecord:
    """Run a stage in a fresh folder under its own MLflow run, then record it in the manifest.

    The state folder (training checkpoints) survives a crashed attempt, so a rerun resumes;
    --force means start over, so it is cleared too.
    """
    manifest.forget(planned.name)
    copy.push()  # the run directory no longer calls this stage finished
    out_dir = stage_dir(copy.local, planned)
    state = state_address(copy.root, planned)
    remove(copy.address_of(out_dir))  # leftovers of a crashed or forced attempt (stores too)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    local_state = local_state_dir(copy, planned)
    if forced:
        remove(state)
        if local_state.exists():
            shutil.rmtree(local_state)
    out_dir.mkdir(parents=True)
    params = flatten(hashable(planned.config))
    stage_tags = {**tags, "stage": planned.name, "kind": planned.stage.kind,
                  "config_hash": planned.config_hash}
    started = time.perf_counter()
    with tracker.stage_run(planned.name, params, stage_tags) as run_id:
        context = StageContext(planned.name, out_dir, _inputs(manifest, planned, copy),
                               planned.config_hash, run_id, progress, state, tracker,
                               store_dir=copy.address_of(out_dir), copy=copy,
                               local_state_dir=local_state)
        result = planned.stage.run(planned.config, context)
        outputs = {k: str(copy.address_of(v)) for k, v in result.outputs.items()}
        copy.push()  # the outputs reach the run directory before they are checked there
        _check_outputs(planned.name, outputs, planned.stage.gives)
        seconds = time.perf_counter() - started
        tracker.log_metrics({**result.metrics, "stage_seconds": seconds})
        tracker.set_tags({f"output.{k}": v for k, v in outputs.items()})
        for artifact in result.artifacts:
            tracker.log_artifact(artifact)
    record = StageRecord(
        name=planned.name, kind=planned.stage.kind, config_hash=planned.config_hash,
        outputs=outputs, metrics=result.metrics, mlflow_run_id=run_id,
        finished_at=datetime.now(timezone.utc).isoformat(), seconds=round(seconds, 3),
    )
    manifest.record(record)  # only now, with every output written, is the stage complete
    copy.push()
    return record


def run_pipeline(spec: PipelineSpec, planned: list[PlannedStage], copy: WorkingCopy,
                 tracker: Tracker, tags: dict[str, str], force: set[str] | None = None,
                 progress: bool = False, log: Callable[[str], None] = say) -> Manifest:
    """Run every stage not already finished with its current id (plus forced ones and dependents)."""
    rerun = downstream(spec, force or set())
    manifest = Manifest.load(copy.local, spec.name)
    with tracker.pipeline_run(spec.name, tags):
        skipped = []
        for stage in planned:
            done = manifest.finished(stage.name, stage.config_hash)
            if done is not None and stage.name not in rerun:
                log(f"[{stage.name}] unchanged ({stage.config_hash}): skipped")
                skipped.append(stage.name)
                continue
            log(f"[{stage.name}] running {stage.stage.kind} ({stage.config_hash})")
            record = _run_one(stage, manifest, copy, tracker, tags, progress,
                              forced=stage.name in rerun)
            log(f"[{stage.name}] done in {record.seconds:.1f}s: "
                + ", ".join(f"{k}={v:g}" for k, v in list(record.metrics.items())[:6]))
        tracker.set_tags({"skipped_stages": ",".join(skipped)})
        tracker.log_artifact(manifest.path)
        tracker.log_metrics({f"{n}.{k}": v for n, r in manifest.stages.items()
                             for k, v in asdict(r)["metrics"].items()})
    return manifest
