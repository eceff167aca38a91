"""What every fields reader shares: the source type, its error, the layout and small checks.

`sources` (Zarr in our layout, and the entry point `open_fields`) and `well` (The Well's HDF5)
both build a `FieldSource` from these parts, so neither needs the other's module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

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
