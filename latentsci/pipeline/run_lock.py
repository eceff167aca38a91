"""One run at a time per run directory: a lock file naming its holder, taken over when stale.

The lock is `RUN_DIR/run.lock`, holding the holder's PID, host, start time and command line, and
held with `flock` while the run lasts, so the kernel frees it the moment the holder dies (even by
SIGKILL). A second run finds the flock taken and is refused with one line naming the first. A run
that finds the file left behind by a holder that is gone (same host, and that PID is no longer
the process that wrote it) takes it over, so "kill the driver, rerun" just works. A lock written
on another host (a new head pod after a RayJob retry, say) cannot have its PID checked from here:
the holder touches the file every HEARTBEAT_S seconds, and one left untouched for STALE_AFTER_S
is stale; a fresh one is refused, with the file to delete named.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from latentsci.errors import RunLockError

LOCK_NAME = "run.lock"
HEARTBEAT_S = 10.0  # how often a holder touches its lock file
STALE_AFTER_S = 60.0  # a lock from another host untouched this long belongs to a dead run


def process_start_ticks(pid: int) -> int | None:
    """When a process started (clock ticks since boot, from /proc), or None if there is no such
    process or no /proc: with the PID it names one process even after PIDs are reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name in brackets may hold spaces: count fields after its closing bracket.
    return int(stat.rpartition(")")[2].split()[19])


def pid_alive(pid: int) -> bool:
    """True while a process with this PID exists (on this host)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


@dataclass(frozen=True)
class LockHolder:
    """Who holds (or held) a run directory's lock."""

    pid: int
    host: str
    started: str
    command: str
    process_start: int | None = None

    @classmethod
    def me(cls) -> LockHolder:
        """This process, as it writes itself into the lock."""
        return cls(pid=os.getpid(), host=socket.gethostname(),
                   started=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                   command=" ".join(sys.argv)[:300], process_start=process_start_ticks(os.getpid()))

    def describe(self) -> str:
        """The holder in a few words, for one-line messages."""
        return f"pid {self.pid} on {self.host}, started {self.started}: {self.command}"

    def gone(self, untouched_s: float = 0.0) -> bool | None:
        """True if this holder's process no longer exists, False if it does; for a holder on
        another host, True once its lock went `untouched_s` > STALE_AFTER_S without a
        heartbeat, else None (it cannot be checked from here)."""
        if self.host != socket.gethostname():
            return True if untouched_s > STALE_AFTER_S else None
        if not pid_alive(self.pid):
            return True
        now = process_start_ticks(self.pid)
        return self.process_start is not None and now is not None and now != self.process_start


class RunLock:
    """The lock of one run directory; use as a context manager around a whole run."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK_NAME
        self.fd: int | None = None
        self.took_over: LockHolder | None = None  # the stale holder replaced, if any
        self._stop = threading.Event()

    def _read(self, fd: int) -> LockHolder | None:
        """The holder written in the open lock file, or None when it is empty or unreadable."""
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 4096).decode(errors="replace").strip()
        try:
            return LockHolder(**json.loads(text)) if text else None
        except (ValueError, TypeError):
            return None

    def _open_locked(self) -> int:
        """Open the lock file and flock it; refuse when a live run holds it."""
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = self._read(fd)
                os.close(fd)
                who = holder.describe() if holder else "a run that has not written its name yet"
                raise RunLockError(f"{self.path.parent}: another run is using this run directory "
                                   f"({who}); wait for it to end or pass another --run-dir"
                                   ) from None
            except OSError:  # a filesystem without locks: the file's contents decide alone
                return fd
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                return fd
            os.close(fd)  # the holder released (and removed) it while we waited: open anew

    def acquire(self) -> RunLock:
        """Take the lock (or take over a stale one) and write this process into it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = self._open_locked()
        previous = self._read(fd)
        if previous is not None and previous.pid != os.getpid():
            gone = previous.gone(time.time() - os.fstat(fd).st_mtime)
            if not gone:
                os.close(fd)
                hint = (f"it is taken over {STALE_AFTER_S:g} s after its last heartbeat, or "
                        f"delete {self.path} if that run is gone" if gone is None
                        else "wait for it to end or pass another --run-dir")
                raise RunLockError(f"{self.path.parent}: another run is using this run directory "
                                   f"({previous.describe()}); {hint}")
            self.took_over = previous
        data = json.dumps(asdict(LockHolder.me())).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
        os.fsync(fd)
        self.fd = fd
        self._stop.clear()
        threading.Thread(target=self._heartbeat, name="run-lock", daemon=True).start()
        return self

    def _heartbeat(self) -> None:
        """Touch the lock file while the run lasts, so other hosts can tell it is alive."""
        while not self._stop.wait(HEARTBEAT_S):
            try:
                os.utime(self.path)
            except OSError:
                pass

    def release(self) -> None:
        """Remove the lock file, then drop the flock (in that order, so no one locks a file
        that is about to vanish without noticing: they check the inode)."""
        if self.fd is None:
            return
        self._stop.set()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
