"""Writing simulated fields to Zarr v3: (trajectory, time, channel, x, y) plus per-trajectory data.

Group layout (what `latentsci.fields.data.sources.open_fields` reads back):

    fields      float32 (trajectory, time, channel, x, y); one shard per writer block,
                one inner chunk per trajectory (a training reader pulls whole trajectories)
    time        float64 (time,)      physical time of each frame
    valid       bool (trajectory,)   False until a writer stores the trajectory; a solver
                                     blow-up leaves it False and its frames unwritten
    <param>     float64 (trajectory,) one array per name in attrs["parameters"] (viscosity, F, k)
    attrs       layout, channels, parameters, trajectories_per_block, generator config, ...

Blocks of `trajectories_per_block` trajectories are written by one task each, so concurrent
writers never touch the same file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import zarr

from latentsci.errors import StoreError
from latentsci.storage.location import as_address, exists

LAYOUT = ["trajectory", "time", "channel", "x", "y"]


def create_field_store(path: str | Path, n_trajectories: int, times: np.ndarray,
                       channels: list[str], grid: tuple[int, int], parameters: list[str],
                       trajectories_per_block: int, attrs: dict | None = None) -> zarr.Group:
    """Pre-size every array of a new field store (the coordinator calls this once)."""
    path = as_address(path)  # a folder, or an object-store URL written in place
    if exists(path):
        raise StoreError(f"{path}: already exists (choose another path or delete it)")
    block = max(1, min(trajectories_per_block, n_trajectories))
    frame = (len(times), len(channels), *grid)
    group = zarr.open_group(str(path), mode="w-")
    # dimension_names let `xarray.open_zarr` read the group as a Dataset (time a coordinate)
    group.create_array("fields", shape=(n_trajectories, *frame), dtype="float32",
                       chunks=(1, *frame), shards=(block, *frame), fill_value=np.nan,
                       dimension_names=LAYOUT)
    group.create_array("time", data=np.asarray(times, dtype="float64"), dimension_names=["time"])
    per_trajectory = dict(shape=(n_trajectories,), chunks=(block,),
                          dimension_names=["trajectory"])
    group.create_array("valid", dtype="bool", fill_value=False, **per_trajectory)
    for name in parameters:
        group.create_array(name, dtype="float64", fill_value=np.nan, **per_trajectory)
    group.attrs.update({"layout": LAYOUT, "channels": list(channels),
                        "parameters": list(parameters), "trajectories_per_block": block,
                        **(attrs or {})})
    return group


def write_block(path: str | Path, start: int, fields: np.ndarray, valid: np.ndarray,
                parameters: dict[str, np.ndarray]) -> None:
    """Store one block's trajectories from `start`; invalid ones keep their NaN fill."""
    group = zarr.open_group(str(path), mode="r+")
    block = group.attrs["trajectories_per_block"]
    if start % block or (len(fields) != block and start + len(fields) != group["valid"].shape[0]):
        raise StoreError(f"{path}: block writes must start at a multiple of {block} and fill it")
    stop = start + len(fields)
    data = np.where(valid[:, None, None, None, None], fields, np.nan).astype("float32")
    group["fields"][start:stop] = data
    for name, values in parameters.items():
        group[name][start:stop] = np.asarray(values, dtype="float64")
    group["valid"][start:stop] = valid
