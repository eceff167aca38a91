"""Stopping a run on SIGINT or SIGTERM without leaving anything behind.

A driver stopped by Ctrl-C, `kill`, a batch scheduler or `ray job stop` unwinds like an error:
its stage's MLflow run is marked FAILED, its embedded Ray is shut down (else its raylet and
workers go on computing, orphaned), its run lock is released and its files are uploaded. SIGTERM
is turned into the same exception Ctrl-C raises. `latentsci run` starts the driver in a process
group of its own and hands it each signal once, so it has time to clean up.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

STOPPING = (signal.SIGINT, signal.SIGTERM)


class Stopped(KeyboardInterrupt):
    """A stop asked for by a signal; unwinds the stack like Ctrl-C does."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def signal_name(exc: KeyboardInterrupt) -> str:
    """SIGTERM for a Stopped(SIGTERM), else SIGINT (a plain KeyboardInterrupt is Ctrl-C)."""
    return signal.Signals(getattr(exc, "signum", signal.SIGINT)).name


def exit_code(exc: KeyboardInterrupt) -> int:
    """The shell's code for a process ended by the signal: 128 + its number."""
    return 128 + int(getattr(exc, "signum", signal.SIGINT))


def _raise_stopped(signum: int, _frame: Any) -> None:
    """Signal handler: stop where the main thread is."""
    raise Stopped(signum)


@contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """Within the block, SIGTERM raises Stopped in the main thread, as SIGINT raises
    KeyboardInterrupt (only the main thread may set handlers: elsewhere this does nothing)."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_stopped)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_forwarding(command: Sequence[str], **popen: Any) -> int:
    """Run a command in its own process group and pass it each SIGINT and SIGTERM this process
    gets (Ctrl-C reaches only the terminal's foreground group: the child sees it once); its
    exit code, 128 + N when a signal N ended it."""
    child = subprocess.Popen(list(command), process_group=0, **popen)

    def forward(signum: int, _frame: Any) -> None:
        """Hand the signal on; the child decides how to stop."""
        if child.poll() is None:
            child.send_signal(signum)  # the driver only: it shuts its own Ray down

    previous = {s: signal.signal(s, forward) for s in STOPPING}
    try:
        code = child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 128 - code if code < 0 else code

