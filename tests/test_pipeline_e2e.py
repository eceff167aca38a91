"""A tiny molecules pipeline end to end: CLI, Ray, Zarr, MLflow SQLite, manifest, skips, rejects."""

import json
import subprocess
import sys

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from latentsci.pipeline.driver import main
from latentsci.store import LatentStore
from workflows.molecules import STAGES

from conftest import ROOT, cli_env, latentsci_cmd, write_pipeline
from console_lines import foreign_lines


def _run(pipeline, run_dir, address, *extra):
    cmd = latentsci_cmd("run", str(pipeline), "--run-dir", str(run_dir), "--address", address, *extra)
    return subprocess.run(cmd, cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=300)


def _manifest(run_dir):
    return json.loads((run_dir / "manifest.json").read_text())["stages"]


def _runs(run_dir):
    client = MlflowClient(tracking_uri=f"sqlite:///{run_dir}/mlflow.db")
    experiment = client.get_experiment_by_name("tiny")
    return client, client.search_runs([experiment.experiment_id], order_by=["start_time ASC"])


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, ray_cluster):
    """One CLI run of the tiny pipeline against the session's Ray cluster."""
    folder = tmp_path_factory.mktemp("e2e")
    source = folder / "mols.smi"
    from conftest import SMILES

    source.write_text("\n".join(SMILES[:5] + ["C1CC(", "[Na+].[Cl-].CCN", "OCC"] + SMILES[5:]))
    pipeline = write_pipeline(folder, source)
    run_dir = folder / "run"
    result = _run(pipeline, run_dir, ray_cluster.address)
    assert result.returncode == 0, result.stderr
    return pipeline, run_dir, result, ray_cluster.address


def test_outputs_manifest_and_rejects(first_run):
    _, run_dir, result, _ = first_run
    stages = _manifest(run_dir)
    assert list(stages) == ["ingest", "fingerprints"]
    ingest = stages["ingest"]
    assert ingest["metrics"]["read"] == 23 and ingest["metrics"]["kept"] == 21
    assert ingest["metrics"]["rejected"] == 1 and ingest["metrics"]["duplicates"] == 1
    rejects = pd.read_csv(ingest["outputs"]["rejects"])
    assert rejects.values.tolist() == [[6, "C1CC(", "unparsable SMILES"],
                                       [8, "OCC", "duplicate of line 1"]]
    table = pd.read_parquet(ingest["outputs"]["molecules"])
    assert "CCN" in table["smiles"].tolist()  # the salt kept its largest fragment
    # 21 molecules, scaffold groups assigned whole, seeded: 0.6 / 0.2 / 0.2 as near as groups allow
    assert table["split"].value_counts().to_dict() == {"train": 13, "valid": 4, "test": 4}
    store = LatentStore.open(stages["fingerprints"]["outputs"]["store"])
    assert len(store) == 21 and store.dim == 32 and store.complete
    assert store.ids.tolist() == table["id"].tolist()
    fp = stages["fingerprints"]
    assert store.attrs["config_hash"] == fp["config_hash"]
    assert store.attrs["mlflow_run_id"] == fp["mlflow_run_id"]
    assert store.attrs["model"] == "morgan-counts" and store.attrs["complete"] is True
    assert "latentsci query" in result.stdout and "mlflow ui --backend-store-uri" in result.stdout


def test_mlflow_parent_and_stage_runs(first_run):
    _, run_dir, _, _ = first_run
    client, runs = _runs(run_dir)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(parents) == 1 and {c.info.run_name for c in children} == {"ingest", "fingerprints"}
    ingest = next(c for c in children if c.info.run_name == "ingest")
    assert ingest.data.params["split.method"] == "scaffold"
    assert ingest.data.metrics["kept"] == 21
    assert ingest.data.tags["config_hash"] == _manifest(run_dir)["ingest"]["config_hash"]
    assert ingest.data.tags["output.molecules"].endswith("molecules.parquet")
    assert sorted(a.path for a in client.list_artifacts(ingest.info.run_id)) == [
        "properties.png", "rejects.csv"]
    fingerprints = next(c for c in children if c.info.run_name == "fingerprints")
    assert [a.path for a in client.list_artifacts(fingerprints.info.run_id)] == ["latent_map.png"]
    assert "manifest.json" in [a.path for a in client.list_artifacts(parents[0].info.run_id)]
    _, _, _, address = first_run
    assert parents[0].data.tags["ray_address"] == address
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    assert parents[0].data.tags["git_commit"] == head.stdout.strip()  # the code's, not the tmp dir's
    assert len(head.stdout.strip()) == 40


def test_the_console_shows_the_projects_lines_once_and_the_log_keeps_the_rest(first_run):
    _, run_dir, result, _ = first_run
    assert foreign_lines(result.stdout) == [] and result.stderr == ""
    assert result.stdout.count("run directory: ") == 1  # the summary, once
    assert f"full log:      {run_dir / 'driver.log'}" in result.stdout.splitlines()
    log = (run_dir / "driver.log").read_text()
    assert "mlflow.store.db.utils" in log  # MLflow's chatter kept, not dropped
    assert "[fingerprints] done in" in log  # and the project's lines beside it


CRASHING_WORKFLOW = """
import sys

from latentsci.pipeline.driver import main
from latentsci.pipeline.stage import Stage, StageConfig, StageResult
from latentsci.runtime import map_batches


def invert(batch):
    return [1 / x for x in batch]


class InvertConfig(StageConfig):
    values: list[int]


def invert_all(config, ctx):
    map_batches(invert, [config.values[:2], config.values[2:]], desc="invert")
    return StageResult(outputs={})


sys.exit(main({"invert": Stage("invert", InvertConfig, invert_all)}, prog="crashing"))
"""


def test_an_error_inside_a_ray_task_reaches_the_console(tmp_path, ray_cluster):
    script = tmp_path / "crashing.py"
    script.write_text(CRASHING_WORKFLOW)
    pipeline = tmp_path / "crash.toml"
    pipeline.write_text('[pipeline]\nname = "crash"\nworkflow = "crashing"\n\n'
                        '[stages.invert]\nkind = "invert"\nvalues = [1, 2, 0, 4]\n')
    run_dir = tmp_path / "run"
    result = subprocess.run([sys.executable, str(script), str(pipeline), "--run-dir",
                             str(run_dir), "--address", ray_cluster.address], cwd=ROOT,
                            env=cli_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    log = run_dir / "driver.log"
    assert result.stderr.splitlines() == [
        f"error: ZeroDivisionError in a Ray task: division by zero (traceback in {log})"]
    assert foreign_lines(result.stdout) == [] and "[invert] running invert" in result.stdout
    assert "Traceback" in log.read_text() and "return [1 / x for x in batch]" in log.read_text()


def test_rerun_skips_and_force_reruns_dependents(first_run):
    pipeline, run_dir, _, address = first_run
    before = _manifest(run_dir)
    again = _run(pipeline, run_dir, address)
    assert again.returncode == 0, again.stderr
    assert "[ingest] unchanged" in again.stdout and "[fingerprints] unchanged" in again.stdout
    assert _manifest(run_dir) == before
    forced = _run(pipeline, run_dir, address, "--force", "fingerprints")
    assert forced.returncode == 0, forced.stderr
    after = _manifest(run_dir)
    assert after["ingest"] == before["ingest"]
    assert after["fingerprints"]["finished_at"] != before["fingerprints"]["finished_at"]
    _, runs = _runs(run_dir)
    assert [r.info.run_name for r in runs].count("fingerprints") == 2


def test_crashed_stage_is_not_marked_complete(tmp_path, ray_cluster, capsys):
    source = tmp_path / "bad.smi"
    source.write_text("C1CC(\nnot_a_molecule\n")
    pipeline = write_pipeline(tmp_path, source)
    run_dir = tmp_path / "run"
    code = main(STAGES, [str(pipeline), "--run-dir", str(run_dir)])
    assert code == 2
    assert capsys.readouterr().err.strip().endswith(
        f"error: {source.resolve()}: no valid molecule among 2 (see "
        f"{run_dir.resolve()}/stages/ingest-{_hash(pipeline)}/rejects.csv)")
    assert not (run_dir / "manifest.json").exists()
    _, runs = _runs(run_dir)
    assert [r.info.status for r in runs if r.info.run_name == "ingest"] == ["FAILED"]


def _hash(pipeline):
    from latentsci.pipeline.spec import load_pipeline, plan

    return plan(load_pipeline(pipeline), STAGES)[0].config_hash


def test_an_output_that_is_not_a_path_is_refused(tmp_path):
    from latentsci.pipeline.engine import _check_outputs

    (tmp_path / "model").mkdir()
    _check_outputs("train", {"model": str(tmp_path / "model")})
    with pytest.raises(RuntimeError, match="stage split: output 'test_from' = '40' is not an "
                                           "existing file or folder"):
        _check_outputs("split", {"model": str(tmp_path / "model"), "test_from": "40"})


def test_config_error_stops_before_any_work(tmp_path, capsys):
    pipeline = write_pipeline(tmp_path, tmp_path / "x.smi", "deduplicate = false")
    assert main(STAGES, [str(pipeline), "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {pipeline}: stages.ingest.source: no such file '{tmp_path / 'x.smi'}'"
    assert not (tmp_path / "run").exists()


def test_mlflow_tracking_uri_env_wins(tmp_path, monkeypatch):
    from latentsci.tracking import tracking_uri

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert tracking_uri(tmp_path) == "http://127.0.0.1:5000"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert tracking_uri(tmp_path) == f"sqlite:///{tmp_path.resolve()}/mlflow.db"


def test_each_tracker_keeps_its_own_run_directory(tmp_path, monkeypatch):
    import os

    from latentsci.tracking import Tracker

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    first, second = Tracker(tmp_path / "a", "x"), Tracker(tmp_path / "b", "x")
    assert first.uri != second.uri and second.uri.endswith("/b/mlflow.db")
    assert "MLFLOW_TRACKING_URI" not in os.environ
