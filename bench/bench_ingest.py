"""Ingest throughput: parse + canonicalise + describe SMILES with 1 and 2 Ray workers.

Baseline: a plain single-process RDKit loop doing the same work on the same molecules, in the same
process. Ray figures are steady state (workers started before timing) and include shipping
SMILES to the workers and results back.
Usage: python bench/bench_ingest.py [--n 8000] [--file data/molecules/zinc_train_86k.smi]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import ray

from latentsci.molecules.chem import process_smiles_batch
from latentsci.runtime import map_batches
from latentsci.molecules.ingest import read_smiles_file

ROOT = Path(__file__).resolve().parents[1]


def rate(n: int, fn) -> float:
    """Molecules per second of one call."""
    start = time.perf_counter()
    fn()
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--file", type=Path, default=ROOT / "data/molecules/zinc_train_86k.smi")
    args = parser.parse_args()
    texts = read_smiles_file(args.file).texts[: args.n]
    n = len(texts)
    batches = [texts[i : i + args.batch_size] for i in range(0, n, args.batch_size)]
    process_smiles_batch(texts[:50])  # load RDKit's tables, as the workers will
    base = rate(n, lambda: process_smiles_batch(texts))
    print(f"{n} molecules from {args.file.name}")
    print(f"plain RDKit loop, 1 process : {base:7.0f} mol/s (baseline)")
    for workers in (1, 2):
        ray.init(num_cpus=workers, include_dashboard=False, _node_ip_address="127.0.0.1")
        map_batches(process_smiles_batch, batches[:workers] * 2, desc="warm-up")
        got = rate(n, lambda: map_batches(process_smiles_batch, batches, desc="ingest"))
        ray.shutdown()
        print(f"Ray tasks, {workers} worker(s)       : {got:7.0f} mol/s  ratio {got / base:.2f}")


if __name__ == "__main__":
    main()
