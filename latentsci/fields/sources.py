"""Open fields users bring (Zarr in our layout, HDF5 in The Well's) as one lazy, checked source."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import zarr

from latentsci.errors import InputDataError

LAYOUT = "(trajectory, time, channel, x, y)"
WELL_LAYOUT = "(n_traj, n_steps, x, y) + (D,) per tensor order"
WELL_URL = "https://github.com/PolymathicAI/the_well/blob/master/docs/data_format.md"
WELL_GROUPS = (("t0_fields", 0), ("t1_fields", 1), ("t2_fields", 2))
HDF5_SUFFIXES = (".h5", ".hdf5")
ZARR_MARKERS = ("zarr.json", ".zarray", ".zgroup")
NOT_2D = "only 2-D spatial fields (x, y) are supported for now"
# One check_finite block: large enough to amortise chunk reads, small next to a worker's memory.
SCAN_BYTES = 64 * 2**20

Rows = slice | np.ndarray
Reader = Callable[[Rows, slice], np.ndarray]


class FieldDataError(InputDataError):
    """A fields file or array that is missing, malformed or holds values no model can learn from."""


@dataclass(frozen=True, eq=False)
class FieldSource:
    """Fields (trajectory, time, channel, x, y) with per-trajectory facts; data read on demand."""

    path: str
    channels: list[str]
    shape: tuple[int, int, int, int, int]
    times: np.ndarray
    parameters: dict[str, np.ndarray]
    valid: np.ndarray
    channel_arrays: list[str]  # the stored array behind each channel, so errors can name it
    reader: Reader = field(repr=False)

    def read(self, trajectories: slice | np.ndarray, times: slice | None = None) -> np.ndarray:
        """Float32 (n, t, channel, x, y) of the chosen trajectories and steps, read on their own."""
        rows, order, n = _rows(trajectories, self.shape[0])
        steps = range(*(slice(None) if times is None else times).indices(self.shape[1]))
        if steps.step < 0:
            raise IndexError("time slices must run forward; reverse the result instead")
        if n == 0 or len(steps) == 0:
            return np.zeros((n, len(steps), *self.shape[2:]), np.float32)
        block = self.reader(rows, slice(steps.start, steps.stop, steps.step))
        block = np.asarray(block, dtype=np.float32)
        return block if order is None else block[order]


def _rows(selection: slice | np.ndarray, count: int) -> tuple[Rows, np.ndarray | None, int]:
    """Trajectories to read in increasing order (as h5py needs), the permutation back, how many."""
    if isinstance(selection, slice):
        picked = range(*selection.indices(count))
        if picked.step > 0:
            return slice(picked.start, picked.stop, picked.step), None, len(picked)
        selection = np.asarray(picked, dtype=np.int64)
    index = np.asarray(selection)
    if index.dtype == bool:
        if index.shape != (count,):
            raise IndexError(f"trajectory mask has shape {index.shape}; expected ({count},)")
        index = np.flatnonzero(index)
    if index.size == 0:
        return np.zeros(0, np.int64), None, 0
    if index.ndim != 1 or not np.issubdtype(index.dtype, np.integer):
        raise IndexError("trajectories must be a slice or a 1-D array of integers or booleans")
    if index.min() < -count or index.max() >= count:
        raise IndexError(f"trajectory index out of range for {count} trajectories")
    index = index % count
    unique, inverse = np.unique(index, return_inverse=True)
    order = None if np.array_equal(unique, index) else inverse
    # A run without gaps reads as one slice: cheaper than point selection in both backends.
    if int(unique[-1] - unique[0]) + 1 == unique.size:
        return slice(int(unique[0]), int(unique[-1]) + 1), order, index.size
    return unique, order, index.size


def open_fields(path: str | Path) -> FieldSource:
    """Open a Zarr store/array in our layout or a Well-style HDF5 file, checking shape and dtype."""
    path = Path(path)
    if not path.exists():
        raise FieldDataError(f"{path}: no such file or directory")
    if path.is_file() and (path.suffix.lower() in HDF5_SUFFIXES or h5py.is_hdf5(path)):
        from latentsci.fields.well import open_well  # h5py details live there

        return open_well(path)
    if path.is_dir() and any((path / marker).exists() for marker in ZARR_MARKERS):
        return _open_zarr(path)
    raise FieldDataError(f"{path}: neither a Zarr store nor an HDF5 file; expected fields {LAYOUT}")


def _names(value: Any) -> list[str]:
    """A list of names from an attribute, whether stored as str, bytes or an array of either."""
    items = [value] if isinstance(value, (str, bytes)) else list(np.asarray(value).ravel())
    return [item.decode() if isinstance(item, bytes) else str(item) for item in items]


def _frozen(values: np.ndarray) -> np.ndarray:
    """The array made read-only, so a shared source cannot be changed under another reader."""
    values = np.array(values)
    values.flags.writeable = False
    return values


def _check_float(label: str, dtype: np.dtype) -> None:
    """Refuse integer, boolean or text data: fields are physical quantities in floating point."""
    if not np.issubdtype(dtype, np.floating):
        raise FieldDataError(f"{label}: dtype {dtype}; expected floating-point values (float32)")


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


def _open_zarr(path: Path) -> FieldSource:
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
