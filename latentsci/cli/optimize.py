"""The optimize verb: search for better molecules under a budget of oracle calls, on its own or
from each molecule of a start file (JT-VAE's constrained protocol)."""

from __future__ import annotations

import argparse
from pathlib import Path

from latentsci.cli.args import SHIPPED_HELP, on_ray, ray_address_flag, verb

BUNDLED_LIBRARY = Path(__file__).resolve().parents[2] / "data" / "molecules" / "zinc_train_86k.smi"


def _request(args: argparse.Namespace, folder: Path):
    """The search request of the command line (the library read once)."""
    from latentsci.molecules.domain import read_molecules
    from latentsci.molecules.search.optimize import SearchRequest

    library = tuple(dict.fromkeys(read_molecules(args.library)))
    return SearchRequest(args.objective, args.method, args.budget, folder, library, args.model,
                         args.seed, args.batch_size, str(args.gate) if args.gate else None,
                         args.pmo, args.max_heavy_atoms, args.max_ring_size, args.workers,
                         _options(args.set), args.similarity, not args.score_dissimilar)


def _options(pairs: list[str]) -> dict:
    """--set KEY=VALUE pairs as method options (values read as JSON, else as text; a dotted
    key sets a nested option, e.g. draws.spread=0.3)."""
    import json

    from latentsci.errors import ConfigError

    options: dict = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {pair!r}: expected KEY=VALUE")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        *parents, last = key.split(".")
        target = options
        for parent in parents:
            target = target.setdefault(parent, {})
        target[last] = value
    return options


def _progress_line(calls: int, budget: int, best: float | None) -> None:
    """Calls used and the best score so far, rewritten on one console line."""
    from latentsci.runtime.console import progress_stream

    found = f", best so far {best:.4g}" if best is not None else ""
    stream = progress_stream()
    stream.write(f"\r  {calls}/{budget} calls{found}   ")
    stream.flush()


def cmd_optimize(args: argparse.Namespace) -> int:
    """Search, write the scored molecules, print a summary and log the run to MLflow."""
    from latentsci.errors import ConfigError
    from latentsci.molecules.domain import read_molecules
    from latentsci.molecules.search import optimize as opt
    from latentsci.molecules.search.optimize import check_folder
    from latentsci.runtime.console import captured

    if (args.start is None) != (args.similarity is None):
        raise ConfigError("--start FILE and --similarity DELTA go together")
    folder = args.run_dir or args.out.with_name(args.out.stem + ".run")
    request = _request(args, folder)
    opt.check_request(request)
    starts = read_molecules(args.start) if args.start is not None else None
    if starts is not None and not starts:
        raise ConfigError(f"--start {args.start}: the file holds no molecules")
    check_folder(folder, request)
    folder.mkdir(parents=True, exist_ok=True)
    with captured(folder / "optimize.log"):  # Ray's and MLflow's chatter goes to the log
        _optimize(args, request, starts, folder)
    return 0


def _optimize(args: argparse.Namespace, request, starts: list[str] | None, folder: Path) -> None:
    """Search (or each start), write the tables and pictures, log them, say what was found."""
    from latentsci.molecules.search import optimize as opt
    from latentsci.molecules.search.constrained import protocol_summary
    from latentsci.molecules.search.report import log_search, pictures, search_summary
    from latentsci.runtime import show_progress
    from latentsci.runtime.console import progress_stream, say

    if starts is None:
        table, rejected = on_ray(args.address, lambda: opt.search(request, _progress_line))
        progress_stream().write("\n")
        summary = search_summary(table, args.budget, rejected)
        per_start = None
    else:
        table, per_start, rejected = on_ray(args.address, lambda: opt.constrained(
            request, starts, args.similarity, show_progress()))
        outcomes = [(s is True, g) for s, g in zip(per_start.get("success", []),
                                                   per_start.get("improvement", []))]
        summary = {"calls": float(len(table)), "rejected": float(sum(rejected.values())),
                   **protocol_summary(outcomes)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.drop(columns=["error"], errors="ignore").to_csv(args.out, index=False)
    files = [args.out, *pictures(table, folder / "report", f"{args.method} on {args.objective}",
                                 curve=starts is None)]
    if per_start is not None:
        per_start.to_csv(args.out.with_name(args.out.stem + ".starts.csv"), index=False)
        files.append(args.out.with_name(args.out.stem + ".starts.csv"))
    params = {"objective": args.objective, "method": args.method, "budget": args.budget,
              "seed": args.seed, "pmo": args.pmo, "gate": args.gate, "model": args.model,
              "similarity": args.similarity, "library": args.library, "options": request.options,
              "max_heavy_atoms": args.max_heavy_atoms, "max_ring_size": args.max_ring_size}
    run_id = log_search(folder, args.tracking_uri, params, summary, files)
    said = ", ".join(f"{k} {v:.4g}" for k, v in summary.items())
    say(f"{args.method} on {args.objective}: {said}; wrote {args.out} (MLflow run {run_id})")
    if rejected:
        ranked = sorted(rejected.items(), key=lambda kv: -kv[1])
        say("  rejected before any oracle call: " + ", ".join(f"{n} {r}" for r, n in ranked))


def add_verbs(verbs) -> None:
    """optimize."""
    from latentsci.molecules.search.optimize import METHODS

    p = verb(verbs, "optimize", cmd_optimize,
             "search for molecules that score higher, under a budget of oracle calls",
             ["--objective qed --method bo --budget 2000 --out qed_bo.csv",
              "--objective plogp --method gradient --budget 100 --start low.smi "
              "--similarity 0.4 --out constrained.csv",
              "--objective osimertinib_mpo --method graph_ga --budget 10000 --pmo --out o.csv"])
    p.add_argument("--objective", required=True, metavar="NAME",
                   help="a built-in objective (latentsci score --list) or module:function")
    p.add_argument("--method", required=True, choices=list(METHODS))
    p.add_argument("--budget", type=int, required=True,
                   help="oracle calls (per start molecule with --start)")
    p.add_argument("--out", type=Path, required=True, help="CSV of every scored molecule")
    p.add_argument("--model", help=SHIPPED_HELP + " (latent methods)")
    p.add_argument("--library", type=Path, default=BUNDLED_LIBRARY,
                   help="molecules screening and Graph GA start from, and the latent Gaussian is "
                        "bounded by (default: the bundled ZINC training set)")
    p.add_argument("--start", type=Path, metavar="FILE", help="start molecules (constrained)")
    p.add_argument("--similarity", type=float, metavar="DELTA",
                   help="least Tanimoto (Morgan r=2 counts) to the start")
    p.add_argument("--score-dissimilar", action="store_true",
                   help="with --start, score proposals less similar than DELTA too (as JT-VAE "
                        "did; by default they are rejected before the oracle: they cannot count)")
    p.add_argument("--gate", type=Path, metavar="DETECTOR",
                   help="a saved OOD detector: proposals it rejects are never scored")
    p.add_argument("--pmo", action="store_true", help="PMO's rules: no gate, no caps")
    p.add_argument("--max-heavy-atoms", type=int, default=50)
    p.add_argument("--max-ring-size", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a method option, e.g. initial=50, batch=10, draws.spread=0.3 for "
                        "latent methods, population_size=100 for graph_ga (repeatable)")
    p.add_argument("--batch-size", type=int, default=100, help="proposals per round at most")
    p.add_argument("--workers", type=int, default=1, help="Ray actors scoring (default 1)")
    p.add_argument("--run-dir", type=Path,
                   help="call logs, states, MLflow (default: OUT's name + .run); a rerun resumes")
    p.add_argument("--tracking-uri", help="MLflow URI (default: MLFLOW_TRACKING_URI, else a "
                   "SQLite file in the run folder)")
    ray_address_flag(p)
