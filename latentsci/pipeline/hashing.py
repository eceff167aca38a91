"""Stable ids for stage configs: the same resolved config and inputs always give the same id."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes, so a moved or re-cloned input keeps its id."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def hashable(value: Any, identity: bool = False) -> Any:
    """Plain JSON data for a config value, with existing files replaced by their content digest;
    `identity` leaves out each config's `execution_fields` (how it runs, not what it computes)."""
    if isinstance(value, BaseModel):
        skip = getattr(type(value), "execution_fields", frozenset()) if identity else ()
        return {name: hashable(getattr(value, name), identity)
                for name in type(value).model_fields if name not in skip}
    if isinstance(value, Path):
        return {"file_sha256": file_digest(value)} if value.is_file() else str(value)
    if isinstance(value, dict):
        return {str(k): hashable(v, identity) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [hashable(v, identity) for v in value]
    return value


def stage_hash(kind: str, version: str, config: BaseModel, input_ids: dict[str, str]) -> str:
    """12-hex id of a stage from its kind, code version, config and upstream stage ids."""
    payload = {"kind": kind, "version": version, "config": hashable(config, identity=True),
               "inputs": input_ids}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted keys, the shape MLflow params want."""
    if not isinstance(data, dict):
        return {prefix: data}
    flat: dict[str, Any] = {}
    for key, value in data.items():
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat
