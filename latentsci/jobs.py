"""Submit a pipeline's driver as a Ray Job and follow it (Ray's Job Submission SDK)."""

from __future__ import annotations

import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from latentsci.errors import ClusterError
from latentsci.runtime.cluster import auth_token_source, token_auth_env

DEFAULT_JOB_SERVER = "http://127.0.0.1:8265"
EXCLUDES = [".venv/", "runs/", ".git/", "**/__pycache__/", "*.zarr/", "mlflow.db", "mlartifacts/"]
FORWARDED_ENV = ("MLFLOW_TRACKING_URI", "LATENTSCI_TASK_RESOURCES", "LATENTSCI_WAIT_FOR_GPUS",
                 "RAY_JOB_STOP_WAIT_TIME_S")


def job_server(address: str | None) -> str:
    """The job API to talk to: the flag, else RAY_API_SERVER_ADDRESS, else the local default."""
    return address or os.environ.get("RAY_API_SERVER_ADDRESS") or DEFAULT_JOB_SERVER


def project_root(pipeline: Path) -> Path:
    """The folder holding `workflows/`: it travels to the cluster as the job's working dir."""
    for folder in [*pipeline.resolve().parents, Path.cwd()]:
        if (folder / "workflows" / "__init__.py").is_file():
            return folder
    raise ClusterError(f"{pipeline}: no project folder (with workflows/) above it to ship as the job's "
                       "working dir")


def check_job_server(server: str, timeout: float = 5.0) -> None:
    """Refuse a job server that does not answer like Ray within seconds (the SDK can hang), and
    one that wants a token when we have none."""
    try:
        with urllib.request.urlopen(f"{server.rstrip('/')}/api/version", timeout=timeout):
            return
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):  # Ray with token auth: there, and the SDK sends our token
            if auth_token_source() is None:
                raise ClusterError(
                    f"Ray job server at {server} needs an auth token and none is set: export "
                    "RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN_PATH, a file holding it); `ray "
                    "get-auth-token` on the head node prints it") from None
            return
        raise ClusterError(f"{server} is not a Ray job server (HTTP {exc.code} on /api/version)"
                           ) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ClusterError(f"cannot reach Ray job server at {server}: {reason}") from None


def client(address: str | None):
    """A JobSubmissionClient for exactly this server, or one line saying why there is none."""
    server = job_server(address)
    check_job_server(server)
    token_auth_env()  # before Ray is imported, so its config sees the mode
    from ray.job_submission import JobSubmissionClient

    # The SDK lets RAY_API_SERVER_ADDRESS / RAY_ADDRESS override the URL it is given.
    hidden = {k: os.environ.pop(k) for k in ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS")
              if k in os.environ}
    try:
        return JobSubmissionClient(server)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ClusterError(f"cannot reach Ray job server at {server}: "
                           f"{str(exc).splitlines()[0]}") from None
    except Exception as exc:  # ray.exceptions.AuthenticationError and kin
        raise ClusterError(f"Ray job server at {server} refused us: "
                           f"{str(exc).splitlines()[0]}") from None
    finally:
        os.environ.update(hidden)


JOB_STOP_WAIT_S = 60


def forwarded_env() -> dict[str, str]:
    """The variables of this shell that travel with a job, refusing a tracking URI that carries
    a password: the job API shows a job's environment to anyone who can list jobs."""
    env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
    if urllib.parse.urlsplit(env.get("MLFLOW_TRACKING_URI", "")).password:
        raise ClusterError("MLFLOW_TRACKING_URI carries a password, which every job listing would "
                           "show: give the cluster MLFLOW_TRACKING_USERNAME and "
                           "MLFLOW_TRACKING_PASSWORD from a secret instead")
    return env


def submit(command: list[str], root: Path, address: str | None) -> str:
    """Submit the driver command with the project as working dir; returns the submission id."""
    from latentsci.tracking import COMMIT_ENV, git_commit

    env = forwarded_env()
    env[COMMIT_ENV] = git_commit(root)  # the job's working dir travels without .git
    # `ray job stop` sends SIGTERM, then SIGKILL after this many seconds (Ray's default, 3, is too
    # short for a driver to mark its MLflow runs, upload its files and release its lock)
    env.setdefault("RAY_JOB_STOP_WAIT_TIME_S", str(JOB_STOP_WAIT_S))
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
