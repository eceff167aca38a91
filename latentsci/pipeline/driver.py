"""The pipeline driver: what `latentsci run` starts and what `latentsci submit` runs as a Ray Job.

Each workflow module calls `main(STAGES)` with the stage kinds it offers, so the command line is
`python -m workflows.NAME PIPELINE.toml [--run-dir DIR] [--address ADDR] [--force STAGE]`.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from datetime import datetime, timezone
from pathlib import Path

from latentsci.errors import LatentsciError, StorageError
from latentsci.pipeline.engine import run_pipeline
from latentsci.pipeline.manifest import Manifest
from latentsci.pipeline.object_lock import run_lock
from latentsci.pipeline.spec import check_stage_names, load_pipeline, plan, wiring
from latentsci.pipeline.stage import Stage
from latentsci.runtime.console import captured, route_errors, say
from latentsci.runtime.fanout import task_resources
from latentsci.runtime.signals import exit_code, signal_name, stop_on_signals
from latentsci.storage.location import Address, address, check_reachable as check_storage, join
from latentsci.storage.working_copy import WorkingCopy
from latentsci.tracking import tracking_uri
from latentsci.tracking_server import check_reachable, is_http, redacted

LOG_NAME = "driver.log"  # Ray's, MLflow's and the libraries' output, appended run after run


def default_run_dir(pipeline_name: str) -> Path:
    """Runs go under ./runs/NAME unless --run-dir says otherwise."""
    return Path("runs") / pipeline_name


def run_flags() -> argparse.ArgumentParser:
    """Arguments shared by `latentsci run` and the workflow modules (an argparse parent)."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("pipeline", type=Path, help="pipeline TOML file")
    p.add_argument("--run-dir", help="where outputs, manifest and MLflow DB go: a folder or "
                   "an object-store URL such as s3://BUCKET/runs/NAME (default: runs/PIPELINE_NAME)")
    p.add_argument("--address", help="Ray cluster to join: HOST:PORT or auto "
                   "(default: RAY_ADDRESS, else start an embedded local Ray)")
    p.add_argument("--force", action="append", default=[], metavar="STAGE",
                   help="rerun STAGE and everything after it even if unchanged (repeatable)")
    p.add_argument("--tracking-uri", metavar="URI", help="MLflow to log to: http://HOST:PORT of "
                   "an `mlflow server`, or a database URI (default: MLFLOW_TRACKING_URI, else "
                   "RUN_DIR/mlflow.db)")
    p.add_argument("--profile", metavar="NAME", help="apply the file's [profiles.NAME] overrides "
                   "(e.g. full)")
    p.add_argument("--check", action="store_true", help="validate the pipeline and print the plan")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def parser(prog: str) -> argparse.ArgumentParser:
    """The workflow module's own command line."""
    return argparse.ArgumentParser(prog=prog, parents=[run_flags()],
                                   description="Run a pipeline's stages on Ray.")


def _where_to_look(copy: WorkingCopy, manifest: Manifest, uri: str) -> str:
    """Closing lines: where results are and the commands that open them."""
    lines = [f"run directory: {copy.root}", f"manifest:      {join(copy.root, 'manifest.json')}"]
    if copy.mirrored:
        lines.append(f"local copy:    {copy.local}")
    for record in manifest.stages.values():
        for key, path in record.outputs.items():
            lines.append(f"  {record.name}.{key}: {path}")
    if is_http(uri):
        lines.append(f"MLflow:        {redacted(uri)} (the server's UI)")
    else:
        lines.append(f"MLflow:        mlflow ui --backend-store-uri {redacted(uri)} --host 127.0.0.1")
    lines.append(f"full log:      {join(copy.root, LOG_NAME)}")
    stores = [p for r in manifest.stages.values() for k, p in r.outputs.items()
              if k == "store" and p.endswith(".zarr")]  # latent stores, not field arrays
    for store in stores:
        lines.append(f"query:         latentsci query {store} --limit 5")
    return "\n".join(lines)


def crash_line(exc: BaseException) -> str:
    """One line for an unexpected error; a Ray task's error is named by the task's own exception."""
    ray_errors = sys.modules.get("ray.exceptions")
    in_task = ray_errors is not None and isinstance(exc, ray_errors.RayTaskError)
    cause = getattr(exc, "cause", None) if in_task else None  # what the task itself raised
    inner = cause if isinstance(cause, BaseException) else exc
    first = (str(inner).strip().splitlines() or [""])[0]
    return f"{type(inner).__name__}{' in a Ray task' if inner is not exc else ''}: {first}"


class Crashed(Exception):
    """An unexpected error, already written with its traceback to the run's log."""


def execute(args: argparse.Namespace, registry: dict[str, Stage]) -> int:
    """Validate everything, then join or start Ray, run the stages and say where results went."""
    spec = load_pipeline(args.pipeline, args.profile)
    planned = plan(spec, registry)
    check_stage_names(spec, set(args.force), "--force")
    if args.check:
        for line in wiring(planned):
            print(line)
        return 0
    root: Address = address(args.run_dir or default_run_dir(spec.name))
    check_storage(root)  # before any work, in one line
    copy = WorkingCopy(root)
    check_reachable(tracking_uri(copy.local, args.tracking_uri))
    task_resources()  # a malformed LATENTSCI_TASK_RESOURCES, too
    copy.local.mkdir(parents=True, exist_ok=True)  # only now, every check passed
    log = copy.local / LOG_NAME
    with run_lock(root) as lock:
        pulled = copy.pull()  # before the log opens: a run directory's log is appended to
        try:
            with captured(log) as log:  # a nested driver keeps the outer log
                _announce(lock, pulled, copy)
                _run_guarded(args, spec, planned, copy)
        finally:
            _upload(copy)  # the log and whatever finished, even when the run stopped
    return 0


def _upload(copy: WorkingCopy) -> None:
    """The working copy's last upload; when the run already failed, a failed upload is said
    in one line and the run's own error is the one raised."""
    failing = sys.exc_info()[1]
    try:
        copy.push()
    except StorageError as exc:
        if failing is None:
            raise
        if not isinstance(failing, StorageError):  # else the run's own line already says it
            print(f"error: {exc}", file=sys.stderr, flush=True)


def _announce(lock, pulled: int, copy: WorkingCopy) -> None:
    """Console lines about how the run directory was taken: a stale lock, files picked up."""
    if lock.took_over is not None:
        say(f"took over the run directory's stale lock ({lock.took_over.describe()}: "
            "that process is gone)")
    if pulled:
        say(f"picked up {pulled} files of {copy.root} into {copy.local}")


def _run_guarded(args: argparse.Namespace, spec, planned: list, copy: WorkingCopy) -> None:
    """Run the stages; a user error is said once, a crash becomes one line (traceback logged)."""
    try:
        _run_stages(args, spec, planned, copy)
    except LatentsciError as exc:
        print(f"error: {exc}", flush=True)  # the log says why the run stopped, too
        raise
    except Exception as exc:
        traceback.print_exc()  # into the log
        raise Crashed(f"{crash_line(exc)} (traceback in {join(copy.root, LOG_NAME)})") from exc


def _run_stages(args: argparse.Namespace, spec, planned: list, copy: WorkingCopy) -> None:
    """Join or start Ray, run the stages, and print where everything went."""
    from latentsci.runtime import connect, disconnect, show_progress
    from latentsci.tracking import Tracker, git_commit

    print(f"==== {datetime.now(timezone.utc).isoformat()} {' '.join(sys.argv)}", flush=True)
    info = connect(args.address)
    try:
        say(f"Ray: {'embedded' if info.embedded else 'cluster'} at {info.address} "
            f"({info.cpus:g} CPUs, {info.gpus:g} GPUs)")
        tracker = Tracker(copy.local, experiment=spec.name, uri=args.tracking_uri)
        route_errors("mlflow")  # MLflow set its logger's handlers on import
        tags = {"pipeline": spec.name, "pipeline_file": str(spec.path.resolve()),
                "git_commit": git_commit(), "ray_address": info.address,
                "run_dir": str(copy.root)}
        progress = show_progress() and not args.no_progress
        manifest = run_pipeline(spec, planned, copy, tracker, tags, set(args.force), progress)
        say(_where_to_look(copy, manifest, tracker.uri))
    finally:
        if info.owned:
            disconnect()


def main(registry: dict[str, Stage], argv: list[str] | None = None, prog: str = "driver") -> int:
    """Entry point of a workflow module; user mistakes print one line and exit 2, a crash one
    line (its traceback is in the run's log) and exit 1, a stop by signal one line and 128 + N."""
    args = parser(prog).parse_args(argv)
    try:
        with stop_on_signals():
            return execute(args, registry)
    except LatentsciError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Crashed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:  # Ctrl-C, kill, `ray job stop`: everything unwound
        print(f"error: stopped by {signal_name(exc)}: finished stages are kept; the same "
              "command resumes the run", file=sys.stderr)
        return exit_code(exc)
