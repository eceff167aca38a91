"""`latentsci optimize` on the shipped molecule model with tiny budgets, real Ray, oracle actors
and MLflow (SQLite): a latent BO search, JT-VAE's constrained protocol with a start the model
cannot read, the latent methods in the benchmark harness, and bad input refused in one line
before any work."""

import subprocess

import mlflow
import pandas as pd
import pytest

from conftest import ROOT, cli_env, latentsci_cmd

LIBRARY = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "CCN(CC)CC", "O=C(O)c1ccccc1",
           "Cc1ccccc1", "CCOC(=O)C", "CC(C)Cc1ccc(C(C)C(=O)O)cc1", "c1ccncc1", "CCCCO"] * 3


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    path = tmp_path_factory.mktemp("lib") / "library.smi"
    path.write_text("\n".join(LIBRARY) + "\n")
    return path


def optimize(*args, ray=None, timeout=600):
    command = latentsci_cmd("optimize", *args, *(["--address", ray.address] if ray else []))
    return subprocess.run(command, cwd=ROOT, env=cli_env(), capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.slow
def test_bo_search_writes_scored_molecules_and_an_mlflow_run(ray_cluster, library, tmp_path):
    out = tmp_path / "qed_bo.csv"
    done = optimize("--objective", "qed", "--method", "bo", "--budget", "24", "--batch-size",
                    "8", "--library", str(library), "--set", "initial=8", "--set", "batch=8",
                    "--set", "raw_samples=32", "--out", str(out), ray=ray_cluster)
    assert done.returncode == 0, done.stdout + done.stderr
    table = pd.read_csv(out)
    assert list(table.columns) == ["smiles", "score", "call", "method"]
    assert len(table) == 24 and table["smiles"].is_unique and (table["method"] == "bo").all()
    assert list(table["call"]) == list(range(1, 25))
    assert "bo on qed: calls 24" in done.stdout and "24/24 calls, best so far" in done.stderr
    uri = f"sqlite:///{tmp_path / 'qed_bo.run' / 'mlflow.db'}"
    client = mlflow.tracking.MlflowClient(uri)
    run = client.search_runs([client.get_experiment_by_name("optimize").experiment_id])[0]
    assert run.data.metrics["best"] == pytest.approx(table["score"].max())
    assert {"best_so_far.png", "top_molecules.png", "qed_bo.csv"} <= {
        a.path for a in client.list_artifacts(run.info.run_id)}
    again = optimize("--objective", "qed", "--method", "bo", "--budget", "24", "--batch-size",
                     "8", "--library", str(library), "--set", "initial=8", "--set", "batch=8",
                     "--set", "raw_samples=32", "--out", str(out), ray=ray_cluster)
    assert again.returncode == 0  # resumed from the call log: the same molecules, no new call
    pd.testing.assert_frame_equal(pd.read_csv(out), table)


@pytest.mark.slow
def test_constrained_protocol_reports_each_start(ray_cluster, library, tmp_path):
    starts = tmp_path / "starts.smi"
    # a good start, an unreadable one, one the objective scores but the model cannot encode (tin
    # is outside its atom vocabulary), and another good one
    starts.write_text("CC(=O)Nc1ccc(O)cc1\nnot_a_molecule\nCC[Sn](C)(C)C\nCCN(CC)CC\n")
    out = tmp_path / "constrained.csv"
    done = optimize("--objective", "plogp", "--method", "gradient", "--budget", "12",
                    "--start", str(starts), "--similarity", "0.4", "--library", str(library),
                    "--set", "initial=6", "--set", "steps=4", "--out", str(out), ray=ray_cluster)
    assert done.returncode == 0, done.stdout + done.stderr
    table = pd.read_csv(out)
    assert {"start_smiles", "similarity", "improvement"} <= set(table.columns)
    assert table.groupby("start_smiles").size().max() <= 12
    similar = table["similarity"] >= 0.4
    assert table.loc[~similar, "improvement"].isna().all()
    per_start = pd.read_csv(tmp_path / "constrained.starts.csv").set_index("start_smiles")
    assert "not a valid SMILES" in per_start.loc["not_a_molecule", "reason"]
    assert "Sn outside" in per_start.loc["CC[Sn](C)(C)C", "reason"]
    assert not per_start.loc["CC[Sn](C)(C)C", "success"]
    assert "CC[Sn](C)(C)C" not in set(table["start_smiles"])  # no call was spent on it
    for start, row in per_start.drop(index=["not_a_molecule", "CC[Sn](C)(C)C"]).iterrows():
        gains = table.loc[table["start_smiles"] == start, "improvement"]
        assert bool(row["success"]) == bool((gains > 0).any())
    assert "success_rate" in done.stdout


def test_latent_methods_run_in_the_harness(ray_cluster, tmp_path):
    from latentsci.latent.search.harness import Run, run_benchmark

    runs = [Run("latent_random", "qed", 0), Run("gradient", "qed", 0)]
    options = {"gradient": {"initial": 10, "steps": 3, "starts": 2}}
    results = run_benchmark(runs, tmp_path, 20, LIBRARY, batch_size=10, options=options)
    assert list(results["calls"]) == [20.0, 20.0]
    assert (results["auc_top10"] > 0).all()


@pytest.mark.parametrize("args, says", [
    (["--objective", "no_such", "--method", "bo", "--budget", "5"], "unknown objective 'no_such'"),
    (["--objective", "qed", "--method", "bo", "--budget", "0"], "--budget must be at least one"),
    (["--objective", "qed", "--method", "bo", "--budget", "5", "--set", "nope=1"],
     "bo: unknown option 'nope'"),
    (["--objective", "qed", "--method", "bo", "--budget", "5", "--similarity", "0.4"],
     "--start FILE and --similarity DELTA go together"),
    (["--objective", "qed", "--method", "simplex", "--budget", "5"], "invalid choice: 'simplex'"),
    (["--objective", "qed", "--method", "bo", "--budget", "50"],
     "100 random draws come before the first fit"),
    (["--objective", "qed", "--method", "bo", "--budget", "50", "--set", "batch=ten"],
     "bo.batch: expected int"),
])
def test_bad_input_is_one_line_before_any_work(tmp_path, args, says):
    done = optimize(*args, "--out", str(tmp_path / "x.csv"), timeout=120)
    assert done.returncode == 2
    assert says in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "x.csv").exists()


def test_an_empty_start_file_is_one_line(tmp_path):
    empty = tmp_path / "none.smi"
    empty.write_text("")
    done = optimize("--objective", "qed", "--method", "gradient", "--budget", "50", "--start",
                    str(empty), "--similarity", "0.4", "--out", str(tmp_path / "x.csv"),
                    timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "none.smi" in done.stderr or "no molecules" in done.stderr


def test_a_run_folder_resumes_only_its_own_search(tmp_path):
    from latentsci.latent.search.objective import OracleError
    from latentsci.molecules.search.optimize import SearchRequest, check_folder

    request = SearchRequest("qed", "bo", 50, tmp_path, tuple(LIBRARY), options={"initial": 10})
    check_folder(tmp_path, request)
    check_folder(tmp_path, SearchRequest("qed", "bo", 90, tmp_path, tuple(LIBRARY),
                                         options={"initial": 10}))  # a larger budget resumes
    with pytest.raises(OracleError, match="method, objective differ"):
        check_folder(tmp_path, SearchRequest("plogp", "gradient", 50, tmp_path, tuple(LIBRARY),
                                             options={"initial": 10}))


@pytest.mark.slow
def test_starts_that_all_fail_are_a_zero_success_rate(ray_cluster, library, tmp_path):
    starts = tmp_path / "bad.smi"
    starts.write_text("not_a_molecule\nC1CC\n")
    out = tmp_path / "none.csv"
    done = optimize("--objective", "plogp", "--method", "latent_random", "--budget", "5",
                    "--start", str(starts), "--similarity", "0.4", "--library", str(library),
                    "--out", str(out), ray=ray_cluster)
    assert done.returncode == 0, done.stdout + done.stderr
    per_start = pd.read_csv(tmp_path / "none.starts.csv")
    assert len(per_start) == 2 and not per_start["success"].any()
    assert "starts 2, success_rate 0" in done.stdout
