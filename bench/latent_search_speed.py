"""Speed of the latent optimisers on the shipped model (d = 64): seconds per BO batch (GP fit,
first and warm-started, plus acquisition) with 1,000 and 2,000 labelled points, and proposals per
second of each method with where the time goes (decode, oracle, GP, predictor). Ratios are
against latent random draws, timed in the same process.

    .venv/bin/python bench/latent_search_speed.py [--objective qed] [--repeats 2] [--bo-only]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from latentsci.latent.search.latent_methods import latent_optimiser
from latentsci.latent.search.objective import get_objective
from latentsci.molecules.domain import read_molecules
from latentsci.molecules.search.latent import molecule_space

ROOT = Path(__file__).resolve().parents[1]


def labelled_space(library: list[str], objective, n: int):
    """A space whose labels are n encoded library molecules and their scores."""
    space = molecule_space(None, library)
    picked = library[:n]
    z = space.codec.encode(picked).z
    space.u = list(space.gaussian.whiten(z))
    space.y = [float(v) for v in objective.score([objective.canonical(s) for s in picked])]
    return space


def bo_batch(library, objective, n: int, repeats: int,
             options: dict | None = None) -> dict[str, float]:
    """Seconds of a first GP fit, a warm refit and an acquisition at n points (best of repeats)."""
    best: dict[str, float] = {}
    for r in range(repeats):
        optimiser = latent_optimiser("bo", labelled_space(library, objective, n), r,
                                     options=options)
        u, y = optimiser.space.labelled()
        for name in ("first", "warm"):
            optimiser.timings = dict.fromkeys(optimiser.timings, 0.0)
            optimiser.rounds += 1
            optimiser._batch(optimiser._cube(u), y)
            best[f"gp_fit_{name}"] = min(best.get(f"gp_fit_{name}", np.inf),
                                         optimiser.timings["gp_fit"])
            best["acquisition"] = min(best.get("acquisition", np.inf),
                                      optimiser.timings["acquisition"])
    best["batch_warm"] = best["gp_fit_warm"] + best["acquisition"]
    return best


def proposals_per_second(method: str, library, objective, rounds: int = 3) -> dict[str, float]:
    """Asked-and-scored proposals per second over a few rounds after 200 labels."""
    optimiser = latent_optimiser(method, labelled_space(library, objective, 200), 0,
                                 options={"initial": 100} if method != "latent_random" else {})
    asked = oracle = 0.0
    count = 0
    for _ in range(rounds):
        started = time.perf_counter()
        items = optimiser.ask(100)
        asked += time.perf_counter() - started
        started = time.perf_counter()
        scores = np.asarray(objective.score(items), dtype=float)
        oracle += time.perf_counter() - started
        optimiser.tell(items, scores)
        count += len(items)
    out = {"per_second": count / (asked + oracle), "ask_s": asked / rounds,
           "oracle_s": oracle / rounds}
    out.update({f"{k}_s": v / rounds for k, v in getattr(optimiser, "timings", {}).items()})
    return out


def main() -> None:
    """Print the BO batch table and the proposal rates."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--objective", default="qed")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--bo-only", action="store_true", help="the BO batch table alone")
    args = parser.parse_args()
    library = list(dict.fromkeys(read_molecules(ROOT / "data/molecules/zinc_train_86k.smi")))
    objective = get_objective(args.objective)
    # the baseline first: hyperparameters fitted on all 2,000 points (what BO did before
    # fit_points), then the default (fitted on 1,000, conditioned on all)
    exact = bo_batch(library, objective, 2000, args.repeats, {"fit_points": 2000})
    print("bo batch at 2000 points, hyperparameters on all: "
          + ", ".join(f"{k} {v:.2f} s" for k, v in exact.items()))
    for n in (1000, 2000):
        row = bo_batch(library, objective, n, args.repeats)
        print(f"bo batch at {n} points: " + ", ".join(f"{k} {v:.2f} s" for k, v in row.items())
              + (f" ({row['batch_warm'] / exact['batch_warm']:.2f}x the baseline)"
                 if n == 2000 else ""))
    if args.bo_only:
        return
    baseline = None
    for method in ("latent_random", "gradient", "bo"):
        rate = proposals_per_second(method, library, objective)
        baseline = baseline or rate["per_second"]
        print(f"{method:14s} {rate['per_second']:8.1f} proposals/s ({rate['per_second'] / baseline:.3f}x "
              "latent_random); per round: " + ", ".join(f"{k} {v:.2f}" for k, v in rate.items()
                                                          if k != "per_second"))


if __name__ == "__main__":
    main()
