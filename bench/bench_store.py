"""Store benchmarks: concurrent Ray writes, full scan and exact top-k on N x D float32.

Every figure is printed as a ratio to a raw-numpy baseline on the same bytes in the same process.
Usage: python bench/bench_store.py [--rows 1000000] [--dim 64] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from latentsci.runtime import connect, disconnect, map_batches
from latentsci.store import LatentStore, top_k


def best_of(repeats: int, fn, setup=None) -> float:
    """Fastest of several runs (setup untimed): the least disturbed by a noisy machine."""
    times = []
    for _ in range(repeats):
        if setup:
            setup()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _write_block(block: tuple[int, int], path: str, data: np.ndarray) -> int:
    """Ray task: write one block of whole chunks/shards from the shared array."""
    start, stop = block
    store = LatentStore.open(path, allow_incomplete=True, writable=True)
    store.write_rows(start, data[start:stop], np.arange(start, stop, dtype=np.int64))
    return stop - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    n, d = args.rows, args.dim
    folder = Path(tempfile.mkdtemp(prefix="bench-store-"))
    data = np.random.default_rng(0).standard_normal((n, d), dtype=np.float32)
    mb = data.nbytes / 1e6
    print(f"{n} x {d} float32 = {mb:.0f} MB in {folder}")

    raw = folder / "raw.f32"
    def clean():
        """New files each time for both sides; deleting old ones is not billed to either."""
        raw.unlink(missing_ok=True)
        shutil.rmtree(folder / "w.zarr", ignore_errors=True)
        os.sync()

    t_raw_write = best_of(args.repeats, lambda: data.tofile(raw), clean)
    connect(num_cpus=2)

    def store_write(parallel: bool):
        path = folder / "w.zarr"
        store = LatentStore.create(path, n, d, ids_dtype="int64")
        blocks = [store.grid.bounds(b) for b in range(store.grid.n_blocks)]
        if parallel:
            map_batches(_write_block, blocks, desc="write", weight=lambda b: b[1] - b[0],
                        path=str(path), data=data)
        else:
            for block in blocks:
                _write_block(block, str(path), data)
        store.finalize()

    t_one = best_of(args.repeats, lambda: store_write(False), clean)
    clean()
    store_write(True)  # start the workers before timing
    t_ray = best_of(args.repeats, lambda: store_write(True), clean)
    disconnect()
    print(f"write  raw numpy {mb / t_raw_write:8.0f} MB/s | store, 1 process {mb / t_one:6.0f} "
          f"MB/s (ratio {t_raw_write / t_one:.2f}) | store, Ray tasks on 2 CPUs {mb / t_ray:6.0f} "
          f"MB/s (ratio {t_raw_write / t_ray:.2f})")

    path = folder / "s.zarr"
    store = LatentStore.create(path, n, d, ids_dtype="int64")
    for b in range(store.grid.n_blocks):
        a, e = store.grid.bounds(b)
        store.write_rows(a, data[a:e], np.arange(a, e))
    store.finalize()
    store = LatentStore.open(path)

    def scan():
        total = 0.0
        for _, block in store.blocks():
            total += float(block[0, 0])
        return total

    data.tofile(raw)
    t_np_read = best_of(args.repeats, lambda: np.fromfile(raw, dtype=np.float32))
    t_scan = best_of(args.repeats, scan)
    print(f"scan   raw numpy {mb / t_np_read:8.0f} MB/s | store {mb / t_scan:8.0f} MB/s | "
          f"ratio {t_np_read / t_scan:.2f} (goal >= 0.7)")

    query = data[:1] + 0.01
    for metric in ("cosine", "euclidean"):
        t_knn = best_of(args.repeats, lambda: top_k(store, query, 10, metric))
        rows, _ = top_k(store, query, 10, metric)
        t_brute = best_of(args.repeats, lambda: np.argsort(
            np.linalg.norm(data - query, axis=1))[:10])
        print(f"top-10 {metric:9s} store {t_knn:6.3f} s (goal < 1 s) | in-memory numpy "
              f"{t_brute:6.3f} s | ratio {t_brute / t_knn:.2f} | nearest row {rows[0, 0]}")
    shutil.rmtree(folder)


if __name__ == "__main__":
    main()
