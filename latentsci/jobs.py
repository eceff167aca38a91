"""Submit a pipeline's driver as a Ray Job and follow it (Ray's Job Submission SDK)."""

from __future__ import annotations

import os
from pathlib import Path

from latentsci.errors import ClusterError

DEFAULT_JOB_SERVER = "http://127.0.0.1:8265"
EXCLUDES = [".venv/", "runs/", ".git/", "**/__pycache__/", "*.zarr/", "mlflow.db", "mlartifacts/"]
FORWARDED_ENV = ("MLFLOW_TRACKING_URI",)


def job_server(address: str | None) -> str:
    """The job API to talk to: the flag, else RAY_API_SERVER_ADDRESS, else the local default."""
    return address or os.environ.get("RAY_API_SERVER_ADDRESS") or DEFAULT_JOB_SERVER


def project_root(pipeline: Path) -> Path:
    """The folder holding `workflows/`: it travels to the cluster as the job's working dir."""
    for folder in [pipeline.resolve().parent, *pipeline.resolve().parents, Path.cwd()]:
        if (folder / "workflows" / "__init__.py").is_file():
            return folder
    raise ClusterError(f"{pipeline}: no project folder (with workflows/) above it to ship as the job's "
                       "working dir")


def client(address: str | None):
    """A JobSubmissionClient, or one line saying the job server cannot be reached."""
    from ray.job_submission import JobSubmissionClient

    server = job_server(address)
    try:
        return JobSubmissionClient(server)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ClusterError(f"cannot reach Ray job server at {server}: "
                           f"{str(exc).splitlines()[0]}") from None


def submit(command: list[str], root: Path, address: str | None) -> str:
    """Submit the driver command with the project as working dir; returns the submission id."""
    env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
    runtime_env = {"working_dir": str(root), "excludes": EXCLUDES, "env_vars": env}
    return client(address).submit_job(entrypoint=" ".join(command), runtime_env=runtime_env)


def status(address: str | None, job_id: str | None) -> list[dict]:
    """One job's status, or every job the cluster knows, as rows for printing."""
    jobs = client(address)
    try:
        details = [jobs.get_job_info(job_id)] if job_id else jobs.list_jobs()
    except RuntimeError as exc:
        raise ClusterError(f"job server: {str(exc).splitlines()[0]}") from None
    return [{"submission_id": d.submission_id, "status": str(d.status.value), "entrypoint":
             d.entrypoint, "message": (d.message or "").splitlines()[0] if d.message else ""}
            for d in details]


def logs(address: str | None, job_id: str) -> str:
    """Everything the job's driver printed so far."""
    try:
        return client(address).get_job_logs(job_id)
    except RuntimeError as exc:
        raise ClusterError(f"job {job_id}: {str(exc).splitlines()[0]}") from None
