"""Local copies of files and folders on object storage, for readers that need a real path
(torch.load, a model folder): downloaded once per machine and version, then reused.

Each version lands in a folder of its own, named by the remote files' versions, through a
temporary folder renamed into place: several Ray workers on one node may ask at once, and
none ever sees a half-written copy or has one deleted under it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path

from latentsci.storage.location import Address, as_address, filesystem
from latentsci.storage.working_copy import cache_root, remote_version


def _listing(fs, path: str) -> dict[str, str]:
    """Every file under a remote path ("" for the path itself when it is a file), with a
    version that changes when the file does."""
    fs.invalidate_cache(path)
    if fs.isfile(path):
        return {"": remote_version(fs.info(path))}
    found = fs.find(path, detail=True)
    base = path.rstrip("/") + "/"
    return {p[len(base):]: remote_version(i) for p, i in found.items() if i.get("type") == "file"}


def fetched(value: str | Path | Address) -> Path:
    """A local path holding what `value` addresses: the path itself when local, else a copy
    under LATENTSCI_CACHE (a new one when the remote files change)."""
    target = as_address(value)
    if isinstance(target, Path):
        return target
    fs, path = filesystem(target)
    listing = _listing(fs, path)
    if not listing:
        raise FileNotFoundError(f"{target}: nothing there")
    home = cache_root().parent / "objects" / hashlib.sha256(target.encode()).hexdigest()[:16]
    version = hashlib.sha256(json.dumps(listing, sort_keys=True).encode()).hexdigest()[:16]
    name = Path(path).name if "" in listing else "tree"
    final = home / version
    if final.is_dir():
        return final / name
    part = home / f".part-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    part.mkdir(parents=True)
    try:
        if "" in listing:
            fs.get_file(path, str(part / name))
        for relative in (r for r in listing if r):
            out = part / name / relative
            out.parent.mkdir(parents=True, exist_ok=True)
            fs.get_file(f"{path.rstrip('/')}/{relative}", str(out))
        os.rename(part, final)
    except OSError:
        if not final.is_dir():  # not another process finishing first: a real failure
            raise
    finally:
        shutil.rmtree(part, ignore_errors=True)
    return final / name
