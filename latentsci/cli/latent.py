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

    from latentsci.latent.interpolation import (interpolate_store, score_points, summary,
                                                write_interpolation)
    from latentsci.runtime import show_progress
    from latentsci.store import LatentStore

    if args.out.suffix.lower() not in (".parquet", ".zarr"):
        raise ConfigError(f"--out {args.out}: expected a .parquet (molecules) or .zarr (fields) "
                          "name")
    store = LatentStore.open(args.store)
    pairs = _pairs(args, store)
    result = on_ray(args.address, lambda: interpolate_store(
        store, pairs, args.steps, args.method, args.model, args.per_task, show_progress()))
    if args.detector is not None:
        result = on_ray(args.address, lambda: score_points(
            result, store, pairs, args.steps, args.method, args.detector, args.model))
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
    """interpolate, ood fit, ood score."""
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
    how.add_argument("--pairs", type=Path, metavar="FILE",
                     help="CSV with start,end id columns, or chain,id (each chain's anchors "
                          "in order; its legs become paths)")
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
    ip.add_argument("--detector", type=Path, metavar="DIR",
                    help="a saved OOD detector (latentsci ood fit): each point's OOD score too")
    ray_address_flag(ip)
    _ood_verbs(verbs)


def cmd_ood_fit(args: argparse.Namespace) -> int:
    """Fit and calibrate an OOD detector on a store's training rows; save it."""
    from latentsci.latent import load_codec, store_codec
    from latentsci.latent.ood import OODConfig
    from latentsci.latent.ood_files import save_detector
    from latentsci.latent.ood_fit import fit_detector
    from latentsci.store import LatentStore

    store = LatentStore.open(args.store)
    codec = load_codec(args.model) if args.model else store_codec(store)
    config = OODConfig(k=args.k, keep=args.keep, fit_split=args.split,
                       **({"detectors": args.detectors} if args.detectors else {}))
    detector = on_ray(args.address, lambda: fit_detector(store, config, codec))
    save_detector(detector, args.out)
    print(f"fitted {', '.join(detector.calibration)} on {len(detector.fit_rows)} rows of "
          f"{args.store}; threshold {detector.threshold:.3f} keeps {args.keep:.0%} of held-out "
          f"in-distribution rows; saved to {args.out}")
    return 0


def cmd_ood_score(args: argparse.Namespace) -> int:
    """Score molecules (or a store's rows) with a saved detector: keep or reject each, and why."""
    from latentsci.latent.ood_files import open_detector
    from latentsci.latent.ood_fit import gate, read_items, score_store
    from latentsci.latent.ood_report import report_scores, separation_table, verdict_table
    from latentsci.store import LatentStore

    detector, fitted_on, codec = open_detector(args.detector, args.model)
    items = read_items(codec, args.smiles) if args.smiles is not None else None
    if items is not None:
        result = on_ray(args.address, lambda: gate(detector, fitted_on, codec, items=items))
    else:
        store = LatentStore.open(args.store)
        result = on_ray(args.address, lambda: score_store(detector, fitted_on, codec, store))
    if args.reference is not None:
        inside = gate(detector, fitted_on, codec, items=read_items(codec, args.reference))
        table = separation_table(report_scores(inside), report_scores(result))
        print(table.to_json(orient="records") if args.json else table.to_string(index=False))
        return 0
    frame = verdict_table(result, items)
    if args.json:
        print(frame.to_json(orient="records"))
        return 0
    print(f"kept {int(result.keep.sum())} of {len(frame)} "
          f"({len(frame) - int(result.keep.sum())} rejected)")
    print(frame.head(20).to_string(index=False))
    return 0


def _ood_verbs(verbs) -> None:
    """ood fit, ood score."""
    ood = verbs.add_parser("ood", help="fit or apply an out-of-distribution detector",
                           description="fit or apply an out-of-distribution detector")
    sub = ood.add_subparsers(dest="ood_verb", required=True, metavar="VERB")
    fit = verb(sub, "fit", cmd_ood_fit, "fit and calibrate a detector on a store's training rows",
               ["--store latents.zarr --out detector/"], group="ood")
    fit.add_argument("--store", type=Path, required=True, help="latent store (a .zarr folder)")
    fit.add_argument("--model", help="model folder or MLflow URI (default: the store's codec)")
    fit.add_argument("--out", type=Path, required=True, help="folder to save the detector in")
    fit.add_argument("--split", default="train", help="rows to fit on (default: train)")
    fit.add_argument("-k", type=int, default=10, help="neighbour for the kNN score (default 10)")
    fit.add_argument("--keep", type=float, default=0.95,
                     help="share of held-out in-distribution rows kept (default 0.95)")
    fit.add_argument("--detectors", nargs="+", metavar="NAME",
                     help="mahalanobis knn reconstruction similarity (default: all)")
    score = verb(sub, "score", cmd_ood_score, "score items with a saved detector",
                 ["--detector detector/ --smiles proposals.smi",
                  "--detector detector/ --smiles qm9.smi --reference heldout.smi --json"],
                 group="ood")
    score.add_argument("--detector", type=Path, required=True, help="a saved detector folder")
    what = score.add_mutually_exclusive_group(required=True)
    what.add_argument("--smiles", type=Path, help="molecules to score (.smi/.csv/.parquet)")
    what.add_argument("--store", type=Path, help="a latent store whose z rows to score")
    score.add_argument("--reference", type=Path,
                       help="in-distribution molecules: print the AUROC/AUPR/FPR table instead")
    score.add_argument("--model", help="the codec (default: the one the detector records)")
    score.add_argument("--json", action="store_true", help="print JSON records")
    for p in (fit, score):
        ray_address_flag(p)
