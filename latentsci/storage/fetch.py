"""Local copies of files and folders on object storage, for readers that need a real path
(torch.load, RDKit, a model folder): downloaded once per machine and version, then reused."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from pathlib import Path

from latentsci.storage.location import Address, as_address, filesystem
from latentsci.storage.working_copy import cache_root

_LOCK = threading.Lock()
STAMP = ".latentsci-fetched.json"


def _listing(fs, path: str) -> dict[str, str]:
    """Every file under a remote path (or the file itself) with a version that changes when
    the file does."""
    fs.invalidate_cache(path)
    if fs.isfile(path):
        info = fs.info(path)
        return {"": str(info.get("ETag") or info.get("size"))}
    found = fs.find(path, detail=True)
    base = path.rstrip("/") + "/"
    return {p[len(base):]: str(i.get("ETag") or i.get("size")) for p, i in found.items()
            if i.get("type") == "file"}


def fetched(value: str | Path | Address) -> Path:
    """A local path holding what `value` addresses: the path itself when local, else a copy
    in LATENTSCI_CACHE (refreshed when the remote files change)."""
    target = as_address(value)
    if isinstance(target, Path):
        return target
    fs, path = filesystem(target)
    listing = _listing(fs, path)
    if not listing:
        raise FileNotFoundError(f"{target}: nothing there")
    key = hashlib.sha256(target.encode()).hexdigest()[:16]
    folder = cache_root().parent / "objects" / key
    local = folder / (Path(path).name if "" in listing else "tree")
    stamp = folder / STAMP
    with _LOCK:
        try:
            if json.loads(stamp.read_text()) == listing:
                return local
        except (OSError, ValueError):
            pass
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        if "" in listing:
            fs.get_file(path, str(local))
        else:
            for relative in listing:
                out = local / relative
                out.parent.mkdir(parents=True, exist_ok=True)
                fs.get_file(f"{path.rstrip('/')}/{relative}", str(out))
        stamp.write_text(json.dumps(listing))
    return local
