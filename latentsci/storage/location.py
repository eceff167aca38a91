"""Addresses of run directories, stores and checkpoints: a local path or an fsspec URL
(`s3://bucket/runs/x`, `gs://...`, `file:///abs/path`), one code path for all of them.

A local address stays a `Path` (so local runs keep POSIX locks and renames); any other scheme
stays the URL string and is reached through fsspec. Credentials and endpoints come from the
environment each process already has (AWS_* variables, instance roles), never from a file or a
parameter of ours.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from latentsci.errors import ConfigError

Address = Path | str
"""A local folder or file (Path) or an object-store URL (str)."""

MANGLED = re.compile(r"^(s3|s3a|gs|gcs|az|abfs|abfss|http|https):/[^/]")


def is_url(address: Address) -> bool:
    """True for an address on object storage (any scheme but file://)."""
    return isinstance(address, str) and "://" in address and not address.startswith("file://")


def address(value: str | Path) -> Address:
    """The canonical form: `file://` URLs and plain paths become absolute Paths, other URLs
    stay strings without a trailing slash."""
    text = str(value)
    if text.startswith("file://"):
        return Path(text[len("file://"):]).resolve()
    if "://" in text:
        scheme = text.split("://", 1)[0]
        _filesystem_class(scheme, text)
        return text.rstrip("/")
    return Path(text).resolve()


def as_address(value: str | Path) -> Address:
    """A store's or file's address as given: a URL string, or a Path (relative kept)."""
    text = str(value)
    if text.startswith("file://"):
        return Path(text[len("file://"):])
    if "://" in text:
        return text.rstrip("/")
    if MANGLED.match(text):  # Path("s3://b/x") is "s3:/b/x": a bug upstream, not a local path
        raise ValueError(f"{text!r}: a URL that went through pathlib.Path and lost a slash")
    return Path(value)


def _filesystem_class(scheme: str, text: str) -> Any:
    """fsspec's implementation of a scheme, or one line saying what to install."""
    import fsspec

    try:
        return fsspec.get_filesystem_class(scheme)
    except (ValueError, ImportError) as exc:
        raise ConfigError(f"{text}: no filesystem for '{scheme}://' ({exc}); s3:// needs the "
                          "s3fs package, gs:// gcsfs") from None


def join(base: Address, *parts: str) -> Address:
    """`base/part/...` for either kind of address."""
    if isinstance(base, Path):
        return base.joinpath(*parts)
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])


def filesystem(target: Address) -> tuple[Any, str]:
    """The fsspec filesystem holding an address, and the address's path inside it."""
    import fsspec.core

    if isinstance(target, Path):
        return fsspec.filesystem("file"), str(target)
    fs, path = fsspec.core.url_to_fs(target)
    return fs, path


def exists(target: Address) -> bool:
    """Whether a file or folder is there (a folder on object storage: any object under it)."""
    if isinstance(target, Path):
        return target.exists()
    fs, path = filesystem(target)
    fs.invalidate_cache(path)
    return bool(fs.exists(path))


def remove(target: Address) -> None:
    """Delete a file or folder if it is there."""
    fs, path = filesystem(target)
    if exists(target):
        fs.rm(path, recursive=True)


def read_text(target: Address) -> str:
    """A whole small file as text."""
    if isinstance(target, Path):
        return target.read_text()
    fs, path = filesystem(target)
    return fs.cat_file(path).decode()


def for_ray_train(target: Address) -> tuple[str, Any]:
    """(storage_path, storage_filesystem) for Ray Train's RunConfig: a local folder as it is
    (Ray's own fast local copy), any other address through the same fsspec filesystem the
    rest of the run uses, wrapped for pyarrow."""
    if isinstance(target, Path):
        return str(target.resolve()), None
    import pyarrow.fs as pafs

    fs, path = filesystem(target)
    return path, pafs.PyFileSystem(pafs.FSSpecHandler(fs))


def shown(target: Address) -> str:
    """How an address is printed: the path or the URL."""
    return str(target)


def check_reachable(target: Address) -> None:
    """One line before any work when an object-store address cannot be used (no such bucket,
    no credentials, no endpoint); local folders are made as they are needed."""
    if isinstance(target, Path):
        return
    fs, path = filesystem(target)
    bucket = path.split("/", 1)[0]
    try:
        fs.ls(bucket, detail=False)
    except Exception as exc:  # botocore, aiohttp and fsspec each raise their own
        raise ConfigError(f"{target}: cannot reach the bucket {bucket!r} ({reason(exc)}); check "
                          "the URL, the credentials in the environment and AWS_ENDPOINT_URL"
                          ) from None


def reason(exc: Exception) -> str:
    """An exception's first line, or its type when it has no message (botocore, aiohttp and
    fsspec errors in one-line messages)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
