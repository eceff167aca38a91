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
        return _open_well(path)
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


# HDF5 in The Well's layout.

def _flag(attrs: Any, key: str, default: bool) -> bool:
    """A boolean attribute of a Well dataset (stored as numpy bool), or the default when absent."""
    return bool(np.asarray(attrs[key]).item()) if key in attrs else default


@dataclass(frozen=True)
class _WellField:
    """One Well dataset and which of its axes are stored (the others are constant and broadcast)."""

    array: str  # e.g. "t1_fields/velocity"
    order: int  # tensor order: 0 scalar, 1 vector, 2 matrix
    sample_varying: bool
    time_varying: bool
    dim_varying: tuple[bool, bool]
    shape: tuple[int, ...]

    def sizes(self, spatial: list[str]) -> dict[str, int]:
        """The lengths this dataset fixes for n_traj, n_steps and the spatial axes it stores."""
        axes = [("n_traj", self.sample_varying), ("n_steps", self.time_varying)]
        axes += zip(spatial, self.dim_varying)
        stored = iter(self.shape)  # stored axes come in this order, absent ones skipped
        return {axis: next(stored) for axis, kept in axes if kept}

    def read(self, handle: h5py.File, rows: Rows, steps: slice, full: tuple) -> np.ndarray:
        """The (rows, steps) block as (n, t, component, x, y), constant axes broadcast to `full`."""
        region = ([rows] if self.sample_varying else []) + ([steps] if self.time_varying else [])
        block = handle[self.array][tuple(region)]
        if not self.sample_varying:
            block = block[np.newaxis]
        if not self.time_varying:
            block = block[:, np.newaxis]
        for axis, varying in enumerate(self.dim_varying):
            if not varying:
                block = np.expand_dims(block, 2 + axis)
        block = np.broadcast_to(block, (*full, *(2,) * self.order))
        return np.moveaxis(block.reshape(*full, -1), -1, 2)


@dataclass(frozen=True)
class _WellFields:
    """Reads all Well fields of a region into channels; the file is reopened per call to pickle."""

    path: str
    fields: tuple[_WellField, ...]
    shape: tuple[int, int, int, int]  # n_traj, n_steps, x, y

    def __call__(self, rows: Rows, steps: slice) -> np.ndarray:
        """The (rows, steps) block of every field, concatenated along the channel axis."""
        n = len(range(*rows.indices(self.shape[0]))) if isinstance(rows, slice) else rows.size
        full = (n, len(range(*steps.indices(self.shape[1]))), *self.shape[2:])
        with h5py.File(self.path, "r") as handle:
            return np.concatenate([f.read(handle, rows, steps, full) for f in self.fields], axis=2)


def _open_well(path: Path) -> FieldSource:
    """An HDF5 file laid out as in The Well: t0/t1/t2 fields, dimensions, scalars."""
    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise FieldDataError(f"{path}: not a readable HDF5 file ({err})") from None
    with handle:
        spatial = _well_spatial(path, handle)
        fields = _well_fields(path, handle)
        shape = _well_shape(path, handle, fields, spatial)
        times = _well_times(path, handle, shape[1])
        parameters = _well_parameters(path, handle, shape[0])
    channels, arrays = [], []
    for f in fields:
        parts = _components(f.order, spatial)
        channels += [f.array.split("/")[-1] + ("_" + part if part else "") for part in parts]
        arrays += [f.array] * len(parts)
    return FieldSource(
        path=str(path),
        channels=channels,
        shape=(shape[0], shape[1], len(channels), shape[2], shape[3]),
        times=_frozen(times),
        parameters=parameters,
        # The Well keeps only completed simulations, so every trajectory is usable.
        valid=_frozen(np.ones(shape[0], bool)),
        channel_arrays=arrays,
        reader=_WellFields(str(path), tuple(fields), shape),
    )


def _components(order: int, spatial: list[str]) -> list[str]:
    """Channel suffixes of a field: none for a scalar, x/y for a vector, xx/xy/yx/yy for order 2."""
    parts = [""]
    for _ in range(order):
        parts = [part + axis for part in parts for axis in spatial]
    return parts


def _well_spatial(path: Path, handle: h5py.File) -> list[str]:
    """Names of the two spatial axes (dimensions@spatial_dims), refusing files declared not 2-D."""
    declared = int(handle.attrs.get("n_spatial_dims", 2))
    if declared != 2:
        raise FieldDataError(f"{path}: {declared}-D data (n_spatial_dims={declared}); {NOT_2D}")
    dims = handle.get("dimensions")
    names = _names(dims.attrs.get("spatial_dims", ["x", "y"]) if dims is not None else ["x", "y"])
    if len(names) != 2:
        raise FieldDataError(f"{path}: {len(names)}-D data (spatial_dims={names}); {NOT_2D}")
    return names


def _well_fields(path: Path, handle: h5py.File) -> list[_WellField]:
    """Every dataset of t0_fields, t1_fields, t2_fields, in field_names order, checked for rank."""
    fields = []
    for group_name, order in WELL_GROUPS:
        group = handle.get(group_name)
        if group is None:
            continue
        for name in _names(group.attrs.get("field_names", sorted(group))):
            if name not in group:
                raise FieldDataError(f"{path}: {group_name}@field_names lists missing {name!r}")
            fields.append(_well_field(path, f"{group_name}/{name}", group[name], order))
    if not fields:
        raise FieldDataError(f"{path}: no datasets in t0/t1/t2_fields (layout: {WELL_URL})")
    return fields


def _well_field(path: Path, array: str, dataset: h5py.Dataset, order: int) -> _WellField:
    """Describe one Well dataset after checking dtype, spatial rank and tensor components."""
    label = f"{path}:{array}"
    _check_float(label, dataset.dtype)
    sample = _flag(dataset.attrs, "sample_varying", True)
    timed = _flag(dataset.attrs, "time_varying", True)
    lead = int(sample) + int(timed)
    if "dim_varying" in dataset.attrs:
        varying = tuple(bool(v) for v in np.asarray(dataset.attrs["dim_varying"]).ravel())
    else:
        varying = (True,) * (dataset.ndim - lead - order)
    if len(varying) in (1, 3):
        raise FieldDataError(f"{label}: {len(varying)}-D data (shape {dataset.shape}); {NOT_2D}")
    if len(varying) != 2 or dataset.ndim != lead + sum(varying) + order:
        raise FieldDataError(
            f"{label}: shape {dataset.shape} does not match the Well layout {WELL_LAYOUT} "
            f"(sample_varying={sample}, time_varying={timed})"
        )
    if order and dataset.shape[-order:] != (2,) * order:
        raise FieldDataError(f"{label}: components {dataset.shape[-order:]}; expected D=2 each")
    return _WellField(array, order, sample, timed, varying, tuple(dataset.shape))  # type: ignore


def _well_shape(
    path: Path, handle: h5py.File, fields: list[_WellField], spatial: list[str]
) -> tuple[int, int, int, int]:
    """(n_traj, n_steps, x, y) agreed by all fields; root attrs and dimensions/ fill in the rest."""
    seen: dict[str, tuple[int, str]] = {}
    for f in fields:
        for axis, size in f.sizes(spatial).items():
            if axis in seen and seen[axis][0] != size:
                raise FieldDataError(
                    f"{path}: mismatched shapes: {f.array} has {axis}={size} "
                    f"but {seen[axis][1]} has {axis}={seen[axis][0]}"
                )
            seen.setdefault(axis, (size, f.array))
    declared = {"n_traj": handle.attrs.get("n_trajectories")}
    dims = handle.get("dimensions", {})
    for axis, key in (("n_steps", "time"), *((name, name) for name in spatial)):
        declared[axis] = dims[key].shape[-1] if key in dims else None
    axes = ("n_traj", "n_steps", *spatial)
    sizes = {axis: seen[axis][0] if axis in seen else declared.get(axis) for axis in axes}
    for axis in spatial:
        if sizes[axis] is None:
            raise FieldDataError(f"{path}: no field varies along {axis}, no dimensions/{axis}")
    # A file whose fields are all constant over samples or time still holds one of each.
    return tuple(int(sizes[axis] or 1) for axis in sizes)  # type: ignore[return-value]


def _well_times(path: Path, handle: h5py.File, n_steps: int) -> np.ndarray:
    """dimensions/time as one clock; a per-trajectory clock is accepted only if all rows agree."""
    if "dimensions/time" not in handle:
        return np.arange(n_steps)
    times = np.asarray(handle["dimensions/time"][()])
    if times.ndim == 2 and times.shape[1] == n_steps and np.all(times == times[:1]):
        return times[0]
    if times.shape != (n_steps,):
        raise FieldDataError(f"{path}:dimensions/time: shape {times.shape}; expected ({n_steps},)")
    return times


def _well_parameters(path: Path, handle: h5py.File, n_traj: int) -> dict[str, np.ndarray]:
    """Simulation parameters, one value per trajectory, from scalars/ or else from root attrs."""
    scalars = handle.get("scalars", {})
    parameters = {}
    for name in _names(handle.attrs.get("simulation_parameters", sorted(scalars))):
        if name in scalars:
            if _flag(scalars[name].attrs, "time_varying", False):
                continue  # a time series is a diagnostic, not a parameter of the trajectory
            values = np.asarray(scalars[name][()])
            sample = _flag(scalars[name].attrs, "sample_varying", False)
        elif name in handle.attrs:
            values, sample = np.asarray(handle.attrs[name]), False
        else:
            raise FieldDataError(f"{path}: parameter {name!r} is neither in scalars/ nor an attr")
        if not (np.issubdtype(values.dtype, np.number) or values.dtype == bool):
            continue  # text settings (e.g. a scheme name) are not numbers a model can condition on
        if sample and values.shape != (n_traj,):
            raise FieldDataError(f"{path}:scalars/{name}: shape {values.shape}, not ({n_traj},)")
        if not sample and values.size != 1:
            raise FieldDataError(f"{path}:scalars/{name}: {values.size} values, not sample_varying")
        parameters[name] = _frozen(values if sample else np.full(n_traj, values.reshape(-1)[0]))
    return parameters


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
