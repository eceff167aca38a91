"""The run's console: the project's own lines and progress bars on the terminal, everything else
(Ray's workers and controllers, MLflow, library warnings, C++ logs) in a log file in the run
directory. Errors logged by Ray or MLflow still reach the terminal, one line each.

Inside `captured(LOG)` the process's file descriptors 1 and 2 point at LOG, so output that no
Python object controls (Ray's core worker, forked children) lands there too; the project writes
through `say`, which keeps its own copy of the terminal.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

NOISY_LOGGERS = ("ray", "mlflow")  # they do not propagate to the root logger


class _Terminal:
    """Where the project's lines go: the terminal, with a copy in the log while captured."""

    def __init__(self) -> None:
        self.out: TextIO | None = None  # None: not captured, use sys.stdout / sys.stderr
        self.err: TextIO | None = None
        self.log: TextIO | None = None
        self.log_path: Path | None = None


_terminal = _Terminal()


def say(text: str, error: bool = False) -> None:
    """Print one of the project's own lines on the terminal (and into the run's log)."""
    stream = (_terminal.err if error else _terminal.out) or (sys.stderr if error else sys.stdout)
    stream.write(text + "\n")
    stream.flush()
    if _terminal.log is not None:
        _terminal.log.write(text + "\n")
        _terminal.log.flush()


def progress_stream() -> TextIO:
    """The stream progress bars draw on: the terminal's stderr, even while captured."""
    return _terminal.err or sys.stderr


def log_path() -> Path | None:
    """The log file of the current capture, if any."""
    return _terminal.log_path


class _ErrorsToTerminal(logging.Handler):
    """Ray's and MLflow's ERROR records, first line only, on the terminal."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            first = record.getMessage().strip().splitlines()[0] if record.getMessage() else ""
            where = f" (details: {_terminal.log_path})" if _terminal.log_path else ""
            say(f"{record.name}: {record.levelname.lower()}: {first}{where}", error=True)
        except Exception:  # a logging handler must never raise into the caller
            self.handleError(record)


@contextmanager
def captured(path: Path) -> Iterator[Path]:
    """Send everything but the project's own lines to `path` (appended) for the block."""
    if _terminal.out is not None:  # already captured (a nested driver): keep the outer log
        yield _terminal.log_path
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    log_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    _terminal.out = os.fdopen(os.dup(saved[0]), "w", buffering=1, encoding="utf-8")
    _terminal.err = os.fdopen(os.dup(saved[1]), "w", buffering=1, encoding="utf-8")
    _terminal.log = os.fdopen(os.dup(log_fd), "a", buffering=1, encoding="utf-8")
    _terminal.log_path = path
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    line_buffering = sys.stdout.line_buffering, sys.stderr.line_buffering
    sys.stdout.reconfigure(line_buffering=True)  # no buffered text for a forked child to repeat
    sys.stderr.reconfigure(line_buffering=True)
    handler = _ErrorsToTerminal(level=logging.ERROR)
    loggers = [logging.getLogger(), *(logging.getLogger(n) for n in NOISY_LOGGERS)]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield path
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        sys.stdout.reconfigure(line_buffering=line_buffering[0])
        sys.stderr.reconfigure(line_buffering=line_buffering[1])
        for stream in (_terminal.out, _terminal.err, _terminal.log):
            stream.close()
        for fd in saved:
            os.close(fd)
        _terminal.out = _terminal.err = _terminal.log = _terminal.log_path = None
