"""The molecule verbs: `encode` SMILES into a latent store, `sample` molecules, `evaluate`
generated SMILES with the MOSES metrics. Their defaults are the matching stages' (encode, sample,
evaluate), read from the stage configs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from latentsci.cli.args import SHIPPED_HELP, default_of, local_model, on_ray, ray_address_flag, verb
from latentsci.molecules.stages.encode import EncodeConfig
from latentsci.molecules.stages.evaluate import EvaluateConfig
from latentsci.molecules.stages.sample import SampleConfig


def cmd_encode(args: argparse.Namespace) -> int:
    """Encode a SMILES file into a new latent store with a trained molecule VAE."""
    import pandas as pd

    from latentsci.molecules.ingest import read_smiles_file
    from latentsci.molecules.tasks import encode_table
    from latentsci.runtime import show_progress

    model = local_model(args.model)
    records = read_smiles_file(args.smiles, column=args.smiles_column)
    table = pd.DataFrame({"id": [f"line-{n}" for n in records.lines], "smiles": records.texts})
    report = on_ray(args.address, lambda: encode_table(
        table, model, args.out, {"smiles": "str"}, {"source": str(args.smiles)},
        args.rows_per_shard, show_progress()))
    rejects = args.out.with_name(args.out.name + ".rejects.csv")
    report.to_csv(rejects, index=False)
    print(f"encoded {len(table) - len(report)} of {len(table)} molecules into {args.out} "
          f"({len(report)} rejected, see {rejects})")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    """Sample molecules from a trained molecule VAE (prior or fitted latent Gaussian) to a file."""
    from latentsci.molecules.tasks import sample_molecules
    from latentsci.latent.gaussian import LatentGaussian
    from latentsci.molecules.vae.shipped import fitted_latent_file
    from latentsci.runtime import show_progress

    model = local_model(args.model)
    latent, saved = None, fitted_latent_file(model)
    if args.from_store is not None:
        latent = LatentGaussian.from_store(args.from_store, "train", seed=args.seed)
    elif saved is not None and not args.prior:
        latent = LatentGaussian.load(saved)
    samples = on_ray(args.address, lambda: sample_molecules(
        model, args.n, args.per_task, args.seed, args.temperature, show_progress(), latent))
    args.out.write_text("\n".join(samples) + "\n")
    print(f"wrote {len(samples)} molecules to {args.out}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """MOSES metrics of generated SMILES against train and test sets."""
    from latentsci.molecules.ingest import read_generated, read_smiles_file
    from latentsci.molecules.metrics import moses_metrics

    samples = read_generated(args.samples)
    train = read_smiles_file(args.train, column=args.smiles_column).texts
    test = read_smiles_file(args.test, column=args.smiles_column).texts
    metrics = moses_metrics(samples, train, test, ks=args.k, fcd=not args.no_fcd,
                            device=args.device)
    if args.json:
        print(json.dumps(metrics))
    else:
        for name, value in metrics.items():
            print(f"{name:<12} {value:.4f}")
    return 0


def _encode_verb(verbs) -> argparse.ArgumentParser:
    """encode: SMILES file -> latent store."""
    enc = verb(verbs, "encode", cmd_encode, "encode SMILES into a latent store with a trained VAE",
               ["--smiles mols.smi --out mols.zarr",
                "--model runs/zinc_vae/stages/train-ID/model --smiles mols.smi --out mols.zarr"])
    enc.add_argument("--model", help=SHIPPED_HELP + " (or an MLflow URI, runs:/ID/checkpoint)")
    enc.add_argument("--smiles", type=Path, required=True, help=".smi/.csv/.parquet file")
    enc.add_argument("--smiles-column", default="smiles", help="column of CSV/Parquet input")
    enc.add_argument("--out", type=Path, required=True, help="new latent store (.zarr)")
    shard = default_of(EncodeConfig, "rows_per_shard")
    enc.add_argument("--rows-per-shard", type=int, default=shard,
                     help=f"rows per store shard and per Ray task (default {shard}, as the "
                     "encode stage)")
    return enc


def _sample_verb(verbs) -> argparse.ArgumentParser:
    """sample: model -> SMILES file."""
    smp = verb(verbs, "sample", cmd_sample, "sample molecules from a trained VAE",
               ["-n 10 --out s.smi", "--model runs/zinc_vae/stages/train-ID/model -n 1000 "
                "--from-store runs/zinc_vae/stages/encode-ID/latents.zarr --out samples.smi"])
    smp.add_argument("--model", help=SHIPPED_HELP + " (or an MLflow URI)")
    n, temperature = default_of(SampleConfig, "n"), default_of(SampleConfig, "temperature")
    smp.add_argument("-n", type=int, default=n, help=f"how many molecules (default {n})")
    smp.add_argument("--out", type=Path, required=True, help="SMILES file to write")
    smp.add_argument("--temperature", type=float, default=temperature,
                     help=f"1 = sample tokens, 0 = greedy decoding (default {temperature:g}, as "
                     "the sample stage)")
    smp.add_argument("--seed", type=int, default=default_of(SampleConfig, "seed"))
    per_task = default_of(SampleConfig, "per_task")
    smp.add_argument("--per-task", type=int, default=per_task,
                     help=f"molecules per Ray task (default {per_task})")
    source = smp.add_mutually_exclusive_group()
    source.add_argument("--from-store", type=Path, metavar="STORE",
                        help="draw z from a Gaussian fitted to this latent store's molecules (its "
                        "train split if it has one)")
    source.add_argument("--prior", action="store_true",
                        help="draw z from the N(0, I) prior (default: the Gaussian fitted to the "
                        "model's training molecules, saved beside it, when there is one)")
    return smp


def _evaluate_verb(verbs) -> None:
    """evaluate: generated SMILES -> MOSES metrics."""
    ev = verb(verbs, "evaluate", cmd_evaluate, "MOSES metrics of generated SMILES vs train/test",
              ["--samples samples.smi --train data/molecules/zinc_train_86k.smi "
               "--test data/molecules/zinc_valid_24k.smi --json"])
    ev.add_argument("--samples", type=Path, required=True,
                    help="generated SMILES, one per line (an empty line is a failed sample)")
    ev.add_argument("--train", type=Path, required=True, help="training set (.smi/.csv/.parquet)")
    ev.add_argument("--test", type=Path, required=True, help="test set (.smi/.csv/.parquet)")
    ev.add_argument("--smiles-column", default="smiles", help="column of CSV/Parquet sets")
    ks = default_of(EvaluateConfig, "ks")
    ev.add_argument("-k", type=int, nargs="+", default=ks,
                    help=f"unique@k sizes (default {' '.join(map(str, ks))})")
    ev.add_argument("--no-fcd", action="store_true", help="skip FCD (ChemNet)")
    ev.add_argument("--device", default="cpu", help="torch device for FCD (cpu, cuda)")
    ev.add_argument("--json", action="store_true", help="print one JSON object")


def add_verbs(verbs) -> None:
    """encode, sample, evaluate."""
    for p in (_encode_verb(verbs), _sample_verb(verbs)):
        ray_address_flag(p)
    _evaluate_verb(verbs)
