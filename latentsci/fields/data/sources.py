"""Open fields users bring (Zarr in our layout, HDF5 in The Well's) as one lazy, checked source."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import zarr

from latentsci.fields.data.base import (  # noqa: F401  FieldDataError, FieldSource: public here
    HDF5_SUFFIXES,
    LAYOUT,
    SCAN_BYTES,
    ZARR_MARKERS,
    FieldDataError,
    FieldSource,
    Rows,
    _check_float,
    _frozen,
    _names,
)
from latentsci.fields.data.well import open_well
from latentsci.storage.location import is_url


def open_fields(path: str | Path) -> FieldSource:
    """Open a Zarr store/array in our layout or a Well-style HDF5 file, checking shape and dtype."""
    if is_url(str(path)):  # a store on object storage, read in place
        return _open_zarr(str(path))
    path = Path(path)
    if not path.exists():
        raise FieldDataError(f"{path}: no such file or directory")
    if path.is_file() and (path.suffix.lower() in HDF5_SUFFIXES or h5py.is_hdf5(path)):
        return open_well(path)
    if path.is_dir() and any((path / marker).exists() for marker in ZARR_MARKERS):
        return _open_zarr(path)
    raise FieldDataError(f"{path}: neither a Zarr store nor an HDF5 file; expected fields {LAYOUT}")


# Zarr in our own layout.

@dataclass(frozen=True)
class _ZarrFields:
    """Reads a region of a 5-D Zarr array; reopened per call so a source pickles to workers."""

    store: str
    array: str  # "" for a bare array at the store root

    def __call__(self, rows: Rows, steps: slice) -> np.ndarray:
        """The (rows, steps) block of the array, only the chunks it touches."""
        node = zarr.open(self.store, mode="r")
        return (node[self.array] if self.array else node).oindex[rows, steps]


def _open_zarr(path: Path | str) -> FieldSource:
    """A Zarr group holding "fields" (plus time, valid, parameters), or a bare 5-D array."""
    try:
        node = zarr.open(str(path), mode="r")
    except (ValueError, OSError, KeyError) as err:
        raise FieldDataError(f"{path}: not a readable Zarr store ({err})") from None
    group = None if isinstance(node, zarr.Array) else node
    if group is not None and not isinstance(group.get("fields"), zarr.Array):
        raise FieldDataError(f"{path}: Zarr group has no array 'fields' shaped {LAYOUT}")
    array = node if group is None else group["fields"]
    label = str(path) if group is None else f"{path}/fields"
    if array.ndim != 5:
        raise FieldDataError(
            f"{label}: array has {array.ndim} dimensions {array.shape}; expected 5: {LAYOUT}"
        )
    _check_float(label, array.dtype)
    shape = tuple(int(size) for size in array.shape)
    attrs = {} if group is None else dict(group.attrs)
    channels = _zarr_channels(label, attrs, shape[2])
    times = _zarr_vector(path, group, "time", shape[1], "time step")
    valid = _zarr_vector(path, group, "valid", shape[0], "trajectory")
    parameters = {}
    for name in _names(attrs.get("parameters", [])):
        values = _zarr_vector(path, group, name, shape[0], "trajectory")
        if values is None:
            raise FieldDataError(f"{path}: parameter {name!r} is listed in attrs but has no array")
        parameters[name] = _frozen(values)
    return FieldSource(
        path=str(path),
        channels=channels,
        shape=shape,  # type: ignore[arg-type]
        times=_frozen(np.arange(shape[1]) if times is None else times),
        parameters=parameters,
        valid=_frozen(np.ones(shape[0], bool) if valid is None else valid.astype(bool)),
        channel_arrays=[label] * shape[2],
        reader=_ZarrFields(str(path), "" if group is None else "fields"),
    )


def _zarr_channels(label: str, attrs: dict, count: int) -> list[str]:
    """Channel names from attrs["channels"], or channel_0... when the store names none."""
    if "channels" not in attrs:
        return [f"channel_{i}" for i in range(count)]
    names = _names(attrs["channels"])
    if len(names) != count:
        raise FieldDataError(f"{label}: attrs['channels'] has {len(names)} names, array {count}")
    return names


def _zarr_vector(path: Path, group: Any, name: str, length: int, per: str) -> np.ndarray | None:
    """A 1-D array of the group with one value per trajectory or time step, or None if absent."""
    if group is None or name not in group:
        return None
    node = group[name]
    if not isinstance(node, zarr.Array) or node.shape != (length,):
        shape = getattr(node, "shape", "a group")
        raise FieldDataError(f"{path}/{name}: shape {shape}; expected ({length},), one per {per}")
    return np.asarray(node[:])



def check_finite(source: FieldSource, max_trajectories: int | None = None) -> None:
    """Scan valid trajectories block by block; name the first NaN/Inf by array, trajectory, time."""
    count = min(source.shape[0], source.shape[0] if max_trajectories is None else max_trajectories)
    # Trajectories marked invalid are the diverged runs the producer already flagged.
    rows = np.flatnonzero(source.valid[:count])
    step_bytes = max(4 * int(np.prod(source.shape[2:])), 1)
    steps = max(1, min(source.shape[1], SCAN_BYTES // step_bytes))
    batch = max(1, SCAN_BYTES // (steps * step_bytes)) if steps == source.shape[1] else 1
    for start in range(0, rows.size, batch):
        chunk = rows[start : start + batch]
        for first in range(0, source.shape[1], steps):
            block = source.read(chunk, slice(first, first + steps))
            bad = np.argwhere(~np.isfinite(block))
            if bad.size:
                i, t, c = (int(v) for v in bad[0][:3])
                kind = "NaN" if np.isnan(block[tuple(bad[0])]) else "Inf"
                raise FieldDataError(
                    f"{source.path}: {source.channel_arrays[c]} holds {kind} at trajectory "
                    f"{int(chunk[i])}, time {first + t} (channel {source.channels[c]!r})"
                )
