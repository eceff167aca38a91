"""The on-disk layout of a latent store: array names, chunking and the block grid writers fill."""

from __future__ import annotations

from dataclasses import dataclass

SCHEMA_VERSION = 2  # 2: dimension names, written flags in `_blocks/written` (1: at `_written`)
RESERVED = ("z", "z_std", "ids", "_written", "_blocks", "row", "latent")  # arrays and dims
WRITTEN = "_blocks/written"  # per-block flags; `_written` at the root in older stores
MATRIX_DIMS = ("row", "latent")  # dimension_names of z and z_std
ROW_DIMS = ("row",)  # of ids and every property column
COLUMN_CHUNK_ROWS = 4096
PROPERTY_DTYPES = {"float64", "float32", "int64", "bool", "str"}


def default_rows_per_shard(dim: int, target_bytes: int = 16 << 20) -> int:
    """Rows in one ~16 MiB shard of z, a power of two so blocks stay aligned as stores grow."""
    rows = max(1024, target_bytes // (4 * max(dim, 1)))
    return 1 << (rows.bit_length() - 1)


@dataclass(frozen=True)
class BlockGrid:
    """Rows are written in whole shards: block b covers rows [b*rows_per_shard, ...) of every array."""

    n_rows: int
    rows_per_shard: int

    @property
    def n_blocks(self) -> int:
        return -(-self.n_rows // self.rows_per_shard)

    def bounds(self, block: int) -> tuple[int, int]:
        """First and one-past-last row of a block."""
        start = block * self.rows_per_shard
        return start, min(start + self.rows_per_shard, self.n_rows)

    def blocks_of(self, start: int, stop: int) -> range:
        """The blocks a shard-aligned row range covers (ValueError when it is not aligned)."""
        aligned_end = stop % self.rows_per_shard == 0 or stop == self.n_rows
        if start % self.rows_per_shard or not aligned_end or not 0 <= start < stop <= self.n_rows:
            raise ValueError(
                f"rows [{start}, {stop}) are not whole shards of {self.rows_per_shard} rows "
                f"in a store of {self.n_rows}; concurrent writers must write whole shards"
            )
        return range(start // self.rows_per_shard, -(-stop // self.rows_per_shard))
