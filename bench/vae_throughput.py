"""Molecule-VAE training throughput on CPU: allocator, threads, batch size, bucketing, model size.

Usage:
    python bench/vae_throughput.py compare [--n 8000] [--steps 60]   # every variant, ratios
    python bench/vae_throughput.py workers [--n 16000]   # Ray Train: 2 workers x 1 CPU vs 1 x 2
    python bench/vae_throughput.py one --threads 2 --batch 128 [--bucket] [--hidden 256] ...

`compare` runs each variant in a fresh subprocess (the allocator setting is read when a process
starts) on the same molecules, after the same warm-up, and prints molecules per second of wall
time, collation included, with each ratio against the baseline measured in the same command.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TUNED_MALLOC = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=34359738368"


def _examples(n: int):
    """Training examples of the first n bundled training molecules, and their vocabulary."""
    from latentsci.molecules.vae.batching import make_example
    from latentsci.molecules.vae.selfies_vocab import SelfiesVocabulary
    from latentsci.molecules.ingest import read_smiles_file

    smiles = read_smiles_file(ROOT / "data/molecules/zinc_train_86k.smi").texts[:n]
    vocab = SelfiesVocabulary.build(smiles, max_len=100)
    examples = [make_example(s, vocab) for s in smiles]
    return [e for e in examples if not isinstance(e, str) and hasattr(e, "tokens")], vocab


def run_one(args: argparse.Namespace) -> dict:
    """Train `steps` optimiser steps after a warm-up; molecules per second of wall time."""
    import torch

    from latentsci.molecules.vae import MoleculeVAEConfig, build_molecule_vae
    from latentsci.molecules.vae.schedules import KLSchedule
    from latentsci.molecules.vae.steps import shuffled_batches, train_epoch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    examples, vocab = _examples(args.n)
    config = MoleculeVAEConfig(latent_dim=56, encoder_hidden=args.enc_hidden, encoder_layers=3,
                               decoder_embed=48, decoder_hidden=args.hidden,
                               decoder_layers=args.layers, mu_batchnorm=1.0)
    model = build_molecule_vae(config, len(vocab))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    schedule = KLSchedule(beta=0.05, warmup_steps=100, free_bits=0.02)
    device = torch.device("cpu")
    warm = shuffled_batches(examples, args.batch, seed=1, bucket=args.bucket)[:5]
    train_epoch(model, warm, optimizer, schedule, 0, device)
    start = time.perf_counter()
    batches = shuffled_batches(examples, args.batch, seed=2, bucket=args.bucket)
    needed = args.steps
    while len(batches) < needed:  # small n, big batches: go round again
        batches += shuffled_batches(examples, args.batch, seed=3 + len(batches), bucket=args.bucket)
    batches = batches[:needed]
    stats, _ = train_epoch(model, batches, optimizer, schedule, 0, device)
    seconds = time.perf_counter() - start
    return {"molecules_per_s": stats.molecules / seconds, "seconds": seconds,
            "tokens_padded": sum(int(b.targets.numel()) for b in batches),
            "tokens_real": sum(int((b.targets != 0).sum()) for b in batches)}


VARIANTS = [  # (label, env allocator tuned?, cli flags)
    ("baseline: default malloc, 2 threads, batch 128", False, []),
    ("tuned malloc (STACK.md)", True, []),
    ("tuned malloc, 1 thread", True, ["--threads", "1"]),
    ("tuned malloc, batch 256", True, ["--batch", "256"]),
    ("tuned malloc, batch 512", True, ["--batch", "512"]),
    ("tuned malloc, batch 256, bucketed by length", True, ["--batch", "256", "--bucket"]),
    ("tuned malloc, batch 256, bucketed, GRU 512", True,
     ["--batch", "256", "--bucket", "--hidden", "512"]),
    ("tuned malloc, batch 256, bucketed, GRU 2 x 384", True,
     ["--batch", "256", "--bucket", "--hidden", "384", "--layers", "2"]),
]


def compare(args: argparse.Namespace) -> None:
    """Every variant in its own process; ratios against the first."""
    base = None
    print(f"{args.n} molecules of data/molecules/zinc_train_86k.smi, {args.steps} steps each "
          f"(the molecule count of a step is its batch size)")
    for label, tuned, flags in VARIANTS:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("GLIBC_TUNABLES", None)
        if tuned:
            env["GLIBC_TUNABLES"] = TUNED_MALLOC
        steps = args.steps * 128 // _batch_of(flags)  # same molecules per variant
        command = [sys.executable, __file__, "one", "--n", str(args.n), "--steps", str(steps),
                   *flags]
        out = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        rate = result["molecules_per_s"]
        base = base or rate
        padding = result["tokens_padded"] / result["tokens_real"]
        print(f"{label:55s} {rate:7.0f} mol/s  x{rate / base:4.2f}  padding x{padding:4.2f}",
              flush=True)


def workers(args: argparse.Namespace) -> None:
    """One epoch through the pipeline's trainer: 1 worker with 2 CPUs against 2 with 1 each."""
    import tempfile

    from latentsci.molecules.vae.factory import MoleculeVAEConfig
    from latentsci.runtime import connect, disconnect
    from latentsci.molecules.ingest import read_smiles_file
    from latentsci.molecules.vae.train import TrainConfig, train_molecule_vae

    smiles = read_smiles_file(ROOT / "data/molecules/zinc_train_86k.smi").texts[: args.n]
    model = MoleculeVAEConfig(latent_dim=56, encoder_hidden=args.enc_hidden, encoder_layers=3,
                              decoder_embed=48, decoder_hidden=args.hidden,
                              decoder_layers=args.layers, mu_batchnorm=1.0)
    connect(num_cpus=2)
    base = None
    print(f"{len(smiles)} molecules, one epoch, batch {args.batch}, bucketed {args.bucket}, "
          f"GLIBC_TUNABLES={os.environ.get('GLIBC_TUNABLES', '(default)')}")
    for count, cpus in ((1, 2), (2, 1)):
        config = TrainConfig(model=model, epochs=1, batch_size=args.batch, bucket=args.bucket,
                             validation_molecules=0, num_workers=count, cpus_per_worker=cpus)
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            train_molecule_vae(smiles, None, [], config, "bench", Path(folder),
                               Path(folder) / "model")
            seconds = time.perf_counter() - start
        rate = len(smiles) / seconds
        base = base or rate
        print(f"{count} worker(s) x {cpus} CPU: {seconds:6.1f} s for the fit "
              f"(start-up included), {rate:6.0f} mol/s  x{rate / base:4.2f}", flush=True)
    disconnect()


def _batch_of(flags: list[str]) -> int:
    """The batch size a variant's flags ask for."""
    return int(flags[flags.index("--batch") + 1]) if "--batch" in flags else 128


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["compare", "one", "workers"])
    parser.add_argument("--n", type=int, default=8000)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--bucket", action="store_true")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--enc-hidden", type=int, default=128)
    args = parser.parse_args()
    if args.what == "one":
        print(json.dumps(run_one(args)))
    elif args.what == "workers":
        workers(args)
    else:
        compare(args)


if __name__ == "__main__":
    main()
