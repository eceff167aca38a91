"""Read HDF5 files in The Well's layout (PolymathicAI) as a FieldSource.

t0_fields / t1_fields / t2_fields hold scalar, vector and matrix fields shaped
(n_traj, n_steps, x, y[, D[, D]]); axes a dataset marks as not sample-, time- or dim-varying are
absent and broadcast here. Components become channels (velocity -> velocity_x, velocity_y).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from latentsci.fields.data.base import (
    FieldDataError,
    FieldSource,
    NOT_2D,
    Rows,
    WELL_GROUPS,
    WELL_LAYOUT,
    WELL_URL,
    _check_float,
    _frozen,
    _names,
)


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


def open_well(path: Path) -> FieldSource:
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
