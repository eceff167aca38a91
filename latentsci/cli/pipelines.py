"""The pipeline verbs: `run` a pipeline here, `submit` it as a Ray Job, follow jobs (`status`,
`logs`)."""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from pathlib import Path

from latentsci.cli.args import job_server_flag, verb
from latentsci.errors import ConfigError
from latentsci.storage.location import address


def driver_command(pipeline: Path, extra: list[str]) -> list[str]:
    """The command line of a pipeline's workflow driver, identical locally and as a Ray Job."""
    from latentsci.pipeline.spec import load_pipeline

    spec = load_pipeline(pipeline)
    module = f"workflows.{spec.workflow}"
    try:
        found = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        found = False
    if not found:
        raise ConfigError(f"{pipeline}: pipeline.workflow: no workflow module {module!r} "
                          "(run from the project folder, or pip install the project)")
    return ["python", "-m", module, str(pipeline), *extra]


def _passthrough(args: argparse.Namespace) -> list[str]:
    """Driver flags given to `run`, forwarded unchanged."""
    extra = [f"--force={s}" for s in args.force]
    extra += ["--run-dir", str(args.run_dir)] if args.run_dir else []
    extra += ["--address", args.address] if args.address else []
    extra += ["--tracking-uri", args.tracking_uri] if args.tracking_uri else []
    extra += ["--check"] if args.check else []
    extra += ["--profile", args.profile] if args.profile else []
    extra += ["--no-progress"] if args.no_progress else []
    return extra


def cmd_run(args: argparse.Namespace) -> int:
    """Run a pipeline's driver here (it starts or joins Ray itself); Ctrl-C and SIGTERM reach
    it once, and this waits while it stops cleanly."""
    from latentsci.runtime.signals import run_forwarding

    command = driver_command(args.pipeline, _passthrough(args))
    return run_forwarding([sys.executable, *command[1:]])


def cmd_submit(args: argparse.Namespace) -> int:
    """Validate locally, then submit the same driver as a Ray Job and print its id."""
    from latentsci import jobs

    root = jobs.project_root(args.pipeline)
    pipeline = args.pipeline.resolve()
    if pipeline.is_relative_to(root):  # travels with the working dir; else must be on shared storage
        pipeline = pipeline.relative_to(root)
    profile = ["--profile", args.profile] if args.profile else []
    check = driver_command(pipeline, ["--check", *profile])
    if subprocess.call([sys.executable, *check[1:]], cwd=root, stdout=subprocess.DEVNULL) != 0:
        return 2
    run_dir = address(args.run_dir or root / "runs" / pipeline.stem)  # a folder or an s3:// URL
    command = driver_command(pipeline, ["--run-dir", str(run_dir), *profile])
    submission = jobs.submit(command, root, args.address)
    print(submission)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Print one job's status, or all jobs'."""
    from latentsci import jobs

    for row in jobs.status(args.address, args.job_id):
        print(f"{row['submission_id']}  {row['status']:<9}  {row['entrypoint']}  {row['message']}")
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    """Print a job's driver log."""
    from latentsci import jobs

    print(jobs.logs(args.address, args.job_id), end="")
    return 0


def add_verbs(verbs) -> None:
    """run, submit, status, logs."""
    from latentsci.pipeline.driver import run_flags

    verb(verbs, "run", cmd_run, "run a pipeline on an embedded or existing Ray cluster",
         ["pipelines/zinc_ingest.toml", "pipelines/zinc_ingest.toml --force ingest_train",
          "pipelines/zinc_ingest.toml --address 10.0.0.5:6379 --run-dir /shared/runs/zinc",
          "pipelines/zinc_ingest.toml --run-dir s3://BUCKET/runs/zinc"],
         parents=[run_flags()])
    sub = verb(verbs, "submit", cmd_submit, "submit a pipeline as a Ray Job; prints the job id",
               ["pipelines/zinc_ingest.toml --address http://127.0.0.1:8265"])
    sub.add_argument("pipeline", type=Path, help="pipeline TOML file (see pipelines/)")
    sub.add_argument("--run-dir", help="run directory on storage the cluster sees: a shared "
                     "folder or an object-store URL (s3://BUCKET/runs/NAME)")
    sub.add_argument("--profile", metavar="NAME", help="apply the file's [profiles.NAME] overrides")
    status = verb(verbs, "status", cmd_status, "show a job's status, or all jobs",
                  ["", "raysubmit_XXXX --address http://127.0.0.1:8265"])
    status.add_argument("job_id", nargs="?", metavar="ID")
    logs = verb(verbs, "logs", cmd_logs, "print a job's driver log", ["raysubmit_XXXX"])
    logs.add_argument("job_id", metavar="ID")
    for p in (sub, status, logs):
        job_server_flag(p)
