"""The PMO harness end to end on its `lite` profile (3 tasks, 500 calls, 1 seed): screening and
Graph GA as Ray tasks, results with PMO's published Graph GA beside, nested MLflow runs, AUCs
that match their call logs, a rerun that skips finished runs, and Graph GA's state round trip."""

import json
import subprocess

import numpy as np
import pandas as pd
import pytest

from latentsci.latent.search import CallLog, top_auc
from latentsci.molecules.search.graph_ga import GraphGA

from conftest import ROOT, cli_env, latentsci_cmd

@pytest.mark.slow
def test_lite_profile_runs_resumes_and_tracks(ray_cluster, tmp_path):
    run_dir = tmp_path / "pmo"
    command = latentsci_cmd("run", str(ROOT / "pipelines/pmo.toml"), "--profile", "lite",
                            "--run-dir", str(run_dir), "--address", ray_cluster.address,
                            "--no-progress")
    done = subprocess.run(command, cwd=ROOT, env=cli_env(), capture_output=True, text=True,
                          timeout=1200)
    assert done.returncode == 0, done.stdout + done.stderr
    stage = next((run_dir / "stages").glob("benchmark-*"))
    summary = pd.read_csv(stage / "summary.csv").set_index(["method", "task"])
    assert len(summary) == 6 and (summary["calls"] == 500).all()
    assert summary.loc[("screening", "qed"), "pmo_graph_ga"] == pytest.approx(0.940)
    results = pd.read_csv(stage / "results.csv")
    kept = run_dir / "state" / stage.name / "runs"  # outlives a stopped attempt (out_dir does not)
    for row in results.to_dict("records"):  # each AUC is the one its call log gives
        calls = CallLog(kept / row["method"] / row["task"] / "seed0" / "calls").read()
        scores = calls[calls["index"] >= 0].sort_values("index")["score"].to_numpy()
        assert row["auc_top10"] == pytest.approx(top_auc(scores, 10, 500))
        assert 0.0 <= row["top10_filters"] <= 1.0 and row["top10_mw"] > 0
    ga = results.set_index(["method", "task"])
    assert ga.loc[("graph_ga", "qed"), "top10"] > ga.loc[("screening", "qed"), "top10"] - 0.05

    import mlflow

    client = mlflow.tracking.MlflowClient(f"sqlite:///{run_dir / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    named = {r.info.run_name for r in runs}
    assert {"graph_ga/qed", "screening/isomers_c7h8n2o2"} <= named

    # An attempt stopped mid-stage (no manifest record, one run without its result): the rerun
    # reads the finished runs back and finishes the other from its state; no call paid twice.
    manifest = json.loads((run_dir / "manifest.json").read_text())
    del manifest["stages"][stage.name.rpartition("-")[0]]
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    (kept / "graph_ga" / "qed" / "seed0" / "result.json").unlink()
    parts = sorted(kept.glob("*/*/seed0/calls/*"))
    again = subprocess.run(command, cwd=ROOT, env=cli_env(), capture_output=True, text=True,
                           timeout=1200)
    assert again.returncode == 0, again.stdout + again.stderr
    assert sorted(kept.glob("*/*/seed0/calls/*")) == parts
    pd.testing.assert_frame_equal(pd.read_csv(stage / "results.csv"), results)



def test_a_rerun_reads_finished_runs_back_and_resumes_a_stopped_one(ray_cluster, tmp_path):
    from latentsci.latent.search.harness import Run, run_benchmark

    library = [f"C{'C' * i}O" for i in range(30)] + ["c1ccccc1" + "C" * i for i in range(30)]
    runs = [Run("screening", "qed", 0), Run("graph_ga", "qed", 1)]
    first = run_benchmark(runs, tmp_path, 80, library, batch_size=40)
    stopped = tmp_path / "graph_ga" / "qed" / "seed1"
    (stopped / "result.json").unlink()  # as if it had stopped before writing its result
    parts = {p: sorted((p.parent / "calls").glob("*")) for p in tmp_path.glob("*/*/*/state.json")}
    again = run_benchmark(runs, tmp_path, 80, library, batch_size=40)
    pd.testing.assert_frame_equal(again, first)
    for state, before in parts.items():  # no call paid for twice: no new call-log parts
        assert sorted((state.parent / "calls").glob("*")) == before


def test_graph_ga_state_round_trips_and_continues_identically():
    pool = ["CCOc1ccccc1C(=O)N", "CC(C)Cc1ccc(cc1)C(C)C(=O)O", "c1ccc2c(c1)cccc2O",
            "CN1C=NC2=C1C(=O)N(C(=O)N2C)C", "OC(=O)c1ccccc1OC(C)=O"] * 4

    def qed(items):
        from rdkit import Chem
        from rdkit.Chem import QED

        return np.array([QED.qed(Chem.MolFromSmiles(s)) for s in items])

    a = GraphGA(pool, seed=5)
    first = a.ask(200)
    a.tell(first, qed(first))
    saved = json.loads(json.dumps(a.state()))
    b = GraphGA(pool, seed=99)
    b.restore(saved)
    assert a.ask(200) == b.ask(200)  # the same children from the same state
    with pytest.raises(ValueError, match="non-empty starting pool"):
        GraphGA([])


def test_an_archive_of_finished_runs_is_read_back_only_for_the_same_protocol(ray_cluster,
                                                                              tmp_path):
    import shutil

    from latentsci.latent.search.harness import Run, run_benchmark

    library = [f"C{'C' * i}O" for i in range(30)]
    runs = [Run("screening", "qed", 0)]
    first = run_benchmark(runs, tmp_path / "a", 40, library, batch_size=20)
    archive = tmp_path / "archive"  # what a user commits: result.json files only
    kept = archive / "screening" / "qed" / "seed0"
    kept.mkdir(parents=True)
    shutil.copyfile(tmp_path / "a" / "screening" / "qed" / "seed0" / "result.json",
                    kept / "result.json")
    again = run_benchmark(runs, tmp_path / "b", 40, library, batch_size=20, archive=archive)
    pd.testing.assert_frame_equal(again, first)
    assert not (tmp_path / "b" / "screening" / "qed" / "seed0" / "calls").exists()  # not rerun
    other = run_benchmark(runs, tmp_path / "c", 30, library, batch_size=20, archive=archive)
    assert (tmp_path / "c" / "screening" / "qed" / "seed0" / "calls").exists()  # budget differs
    assert other.loc[0, "protocol"] != first.loc[0, "protocol"]
