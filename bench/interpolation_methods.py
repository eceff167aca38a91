"""lerp vs slerp vs norm-aware interpolation on the same pairs of the shipped molecule model.

    python bench/interpolation_methods.py [--pairs 1000] [--steps 8] [--cpus 2]

Encodes the model card's 1,000 held-out test molecules (data/models/zinc-vae-v2/
heldout_sample.smi) into a latent store, draws the pairs once, then decodes and scores every
method's paths on the same pairs; prints the posterior means' norms next to sqrt(d), one row of
mean path metrics per method, and decoded points per second (relative to lerp, same process).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

COLUMNS = ("valid", "distinct", "smoothness", "monotonic_to_end", "monotonic_from_start",
           "start_recovered", "end_recovered", "tv_qed", "tv_logp", "tv_sa")


def main() -> int:
    """Run every method on one set of pairs and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--cpus", type=int, default=2)
    args = parser.parse_args()
    import ray

    from latentsci.latent.interpolate import norm_report
    from latentsci.latent.interpolation import interpolate_store, summary
    from latentsci.latent.pairs import candidate_rows, random_pairs
    from latentsci.molecules.tasks import encode_table
    from latentsci.molecules.vae.shipped import shipped_model_dir
    from latentsci.store import LatentStore

    model = shipped_model_dir()
    smiles = (model / "heldout_sample.smi").read_text().split()
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "heldout.zarr"
        table = pd.DataFrame({"id": [f"t{i}" for i in range(len(smiles))], "smiles": smiles})
        encode_table(table, str(model), path, {"smiles": "str"}, {}, 256, False)
        store = LatentStore.open(path)
        rows = candidate_rows(store)
        print(f"{len(rows)} encoded test molecules; norms: {norm_report(store.vectors(rows))}")
        pairs = random_pairs(rows, args.pairs, seed=0)
        print(f"{'method':8s} {'pts/s':>7s} " + " ".join(f"{c:>10s}" for c in COLUMNS))
        for method in ("lerp", "slerp", "norm"):
            started = time.perf_counter()
            result = interpolate_store(store, pairs, args.steps, method, per_task=50)
            rate = len(result.points) / (time.perf_counter() - started)
            means = summary(result)
            print(f"{method:8s} {rate:7.0f} "
                  + " ".join(f"{means['mean_' + c]:10.3f}" for c in COLUMNS), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
