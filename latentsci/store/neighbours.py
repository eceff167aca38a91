"""Exact top-k nearest neighbours streamed over a store's shards (never the whole array in memory)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import numpy as np

from latentsci.errors import StoreError

Metric = Literal["cosine", "euclidean"]
REFINE_SPARE = 8


def _unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero rather than NaN)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms == 0, 1, norms)


def _block_scores(block: np.ndarray, queries: np.ndarray, metric: Metric) -> np.ndarray:
    """Distances (smaller is nearer) of every block row to every query: shape (queries, rows)."""
    if metric == "cosine":
        return 1.0 - queries @ _unit(block).T
    sq = np.einsum("ij,ij->i", block, block)
    d2 = sq[None, :] - 2.0 * (queries @ block.T) + np.einsum("ij,ij->i", queries, queries)[:, None]
    return np.sqrt(np.maximum(d2, 0.0))


def _merge(best_d, best_i, dist, offset, k):
    """Keep the k smallest of the running best and a new block's distances."""
    take = min(k, dist.shape[1])
    part = np.argpartition(dist, take - 1, axis=1)[:, :take]
    cand_d = np.concatenate([best_d, np.take_along_axis(dist, part, axis=1)], axis=1)
    cand_i = np.concatenate([best_i, part + offset], axis=1)
    keep = np.argsort(cand_d, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(cand_d, keep, axis=1), np.take_along_axis(cand_i, keep, axis=1)


def top_k(store, queries: np.ndarray, k: int, metric: Metric = "cosine",
          exclude_rows: np.ndarray | None = None,
          allowed: np.ndarray | None = None,
          standardise: tuple[np.ndarray, np.ndarray] | None = None,
          ) -> tuple[np.ndarray, np.ndarray]:
    """Row numbers and distances of the k nearest rows to each query, exactly.

    Shards are read by a background thread while the previous one is scored, so I/O and
    the matrix product overlap. `exclude_rows[q]` (one row per query, or -1) is never returned,
    which is how "neighbours of an id" leaves out the id itself; `allowed` (a boolean mask over
    the store's rows) restricts the candidates, e.g. to a split or a filter's rows;
    `standardise=(shift, scale)` compares (x - shift) / scale instead of x, for rows and queries
    alike (cosine between centred latents rather than raw ones, as an OOD detector wants).
    """
    if metric not in ("cosine", "euclidean"):
        raise StoreError(f"metric must be 'cosine' or 'euclidean', got {metric!r}")
    queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
    if queries.shape[1] != store.dim:
        raise StoreError(f"{store.path}: query has {queries.shape[1]} dims, store has {store.dim}")
    affine = _affine(standardise, store.dim)
    queries = affine(queries)
    if metric == "cosine":
        queries = _unit(queries)
    pool_size = store.n_rows if allowed is None else int(np.count_nonzero(allowed))
    k = min(k, pool_size - (0 if exclude_rows is None else 1))
    spare = min(k + REFINE_SPARE, store.n_rows)  # extra candidates re-ranked exactly at the end
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
            dist = _block_scores(z, queries, metric).astype(np.float32)
            if allowed is not None:
                dist[:, ~allowed[start : start + len(z)]] = np.inf
            if exclude_rows is not None:
                for q, row in enumerate(exclude_rows):
                    if start <= row < start + len(z):
                        dist[q, row - start] = np.inf
            best_d, best_i = _merge(best_d, best_i, dist, start, spare)
    return _refine(store, queries, best_i, best_d, k, metric, affine)


def _affine(standardise: tuple[np.ndarray, np.ndarray] | None, dim: int):
    """x -> (x - shift) / scale as float32 (the identity without `standardise`)."""
    if standardise is None:
        return lambda x: x
    shift, scale = (np.asarray(a, dtype=np.float32).reshape(-1) for a in standardise)
    if shift.shape != (dim,) or scale.shape != (dim,) or not (scale > 0).all():
        raise StoreError(f"standardise needs a shift and a positive scale of {dim} values each")
    return lambda x: (np.asarray(x, dtype=np.float32) - shift) / scale


def _refine(store, queries: np.ndarray, candidates: np.ndarray, scanned: np.ndarray, k: int,
            metric: Metric, affine) -> tuple[np.ndarray, np.ndarray]:
    """Exact distances of the scan's candidates, computed directly (no |x|^2 - 2xq + |q|^2
    cancellation), keeping the k nearest."""
    rows, dists = [], []
    for query, cand, scan in zip(queries, candidates, scanned):
        cand = cand[np.isfinite(scan)]  # excluded rows were scanned as +inf
        vecs = affine(store.vectors(cand)).astype(np.float64)
        q = query.astype(np.float64)
        if metric == "cosine":
            d = 1.0 - _unit(vecs) @ q
        else:
            d = np.linalg.norm(vecs - q, axis=1)
        order = np.argsort(d, kind="stable")[:k]
        rows.append(cand[order])
        dists.append(d[order])
    return np.asarray(rows, dtype=np.int64), np.asarray(dists, dtype=np.float32)
