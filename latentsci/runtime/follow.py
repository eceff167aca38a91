"""Live training curves: the driver reads each new epoch from the run's checkpoints while Ray Train
runs, so MLflow and the console show progress during a long run, not only after it.

Checkpoints already land in the run's storage folder (shared storage on a cluster), and each
carries the run's history, so nothing extra travels from the workers.
"""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from latentsci.storage.location import Address, filesystem


class EpochFeed:
    """Hands each epoch of a run's history to `on_epoch` once, in order, from whichever source
    shows it first (a checkpoint seen while training, or the final history)."""

    def __init__(self, on_epoch: Callable[[dict], None]) -> None:
        self.on_epoch = on_epoch
        self.last = -1  # the last epoch handed on
        self.lock = threading.Lock()

    def offer(self, history: list[dict]) -> None:
        """Hand on the epochs of `history` that come after the last one handed on."""
        with self.lock:
            for row in history:
                if int(row["epoch"]) > self.last:
                    self.on_epoch(row)
                    self.last = int(row["epoch"])


def checkpoint_folders(run_folder: Address) -> list[str]:
    """A run's checkpoint folders (paths in their filesystem), oldest first (Ray names them by
    time; its checkpoint_manager_snapshot.json beside them is no checkpoint)."""
    fs, path = filesystem(run_folder)
    fs.invalidate_cache(path)
    try:
        found = fs.glob(f"{path.rstrip('/')}/checkpoint_*", detail=True)
    except (OSError, ValueError):
        return []
    return sorted(p for p, info in found.items() if info.get("type") == "directory")


def newest_history(run_folder: Address) -> list[dict]:
    """The history in the newest readable checkpoint of a run ([] while there is none); a
    checkpoint still being copied or already pruned is skipped."""
    fs, _ = filesystem(run_folder)
    for folder in reversed(checkpoint_folders(run_folder)):
        try:
            return json.loads(fs.cat_file(f"{folder}/meta.json"))["history"]
        except (OSError, ValueError, KeyError):
            continue
    return []


def _offer_newest(run_folder: Address, feed: EpochFeed) -> bool:
    """Offer the newest history; False (with a warning) if handing it on failed."""
    try:
        feed.offer(newest_history(run_folder))
        return True
    except Exception as exc:  # a curve must never stop training
        warnings.warn(f"live training curves stopped: {exc}", stacklevel=1)
        return False


@contextmanager
def following(run_folder: Address, feed: EpochFeed, every_s: float = 5.0) -> Iterator[None]:
    """While the block runs, offer the newest checkpoint's history to `feed` every `every_s`,
    and once more when it ends (so a crashed run still logs the epochs it finished)."""
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(every_s) and _offer_newest(run_folder, feed):
            pass

    thread = threading.Thread(target=poll, name="epoch-feed", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        _offer_newest(run_folder, feed)
