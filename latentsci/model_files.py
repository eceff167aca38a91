"""The shared shape of a saved latentsci model: a folder with model.pt (weights) and meta.json."""

from __future__ import annotations

import json
from pathlib import Path

from latentsci.errors import LatentsciError


def model_folder(folder: str | Path) -> Path:
    """A model folder as a local path: itself, or for an object-store URL (a model in a run
    directory on S3, read by a Ray task on any node) a cached copy."""
    from latentsci.storage.fetch import fetched

    return fetched(folder)


def read_meta_json(folder: Path, missing: str, error: type[LatentsciError]) -> dict:
    """The parsed meta.json of a folder holding model.pt beside it, or one line of `error`."""
    folder = model_folder(folder)
    meta_path = folder / "meta.json"
    if not (folder / "model.pt").is_file() or not meta_path.is_file():
        raise error(f"{folder}: not {missing} (expected model.pt and meta.json)")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise error(f"{meta_path}: not valid JSON") from None
    return meta if isinstance(meta, dict) else {}


def read_model_meta(folder: Path, expected_format: str, what: str, missing: str,
                    error: type[LatentsciError]) -> dict:
    """meta.json of a model folder whose format is `expected_format`, or one line of `error`
    saying why not (`missing` and `what` name the kind of model in those lines)."""
    meta = read_meta_json(folder, missing, error)
    found = meta.get("format")
    if found != expected_format:
        raise error(f"{folder}: not {what} (format {found!r}, expected {expected_format!r})")
    return meta
