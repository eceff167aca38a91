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

NOISY_LOGGERS = ("ray", "mlflow")  # their ERROR records reach the terminal; they do not propagate


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


_routed: list[tuple[logging.Logger, logging.Handler]] = []


def route_errors(*names: str) -> None:
    """Send ERROR records of these loggers to the terminal while captured. Call it after the
    library is imported: MLflow replaces its logger's handlers on import."""
    if _terminal.out is None:
        return
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(h, _ErrorsToTerminal) for h in logger.handlers):
            handler = _ErrorsToTerminal(level=logging.ERROR)
            logger.addHandler(handler)
            _routed.append((logger, handler))


def _reconfigure(stream: TextIO, line_buffering: bool) -> bool:
    """Set a text stream's line buffering if it has one; its old value (False if it has none)."""
    before = bool(getattr(stream, "line_buffering", False))
    if hasattr(stream, "reconfigure"):
        stream.reconfigure(line_buffering=line_buffering)
    return before


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
    log_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    saved = os.dup(1), os.dup(2)
    buffering = False, False
    try:
        _terminal.out = os.fdopen(os.dup(saved[0]), "w", buffering=1, encoding="utf-8")
        _terminal.err = os.fdopen(os.dup(saved[1]), "w", buffering=1, encoding="utf-8")
        _terminal.log = os.fdopen(os.dup(log_fd), "a", buffering=1, encoding="utf-8")
        _terminal.log_path = path
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        # no buffered text for a forked child to repeat
        buffering = _reconfigure(sys.stdout, True), _reconfigure(sys.stderr, True)
        route_errors(*NOISY_LOGGERS)
        yield path
    finally:
        _release(saved, log_fd, buffering)


def _release(saved: tuple[int, int], log_fd: int, buffering: tuple[bool, bool]) -> None:
    """Point fds 1 and 2 back at the terminal and close what `captured` opened, whatever failed."""
    for logger, handler in _routed:
        logger.removeHandler(handler)
    _routed.clear()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os.dup2(saved[0], 1)
    os.dup2(saved[1], 2)
    _reconfigure(sys.stdout, buffering[0])
    _reconfigure(sys.stderr, buffering[1])
    for stream in (_terminal.out, _terminal.err, _terminal.log):
        if stream is not None:
            stream.close()
    for fd in (*saved, log_fd):
        os.close(fd)
    _terminal.out = _terminal.err = _terminal.log = _terminal.log_path = None
