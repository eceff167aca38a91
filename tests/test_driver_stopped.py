"""Ctrl-C, `kill` or a scheduler's SIGTERM stops a driver cleanly: one line, its embedded Ray
shut down (not left computing), its lock released, its stage's MLflow run marked KILLED; the
same command then resumes. `latentsci run` lets its driver get each signal once."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
from mlflow.tracking import MlflowClient

from latentsci.pipeline.driver import main
from latentsci.pipeline.run_lock import LOCK_NAME

from conftest import ROOT, cli_env, session_processes
from fault_stages import STAGES

TESTS = Path(__file__).resolve().parent
STOPPED = ("error: stopped by SIGTERM: finished stages are kept; the same command resumes "
           "the run")

# A stand-in driver for `latentsci run`: it notes every stop signal it gets, takes half a second
# to clean up (when a second signal would arrive), and exits as a stopped process does.
CHILD = textwrap.dedent("""
    import os, signal, sys, time, pathlib
    log = pathlib.Path(sys.argv[1])
    got = []
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, lambda n, f: got.append(signal.Signals(n).name))
    log.with_suffix(".ready").write_text(str(os.getpid()))
    deadline = time.time() + 60
    while not got and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(0.5)
    log.write_text(" ".join(got))
    sys.exit(128 + getattr(signal, got[0]) if got else 1)
""")


def _wait_until(check, what: str, timeout: float = 90.0) -> None:
    deadline = time.time() + timeout
    while not check():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _kill_stray(ready: Path, script: Path) -> None:
    """Kill the stand-in driver if it outlived the test (its pid is in its ready file)."""
    text = ready.read_text() if ready.exists() else ""
    with contextlib.suppress(psutil.Error, ValueError):
        proc = psutil.Process(int(text))
        if str(script) in proc.cmdline():
            proc.kill()


def test_sigterm_mid_stage_stops_the_driver_and_its_ray_and_the_rerun_resumes(tmp_path,
                                                                              ray_cluster):
    flag = tmp_path / "go"
    pipeline = tmp_path / "faults.toml"
    pipeline.write_text(f'[pipeline]\nname = "faults"\nworkflow = "fault_stages"\n\n'
                        f'[stages.quick]\nkind = "quick"\n\n'
                        f'[stages.wait]\nkind = "wait_for"\nneeds = ["quick"]\nflag = "{flag}"\n'
                        'in_ray = true\n')  # the driver waits in ray.get, as real stages do
    run_dir = (tmp_path / "run").resolve()
    argv = [str(pipeline), "--run-dir", str(run_dir)]
    env = dict(cli_env(), PYTHONPATH=f"{ROOT}{os.pathsep}{TESTS}")
    # no --address: the driver starts an embedded Ray of its own, which must not outlive it
    driver = subprocess.Popen([sys.executable, str(TESTS / "fault_stages.py"), *argv], cwd=ROOT,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, start_new_session=True)
    try:
        _wait_until(lambda: list(run_dir.glob("stages/wait-*/waiting"))
                    or driver.poll() is not None, "the driver's second stage")
        assert driver.poll() is None, driver.communicate()
        driver.send_signal(signal.SIGTERM)  # the driver alone, as `kill PID` sends it
        out, err = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    assert driver.returncode == 128 + signal.SIGTERM, (out, err)
    assert err.splitlines() == [STOPPED]
    _, alive = psutil.wait_procs(session_processes(driver.pid), timeout=30)
    for proc in alive:  # do not leak them into the rest of the session
        proc.kill()
    assert alive == [], f"the stopped driver left these running: {alive}"
    assert not (run_dir / LOCK_NAME).exists()  # released, not left to go stale
    client = MlflowClient(tracking_uri=f"sqlite:///{run_dir}/mlflow.db")
    runs = client.search_runs(client.get_experiment_by_name("faults").experiment_id)
    assert {r.info.run_name: r.info.status for r in runs} == {
        "faults": "KILLED", "quick": "FINISHED", "wait": "KILLED"}

    flag.write_text("go")
    assert main(STAGES, [*argv, "--address", ray_cluster.address]) == 0
    rerun = (run_dir / "driver.log").read_text().split("==== ")[-1]
    assert "took over" not in rerun and "[quick] unchanged" in rerun


@pytest.mark.parametrize("signum, to_group", [(signal.SIGINT, True), (signal.SIGTERM, False)])
def test_run_hands_each_signal_to_its_driver_once(tmp_path, signum, to_group):
    """Ctrl-C signals the terminal's whole foreground group; `kill` the one process. Either way
    the driver gets the signal once (a second would cut its cleanup short) and its exit code is
    `latentsci run`'s."""
    child, log = tmp_path / "child.py", tmp_path / "signals"
    child.write_text(CHILD)
    code = ("import sys; from latentsci.runtime.signals import run_forwarding; "
            f"sys.exit(run_forwarding([sys.executable, {str(child)!r}, {str(log)!r}]))")
    parent = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=cli_env(),
                              start_new_session=True)
    try:
        _wait_until(lambda: log.with_suffix(".ready").exists(), "the child", timeout=30)
        (os.killpg if to_group else os.kill)(parent.pid, signum)
        assert parent.wait(timeout=30) == 128 + signum
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(timeout=30)
        _kill_stray(log.with_suffix(".ready"), child)
    assert log.read_text() == signal.Signals(signum).name
