"""The driver's working copy of a run directory on object storage.

Stages write their small outputs (tables, plots, models, the manifest, MLflow's SQLite file and
artifacts, the run's log) as local files; the working copy is uploaded after every finished
stage and when the run ends, and downloaded when a run starts, so a driver on a fresh machine
(a new head pod) picks up where the last one stopped. Training checkpoints (`state/`) never
travel through it, and stores (`*.zarr`) only up: Ray tasks and Ray Train workers on every
node write them in place at their URL, and readers read them there. A local run directory is its own working copy: pull and push
then have nothing to move.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path, PurePosixPath

from latentsci.errors import StorageError
from latentsci.storage.location import Address, filesystem, join, reason

INDEX = ".latentsci-sync.json"  # what was last moved, so only changed files move again
NOT_COPIED_TOP = frozenset({"state", "run.lock", INDEX})  # written in place, or local only
STORE_SUFFIX = ".zarr"


def cache_root() -> Path:
    """Where working copies live: LATENTSCI_CACHE, else ~/.cache/latentsci/runs."""
    base = os.environ.get("LATENTSCI_CACHE") or Path.home() / ".cache" / "latentsci"
    return Path(base) / "runs"


def travels(relative: str, stores: bool = False) -> bool:
    """Whether a file of the run directory goes through the working copy: never a
    checkpoint's; a store's only on the way up (`stores`), when the driver wrote it locally
    (stores that Ray tasks write are at their URL already, never in the working copy)."""
    parts = PurePosixPath(relative).parts
    if not parts or parts[0] in NOT_COPIED_TOP:
        return False
    return stores or not any(part.endswith(STORE_SUFFIX) for part in parts)


class WorkingCopy:
    """A run directory (`root`) and the local folder the driver writes it through (`local`)."""

    def __init__(self, root: Address, cache: Path | None = None):
        self.root = root
        if isinstance(root, Path):
            self.local = root
        else:
            key = hashlib.sha256(root.encode()).hexdigest()[:16]
            self.local = (cache or cache_root()) / key  # made when the run starts, not here

    @property
    def mirrored(self) -> bool:
        """True when the run directory is elsewhere and files have to move."""
        return self.local != self.root

    def address_of(self, value: str | Path) -> Address:
        """Where a file the driver wrote locally lives in the run directory (other addresses,
        a store's URL say, are returned as they are)."""
        if isinstance(value, str) and "://" in value:
            return value
        path = Path(value)
        if not self.mirrored or not path.is_relative_to(self.local):
            return path
        return join(self.root, *path.relative_to(self.local).parts)

    def local_of(self, value: str | Path) -> str | Path:
        """The local copy of a run directory file (a store keeps its URL: it is read in place)."""
        text = str(value)
        prefix = str(self.root).rstrip("/") + "/"
        if not self.mirrored or not text.startswith(prefix):
            return value
        relative = text[len(prefix):]
        return self.local / relative if travels(relative) else text

    def _index(self) -> dict[str, dict]:
        """Per relative path: the local (size, mtime) and remote version last moved."""
        try:
            return json.loads((self.local / INDEX).read_text())
        except (OSError, ValueError):
            return {}

    def _save_index(self, index: dict[str, dict]) -> None:
        """Write the index (a local file; never uploaded)."""
        self.local.mkdir(parents=True, exist_ok=True)
        (self.local / INDEX).write_text(json.dumps(index))

    def _remote_files(self) -> dict[str, dict]:
        """Every file of the run directory that travels, by relative path, with its info; the
        walk never descends into stores or checkpoints (thousands of objects each)."""
        fs, base = filesystem(self.root)
        base = base.rstrip("/")
        fs.invalidate_cache(base)
        out = {}
        for folder, dirs, files in fs.walk(base, detail=True, on_error="raise"):
            inside = folder.rstrip("/")[len(base) + 1:]
            for name in list(dirs):
                if not travels(f"{inside}/{name}".lstrip("/") + "/x"):
                    del dirs[name]
            for name, info in files.items():
                relative = f"{inside}/{name}".lstrip("/")
                if travels(relative):
                    out[relative] = info
        return out

    def _local_files(self, under: Path | None = None) -> dict[str, os.stat_result]:
        """Every local file that travels (under `under` only, if given), by relative path."""
        top = under or self.local
        candidates = [top] if top.is_file() else top.rglob("*")
        out = {}
        for path in candidates:
            relative = path.relative_to(self.local).as_posix()
            if path.is_file() and travels(relative, stores=True):
                out[relative] = path.stat()
        return out

    def pull(self) -> int:
        """Download the files that changed in the run directory since they were last moved;
        returns how many."""
        if not self.mirrored:
            return 0
        try:
            return self._pull()
        except FileNotFoundError:  # a new run directory: nothing there yet
            return 0
        except Exception as exc:  # botocore, aiohttp and fsspec each raise their own
            raise StorageError(f"{self.root}: downloading the run directory failed "
                               f"({reason(exc)}); nothing was run") from None

    def _pull(self) -> int:
        """`pull`, its errors not yet turned into one line. A file changed here and not there
        (an upload that failed) is kept, to be uploaded; one changed there wins."""
        fs, base = filesystem(self.root)
        index, moved = self._index(), 0
        local = self._local_files()
        for relative, info in self._remote_files().items():
            seen = index.get(relative, {})
            if seen.get("remote") == remote_version(info) and relative in local:
                continue  # unchanged there: the local file is as new or newer
            target = self.local / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            fs.get_file(f"{base}/{relative}", str(target))
            index[relative] = {"local": _local_version(target.stat()),
                               "remote": remote_version(info)}
            moved += 1
        self._save_index(index)
        return moved

    def push(self, under: Path | None = None) -> int:
        """Upload the local files (under `under`, if given) that changed since they were last
        moved; returns how many."""
        if not self.mirrored:
            return 0
        try:
            return self._push(under)
        except Exception as exc:  # botocore, aiohttp and fsspec each raise their own
            raise StorageError(f"{self.root}: uploading the run's files failed ({reason(exc)}); "
                               f"they stay in {self.local}, and a rerun with the bucket back "
                               "uploads them") from None

    def _push(self, under: Path | None) -> int:
        """`push`, its errors not yet turned into one line."""
        fs, base = filesystem(self.root)
        index, moved = self._index(), 0
        try:
            for relative, stat in self._local_files(under).items():
                if index.get(relative, {}).get("local") == _local_version(stat):
                    continue
                key = f"{base}/{relative}"
                fs.put_file(str(self.local / relative), key)
                fs.invalidate_cache(key)
                index[relative] = {"local": _local_version(stat),
                                   "remote": remote_version(fs.info(key))}
                moved += 1
        finally:  # what landed is remembered even when a later file fails
            if moved:
                self._save_index(index)
        return moved


def _local_version(stat: os.stat_result) -> list[int]:
    """A local file's identity for change detection: size and modification time."""
    return [stat.st_size, stat.st_mtime_ns]


def remote_version(info: dict) -> str:
    """A remote file's identity: its ETag where the store gives one, else size and time."""
    for key in ("ETag", "etag", "md5Hash", "generation"):
        if info.get(key):
            return str(info[key])
    return f"{info.get('size')}:{info.get('LastModified') or info.get('mtime') or ''}"
