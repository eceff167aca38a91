"""Speed of the latent operations, each against a baseline run in the same process.

    python bench/latent_ops_speed.py knn [--rows 1000000 --queries 100000]
    python bench/latent_ops_speed.py mahalanobis [--rows 1000000]
    python bench/latent_ops_speed.py tanimoto [--queries 10000 --reference 50000]
    python bench/latent_ops_speed.py interpolate [--pairs 400 --steps 8]

knn: the store's streamed exact top-k (k=10, Euclidean, standardised as the OOD detector does)
of `--queries` rows against `--rows` x 64 latents in a Zarr store, against numpy/BLAS brute force
on the same arrays in memory (|x|^2 - 2 q.x + |q|^2 and argpartition per query chunk). Goal:
within 2x of the baseline. mahalanobis: the detector's scores per second against scikit-learn's
LedoitWolf.mahalanobis. tanimoto: max-Tanimoto (Morgan r=2) of ZINC molecules against other ZINC
molecules fanned out on Ray with 1 and 2 workers, against RDKit's BulkTanimotoSimilarity in one
process. interpolate: decoded path points per second through the shipped model on Ray with 1 and
2 workers, against decoding the same paths in this process.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _clock(fn):
    """(seconds, result) of one call."""
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def _ray(workers: int) -> None:
    """A fresh local Ray with `workers` CPUs (the previous one shut down)."""
    import ray

    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)


def _numpy_knn(x: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    """k-th neighbour distance of each query by brute force in memory (query chunks of at most
    2^27 distances, 512 MiB, as the store's top-k holds 2^25 per shard chunk)."""
    chunk = max(1, (1 << 27) // len(x))
    sq = np.einsum("ij,ij->i", x, x)
    out = np.empty(len(q), dtype=np.float32)
    for a in range(0, len(q), chunk):
        block = q[a : a + chunk]
        d2 = sq[None, :] - 2.0 * (block @ x.T) + np.einsum("ij,ij->i", block, block)[:, None]
        out[a : a + chunk] = np.sqrt(np.maximum(np.partition(d2, k - 1, axis=1)[:, k - 1], 0))
    return out


def bench_knn(args) -> None:
    """Streamed store top-k against in-memory brute force."""
    from latentsci.store import LatentStore, top_k

    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.rows, 64)).astype(np.float32)
    q = (rng.normal(size=(args.queries, 64)) * 1.1).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        store = LatentStore.create(Path(tmp) / "z.zarr", args.rows, 64, {},
                                   rows_per_shard=min(args.rows, 131072))
        for a in range(0, args.rows, 131072):
            b = min(a + 131072, args.rows)
            store.write_rows(a, x[a:b], np.array([f"r{i}" for i in range(a, b)]), {})
        store.finalize()
        store = LatentStore.open(Path(tmp) / "z.zarr")
        shift, scale = x.mean(axis=0), x.std(axis=0)
        base_s, base = _clock(lambda: _numpy_knn((x - shift) / scale, (q - shift) / scale, 10))
        ours_s, (_, dist) = _clock(lambda: top_k(store, q, 10, "euclidean",
                                                 standardise=(shift, scale)))
    agree = np.mean(np.isclose(dist[:, -1], base, rtol=1e-3, atol=1e-4))
    print(f"knn {args.queries} x {args.rows} x 64, k=10: numpy in memory {base_s:.1f} s, "
          f"store top-k {ours_s:.1f} s: ratio {ours_s / base_s:.2f} (goal <= 2); "
          f"k-th distance agrees for {agree:.1%} of queries")


def bench_mahalanobis(args) -> None:
    """The detector's Mahalanobis scores against scikit-learn's."""
    from sklearn.covariance import LedoitWolf

    from latentsci.latent.ood import Detector, OODConfig, _mahalanobis

    rng = np.random.default_rng(0)
    fit = rng.normal(size=(50000, 64))
    z = rng.normal(size=(args.rows, 64)).astype(np.float32)
    shrunk = LedoitWolf().fit(fit)
    detector = Detector(OODConfig(), {}, "", 64, np.arange(1), shrunk.location_,
                        shrunk.precision_)
    base_s, base = _clock(lambda: shrunk.mahalanobis(z))
    ours_s, ours = _clock(lambda: _mahalanobis(detector, z))
    assert np.allclose(ours**2, base, rtol=1e-6)
    print(f"mahalanobis {args.rows} x 64: scikit-learn {args.rows / base_s:,.0f} rows/s, "
          f"detector {args.rows / ours_s:,.0f} rows/s: ratio {base_s / ours_s:.2f}x")


def _zinc(n: int, offset: int = 0) -> list[str]:
    """n SMILES of the bundled ZINC training file."""
    lines = (ROOT / "data/molecules/zinc_train_86k.smi").read_text().split()
    return lines[offset : offset + n]


def bench_tanimoto(args) -> None:
    """max-Tanimoto on Ray with 1 and 2 workers against one process."""
    from latentsci.molecules.domain import max_tanimoto

    queries, reference = _zinc(args.queries), _zinc(args.reference, offset=args.queries)
    base_s, base = _clock(lambda: max_tanimoto(queries, reference, per_task=10**9))
    line = f"max-Tanimoto {args.queries} x {args.reference}: one process {base_s:.1f} s"
    for workers in (1, 2):
        _ray(workers)
        ours_s, ours = _clock(lambda: max_tanimoto(queries, reference))
        assert np.array_equal(ours, base, equal_nan=True)
        line += f"; Ray x{workers} {ours_s:.1f} s ({base_s / ours_s:.2f}x)"
    print(line)


def bench_interpolate(args) -> None:
    """Decoded path points per second on Ray with 1 and 2 workers against this process."""
    import pandas as pd

    from latentsci.latent import load_codec
    from latentsci.latent.interpolate import interpolate
    from latentsci.latent.interpolation import interpolate_store
    from latentsci.latent.pairs import random_pairs
    from latentsci.molecules.tasks import encode_table
    from latentsci.molecules.vae.shipped import shipped_model_dir
    from latentsci.store import LatentStore

    smiles = _zinc(2000)
    points = args.pairs * args.steps
    with tempfile.TemporaryDirectory() as tmp:
        _ray(2)
        encode_table(pd.DataFrame({"id": [f"m{i}" for i in range(len(smiles))],
                                   "smiles": smiles}), str(shipped_model_dir()),
                     Path(tmp) / "z.zarr", {"smiles": "str"}, {}, 512, False)
        store = LatentStore.open(Path(tmp) / "z.zarr")
        pairs = random_pairs(np.arange(len(store)), args.pairs, 0)
        codec = load_codec(shipped_model_dir())
        paths = interpolate(store.vectors(pairs.start), store.vectors(pairs.end), args.steps,
                            "slerp")
        base_s, _ = _clock(lambda: [codec.decode(p) for p in paths])
        line = f"interpolate {args.pairs} pairs x {args.steps} points: this process " \
               f"{points / base_s:.0f} points/s (decode only)"
        for workers in (1, 2):
            _ray(workers)
            ours_s, _ = _clock(lambda: interpolate_store(store, pairs, args.steps, "slerp",
                                                         per_task=max(args.pairs // 8, 1)))
            line += f"; Ray x{workers} {points / ours_s:.0f} points/s, decoded and scored " \
                    f"({base_s / ours_s:.2f}x)"
    print(line)


def main() -> int:
    """Run the benchmark named on the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", choices=["knn", "mahalanobis", "tanimoto", "interpolate"])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=None)
    parser.add_argument("--reference", type=int, default=50_000)
    parser.add_argument("--pairs", type=int, default=400)
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()
    if args.queries is None:
        args.queries = 100_000 if args.which == "knn" else 10_000
    {"knn": bench_knn, "mahalanobis": bench_mahalanobis, "tanimoto": bench_tanimoto,
     "interpolate": bench_interpolate}[args.which](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
