"""The driver's working copy of a run directory on object storage.

Stages write their small outputs (tables, plots, models, the manifest, MLflow's SQLite file and
artifacts, the run's log) as local files; the working copy is uploaded after every finished
stage and when the run ends, and downloaded when a run starts, so a driver on a fresh machine
(a new head pod) picks up where the last one stopped. Stores (`*.zarr`) and training
checkpoints (`state/`) never travel through it: Ray tasks and Ray Train workers on every node
write them in place at their URL. A local run directory is its own working copy: pull and push
then have nothing to move.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path, PurePosixPath

from latentsci.errors import StorageError
from latentsci.storage.location import Address, filesystem, join

INDEX = ".latentsci-sync.json"  # what was last moved, so only changed files move again
NOT_COPIED_TOP = frozenset({"state", "run.lock", INDEX})  # written in place, or local only
STORE_SUFFIX = ".zarr"


def cache_root() -> Path:
    """Where working copies live: LATENTSCI_CACHE, else ~/.cache/latentsci/runs."""
    base = os.environ.get("LATENTSCI_CACHE") or Path.home() / ".cache" / "latentsci"
    return Path(base) / "runs"


def travels(relative: str) -> bool:
    """Whether a file of the run directory goes through the working copy (not a store's or a
    checkpoint's)."""
    parts = PurePosixPath(relative).parts
    if not parts or parts[0] in NOT_COPIED_TOP:
        return False
    return not any(part.endswith(STORE_SUFFIX) for part in parts)


class WorkingCopy:
    """A run directory (`root`) and the local folder the driver writes it through (`local`)."""

    def __init__(self, root: Address, cache: Path | None = None):
        self.root = root
        if isinstance(root, Path):
            self.local = root
        else:
            key = hashlib.sha256(root.encode()).hexdigest()[:16]
            self.local = (cache or cache_root()) / key
        self.local.mkdir(parents=True, exist_ok=True)

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
        (self.local / INDEX).write_text(json.dumps(index))

    def _remote_files(self) -> dict[str, dict]:
        """Every file of the run directory that travels, by relative path, with its info."""
        fs, base = filesystem(self.root)
        fs.invalidate_cache(base)
        if not fs.exists(base):
            return {}
        found = fs.find(base, detail=True)
        out = {}
        for path, info in found.items():
            relative = path[len(base.rstrip("/")) + 1:]
            if info.get("type") == "file" and travels(relative):
                out[relative] = info
        return out

    def _local_files(self) -> dict[str, os.stat_result]:
        """Every local file that travels, by relative path."""
        out = {}
        for path in self.local.rglob("*"):
            relative = path.relative_to(self.local).as_posix()
            if path.is_file() and travels(relative):
                out[relative] = path.stat()
        return out

    def pull(self) -> int:
        """Download the files that changed in the run directory since they were last moved;
        returns how many."""
        if not self.mirrored:
            return 0
        try:
            return self._pull()
        except Exception as exc:  # botocore, aiohttp and fsspec each raise their own
            raise StorageError(f"{self.root}: downloading the run directory failed "
                               f"({_reason(exc)}); nothing was run") from None

    def _pull(self) -> int:
        """`pull`, its errors not yet turned into one line."""
        fs, base = filesystem(self.root)
        index, moved = self._index(), 0
        local = self._local_files()
        for relative, info in self._remote_files().items():
            seen = index.get(relative, {})
            here = local.get(relative)
            same_here = here is not None and seen.get("local") == _local_version(here)
            if same_here and seen.get("remote") == _remote_version(info):
                continue
            target = self.local / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            fs.get_file(f"{base}/{relative}", str(target))
            index[relative] = {"local": _local_version(target.stat()),
                               "remote": _remote_version(info)}
            moved += 1
        self._save_index(index)
        return moved

    def push(self) -> int:
        """Upload the local files that changed since they were last moved; returns how many."""
        if not self.mirrored:
            return 0
        try:
            return self._push()
        except Exception as exc:  # botocore, aiohttp and fsspec each raise their own
            raise StorageError(f"{self.root}: uploading the run's files failed ({_reason(exc)}); "
                               f"they stay in {self.local}, and a rerun with the bucket back "
                               "uploads them") from None

    def _push(self) -> int:
        """`push`, its errors not yet turned into one line."""
        fs, base = filesystem(self.root)
        index, changed = self._index(), []
        for relative, stat in self._local_files().items():
            if index.get(relative, {}).get("local") != _local_version(stat):
                fs.put_file(str(self.local / relative), f"{base}/{relative}")
                changed.append((relative, stat))
        if changed:
            remote = self._remote_files()
            for relative, stat in changed:
                index[relative] = {"local": _local_version(stat),
                                   "remote": _remote_version(remote.get(relative, {}))}
            self._save_index(index)
        return len(changed)


def _reason(exc: Exception) -> str:
    """An exception's first line, or its type when it has no message."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _local_version(stat: os.stat_result) -> list[int]:
    """A local file's identity for change detection: size and modification time."""
    return [stat.st_size, stat.st_mtime_ns]


def _remote_version(info: dict) -> str:
    """A remote file's identity: its ETag where the store gives one, else size and time."""
    for key in ("ETag", "etag", "md5Hash", "generation"):
        if info.get(key):
            return str(info[key])
    return f"{info.get('size')}:{info.get('LastModified') or info.get('mtime') or ''}"
