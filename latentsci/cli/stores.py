"""The store verb: `query` the rows of a latent store by ids, a property filter or neighbours."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from latentsci.cli.args import verb
from latentsci.errors import ConfigError


def cmd_query(args: argparse.Namespace) -> int:
    """Print or save the rows of a latent store that match the query."""
    from latentsci.store import LatentStore, query

    store = LatentStore.open(args.store, allow_incomplete=args.allow_incomplete)
    limit = args.limit if args.limit is not None else (None if args.out else 20)
    frame = query(store, ids=args.ids, where=args.where, knn_of=args.knn_of, k=args.k,
                  metric=args.metric, limit=limit, with_z=args.with_z)
    if args.out:
        suffix = args.out.suffix.lower()
        if suffix not in {".csv", ".parquet"}:
            raise ConfigError(f"--out {args.out}: expected a .csv or .parquet file name")
        if args.with_z and suffix == ".csv":
            frame["z"] = [" ".join(f"{v:.6g}" for v in z) for z in frame["z"]]
        frame.to_csv(args.out, index=False) if suffix == ".csv" else frame.to_parquet(args.out)
        print(f"wrote {len(frame)} rows to {args.out}")
    elif args.json:
        if args.with_z:
            frame["z"] = [z.tolist() for z in frame["z"]]
        print(json.dumps(frame.to_dict(orient="records"), default=str))
    else:
        print(frame.to_string(index=False) if len(frame) else "(no rows)")
    return 0


def _query_flags(q: argparse.ArgumentParser) -> None:
    """Selection and output flags of `query`."""
    q.add_argument("store", help="latent store: a .zarr folder or its URL (s3://...)")
    q.add_argument("--ids", nargs="+", metavar="ID", help="rows with these ids")
    q.add_argument("--where", metavar="EXPR", help="property filter, e.g. \"qed > 0.8 and sa < 3\"")
    q.add_argument("--knn-of", metavar="ID", help="nearest neighbours of this id (exact)")
    q.add_argument("-k", type=int, default=10, help="neighbours to return (default 10)")
    q.add_argument("--metric", choices=["cosine", "euclidean"], default="cosine")
    q.add_argument("--limit", type=int, help="at most N rows (default 20 when printing)")
    q.add_argument("--with-z", action="store_true", help="include the latent vector")
    q.add_argument("--allow-incomplete", action="store_true", help="read an unfinished store")
    out = q.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print JSON records")
    out.add_argument("--out", type=Path, metavar="FILE", help="write .csv or .parquet")


def add_verbs(verbs) -> None:
    """query."""
    query = verb(verbs, "query", cmd_query, "rows of a latent store by ids, filter or neighbours",
                 ['STORE --where "qed > 0.8 and sa < 3" --limit 10',
                  "STORE --knn-of zinc-train-42 -k 5 --json", "STORE --out rows.parquet"])
    _query_flags(query)
