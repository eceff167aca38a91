"""LatentStore: a Zarr v3 group of latents (z), ids, property columns and provenance.

Writers fill disjoint whole shards concurrently with no locks; the array is sized up front by
one coordinator (`create`) and marked complete by one coordinator (`finalize`) after every block
reported written. Readers refuse incomplete stores unless asked.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import zarr

from latentsci.errors import StoreError
from latentsci.store.layout import (
    COLUMN_CHUNK_ROWS,
    MATRIX_DIMS,
    PROPERTY_DTYPES,
    RESERVED,
    ROW_DIMS,
    SCHEMA_VERSION,
    WRITTEN,
    BlockGrid,
    default_rows_per_shard,
)
from latentsci.store.predicate import Predicate
from latentsci.storage.location import Address, as_address, exists


def _default_chunk(shard: int) -> int:
    """Rows per chunk when none is asked: the largest divisor of the shard up to a quarter of it
    (a shard must hold whole chunks)."""
    return next(c for c in range(max(shard // 4, 1), 0, -1) if shard % c == 0)


FULL_DISK = (errno.ENOSPC, errno.EDQUOT)


@contextmanager
def out_of_space_is_one_line(path: Address, what: str) -> Iterator[None]:
    """A full disk (or quota) while writing a store becomes one line naming the store and what
    was being written; the store keeps `complete` false, so readers go on refusing it."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in FULL_DISK:
            raise
        raise StoreError(f"{path}: {exc.strerror or 'no space left on device'} while {what}; "
                         "the store is left incomplete (readers refuse it): free space and "
                         "rerun") from None


class LatentStore:
    """Open latent store; see `create` and `open`."""

    def __init__(self, group: zarr.Group, path: Address):
        self.group = group
        self.path = path

    # ---- creation and writing -------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: str | Path,
        n_rows: int,
        dim: int,
        properties: dict[str, str] | None = None,
        ids_dtype: str = "str",
        with_std: bool = False,
        rows_per_shard: int | None = None,
        rows_per_chunk: int | None = None,
        attrs: dict | None = None,
    ) -> LatentStore:
        """Pre-size every array of a new store (only the coordinator calls this)."""
        properties = properties or {}
        bad = {k: v for k, v in properties.items() if v not in PROPERTY_DTYPES or k in RESERVED}
        if bad:
            name, dtype = next(iter(bad.items()))
            raise StoreError(f"property {name!r}: dtype {dtype!r} or name not allowed "
                             f"(dtypes: {', '.join(sorted(PROPERTY_DTYPES))})")
        if ids_dtype not in {"str", "int64"}:
            raise StoreError(f"ids_dtype must be 'str' or 'int64', got {ids_dtype!r}")
        shard = rows_per_shard or default_rows_per_shard(dim)
        chunk = min(rows_per_chunk or _default_chunk(shard), shard)
        if shard % chunk:
            raise StoreError(f"rows_per_shard {shard} is not a multiple of rows_per_chunk {chunk}")
        path = as_address(path)
        if exists(path):
            raise StoreError(f"{path}: already exists (choose another path or delete it)")
        with out_of_space_is_one_line(path, "creating it"):
            group = cls._create_arrays(path, n_rows, dim, properties, ids_dtype, with_std,
                                       shard, chunk)
            group.attrs.update({
                "schema_version": SCHEMA_VERSION, "n_rows": n_rows, "dim": dim,
                "rows_per_shard": shard, "properties": properties, "ids_dtype": ids_dtype,
                "created": datetime.now(timezone.utc).isoformat(), "complete": False,
                **(attrs or {}),
            })
        return cls(group, path)

    @staticmethod
    def _create_arrays(path: Address, n_rows: int, dim: int, properties: dict[str, str],
                       ids_dtype: str, with_std: bool, shard: int, chunk: int) -> zarr.Group:
        """The group and its empty, pre-sized arrays (`create` checked the arguments)."""
        group = zarr.open_group(str(path), mode="w-")
        grid = BlockGrid(n_rows, shard)
        # z is read in long scans: plain uncompressed chunks scan ~2x faster than the sharding
        # codec in zarr 3.1 (bench/bench_store.py). A block holds whole chunks, so writers of
        # different blocks never touch the same file.
        # dimension_names and the `coordinates` attribute make `xarray.open_zarr` give the
        # Dataset `to_xarray` gives: z over (row, latent), columns over row, ids a coordinate.
        matrix = dict(chunks=(chunk, dim), compressors=None, dimension_names=MATRIX_DIMS,
                      attributes={"coordinates": "ids"})
        group.create_array("z", shape=(n_rows, dim), dtype="float32", **matrix)
        if with_std:
            group.create_array("z_std", shape=(n_rows, dim), dtype="float32", **matrix)
        # Columns are small and read by row: small inner chunks, one shard (file) per block.
        column = dict(chunks=(min(chunk, COLUMN_CHUNK_ROWS),), shards=(shard,),
                      dimension_names=ROW_DIMS)
        if shard % column["chunks"][0]:
            column["chunks"] = (chunk,)
        group.create_array("ids", shape=(n_rows,), dtype=str if ids_dtype == "str" else "int64",
                           **column)
        for name, dtype in properties.items():
            fill = {"float64": np.nan, "float32": np.nan}.get(dtype)
            group.create_array(name, shape=(n_rows,), dtype=str if dtype == "str" else dtype,
                               fill_value=fill, **column)
        # One chunk per block: each writer marks only its own chunks, so no two processes share one.
        # Kept in a subgroup, which xarray does not list among the store's variables.
        group.create_group(WRITTEN.split("/")[0]).create_array(
            WRITTEN.split("/")[1], shape=(grid.n_blocks,), dtype="bool", chunks=(1,),
            fill_value=False, dimension_names=("block",))
        return group

    @property
    def grid(self) -> BlockGrid:
        return BlockGrid(self.n_rows, int(self.group.attrs["rows_per_shard"]))

    def write_rows(
        self,
        start: int,
        z: np.ndarray,
        ids: np.ndarray | list,
        properties: dict[str, np.ndarray | list] | None = None,
        z_std: np.ndarray | None = None,
    ) -> None:
        """Write rows [start, start+len(z)) of every array; the range must be whole shards."""
        z = np.asarray(z, dtype=np.float32)
        if z.ndim != 2 or z.shape[1] != self.dim:
            raise StoreError(f"{self.path}: z has shape {z.shape}, expected (rows, {self.dim})")
        stop = start + len(z)
        blocks = self.grid.blocks_of(start, stop)
        columns = {"ids": np.asarray(ids), **{k: np.asarray(v) for k, v in (properties or {}).items()}}
        missing = set(self.property_names) - set(columns)
        if missing:
            raise StoreError(f"{self.path}: write is missing property columns {sorted(missing)}")
        for name, values in columns.items():
            if name not in self.group or len(values) != len(z):
                raise StoreError(f"{self.path}: column {name!r} unknown or not {len(z)} rows long")
        with out_of_space_is_one_line(self.path, f"writing rows [{start}, {stop})"):
            for name, values in columns.items():
                self.group[name][start:stop] = values
            if z_std is not None:
                self.group["z_std"][start:stop] = np.asarray(z_std, dtype=np.float32)
            self.group["z"][start:stop] = z
            self._written[blocks.start : blocks.stop] = True  # last: the block is now whole

    @property
    def _written(self) -> zarr.Array:
        """Per-block written flags (at the root, `_written`, in schema-1 stores)."""
        return self.group["_written" if int(self.attrs["schema_version"]) < 2 else WRITTEN]

    def missing_blocks(self) -> list[int]:
        """Blocks no writer has reported written yet."""
        return [int(b) for b in np.flatnonzero(~self._written[:])]

    def finalize(self, **attrs) -> None:
        """Mark the store complete (coordinator only), refusing when any block is unwritten."""
        missing = self.missing_blocks()
        if missing:
            raise StoreError(f"{self.path}: {len(missing)} blocks never written "
                             f"(first: rows {self.grid.bounds(missing[0])}); store left incomplete")
        with out_of_space_is_one_line(self.path, "marking it complete"):
            self.group.attrs.update({**attrs, "complete": True,
                                     "completed": datetime.now(timezone.utc).isoformat()})

    # ---- opening and metadata -------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path, allow_incomplete: bool = False,
             writable: bool = False) -> LatentStore:
        """Open a store (read-only unless a writer asks); incomplete ones need allow_incomplete."""
        path = as_address(path)
        try:
            group = zarr.open_group(str(path), mode="r+" if writable else "r")
        except (FileNotFoundError, zarr.errors.GroupNotFoundError):
            raise StoreError(f"{path}: no latent store here") from None
        if "z" not in group or "schema_version" not in group.attrs:
            raise StoreError(f"{path}: a Zarr group, but not a latent store (no z or schema_version)")
        if int(group.attrs["schema_version"]) > SCHEMA_VERSION:
            raise StoreError(f"{path}: store schema version {group.attrs['schema_version']} is "
                             f"newer than this latentsci reads ({SCHEMA_VERSION}): upgrade it")
        if not group.attrs.get("complete") and not allow_incomplete:
            raise StoreError(f"{path}: store is incomplete (its writer did not finish); "
                             "pass allow_incomplete=True to read it anyway")
        return cls(group, path)

    @property
    def attrs(self) -> dict:
        return dict(self.group.attrs)

    @property
    def n_rows(self) -> int:
        return int(self.group.attrs["n_rows"])

    @property
    def dim(self) -> int:
        return int(self.group.attrs["dim"])

    @property
    def property_names(self) -> list[str]:
        return list(self.group.attrs.get("properties", {}))

    @property
    def complete(self) -> bool:
        return bool(self.group.attrs.get("complete"))

    def __len__(self) -> int:
        return self.n_rows

    def __repr__(self) -> str:
        state = "complete" if self.complete else "INCOMPLETE"
        return f"LatentStore({str(self.path)!r}, rows={self.n_rows}, dim={self.dim}, {state})"

    # ---- reading ---------------------------------------------------------------------------
    @cached_property
    def ids(self) -> np.ndarray:
        return self.group["ids"][:]

    @cached_property
    def _row_of_id(self) -> dict:
        return {key: row for row, key in enumerate(self.ids.tolist())}

    def column(self, name: str) -> np.ndarray:
        """A whole property column (or ids)."""
        if name != "ids" and name not in self.property_names:
            raise StoreError(f"{self.path}: no column {name!r} (columns: "
                             f"{', '.join(self.property_names)})")
        return self.ids if name == "ids" else self.group[name][:]

    def rows_of(self, ids: list) -> np.ndarray:
        """Row numbers of the given ids, in order; an unknown id is a one-line error."""
        cast = int if self.group.attrs["ids_dtype"] == "int64" else str
        rows = []
        for key in ids:
            row = self._row_of_id.get(cast(key))
            if row is None:
                raise StoreError(f"{self.path}: no row with id {key!r}")
            rows.append(row)
        return np.asarray(rows, dtype=np.int64)

    def table(self, rows: np.ndarray | slice, with_z: bool = False) -> pd.DataFrame:
        """ids and properties (and z as a list column when asked) for the given rows."""
        if isinstance(rows, slice):
            rows = np.arange(*rows.indices(self.n_rows))
        rows = np.asarray(rows, dtype=np.int64)
        frame = pd.DataFrame({"row": rows, "id": self.ids[rows]})
        for name in self.property_names:
            frame[name] = self.group[name].get_orthogonal_selection(rows) if len(rows) else []
        if with_z:
            frame["z"] = list(self.vectors(rows))
        return frame

    def vectors(self, rows: np.ndarray | slice) -> np.ndarray:
        """z for the given rows (sorted reads, returned in the order asked)."""
        if isinstance(rows, slice):
            return self.group["z"][rows]
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) == 0:
            return np.empty((0, self.dim), dtype=np.float32)
        order = np.argsort(rows)
        out = np.empty((len(rows), self.dim), dtype=np.float32)
        out[order] = self.group["z"].get_orthogonal_selection((rows[order], slice(None)))
        return out

    def where(self, expr: str) -> np.ndarray:
        """Row numbers whose properties satisfy a filter such as `qed > 0.8 and sa < 3`."""
        predicate = Predicate(expr, ["id", *self.property_names])
        columns = {n: (self.ids if n == "id" else self.group[n][:]) for n in predicate.names}
        if not columns:
            columns = {"id": self.ids}
        return np.flatnonzero(predicate.evaluate(columns))

    def blocks(self):
        """Yield (start, z block) over whole shards: the unit of streaming scans."""
        grid = self.grid
        for block in range(grid.n_blocks):
            start, stop = grid.bounds(block)
            yield start, self.group["z"][start:stop]

    # ---- views for analyses ----------------------------------------------------------------
    def to_dask(self, name: str = "z"):
        """A dask array over z (or a column), one dask chunk per block of whole shards/chunks."""
        import dask.array as da

        array = self.group[name]
        return da.from_zarr(array, chunks=(self.grid.rows_per_shard, *array.shape[1:]))

    def to_xarray(self):
        """An xarray Dataset: z over (row, latent), properties over row, ids as a coordinate
        (what `xarray.open_zarr` gives on stores written since dimension names were added)."""
        import xarray as xr

        data = {"z": (MATRIX_DIMS, self.to_dask("z"))}
        if "z_std" in self.group:
            data["z_std"] = (MATRIX_DIMS, self.to_dask("z_std"))
        for name in self.property_names:
            data[name] = (ROW_DIMS, self.to_dask(name))
        return xr.Dataset(data, coords={"ids": (ROW_DIMS, self.ids)}, attrs=self.attrs)
