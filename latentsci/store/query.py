"""One query over a store: rows by ids, a property filter, neighbours of an id; combined with AND."""

from __future__ import annotations

import numpy as np
import pandas as pd

from latentsci.store.latent_store import LatentStore
from latentsci.store.neighbours import Metric, top_k


def query(store: LatentStore, ids: list | None = None, where: str | None = None,
          knn_of: str | None = None, k: int = 10, metric: Metric = "cosine",
          limit: int | None = None, with_z: bool = False) -> pd.DataFrame:
    """Rows (id, properties, optionally z) matching every given condition.

    With `knn_of`, rows are the k nearest neighbours of that id (itself excluded), nearest first,
    with a `distance` column; `ids` and `where` then narrow those neighbours.
    """
    rows: np.ndarray | None = None
    distance = None
    if knn_of is not None:
        anchor = store.rows_of([knn_of])
        found, dist = top_k(store, store.vectors(anchor), k, metric, exclude_rows=anchor)
        rows, distance = found[0], dict(zip(found[0].tolist(), dist[0].tolist()))
    if ids:
        chosen = store.rows_of(ids)
        rows = chosen if rows is None else rows[np.isin(rows, chosen)]
    if where:
        matched = store.where(where)
        rows = matched if rows is None else rows[np.isin(rows, matched)]
    if rows is None:
        rows = np.arange(store.n_rows if limit is None else min(limit, store.n_rows))
    if limit is not None:
        rows = rows[:limit]
    frame = store.table(rows, with_z=with_z)
    if distance is not None:
        frame.insert(2, "distance", [distance[r] for r in rows.tolist()])
    return frame
