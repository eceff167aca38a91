"""The run's console capture: what reaches the terminal, what goes to the log, and that the
process's file descriptors come back as they were, also after an error."""

import os
import subprocess
import sys

from conftest import ROOT

SCRIPT = """
import logging, os, sys
from pathlib import Path
from latentsci.runtime.console import captured, route_errors, say

log = Path(sys.argv[1])
before = os.fstat(1).st_ino, os.fstat(2).st_ino, len(os.listdir("/proc/self/fd"))
try:
    with captured(log):
        say("[stage] the project's line")
        print("a library's print")
        os.write(2, b"a C++ line on fd 2\\n")
        logging.getLogger("some.lib").warning("a library warning")
        import mlflow  # replaces the mlflow logger's handlers on import
        route_errors("mlflow")
        logging.getLogger("mlflow.store").error("MLflow failed\\nsecond line")
        logging.getLogger("ray").error("Ray failed")
        raise KeyError("boom")
except KeyError:
    pass
after = os.fstat(1).st_ino, os.fstat(2).st_ino, len(os.listdir("/proc/self/fd"))
print("restored" if before == after else f"changed {before} {after}")
"""


def test_the_terminal_gets_the_projects_lines_and_errors_the_log_gets_the_rest(tmp_path):
    log = tmp_path / "driver.log"
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(log)], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["[stage] the project's line", "restored"]
    assert out.stderr.splitlines() == [f"mlflow.store: error: MLflow failed (details: {log})",
                                       f"ray: error: Ray failed (details: {log})"]
    text = log.read_text()
    for line in ("[stage] the project's line", "a library's print", "a C++ line on fd 2",
                 "a library warning", "MLflow failed"):
        assert line in text, line
