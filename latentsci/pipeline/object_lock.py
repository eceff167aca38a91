"""The run lock of a run directory on object storage, built on what object stores offer.

No flock there: the lock object is created with a conditional write (`If-None-Match: *` on S3),
so of two runs starting together exactly one creates it. The holder rewrites it every
HEARTBEAT_S; a lock whose last heartbeat is older than STALE_AFTER_S (or, on the same host,
whose process is gone) belongs to a dead run and is taken over: deleted, then created anew
with the same conditional write. What this weakens against a local lock is written down in
cluster/README.md: two runs taking over the same stale lock in the same instant can both
delete it before either creates (a slow taker can even delete a lock another run has just
created), and a holder paused longer than STALE_AFTER_S (a frozen VM) can be taken over while it
still runs; its heartbeat then sees the lock is not its own and stops rewriting it. A store that
ignores `If-None-Match` gives no exclusion at all.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict

from latentsci.errors import RunLockError, StorageError
from latentsci.pipeline.run_lock import HEARTBEAT_S, LOCK_NAME, STALE_AFTER_S, LockHolder
from latentsci.storage.location import filesystem, join, reason


class ObjectRunLock:
    """The lock of one run directory at an object-store URL; a context manager like RunLock."""

    def __init__(self, root: str):
        self.address = join(root, LOCK_NAME)
        self.fs, self.key = filesystem(self.address)
        self.took_over: LockHolder | None = None
        self.mine: bytes | None = None
        self._stop = threading.Event()
        self._beats: threading.Thread | None = None

    def _body(self) -> bytes:
        """This process as the lock's content, with the time of this heartbeat."""
        return json.dumps({**asdict(LockHolder.me()), "beat": time.time()}).encode()

    def _read(self) -> tuple[LockHolder | None, float] | None:
        """The holder in the lock object and its last heartbeat (0 when unreadable); None when
        the lock is gone again (its holder released it meanwhile)."""
        try:
            data = json.loads(self.fs.cat_file(self.key))
        except FileNotFoundError:
            return None
        except ValueError:
            return None, 0.0
        beat = float(data.pop("beat", 0.0))
        try:
            return LockHolder(**data), beat
        except TypeError:
            return None, beat

    def _create(self) -> bool:
        """Create the lock object if no one has; False if it is already there (or another
        run's create of it is in flight: S3's 409 ConditionalRequestConflict)."""
        body = self._body()
        try:
            self.fs.pipe_file(self.key, body, mode="create")
        except FileExistsError:
            return False
        except Exception as exc:  # botocore, aiohttp and fsspec each raise their own
            if "ConditionalRequestConflict" in str(exc) or "409" in str(exc):
                return False
            raise StorageError(f"{self.address}: cannot write the run lock "
                               f"({reason(exc)})") from None
        self.mine = body
        return True

    def acquire(self) -> ObjectRunLock:
        """Take the lock, or take over a stale one; refuse while a live run holds it."""
        for _ in range(5):
            if self._create():
                break
            found = self._read()
            if found is None:  # released between our create and our read: try again
                continue
            holder, beat = found
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
        self._beats = threading.Thread(target=self._heartbeat, name="run-lock", daemon=True)
        self._beats.start()
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
        """Stop the heartbeat (so no beat can bring the lock back), then delete the lock object
        if it is still this run's. A bucket that is gone leaves the lock to go stale."""
        if self.mine is None:
            return
        self._stop.set()
        if self._beats is not None:
            self._beats.join()
        try:
            if self.fs.cat_file(self.key) == self.mine:
                self.fs.rm_file(self.key)
        except Exception:  # lost bucket: the lock goes stale in STALE_AFTER_S and is taken over
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
