"""One epoch of molecule-VAE training and the validation numbers logged after it (pure torch)."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch
from rdkit import Chem

from latentsci.molecules.metrics.moses import fraction_valid, moses_mol
from latentsci.molecules.vae.batching import MoleculeBatch, collate
from latentsci.molecules.vae.schedules import KLSchedule
from latentsci.molecules.vae.model import MoleculeVAE
from latentsci.runtime.trainer import NonFiniteLoss, optimise  # noqa: F401  (NonFiniteLoss: old home)


@dataclass
class EpochStats:
    """Means over an epoch's batches, for logging."""

    loss: float = 0.0
    recon: float = 0.0
    kl: float = 0.0
    token_accuracy: float = 0.0
    molecules_per_s: float = 0.0
    kl_per_dim: list[float] = field(default_factory=list)
    batches: int = 0
    molecules: int = 0
    seconds: float = 0.0

    @staticmethod
    def combine(parts: list[EpochStats]) -> EpochStats:
        """One epoch's stats from the stats of its consecutive chunks (batch-weighted means)."""
        n = max(sum(p.batches for p in parts), 1)
        mean = {k: sum(getattr(p, k) * p.batches for p in parts) / n
                for k in ("loss", "recon", "kl", "token_accuracy")}
        dims = [p for p in parts if p.kl_per_dim]
        kl_dims = (np.sum([np.asarray(p.kl_per_dim) * p.batches for p in dims], axis=0) / n
                   ).tolist() if dims else []
        molecules, seconds = sum(p.molecules for p in parts), sum(p.seconds for p in parts)
        return EpochStats(**mean, molecules_per_s=molecules / max(seconds, 1e-9),
                          kl_per_dim=kl_dims, batches=sum(p.batches for p in parts),
                          molecules=molecules, seconds=seconds)


def shuffled_batches(examples: list, batch_size: int, seed: int,
                     bucket: bool = False, pool: int = 50) -> list[MoleculeBatch]:
    """The epoch's batches in a seeded random order (drop nothing: the last batch may be short).

    `bucket`: molecules of similar token length share a batch (sorted within random pools of
    `pool` batches, then the batches shuffled), so the decoder pads less."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(examples))
    if bucket:
        size = pool * batch_size
        order = np.concatenate([sorted(order[s : s + size], key=lambda i: len(examples[i].tokens))
                                for s in range(0, len(order), size)]) if len(order) else order
    spans = [order[s : s + batch_size] for s in range(0, len(order), batch_size)]
    if bucket:
        spans = [spans[i] for i in rng.permutation(len(spans))]
    return [collate([examples[i] for i in span]) for span in spans]


def train_epoch(model: torch.nn.Module, batches: list[MoleculeBatch],
                optimizer: torch.optim.Optimizer, schedule: KLSchedule, step: int,
                device: torch.device, grad_clip: float | None = 1.0,
                word_dropout: float = 0.0,
                precision: Callable[[], AbstractContextManager] = nullcontext
                ) -> tuple[EpochStats, int]:
    """Optimise over the batches; `model` may be DDP-wrapped (its forward is the loss), and
    `precision` gives the context its forward runs in (bf16 autocast on GPU workers)."""
    model.train()
    totals = {"loss": 0.0, "recon": 0.0, "kl": 0.0, "token_accuracy": 0.0}
    kl_dims = None
    seen, started = 0, time.perf_counter()
    for batch in batches:
        batch = batch.to(device)
        with precision():
            out = model(batch, beta=schedule.at(step), free_bits=schedule.free_bits,
                        word_dropout=word_dropout)
        value = optimise(model, out.total, optimizer, grad_clip, step)
        step += 1
        seen += batch.tokens_in.shape[0]
        for key, part in (("loss", value), ("recon", out.recon), ("kl", out.kl),
                          ("token_accuracy", out.token_accuracy)):
            totals[key] += part
        kl_dims = out.kl_per_dim.cpu() if kl_dims is None else kl_dims + out.kl_per_dim.cpu()
    n = max(len(batches), 1)
    seconds = time.perf_counter() - started
    stats = EpochStats(**{k: v / n for k, v in totals.items()},
                       molecules_per_s=seen / max(seconds, 1e-9),
                       kl_per_dim=(kl_dims / n).tolist() if kl_dims is not None else [],
                       batches=len(batches), molecules=seen, seconds=seconds)
    return stats, step


def active_units(mu: np.ndarray, threshold: float = 0.01) -> int:
    """Latent dimensions whose posterior mean varies across molecules (Burda et al., 2016)."""
    return int((np.var(mu, axis=0) > threshold).sum()) if len(mu) > 1 else 0


def reconstruction_accuracy(model: MoleculeVAE, smiles: list[str], decodes: int = 5,
                            seed: int = 0, from_mean: bool = False) -> float:
    """Exact canonical-SMILES match of greedy decode(z ~ q(z|x)), averaged over several draws of
    z; `from_mean`: one greedy decode of the posterior mean (what round trips use)."""
    mu, std = model.encode(smiles, return_std=True)
    keep = np.isfinite(mu).all(axis=1)
    if not keep.any():
        return float("nan")
    targets = [Chem.CanonSmiles(s) for s, k in zip(smiles, keep) if k]
    rng = np.random.default_rng(seed)
    hits = 0
    decodes = 1 if from_mean else decodes
    for _ in range(decodes):
        noise = 0.0 if from_mean else rng.standard_normal(mu[keep].shape).astype(np.float32)
        z = mu[keep] + std[keep] * noise
        decoded = (moses_mol(d) for d in model.decode(z))
        hits += sum(m is not None and Chem.MolToSmiles(m) == t for m, t in zip(decoded, targets))
    return hits / (decodes * len(targets))


def prior_validity(model: MoleculeVAE, n: int, seed: int = 0) -> float:
    """Share of decoded prior samples RDKit parses (1.0 by construction with SELFIES)."""
    return fraction_valid(model.sample(n, seed=seed)) if n > 0 else 0.0
