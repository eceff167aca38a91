"""Exact top-k nearest neighbours streamed over a store's shards (never the whole array in memory)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Literal

from collections.abc import Callable

import numpy as np

from latentsci.errors import StoreError

Metric = Literal["cosine", "euclidean"]
REFINE_SPARE = 8
SCORES_PER_CHUNK = 1 << 25  # query x row distances held at once (128 MiB of float32)


def _unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero rather than NaN)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms == 0, 1, norms)


def _block_scores(block: np.ndarray, queries: np.ndarray, metric: Metric) -> np.ndarray:
    """Scan scores (smaller is nearer) of every block row to every query, shape (queries, rows):
    1 - cosine, or the squared Euclidean distance (same order as the distance, one pass fewer;
    `_refine` computes the exact distances of the survivors)."""
    if metric == "cosine":
        scores = queries @ _unit(block).T
        np.subtract(1.0, scores, out=scores)
        return scores
    scores = queries @ block.T
    scores *= -2.0
    scores += np.einsum("ij,ij->i", block, block)[None, :]
    scores += np.einsum("ij,ij->i", queries, queries)[:, None]
    return scores


def _merge(best_d, best_i, dist, offset, k):
    """Keep the k smallest of the running best (sorted) and a new block's distances.

    Once k are held, only the block's entries below each query's current k-th best can enter,
    so one comparison pass finds them and only those few are sorted (a partition of every
    distance costs several times the matrix product)."""
    n = len(dist)
    if best_d.shape[1] < k:
        take = min(k, dist.shape[1])
        part = np.argpartition(dist, take - 1, axis=1)[:, :take]
        cand_d = np.concatenate([best_d, np.take_along_axis(dist, part, axis=1)], axis=1)
        cand_i = np.concatenate([best_i, part + offset], axis=1)
        keep = np.argsort(cand_d, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(cand_d, keep, axis=1), np.take_along_axis(cand_i, keep, axis=1)
    query, column = np.nonzero(dist < best_d[:, -1:])
    if len(query) == 0:
        return best_d, best_i
    held = best_d.shape[1]
    all_q = np.concatenate([np.repeat(np.arange(n), held), query])
    all_d = np.concatenate([best_d.ravel(), dist[query, column]])
    all_i = np.concatenate([best_i.ravel(), column + offset])
    order = np.lexsort((all_d, all_q))  # by query, then distance (held entries first on ties)
    sizes = np.bincount(all_q, minlength=n)
    rank = np.arange(len(order)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    keep = order[rank < held]
    return all_d[keep].reshape(n, held), all_i[keep].reshape(n, held)


def top_k(store, queries: np.ndarray, k: int, metric: Metric = "cosine",
          exclude_rows: np.ndarray | None = None,
          allowed: np.ndarray | None = None,
          standardise: tuple[np.ndarray, np.ndarray] | None = None,
          features: Callable[[np.ndarray], np.ndarray] | None = None,
          ) -> tuple[np.ndarray, np.ndarray]:
    """Row numbers and distances of the k nearest rows to each query, exactly.

    Shards are read by a background thread while the previous one is scored, so I/O and
    the matrix product overlap. `exclude_rows[q]` (one row per query, or -1) is never returned,
    which is how "neighbours of an id" leaves out the id itself; `allowed` (a boolean mask over
    the store's rows) restricts the candidates, e.g. to a split or a filter's rows;
    `standardise=(shift, scale)` compares (x - shift) / scale instead of x, for rows and queries
    alike (cosine between centred latents rather than raw ones, as an OOD detector wants);
    `features` maps rows (n, store.dim) to the vectors compared, applied before `standardise`
    to each shard as it is read (an OOD detector on a summary of each latent, e.g. a field
    latent grid's power spectrum, needs no second copy of the store).
    """
    if metric not in ("cosine", "euclidean"):
        raise StoreError(f"metric must be 'cosine' or 'euclidean', got {metric!r}")
    queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
    if queries.shape[1] != store.dim:
        raise StoreError(f"{store.path}: query has {queries.shape[1]} dims, store has {store.dim}")
    affine = _transform(features, standardise, store.dim)
    queries = affine(queries)
    if metric == "cosine":
        queries = _unit(queries)
    pool_size = store.n_rows if allowed is None else int(np.count_nonzero(allowed))
    k = min(k, pool_size - (0 if exclude_rows is None else 1))
    spare = min(k + REFINE_SPARE, store.n_rows)  # extra candidates re-ranked exactly at the end
    if len(queries) == 0:
        return np.zeros((0, k), dtype=np.int64), np.zeros((0, k), dtype=np.float32)
    best_d = np.full((len(queries), 0), np.inf, dtype=np.float32)
    best_i = np.zeros((len(queries), 0), dtype=np.int64)
    grid = store.grid
    read = lambda b: (grid.bounds(b)[0], affine(store.group["z"][slice(*grid.bounds(b))]))  # noqa: E731
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(read, 0) if grid.n_blocks else None
        for block in range(grid.n_blocks):
            start, z = pending.result()
            if block + 1 < grid.n_blocks:
                pending = pool.submit(read, block + 1)
            blocked = None if allowed is None else ~allowed[start : start + len(z)]
            step = max(1, SCORES_PER_CHUNK // max(len(z), 1))
            merged = [_merge(best_d[a : a + step], best_i[a : a + step],
                             _chunk_scores(z, queries, a, step, metric, blocked, exclude_rows,
                                           start), start, spare)
                      for a in range(0, len(queries), step)]
            best_d = np.concatenate([m[0] for m in merged])
            best_i = np.concatenate([m[1] for m in merged])
    return _refine(store, queries, best_i, best_d, k, metric, affine)


def _chunk_scores(z: np.ndarray, queries: np.ndarray, a: int, step: int, metric: Metric,
                  blocked: np.ndarray | None, exclude_rows: np.ndarray | None,
                  start: int) -> np.ndarray:
    """Distances of queries[a:a+step] to a block's rows, masked rows and excluded ids at +inf
    (queries go in chunks so 100k of them against a large shard stay within memory)."""
    dist = _block_scores(z, queries[a : a + step], metric).astype(np.float32, copy=False)
    if blocked is not None:
        dist[:, blocked] = np.inf
    if exclude_rows is not None:
        for q, row in enumerate(exclude_rows[a : a + step]):
            if start <= row < start + len(z):
                dist[q, row - start] = np.inf
    return dist


def _transform(features: Callable[[np.ndarray], np.ndarray] | None,
               standardise: tuple[np.ndarray, np.ndarray] | None, dim: int):
    """x -> (features(x) - shift) / scale as float32 (each part the identity when not given)."""
    mapped = _mapped(features, dim)
    if standardise is None:
        return mapped
    out_dim = mapped(np.zeros((1, dim), dtype=np.float32)).shape[1]
    shift, scale = (np.asarray(a, dtype=np.float32).reshape(-1) for a in standardise)
    if shift.shape != (out_dim,) or scale.shape != (out_dim,) or not (scale > 0).all():
        raise StoreError(f"standardise needs a shift and a positive scale of {out_dim} values "
                         f"each")
    return lambda x: (mapped(x) - shift) / scale


def _mapped(features: Callable[[np.ndarray], np.ndarray] | None, dim: int):
    """x -> features(x) as a 2-D float32 array, checked once on a zero row."""
    if features is None:
        return lambda x: np.asarray(x, dtype=np.float32)
    probe = np.asarray(features(np.zeros((2, dim), dtype=np.float32)))
    if probe.ndim != 2 or len(probe) != 2:
        raise StoreError(f"features must map (n, {dim}) rows to (n, m) vectors, gave "
                         f"{probe.shape} for 2 rows")
    return lambda x: np.asarray(features(np.asarray(x, dtype=np.float32)), dtype=np.float32)


def _refine(store, queries: np.ndarray, candidates: np.ndarray, scanned: np.ndarray, k: int,
            metric: Metric, affine) -> tuple[np.ndarray, np.ndarray]:
    """Exact distances of the scan's candidates, computed directly (no |x|^2 - 2xq + |q|^2
    cancellation), keeping the k nearest; every candidate row is read once, in one sorted read."""
    finite = np.isfinite(scanned)  # excluded rows were scanned as +inf
    wanted = np.unique(candidates[finite])
    vectors = affine(store.vectors(wanted)).astype(np.float64)
    if metric == "cosine":
        vectors = _unit(vectors)
    where = np.clip(np.searchsorted(wanted, candidates), 0, max(len(wanted) - 1, 0))
    step = max(1, SCORES_PER_CHUNK // max(candidates.shape[1] * vectors.shape[1], 1))
    rows, dists = [], []
    for a in range(0, len(queries), step):
        vecs = vectors[where[a : a + step]]  # (queries, candidates, dim)
        q = queries[a : a + step].astype(np.float64)[:, None, :]
        d = (1.0 - np.einsum("qcd,qd->qc", vecs, q[:, 0]) if metric == "cosine"
             else np.linalg.norm(vecs - q, axis=2))
        d[~finite[a : a + step]] = np.inf
        order = np.argsort(d, axis=1, kind="stable")[:, :k]
        rows.append(np.take_along_axis(candidates[a : a + step], order, axis=1))
        dists.append(np.take_along_axis(d, order, axis=1))
    return np.concatenate(rows).astype(np.int64), np.concatenate(dists).astype(np.float32)
