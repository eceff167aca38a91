"""Molecule-VAE objective and model ablations: one change at a time, same data, same steps.

Usage:
    python bench/vae_objective.py --table RUN/stages/ingest-ID/molecules.parquet \\
        [--steps 600] [--only baseline beta_0.2 ...] [--threads 1]

The table is the ingest output of `pipelines/zinc_vae_shipped.toml` (both bundled ZINC files split
by scaffold): variants train on its `train` split and are scored on its `test` split, which no
variant sees. Every variant trains the same number of optimiser steps (batch 256, bucketed,
Adam 2e-3 with cosine decay, seed 0) from the same initial weights where the architecture allows,
then reports, on held-out molecules:
  - nll: teacher-forced token cross-entropy per molecule from z = mu (nats);
  - kl: KL of q(z|x) to N(0, I) per molecule (nats); the ELBO is about nll + kl;
  - exact: greedy decode of the posterior mean gives back the molecule (1,000 molecules);
  - samples from a Gaussian fitted to 5,000 encoded training molecules (2,000 decodes at
    temperature 1): unique share and FCD against 2,000 test molecules (FCD is biased upward
    at these set sizes: compare variants to each other, not to published numbers).
Also prints seconds per step, so quality per CPU-hour follows from the throughput table.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch

from latentsci.molecules.metrics.moses import canonical, moses_metrics
from latentsci.latent.gaussian import LatentGaussian
from latentsci.molecules.vae.batching import collate, make_example
from latentsci.molecules.vae import MoleculeVAEConfig, build_molecule_vae
from latentsci.molecules.vae.schedules import KLSchedule
from latentsci.molecules.vae.selfies_vocab import SelfiesVocabulary
from latentsci.runtime.train import cosine_lr
from latentsci.molecules.vae.steps import shuffled_batches, train_epoch

BASE_MODEL = dict(latent_dim=64, encoder_hidden=128, encoder_layers=3, decoder_embed=64,
                  decoder_hidden=256, decoder_layers=1, mu_batchnorm=1.0)
BASE_KL = dict(beta=0.05, warmup_steps=200, free_bits=0.02)
VARIANTS = {  # name: (model changes, KL changes, word dropout)
    "baseline": ({}, {}, 0.0),
    "beta_0.2": ({}, {"beta": 0.2}, 0.0),
    "beta_0.01": ({}, {"beta": 0.01}, 0.0),
    "no_free_bits": ({}, {"free_bits": 0.0}, 0.0),
    "mu_batchnorm_off": ({"mu_batchnorm": 0.0}, {}, 0.0),
    "word_dropout_0.25": ({}, {}, 0.25),
    "decoder_384": ({"decoder_hidden": 384}, {}, 0.0),
    "decoder_2_layers": ({"decoder_layers": 2}, {}, 0.0),
}


def load_split(path: str) -> tuple[list[str], list[str]]:
    """Training and test SMILES of an ingest table."""
    table = pd.read_parquet(path, columns=["smiles", "split"])
    return (table.loc[table.split == "train", "smiles"].tolist(),
            table.loc[table.split == "test", "smiles"].tolist())


def train_variant(name: str, examples: list, vocab: SelfiesVocabulary, steps: int) -> tuple:
    """Train one variant for `steps` steps; the model and its seconds per step."""
    model_changes, kl_changes, word_dropout = VARIANTS[name]
    torch.manual_seed(0)
    model = build_molecule_vae(MoleculeVAEConfig(**{**BASE_MODEL, **model_changes}), len(vocab))
    model.vocab = vocab
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    schedule = KLSchedule(**{**BASE_KL, **kl_changes})
    per_epoch = -(-len(examples) // 256)
    epochs = -(-steps // per_epoch)
    step, started = 0, time.perf_counter()
    for epoch in range(epochs):
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(2e-3, epoch, epochs)
        batches = shuffled_batches(examples, 256, seed=epoch, bucket=True)[: steps - step]
        _, step = train_epoch(model, batches, optimizer, schedule, step, torch.device("cpu"),
                              word_dropout=word_dropout)
    return model.eval(), (time.perf_counter() - started) / steps


@torch.no_grad()
def held_out_scores(model, test: list[str], vocab: SelfiesVocabulary) -> dict[str, float]:
    """Teacher-forced NLL and KL per molecule, and exact greedy round trips, on test molecules."""
    examples = [e for e in (make_example(s, vocab) for s in test[:2000]) if hasattr(e, "tokens")]
    nll, kl = [], []
    for start in range(0, len(examples), 256):
        batch = collate(examples[start : start + 256])
        mu, logvar = model.encode_batch(batch)
        nll.append(model.recon_per_molecule(mu, batch)[0])
        kl.append(model.prior.kl_per_dim(mu, logvar) * len(mu))  # batch mean -> sum
    round_trip = test[:1000]
    decoded = model.decode(model.encode(round_trip))
    exact = np.mean([a == b for a, b in zip(canonical(round_trip), canonical(decoded))])
    return {"nll": float(torch.cat(nll).mean()),
            "kl": float(torch.stack(kl).sum() / len(examples)), "exact": float(exact)}


def sample_scores(model, train: list[str], test: list[str]) -> dict[str, float]:
    """Unique share and FCD of 2,000 decodes from the fitted latent Gaussian."""
    rng = np.random.default_rng(0)
    fit_on = [train[i] for i in rng.permutation(len(train))[:5000]]
    z = model.encode(fit_on)
    gaussian = LatentGaussian.fit(z[np.isfinite(z).all(1)])
    samples = model.sample(2000, temperature=1.0, seed=0, latent=gaussian)
    metrics = moses_metrics(samples, train, test[:2000], ks=[2000], fcd=True)
    return {"unique": metrics["unique@2000"], "fcd": metrics["FCD/Test"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", required=True)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", nargs="*", choices=list(VARIANTS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train, test = load_split(args.table)
    vocab = SelfiesVocabulary.build(train, max_len=100)
    examples = [e for e in (make_example(s, vocab) for s in train) if hasattr(e, "tokens")]
    print(f"{len(examples)} training and {len(test)} test molecules; {args.steps} steps of 256")
    print(f"{'variant':20s} {'s/step':>7s} {'nll':>7s} {'kl':>7s} {'exact':>6s} "
          f"{'unique':>7s} {'FCD':>6s}", flush=True)
    for name in args.only or VARIANTS:
        model, seconds = train_variant(name, examples, vocab, args.steps)
        row = {**held_out_scores(model, test, vocab), **sample_scores(model, train, test)}
        print(f"{name:20s} {seconds:7.3f} {row['nll']:7.2f} {row['kl']:7.2f} "
              f"{row['exact']:6.3f} {row['unique']:7.4f} {row['fcd']:6.2f}", flush=True)


if __name__ == "__main__":
    main()
