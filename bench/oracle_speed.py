"""Oracle calls per second through the budgeted oracle (canonicalise, cache, log, Ray actors)
with 1 and 2 actors, against the same objective in a plain loop in this process; and cache hits
per second (the same molecules asked again).

    python bench/oracle_speed.py [--n 2000] [--tasks qed osimertinib_mpo] [--batch 200]

A cheap task (QED) shows the layer's overhead; an expensive one (an MPO with three fingerprints
and descriptors) shows whether actors pay for themselves.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _clock(fn) -> float:
    """Seconds of one call."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _ray(workers: int) -> None:
    """A fresh local Ray with `workers` CPUs."""
    import ray

    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)


def _through_layer(task: str, smiles: list[str], workers: int, batch: int) -> tuple[float, float]:
    """(new calls per second, cache hits per second) through a BudgetedOracle."""
    from latentsci.latent.search import BudgetedOracle, CallLog, get_objective

    with tempfile.TemporaryDirectory() as tmp:
        oracle = BudgetedOracle(get_objective(task), len(smiles), CallLog(tmp), workers=workers)
        oracle(smiles[:workers])  # start the actors outside the clock
        rest = smiles[workers:]
        new = _clock(lambda: [oracle(rest[a : a + batch]) for a in range(0, len(rest), batch)])
        hits = _clock(lambda: [oracle(rest[a : a + batch]) for a in range(0, len(rest), batch)])
        oracle.close()
    return len(rest) / new, len(rest) / hits


def main() -> int:
    """Print one line per task."""
    from latentsci.latent.search import get_objective
    from latentsci.molecules.oracles.basic import canonical_smiles

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--tasks", nargs="+", default=["qed", "osimertinib_mpo"])
    parser.add_argument("--batch", type=int, default=200)
    args = parser.parse_args()
    lines = (ROOT / "data/molecules/zinc_train_86k.smi").read_text().split()
    smiles = list(dict.fromkeys(canonical_smiles(s) for s in lines))[: args.n]
    for task in args.tasks:
        objective = get_objective(task)
        base = len(smiles) / _clock(lambda: [objective.score([s]) for s in smiles])
        line = f"{task}: plain loop {base:.0f} calls/s"
        for workers in (1, 2):
            _ray(workers)
            rate, hits = _through_layer(task, smiles, workers, args.batch)
            line += (f"; layer x{workers} {rate:.0f} calls/s ({rate / base:.2f}x), "
                     f"cache hits {hits:.0f}/s")
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
