"""Search verbs: score a file of molecules with any objective (built-in, or a user's
module:function), and list the objectives."""

from __future__ import annotations

import argparse
from pathlib import Path

from latentsci.cli.args import on_ray, ray_address_flag, verb


def _scored(objective, texts: list[str], workers: int):
    """Scores and reasons of texts (each distinct canonical molecule scored once)."""
    import numpy as np

    from latentsci.latent.search import OraclePool

    keys = [objective.canonical(t) for t in texts]
    distinct = list(dict.fromkeys(k for k in keys if k is not None))
    pool = OraclePool(objective, workers)
    try:
        values, errors = pool.score(distinct)
    finally:
        pool.close()
    found = {k: (v, e) for k, v, e in zip(distinct, values, errors)}
    scores = np.array([found[k][0] if k is not None and found[k][1] is None else np.nan
                       for k in keys])
    reasons = ["not a valid SMILES" if k is None else found[k][1] for k in keys]
    return keys, scores, reasons


def cmd_score(args: argparse.Namespace) -> int:
    """Score a file of molecules with an objective, or list the objectives."""
    import pandas as pd

    from latentsci.errors import ConfigError
    from latentsci.latent.search import get_objective, list_objectives

    if args.list:
        for name, text in list_objectives().items():
            print(f"{name:28s} {text}")
        return 0
    if args.objective is None or args.smiles is None:
        raise ConfigError("score needs --objective NAME and --smiles FILE (or --list)")
    from latentsci.molecules.domain import read_molecules

    objective = get_objective(args.objective)
    texts = read_molecules(args.smiles)
    keys, scores, reasons = on_ray(args.address, lambda: _scored(objective, texts, args.workers))
    frame = pd.DataFrame({"smiles": texts, "canonical": keys, "score": scores,
                          "reason": reasons})
    failed = int(frame["score"].isna().sum())
    if args.out is not None:
        frame.to_csv(args.out, index=False)
        print(f"scored {len(frame) - failed} of {len(frame)} molecules with {objective.name} "
              f"({failed} could not be scored, reasons in the file); wrote {args.out}")
    else:
        print(frame.to_csv(index=False), end="")
    return 0


def add_verbs(verbs) -> None:
    """score."""
    p = verb(verbs, "score", cmd_score, "score molecules with an objective (or --list them)",
             ["--objective qed --smiles proposals.smi --out scored.csv",
              "--objective osimertinib_mpo --smiles library.smi",
              "--objective my_oracles:docking --smiles proposals.smi", "--list"])
    p.add_argument("--objective", metavar="NAME",
                   help="a built-in objective (see --list) or a user's module:function scoring "
                        "a list of SMILES")
    p.add_argument("--smiles", type=Path, help="molecules to score (.smi/.csv/.parquet)")
    p.add_argument("--out", type=Path, help="CSV to write (smiles, canonical, score, reason); "
                   "default: print it")
    p.add_argument("--list", action="store_true", help="name every built-in objective")
    p.add_argument("--workers", type=int, default=1, help="Ray actors scoring (default 1)")
    ray_address_flag(p)
