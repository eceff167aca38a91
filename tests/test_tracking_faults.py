"""MLflow faults: a server that is not there at the start is one line before any work; a server
lost in the middle of a run is retried within a bound, then the stage fails in one line with its
checkpoints kept, and a rerun (server back) resumes and ends with the uninterrupted result.

Real `mlflow server` (SQLite backend) on loopback; the loss is a real cut of the TCP path to it
(a relay the test closes), so the server's data survive, as when a network link drops."""

import json
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from latentsci.pipeline.driver import main

import fault_stages
from fault_stages import STAGES, step_value
from mlflow_server import LinkRelay, MlflowServer, free_port

STEPS = 4


def _pipeline(folder: Path) -> Path:
    path = folder / "faults.toml"
    path.write_text('[pipeline]\nname = "faults"\nworkflow = "fault_stages"\n\n'
                    '[stages.quick]\nkind = "quick"\n\n'
                    f'[stages.steps]\nkind = "steps"\nneeds = ["quick"]\nsteps = {STEPS}\n')
    return path


def test_unreachable_mlflow_is_one_line_before_any_work(tmp_path, capsys, monkeypatch):
    uri = f"http://127.0.0.1:{free_port()}"
    run_dir = tmp_path / "run"
    argv = [str(_pipeline(tmp_path)), "--run-dir", str(run_dir)]
    expected = (f"error: MLflow tracking server {uri} is not reachable: Connection refused "
                "(start it, or point --tracking-uri / MLFLOW_TRACKING_URI at one that runs)")
    started = time.perf_counter()
    assert main(STAGES, [*argv, "--tracking-uri", uri]) == 2
    assert capsys.readouterr().err.splitlines() == [expected]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert main(STAGES, argv) == 2
    assert capsys.readouterr().err.splitlines() == [expected]
    assert time.perf_counter() - started < 10 and not run_dir.exists()  # no Ray, no folder


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mlflow-server")
    server = MlflowServer(f"sqlite:///{folder / 'mlflow.db'}", folder)
    yield server
    server.stop()


def test_mlflow_lost_mid_run_fails_in_one_line_and_the_rerun_resumes(
        tmp_path, ray_cluster, mlflow_server, capsys, monkeypatch):
    """Retries bounded to 2 per call, no jitter, 5 s timeout (the defaults are 3 tries, backoff
    1, 20 s); the link is cut right after step 1 was logged and checkpointed."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    relay = LinkRelay(mlflow_server.port)
    run_dir = tmp_path / "run"
    argv = [str(_pipeline(tmp_path)), "--run-dir", str(run_dir), "--address",
            ray_cluster.address, "--tracking-uri", relay.url]
    monkeypatch.setattr(fault_stages, "AFTER_STEP", [lambda step: step == 1 and relay.cut()])
    started = time.perf_counter()
    assert main(STAGES, argv) == 2
    seconds = time.perf_counter() - started
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"error: MLflow tracking server {relay.url} stopped answering while "
                             "logging step 2 for stage steps after 2 retries (Connection refused")
    assert err[0].endswith("the stage stopped, its checkpoints are kept: rerun once the server "
                           "is back")
    assert seconds < 60  # 3 calls (the step, ending the stage's and the parent's run) x 2 retries
    checkpoint = next(run_dir.glob("state/steps-*/checkpoint.json"))
    assert json.loads(checkpoint.read_text())["next"] == 2
    assert list(json.loads((run_dir / "manifest.json").read_text())["stages"]) == ["quick"]

    relay.restore()
    monkeypatch.setattr(fault_stages, "AFTER_STEP", [])
    assert main(STAGES, argv) == 0
    record = json.loads((run_dir / "manifest.json").read_text())["stages"]["steps"]
    uninterrupted = sum(step_value(s) for s in range(STEPS))
    assert record["metrics"] == {"total": uninterrupted, "resumed_from": 2}  # exact: integers
    client = MlflowClient(mlflow_server.url)
    experiment = client.get_experiment_by_name("faults")
    runs = client.search_runs([experiment.experiment_id], "attributes.run_name = 'steps'",
                              order_by=["start_time ASC"])
    assert [r.info.status for r in runs][-1] == "FINISHED" and len(runs) == 2
    logged = {m.step: m.value for r in runs for m in client.get_metric_history(r.info.run_id,
                                                                                "value")}
    assert logged == {s: step_value(s) for s in range(STEPS)}  # every step's value, once
    relay.cut()


def test_workers_log_only_through_a_server_and_passwords_stay_out_of_lines(tmp_path):
    from latentsci.errors import TrackingError
    from latentsci.tracking import Tracker
    from latentsci.tracking_server import redacted

    tracker = Tracker(tmp_path, "x", uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    with pytest.raises(TrackingError, match="workers log to MLflow only through a tracking server"):
        tracker.run_log("abc")
    assert redacted("postgresql://mlflow:s3cret@db:5432/m") == "postgresql://mlflow:***@db:5432/m"
    assert redacted("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
