"""The latent-space verbs, for any codec: `interpolate` between pairs of a store's latents."""

from __future__ import annotations

import argparse
from pathlib import Path

from latentsci.cli.args import on_ray, ray_address_flag, verb
from latentsci.errors import ConfigError


def _pairs(args: argparse.Namespace, store):
    """The pairs the flags ask for."""
    from latentsci.latent import pairs as select

    if args.pairs is not None:
        return select.pairs_from_file(args.pairs, store)
    rows = select.candidate_rows(store, args.where, args.limit)
    if args.random is not None:
        return select.random_pairs(rows, args.random, args.seed)
    return select.neighbour_pairs(store, rows, args.neighbours)


def cmd_interpolate(args: argparse.Namespace) -> int:
    """Decode paths between pairs of a store's latents and score them; write points and paths."""
    import pandas as pd

    from latentsci.latent.interpolation import interpolate_store, summary, write_interpolation
    from latentsci.runtime import show_progress
    from latentsci.store import LatentStore

    if args.out.suffix.lower() not in (".parquet", ".zarr"):
        raise ConfigError(f"--out {args.out}: expected a .parquet (molecules) or .zarr (fields) "
                          "name")
    store = LatentStore.open(args.store)
    pairs = _pairs(args, store)
    result = on_ray(args.address, lambda: interpolate_store(
        store, pairs, args.steps, args.method, args.model, args.per_task, show_progress()))
    written = write_interpolation(result, args.out)
    said = f"wrote {len(result.points)} points of {len(result.paths)} paths to {args.out}"
    if pairs.rejects:
        rejects = args.out.with_name(args.out.stem + ".rejects.csv")
        pd.DataFrame(pairs.rejects, columns=["where", "reason"]).to_csv(rejects, index=False)
        said += f" ({len(pairs.rejects)} pairs refused, see {rejects})"
    print(said + f"; per-path metrics in {written['paths']}")
    for name, value in summary(result).items():
        print(f"  {name:<28} {value:.4f}")
    return 0


def add_verbs(verbs) -> None:
    """interpolate."""
    from latentsci.latent.interpolate import METHODS

    ip = verb(verbs, "interpolate", cmd_interpolate,
              "decode and score paths between pairs of a latent store's rows",
              ["--store latents.zarr --random 1000 --steps 8 --method slerp --out paths.parquet",
               "--store latents.zarr --neighbours 5 --where \"qed > 0.7\" --limit 500 --steps 6 "
               "--out near.parquet", "--store latents.zarr --pairs pairs.csv --out mine.parquet"])
    ip.add_argument("--store", type=Path, required=True, help="latent store (a .zarr folder)")
    ip.add_argument("--model", help="model folder or MLflow URI (default: the codec the store "
                    "records)")
    how = ip.add_mutually_exclusive_group(required=True)
    how.add_argument("--pairs", type=Path, metavar="FILE", help="CSV with start,end id columns")
    how.add_argument("--random", type=int, metavar="N", help="N random pairs among the rows")
    how.add_argument("--neighbours", type=int, metavar="K",
                     help="each row paired with its K-th nearest neighbour")
    ip.add_argument("--where", metavar="EXPR", help="rows --random/--neighbours draw from")
    ip.add_argument("--limit", type=int, metavar="N", help="at most the first N of those rows")
    ip.add_argument("--steps", type=int, default=8, help="points per path, ends included "
                    "(default 8)")
    ip.add_argument("--method", choices=list(METHODS), default="slerp",
                    help="lerp, slerp, or norm (direction and radius apart; default slerp)")
    ip.add_argument("--out", type=Path, required=True,
                    help="molecules: points .parquet; fields: frames .zarr (per-path metrics go "
                    "beside it, NAME.paths.parquet)")
    ip.add_argument("--seed", type=int, default=0)
    ip.add_argument("--per-task", type=int, default=64, help="pairs per Ray task (default 64)")
    ray_address_flag(ip)
