"""One run per run directory: a second run is refused naming the first; a lock left by a killed
driver is stale and taken over, so "kill the driver, rerun" resumes where it stopped."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from latentsci.errors import RunLockError
from latentsci.pipeline.driver import main
from latentsci.pipeline.run_lock import (
    LOCK_NAME,
    STALE_AFTER_S,
    LockHolder,
    RunLock,
    process_start_ticks,
)

from conftest import ROOT, cli_env
from fault_stages import STAGES

TESTS = Path(__file__).resolve().parent


def _pipeline(folder: Path, flag: Path) -> Path:
    """quick (finishes at once), then wait (blocks until `flag` exists)."""
    path = folder / "faults.toml"
    path.write_text(f'[pipeline]\nname = "faults"\nworkflow = "fault_stages"\n\n'
                    f'[stages.quick]\nkind = "quick"\n\n'
                    f'[stages.wait]\nkind = "wait_for"\nneeds = ["quick"]\nflag = "{flag}"\n')
    return path


def _wait_until(check, what: str, timeout: float = 90.0) -> None:
    deadline = time.time() + timeout
    while not check():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_lock_names_its_holder_beats_and_is_removed_on_release(tmp_path, monkeypatch):
    import latentsci.pipeline.run_lock as run_lock

    monkeypatch.setattr(run_lock, "HEARTBEAT_S", 0.05)
    with RunLock(tmp_path) as lock:
        held = json.loads((tmp_path / LOCK_NAME).read_text())
        assert held["pid"] == os.getpid() and held["host"] == socket.gethostname()
        assert held["process_start"] == process_start_ticks(os.getpid()) and held["started"]
        assert lock.took_over is None
        os.utime(tmp_path / LOCK_NAME, (0, 0))
        _wait_until(lambda: (tmp_path / LOCK_NAME).stat().st_mtime > time.time() - 5,
                    "a heartbeat", timeout=5)
    assert not (tmp_path / LOCK_NAME).exists()


def _sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_a_live_holder_is_refused_and_a_reused_pid_or_dead_one_is_stale(tmp_path):
    """Without the flock (as on a filesystem that has none) the file's holder still decides:
    a live PID with its recorded start time holds; a PID reused by another process, or gone,
    does not; a holder on another host holds while it keeps touching the file, and is stale
    once it stopped for STALE_AFTER_S."""
    sleeper = _sleeper()
    try:
        lock_file = tmp_path / LOCK_NAME
        live = LockHolder(sleeper.pid, socket.gethostname(), "t0", "python run",
                          process_start_ticks(sleeper.pid))
        lock_file.write_text(json.dumps(live.__dict__))
        with pytest.raises(RunLockError, match=f"another run is using this run directory "
                                               f"\\(pid {sleeper.pid} on "):
            RunLock(tmp_path).acquire()
        reused = LockHolder(sleeper.pid, socket.gethostname(), "t0", "python run",
                            live.process_start - 1)
        lock_file.write_text(json.dumps(reused.__dict__))
        with RunLock(tmp_path) as lock:
            assert lock.took_over == reused
        remote = LockHolder(1, "another-node", "t0", "python run", 5)
        lock_file.write_text(json.dumps(remote.__dict__))
        with pytest.raises(RunLockError, match=f"after its last heartbeat, or delete {lock_file}"):
            RunLock(tmp_path).acquire()
        silent = time.time() - STALE_AFTER_S - 5  # its host stopped touching it: a dead run
        os.utime(lock_file, (silent, silent))
        with RunLock(tmp_path) as lock:
            assert lock.took_over == remote
    finally:
        sleeper.kill()
        sleeper.wait()
    gone = LockHolder(sleeper.pid, socket.gethostname(), "t0", "python run", None)
    (tmp_path / LOCK_NAME).write_text(json.dumps(gone.__dict__))
    with RunLock(tmp_path) as lock:
        assert lock.took_over == gone


def test_second_run_refused_then_killed_driver_is_taken_over(tmp_path, ray_cluster, capsys):
    """A real driver (a subprocess) is stopped inside its second stage; meanwhile a second run on
    the same folder is refused with one line naming it. After SIGKILL its lock is stale: the
    rerun takes it over, skips the stage that had finished and runs the rest."""
    flag = tmp_path / "go"
    pipeline = _pipeline(tmp_path, flag)
    run_dir = (tmp_path / "run").resolve()
    argv = [str(pipeline), "--run-dir", str(run_dir), "--address", ray_cluster.address]
    env = dict(cli_env(), PYTHONPATH=f"{ROOT}{os.pathsep}{TESTS}")
    first = subprocess.Popen([sys.executable, str(TESTS / "fault_stages.py"), *argv], cwd=ROOT,
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
    try:
        _wait_until(lambda: list(run_dir.glob("stages/wait-*/waiting")), "the driver's 2nd stage")
        started = time.perf_counter()
        assert main(STAGES, argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and time.perf_counter() - started < 5
        assert err[0].startswith(f"error: {run_dir}: another run is using this run directory "
                                 f"(pid {first.pid} on {socket.gethostname()}, started ")
        assert "fault_stages.py" in err[0] and err[0].endswith("pass another --run-dir")
    finally:
        os.kill(first.pid, signal.SIGKILL)  # the driver only: no cleanup, its lock stays
        first.communicate(timeout=30)
    manifest = json.loads((run_dir / "manifest.json").read_text())["stages"]
    assert list(manifest) == ["quick"]
    assert json.loads((run_dir / LOCK_NAME).read_text())["pid"] == first.pid
    flag.write_text("go")
    assert main(STAGES, argv) == 0
    log = (run_dir / "driver.log").read_text()
    assert f"took over the run directory's stale lock (pid {first.pid} on " in log
    assert "[quick] unchanged" in log.split("took over")[-1]
    assert list(json.loads((run_dir / "manifest.json").read_text())["stages"]) == ["quick", "wait"]
    assert not (run_dir / LOCK_NAME).exists()
