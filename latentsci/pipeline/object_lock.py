"""The run lock of a run directory on object storage, built on what object stores offer.

No flock there: the lock object is created with a conditional write (`If-None-Match: *` on S3),
so of two runs starting together exactly one creates it. The holder rewrites it every
HEARTBEAT_S; a lock whose last heartbeat is older than STALE_AFTER_S (or, on the same host,
whose process is gone) belongs to a dead run and is taken over: deleted, then created anew
with the same conditional write. What this weakens against a local lock is written down in
cluster/README.md: two runs taking over the same stale lock in the same instant can both
delete it before either creates, and a holder paused longer than STALE_AFTER_S (a frozen VM)
can be taken over while it still runs.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict

from latentsci.errors import RunLockError
from latentsci.pipeline.run_lock import HEARTBEAT_S, LOCK_NAME, STALE_AFTER_S, LockHolder
from latentsci.storage.location import filesystem, join


class ObjectRunLock:
    """The lock of one run directory at an object-store URL; a context manager like RunLock."""

    def __init__(self, root: str):
        self.address = join(root, LOCK_NAME)
        self.fs, self.key = filesystem(self.address)
        self.took_over: LockHolder | None = None
        self.mine: bytes | None = None
        self._stop = threading.Event()

    def _body(self) -> bytes:
        """This process as the lock's content, with the time of this heartbeat."""
        return json.dumps({**asdict(LockHolder.me()), "beat": time.time()}).encode()

    def _read(self) -> tuple[LockHolder | None, float]:
        """The holder in the lock object and its last heartbeat (0 when unreadable)."""
        try:
            data = json.loads(self.fs.cat_file(self.key))
        except FileNotFoundError:
            return None, time.time()
        except ValueError:
            return None, 0.0
        beat = float(data.pop("beat", 0.0))
        try:
            return LockHolder(**data), beat
        except TypeError:
            return None, beat

    def _create(self) -> bool:
        """Create the lock object if no one has; False if it is already there."""
        body = self._body()
        try:
            self.fs.pipe_file(self.key, body, mode="create")
        except FileExistsError:
            return False
        self.mine = body
        return True

    def acquire(self) -> ObjectRunLock:
        """Take the lock, or take over a stale one; refuse while a live run holds it."""
        for _ in range(3):
            if self._create():
                break
            holder, beat = self._read()
            age = time.time() - beat
            gone = holder.gone(age) if holder is not None else age > STALE_AFTER_S
            if not gone:
                who = holder.describe() if holder else "a run whose lock is unreadable"
                raise RunLockError(
                    f"{self.address}: another run is using this run directory ({who}); wait "
                    f"for it to end, or it is taken over {STALE_AFTER_S:g} s after its last "
                    "heartbeat")
            self.took_over = holder
            self.fs.rm_file(self.key)
        else:
            raise RunLockError(f"{self.address}: could not take the lock (others kept taking "
                               "it first); try again")
        self._stop.clear()
        threading.Thread(target=self._heartbeat, name="run-lock", daemon=True).start()
        return self

    def _heartbeat(self) -> None:
        """Rewrite the lock while the run lasts, unless someone else took it over."""
        while not self._stop.wait(HEARTBEAT_S):
            try:
                if self.fs.cat_file(self.key) != self.mine:
                    return  # taken over: never overwrite another run's lock
                body = self._body()
                self.fs.pipe_file(self.key, body)
                self.mine = body
            except Exception:  # a missed beat only brings staleness closer
                continue

    def release(self) -> None:
        """Delete the lock object if it is still this run's."""
        if self.mine is None:
            return
        self._stop.set()
        try:
            if self.fs.cat_file(self.key) == self.mine:
                self.fs.rm_file(self.key)
        except FileNotFoundError:
            pass
        self.mine = None

    def __enter__(self) -> ObjectRunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def run_lock(root):
    """The lock that fits the run directory: flock locally, conditional writes elsewhere."""
    from pathlib import Path

    from latentsci.pipeline.run_lock import RunLock

    return RunLock(root) if isinstance(root, Path) else ObjectRunLock(root)
