"""The budgeted oracle (PMO's accounting: canonical keys, free repeats and invalid items, errors
that count, the budget's edge), its call log and resume, user objectives, and the top-k AUC on
hand-worked call logs. Scoring runs in real Ray actors."""

import textwrap

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import QED

from latentsci.latent.search import (BudgetedOracle, CallLog, OracleError,
                                     get_objective, list_objectives, top_auc, top_mean)
from latentsci.molecules.oracles import basic
from latentsci.molecules.oracles.basic import canonical_smiles


def test_top_auc_on_a_hand_worked_log():
    scores = np.full(250, 0.1)
    scores[49], scores[149], scores[229] = 0.2, 0.5, 0.8
    # top-1 at 100 calls 0.2, at 200 0.5, at 250 0.8; trapezoids from 0:
    # 100 * 0.1 + 100 * 0.35 + 50 * 0.65 = 77.5, then 150 calls carried at 0.8 = 120
    assert top_auc(scores, 1, budget=400) == pytest.approx(197.5 / 400)
    assert top_auc(scores, 1, budget=400, finished=False) == pytest.approx(77.5 / 400)
    assert top_auc(scores, 1, budget=250) == pytest.approx(77.5 / 250)
    assert top_auc(scores[:40], 1, budget=100) == pytest.approx((40 * 0.05 + 60 * 0.1) / 100)
    assert top_mean(np.array([0.3, 0.9]), 10) == pytest.approx(0.6)  # fewer than k: those there
    # a failed call (NaN) counts as 0: f(1) = 0, f(2) = 1; (0 + 0.5) / 2
    assert top_auc(np.array([np.nan, 1.0]), 1, budget=2, every=1) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="budget"):
        top_auc(scores, 1, budget=0)


def test_repeats_and_invalid_items_are_free_and_the_budget_stops_new_calls(ray_cluster, tmp_path):
    oracle = BudgetedOracle(get_objective("qed"), budget=3, log=CallLog(tmp_path / "log"),
                            method="test", task="qed", seed=1)
    first = oracle(["CCO", "OCC", "not a molecule", "c1ccccc1"], round=0)
    expected = [QED.qed(Chem.MolFromSmiles(s)) for s in ("CCO", "c1ccccc1")]
    np.testing.assert_allclose(first, [expected[0], expected[0], 0.0, expected[1]])
    assert oracle.calls == 2 and oracle.invalid == 1 and oracle.remaining == 1
    again = oracle(["c1ccccc1", "C(C)O"], round=1)  # both cached: no call spent
    np.testing.assert_allclose(again, expected[::-1])
    assert oracle.calls == 2
    last = oracle(["CCN", "CCCl", "CCBr"], round=2)  # one call left: the first new one scored
    assert np.isfinite(last[0]) and np.isnan(last[1:]).all() and oracle.finished
    log = CallLog(tmp_path / "log").read()
    counted = log[log["index"] >= 0]
    assert list(counted["index"]) == [0, 1, 2] and list(counted["item"]) == ["CCO", "c1ccccc1",
                                                                             "CCN"]
    assert set(log["method"]) == {"test"} and list(counted["round"]) == [0, 0, 2]
    assert (log["index"] == -1).sum() == 1 and log.loc[log["index"] == -1, "score"].item() == 0.0
    oracle.close()


def test_a_resumed_oracle_spends_nothing_on_what_the_log_holds(ray_cluster, tmp_path):
    log = CallLog(tmp_path / "log")
    oracle = BudgetedOracle(get_objective("plogp"), budget=10, log=log)
    before = oracle(["CCO", "c1ccccc1", "CC(=O)O"])
    oracle.close()
    resumed = BudgetedOracle(get_objective("plogp"), budget=10, log=log)
    assert resumed.calls == 3 and resumed._pool is None
    np.testing.assert_allclose(resumed(["CC(=O)O", "OCC"]), before[[2, 0]])
    assert resumed._pool is None  # answered from the log's cache, no actor started
    np.testing.assert_allclose(resumed.scores(), before)


PICKY = textwrap.dedent('''
    def picky(smiles):
        """Raises for any molecule with nitrogen, scores the others by length."""
        return [1 / 0 if "N" in s else float(len(s)) for s in smiles]
    ''')


def test_an_item_whose_score_raises_scores_zero_counts_and_is_logged(ray_cluster, tmp_path,
                                                                     monkeypatch):
    (tmp_path / "picky_oracle.py").write_text(PICKY)
    monkeypatch.syspath_prepend(str(tmp_path))
    objective = get_objective("picky_oracle:picky")
    oracle = BudgetedOracle(objective, budget=10, log=CallLog(tmp_path / "log"), workers=2)
    out = oracle(["CCO", "CCN", "CCCC"])
    np.testing.assert_allclose(out, [3.0, 0.0, 4.0])
    assert oracle.calls == 3  # the failed evaluation was paid for
    log = oracle.log.read().set_index("item")
    assert log.loc["CCN", "error"] == "ZeroDivisionError: division by zero"
    assert log["error"].isna().sum() == 2
    np.testing.assert_allclose(oracle(["NCC"]), [0.0])  # its repeat is not retried
    assert oracle.calls == 3
    oracle.close()


def test_user_objectives_are_checked_before_any_work(ray_cluster, tmp_path, monkeypatch):
    (tmp_path / "user_oracle.py").write_text(textwrap.dedent('''
        def heavy_atoms(smiles):
            from rdkit import Chem
            return [Chem.MolFromSmiles(s).GetNumHeavyAtoms() for s in smiles]

        def one_score(smiles):
            return [1.0]
        '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    objective = get_objective("user_oracle:heavy_atoms")
    oracle = BudgetedOracle(objective, budget=5, log=CallLog(tmp_path / "log"))
    np.testing.assert_allclose(oracle(["CCO", "c1ccccc1"]), [3, 6])
    oracle.close()
    with pytest.raises(OracleError, match=r"returned 1 scores for 2 items"):
        get_objective("user_oracle:one_score")
    with pytest.raises(OracleError, match=r"'no_such_module:f': cannot import it"):
        get_objective("no_such_module:f")
    with pytest.raises(OracleError, match=r"unknown objective 'qedd'"):
        get_objective("qedd")
    with pytest.raises(OracleError, match="budget must be at least one call"):
        BudgetedOracle(objective, budget=0, log=CallLog(tmp_path / "log2"))


def test_penalized_logp_by_hand():
    benzene = Chem.MolFromSmiles("c1ccccc1")
    z = ((basic.logp(benzene) - basic.LOGP_MEAN) / basic.LOGP_STD
         + (-basic.sa(benzene) - basic.SA_MEAN) / basic.SA_STD
         + (0.0 - basic.CYCLE_MEAN) / basic.CYCLE_STD)
    assert basic.plogp(benzene) == pytest.approx(z)
    ring10 = Chem.MolFromSmiles("CC1CCCCCCCCC1")  # a 10-membered ring: penalty 4
    assert basic.ring_penalty(ring10) == 4.0 and basic.cycle_penalty(ring10) == 4.0
    assert basic.ring_penalty(Chem.MolFromSmiles("c1ccc2ccccc2c1")) == 0.0  # fused 6-rings
    assert basic.plogp_jtvae(ring10) == pytest.approx(
        basic.logp(ring10) - basic.sa(ring10) - 4.0)
    assert canonical_smiles("") is None and canonical_smiles("OCC") == "CCO"
    assert {"qed", "sa", "plogp", "plogp_jtvae"} <= set(list_objectives())


def test_score_verb_writes_scores_and_reasons(ray_cluster, tmp_path):
    import subprocess

    import pandas as pd

    from conftest import cli_env, latentsci_cmd

    smiles = tmp_path / "in.smi"
    smiles.write_text("CCO\nnot_a_smiles\nc1ccccc1\nOCC\n")
    out = tmp_path / "scored.csv"
    done = subprocess.run(latentsci_cmd("score", "--objective", "qed", "--smiles", str(smiles),
                                        "--out", str(out), "--address", ray_cluster.address),
                          env=cli_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "scored 3 of 4 molecules with qed (1 could not be scored" in done.stdout
    frame = pd.read_csv(out)
    assert list(frame["canonical"].fillna("")) == ["CCO", "", "c1ccccc1", "CCO"]
    assert frame.loc[1, "reason"] == "not a valid SMILES" and np.isnan(frame.loc[1, "score"])
    assert frame.loc[0, "score"] == pytest.approx(QED.qed(Chem.MolFromSmiles("CCO")))
    listed = subprocess.run(latentsci_cmd("score", "--list"), env=cli_env(),
                            capture_output=True, text=True, timeout=120)
    names = [line.split()[0] for line in listed.stdout.splitlines()]
    assert listed.returncode == 0 and {"plogp", "qed", "osimertinib_mpo", "isomer:..."} <= set(names)
    assert names == sorted(names)
    bad = subprocess.run(latentsci_cmd("score", "--objective", "qedd", "--smiles", str(smiles)),
                         env=cli_env(), capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.strip().startswith("error: unknown objective")


def test_screening_runs_to_its_budget_and_resumes_where_it_stopped(ray_cluster, tmp_path):
    from latentsci.latent.search.optimiser import Optimiser, run_search
    from latentsci.latent.search.screening import Screening

    library = [f"C{'C' * i}O" for i in range(40)] + ["not a molecule"] * 5
    log = CallLog(tmp_path / "log")
    state = tmp_path / "state.json"
    assert isinstance(Screening(library), Optimiser)
    first = BudgetedOracle(get_objective("qed"), budget=15, log=log, method="screening")
    summary = run_search(Screening(library, seed=3), first, state, batch_size=10)
    first.close()
    assert summary["calls"] == 15 and summary["finished"] == 1.0
    resumed = BudgetedOracle(get_objective("qed"), budget=30, log=log, method="screening")
    run_search(Screening(library, seed=3), resumed, state, batch_size=10)  # a longer budget
    resumed.close()
    calls = log.read()
    counted = calls[calls["index"] >= 0]
    assert list(counted["index"]) == list(range(30)) and counted["item"].is_unique
    order = np.random.default_rng(3).permutation(len(library))
    # the 15 over budget in round 2 were never scored; the resumed run proposes from 20 on
    expected = [library[i] for i in order if library[i] != "not a molecule"]
    assert list(counted["item"])[:15] == [canonical_smiles(s) for s in expected[:15]]
    with pytest.raises(ValueError, match="non-empty library"):
        Screening([])


def test_a_scikit_learn_model_saved_with_skops_is_an_objective(ray_cluster, tmp_path):
    import skops.io as sio
    from sklearn.ensemble import RandomForestRegressor

    from latentsci.molecules.oracles.model import morgan_bits

    train = ["CCO", "CCCO", "CCCCO", "c1ccccc1", "c1ccccc1O", "CC(=O)O", "CCN", "CCCN"]
    y = np.array([len(s) for s in train], dtype=float)
    model = RandomForestRegressor(n_estimators=5, random_state=0).fit(morgan_bits(train), y)
    sio.dump(model, tmp_path / "model.skops")
    objective = get_objective(f"sklearn:{tmp_path / 'model.skops'}")
    oracle = BudgetedOracle(objective, budget=5, log=CallLog(tmp_path / "log"))
    np.testing.assert_allclose(oracle(["OCC", "c1ccccc1"]),
                               model.predict(morgan_bits(["CCO", "c1ccccc1"])))
    oracle.close()
    with pytest.raises(OracleError, match="no such model file"):
        get_objective(f"sklearn:{tmp_path / 'missing.skops'}")
    import os

    from sklearn.preprocessing import FunctionTransformer

    sio.dump(FunctionTransformer(func=os.system), tmp_path / "hostile.skops")
    with pytest.raises(OracleError, match="refused, it holds types outside .*: posix.system"):
        get_objective(f"sklearn:{tmp_path / 'hostile.skops'}")  # never loaded, never called
    (tmp_path / "pickled.skops").write_bytes(b"not a zip file")
    with pytest.raises(OracleError, match="not a skops model file"):
        get_objective(f"sklearn:{tmp_path / 'pickled.skops'}")
