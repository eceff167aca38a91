"""Stopping a run on SIGINT, SIGTERM or SIGHUP without leaving anything behind.

A driver stopped by Ctrl-C, `kill`, a closed terminal or a batch scheduler unwinds like an error:
its stage's MLflow run is marked KILLED, its embedded Ray is shut down (else its raylet and
workers go on computing, orphaned), its run lock is released and its files are uploaded. The
first signal raises Stopped where the main thread is; a second one is only noted, so it cannot
cut that cleanup short; a third ends the process at once (Ray may then be left running).

Ray turns a KeyboardInterrupt raised while the driver waits in `ray.get` into a plain one, so the
signal is also recorded here: `signal_name` and `exit_code` read it from there.

`latentsci run` waits for its driver without dying first: Ctrl-C reaches the driver from the
terminal, and a SIGTERM or SIGHUP sent to the wrapper alone is handed on.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

STOPPING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_received: list[int] = []  # the stop signals this process got inside stop_on_signals


class Stopped(KeyboardInterrupt):
    """A stop asked for by a signal; unwinds the stack like Ctrl-C does."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _signum(exc: KeyboardInterrupt) -> int:
    """The signal behind a stop: its own, the first one recorded, else SIGINT (Ctrl-C)."""
    return int(getattr(exc, "signum", 0) or (_received[0] if _received else signal.SIGINT))


def signal_name(exc: KeyboardInterrupt) -> str:
    """SIGTERM, SIGINT or SIGHUP: what stopped the run."""
    return signal.Signals(_signum(exc)).name


def exit_code(exc: KeyboardInterrupt) -> int:
    """The shell's code for a process ended by the signal: 128 + its number."""
    return 128 + _signum(exc)


def _on_signal(signum: int, _frame: Any) -> None:
    """First stop signal: raise Stopped; second: noted only; third: exit now."""
    _received.append(signum)
    if len(_received) == 1:
        raise Stopped(signum)
    if len(_received) >= 3:
        os._exit(128 + signum)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGINT, SIGTERM and SIGHUP stop the run as described above (only the
    main thread may set handlers: elsewhere this does nothing)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _received.clear()
    previous = {s: signal.signal(s, _on_signal) for s in STOPPING}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextmanager
def handlers_kept() -> Iterator[None]:
    """Put this process's Python stop handlers back after the block: ray.init's C++ core installs
    a failure handler over SIGTERM that dumps a stack and aborts, so a driver could not clean up."""
    main = threading.current_thread() is threading.main_thread()
    handlers = {s: signal.getsignal(s) for s in STOPPING} if main else {}
    try:
        yield
    finally:
        for signum, handler in handlers.items():
            if callable(handler):
                signal.signal(signum, handler)


def run_forwarding(command: Sequence[str], **popen: Any) -> int:
    """Run a command and let it stop cleanly on each stop signal; its exit code, 128 + N when a
    signal N ended it. The child stays in this process group, so Ctrl-C and a hangup reach it
    from the terminal and a kill of the group ends both; SIGTERM and SIGHUP sent to this process
    alone are handed on (one sent to the group arrives twice: the driver only notes the second).
    Off the main thread, a plain call."""
    if threading.current_thread() is not threading.main_thread():
        return subprocess.call(list(command), **popen)
    children: list[subprocess.Popen] = []
    early: list[int] = []

    def forward(signum: int, _frame: Any) -> None:
        """Hand SIGTERM and SIGHUP on; SIGINT came from the terminal to the child too."""
        if signum == signal.SIGINT:
            return
        if not children:
            early.append(signum)  # before the child exists: sent once it does
        elif children[0].poll() is None:
            children[0].send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in STOPPING}
    try:
        children.append(subprocess.Popen(list(command), **popen))
        for signum in early:
            children[0].send_signal(signum)
        code = children[0].wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 128 - code if code < 0 else code
