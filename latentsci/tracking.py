"""MLflow tracking: one parent run per pipeline run, one nested run per stage.

Only the driver talks to MLflow (workers return their metrics, and live training curves are read
from checkpoints by a driver thread), so an embedded SQLite file has a single writing process.
`--tracking-uri` or `MLFLOW_TRACKING_URI` points a cluster run at a real MLflow server; every
call to it goes through `Tracker._call`, which turns a server lost mid-run into one line
(`latentsci.tracking_server`).
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from latentsci.errors import TrackingError
from latentsci.tracking_server import bound_retries, is_http, lost_server

T = TypeVar("T")

MAX_PARAM_CHARS = 6000  # MLflow's limit on one param value


def tracking_uri(run_dir: Path, given: str | None = None) -> str:
    """The URI given (--tracking-uri), else MLFLOW_TRACKING_URI, else a SQLite file inside the
    run directory."""
    return (given or os.environ.get("MLFLOW_TRACKING_URI")
            or f"sqlite:///{Path(run_dir).resolve()}/mlflow.db")


COMMIT_ENV = "LATENTSCI_GIT_COMMIT"  # set by `latentsci submit`: a Ray Job ships no .git


def git_commit(cwd: Path | None = None) -> str:
    """The commit the code ran from (the checkout holding latentsci unless `cwd` is given), or
    'unknown' outside a git checkout."""
    if os.environ.get(COMMIT_ENV):
        return os.environ[COMMIT_ENV]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"],
                             cwd=cwd or Path(__file__).resolve().parent, capture_output=True,
                             text=True, timeout=10, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@dataclass(frozen=True)
class RunLog:
    """A handle a Ray worker carries to log metrics into one MLflow run itself, over HTTP; only
    against a tracking server (a SQLite file wants a single writer: the driver)."""

    uri: str
    run_id: str

    def log(self, metrics: dict[str, float], step: int = 0) -> None:
        """Numeric metrics of one step, sent straight to the server."""
        import time

        from mlflow.entities import Metric
        from mlflow.tracking import MlflowClient

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step) for k, v in metrics.items()
                 if isinstance(v, (int, float))]
        MlflowClient(self.uri).log_batch(self.run_id, metrics=batch)


class Tracker:
    """Driver-side MLflow logging for one pipeline run."""

    def __init__(self, run_dir: Path, experiment: str, uri: str | None = None):
        import mlflow

        self.mlflow = mlflow
        self.run_dir = Path(run_dir).resolve()
        self.uri = tracking_uri(self.run_dir, uri)
        self.stage: str | None = None  # the stage whose run is active, for error lines
        if is_http(self.uri):
            bound_retries()
        previous = os.environ.get("MLFLOW_TRACKING_URI")
        mlflow.set_tracking_uri(self.uri)
        # MLflow also exports the URI to the environment; undo that, or the next pipeline run in
        # this process (or any subprocess) would log into this run's database.
        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous
        self._call("opening the experiment", lambda: self._open_experiment(experiment))
        self.experiment = experiment

    def _open_experiment(self, experiment: str) -> None:
        """Create the experiment if new (artifacts beside a SQLite file) and make it current."""
        if self.mlflow.get_experiment_by_name(experiment) is None:
            # Keep artifacts beside the SQLite file, not in ./mlruns of whatever the cwd is.
            location = None
            if self.uri.startswith("sqlite:"):
                location = (self.run_dir / "mlartifacts").as_uri()
            self.mlflow.create_experiment(experiment, artifact_location=location)
        self.mlflow.set_experiment(experiment)

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """Run one MLflow call; if it failed because the server is gone, say so in one line."""
        try:
            return fn()
        except Exception as exc:
            where = f" for stage {self.stage}" if self.stage else ""
            lost = lost_server(self.uri, what + where, exc)
            if lost is None:
                raise
            raise lost from exc

    def _end_run(self, failed: bool, stopped: bool = False) -> None:
        """End the active run; after a failure, only try (the server may be why it failed). A
        run stopped by a signal is KILLED, one that raised FAILED."""
        if not failed:
            self._call("ending a run", self.mlflow.end_run)
            return
        status = "KILLED" if stopped else "FAILED"
        try:
            self.mlflow.end_run(status=status)  # pops the run first, even when this raises
        except Exception as exc:
            logging.getLogger(__name__).warning("could not mark the run %s: %s", status, exc)

    @contextmanager
    def pipeline_run(self, name: str, tags: dict[str, str]) -> Iterator[str]:
        """The parent run; yields its id."""
        run = self._call("starting the pipeline run",
                         lambda: self.mlflow.start_run(run_name=name, tags=tags))
        try:
            yield run.info.run_id
        except BaseException as exc:
            self._end_run(failed=True, stopped=isinstance(exc, KeyboardInterrupt))
            raise
        self._end_run(failed=False)

    @contextmanager
    def stage_run(self, name: str, params: dict[str, Any], tags: dict[str, str]) -> Iterator[str]:
        """A nested run for one stage, marked FAILED if the stage raises (KILLED if a signal stopped
        it); yields its id."""
        self.stage = name
        run = self._call("starting its run", lambda: self.mlflow.start_run(
            run_name=name, nested=True, tags=tags))
        try:
            self.log_params(params)
            yield run.info.run_id
        except BaseException as exc:
            self._end_run(failed=True, stopped=isinstance(exc, KeyboardInterrupt))
            raise
        finally:
            self.stage = None
        self._end_run(failed=False)

    def log_params(self, params: dict[str, Any]) -> None:
        """Flattened config as params, long values cut to MLflow's limit."""
        clean = {k: str(v)[:MAX_PARAM_CHARS] for k, v in params.items()}
        self._call("logging params", lambda: self.mlflow.log_params(clean))

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        """Numeric metrics of the active run (non-numbers are skipped, not logged as text)."""
        numeric = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}
        if numeric:
            self._call("logging metrics", lambda: self.mlflow.log_metrics(numeric, step=step))

    def log_artifact(self, path: Path, subdir: str | None = None) -> None:
        """Attach a file (plot, report, manifest) to the active run."""
        self._call(f"uploading {Path(path).name}",
                   lambda: self.mlflow.log_artifact(str(path), artifact_path=subdir))

    def log_step(self, run_id: str, metrics: dict[str, float], step: int) -> None:
        """Numeric metrics of one step of a given run; safe from any thread, because it names
        the run instead of relying on MLflow's per-thread active run."""
        import time

        from mlflow.entities import Metric
        from mlflow.tracking import MlflowClient

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step) for k, v in metrics.items()
                 if isinstance(v, (int, float))]
        client = MlflowClient(self.uri)
        for start in range(0, len(batch), 1000):  # MLflow's limit per batch
            chunk = batch[start : start + 1000]
            self._call(f"logging step {step}", lambda: client.log_batch(run_id, metrics=chunk))

    def run_log(self, run_id: str) -> RunLog:
        """A handle workers can log into `run_id` with, in server mode (see `RunLog`)."""
        if not is_http(self.uri):
            raise TrackingError(f"workers log to MLflow only through a tracking server, not "
                                f"{self.uri}: pass --tracking-uri http://HOST:PORT")
        return RunLog(self.uri, run_id)

    def child_run(self, parent_id: str, name: str, params: dict[str, Any],
                  metrics: dict[str, float]) -> str:
        """A finished run nested under `parent_id` (one per method and task of a benchmark)."""
        from mlflow.tracking import MlflowClient

        client = MlflowClient(self.uri)

        def create() -> str:
            parent = client.get_run(parent_id)
            run = client.create_run(parent.info.experiment_id, run_name=name,
                                    tags={"mlflow.parentRunId": parent_id})
            for key, value in params.items():
                client.log_param(run.info.run_id, key, str(value)[:MAX_PARAM_CHARS])
            return run.info.run_id

        run_id = self._call(f"creating run {name}", create)
        self.log_step(run_id, metrics, 0)
        self._call(f"ending run {name}", lambda: client.set_terminated(run_id))
        return run_id

    def log_torch_model(self, model, name: str = "model") -> None:
        """The model in MLflow's PyTorch flavour (mlflow.pytorch.load_model); pickled, because its
        forward takes molecule batches that the default traced format cannot capture."""
        import mlflow.pytorch

        self._call("uploading the model", lambda: mlflow.pytorch.log_model(
            model, name=name, serialization_format="pickle"))

    def log_folder(self, folder: Path, name: str) -> None:
        """Every file of a folder as artifacts under `name` (a plain checkpoint, say)."""
        self._call(f"uploading {name}",
                   lambda: self.mlflow.log_artifacts(str(folder), artifact_path=name))

    def set_tags(self, tags: dict[str, str]) -> None:
        """Tags on the active run."""
        self._call("setting tags", lambda: self.mlflow.set_tags(tags))
