"""MLflow in server mode on loopback with a real PostgreSQL backend: a pipeline run through the
CLI logs over HTTP (its driver, and a Ray worker), parent and nested runs arrive intact in
PostgreSQL, and the artifacts, uploaded through the server, download byte for byte.

The PostgreSQL instance is the test's own (tests/local_postgres.py: initdb in a temporary folder,
127.0.0.1 on a free port, run as the `postgres` user through runuser when the test runs as
root); without PostgreSQL installed the test skips, saying how to install it."""

import json
import subprocess

import pytest
from mlflow.tracking import MlflowClient

from conftest import ROOT, cli_env, latentsci_cmd, write_pipeline
from local_postgres import INSTALL_HINT, LocalPostgres, postgres_bin
from mlflow_server import MlflowServer


@pytest.fixture(scope="module")
def postgres_mlflow(tmp_path_factory):
    """(PostgreSQL, an `mlflow server` whose backend store it is)."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip(INSTALL_HINT)
    pytest.importorskip("psycopg2", reason="pip install -e '.[test]' (psycopg2-binary)")
    database = LocalPostgres(bin_dir)
    try:
        server = MlflowServer(database.uri, tmp_path_factory.mktemp("mlflow-pg"))
    except Exception:
        database.stop()
        raise
    yield database, server
    server.stop()
    database.stop()


def _log_from_worker(batch, run_log):
    """A Ray task logging into a stage's run over HTTP through the handle the driver gave it."""
    for step in batch:
        run_log.log({"worker_metric": float(step * 10)}, step=step)
    return len(batch)


def test_a_pipeline_logs_over_http_into_postgres(postgres_mlflow, tmp_path, ray_cluster,
                                                 smiles_file):
    database, server = postgres_mlflow
    pipeline = write_pipeline(tmp_path, smiles_file)
    run_dir = tmp_path / "run"
    result = subprocess.run(latentsci_cmd("run", str(pipeline), "--run-dir", str(run_dir),
                                          "--address", ray_cluster.address,
                                          "--tracking-uri", server.url),
                            cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"MLflow:        {server.url} (the server's UI)" in result.stdout
    assert not (run_dir / "mlflow.db").exists() and not (run_dir / "mlartifacts").exists()

    client = MlflowClient(server.url)
    experiment = client.get_experiment_by_name("tiny")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    children = {r.info.run_name: r for r in runs
                if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id}
    assert set(children) == {"ingest", "fingerprints"} and len(runs) == 3
    manifest = json.loads((run_dir / "manifest.json").read_text())["stages"]
    ingest = children["ingest"]
    assert ingest.data.metrics["kept"] == 21 and ingest.data.params["split.method"] == "scaffold"
    assert ingest.data.tags["config_hash"] == manifest["ingest"]["config_hash"]
    assert manifest["ingest"]["mlflow_run_id"] == ingest.info.run_id

    # artifacts went through the server (proxied) and come back identical
    local = run_dir / "stages" / f"ingest-{manifest['ingest']['config_hash']}" / "rejects.csv"
    fetched = client.download_artifacts(ingest.info.run_id, "rejects.csv", str(tmp_path))
    assert open(fetched, "rb").read() == local.read_bytes()
    assert "manifest.json" in [a.path for a in client.list_artifacts(parents[0].info.run_id)]
    assert list((server.log.parent / "artifacts").rglob("rejects.csv"))

    # Ray workers log to the same run over HTTP (this module is not importable on the workers:
    # the task travels by value)
    import sys

    from ray import cloudpickle

    from latentsci.runtime import map_batches
    from latentsci.tracking import RunLog

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    run_log = RunLog(server.url, ingest.info.run_id)
    assert map_batches(_log_from_worker, [[0, 1], [2]], desc="log", run_log=run_log) == [2, 1]
    history = client.get_metric_history(ingest.info.run_id, "worker_metric")
    assert sorted((m.step, m.value) for m in history) == [(0, 0.0), (1, 10.0), (2, 20.0)]

    # and it all sits in PostgreSQL
    with database.connect() as connection, connection.cursor() as cursor:
        cursor.execute("SELECT name, status FROM runs ORDER BY name")
        assert cursor.fetchall() == [("fingerprints", "FINISHED"), ("ingest", "FINISHED"),
                                     ("tiny", "FINISHED")]
        cursor.execute("SELECT value FROM latest_metrics WHERE run_uuid = %s AND key = 'kept'",
                       (ingest.info.run_id,))
        assert cursor.fetchall() == [(21.0,)]
