"""Data-parallel molecule-VAE training: the loop each Ray Train worker runs, and its launcher."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import torch
from pydantic import Field, field_validator

from latentsci.molecules.chem import DESCRIPTOR_NAMES, Reject
from latentsci.errors import LatentsciError
from latentsci.molecules.vae.batching import make_example
from latentsci.molecules.vae.checkpoint import save_checkpoint
from latentsci.molecules.vae import MoleculeVAEConfig, build_molecule_vae, load_checkpoint
from latentsci.molecules.vae.schedules import KLSchedule
from latentsci.molecules.vae.selfies_vocab import SelfiesVocabulary
from latentsci.pipeline.stage import StageConfig
from latentsci.runtime import train as rt
from latentsci.molecules.vae.steps import (
    EpochStats,
    NonFiniteLoss,
    active_units,
    prior_validity,
    reconstruction_accuracy,
    shuffled_batches,
    train_epoch,
)


class TrainingError(LatentsciError):
    """Training stopped for a reason the user must act on (e.g. a non-finite loss)."""


class TrainConfig(StageConfig):
    """How to train: model, KL schedule, optimisation, and the Ray Train worker group."""

    model: MoleculeVAEConfig = Field(default_factory=MoleculeVAEConfig)
    kl: KLSchedule = Field(default_factory=KLSchedule)
    epochs: int = Field(default=10, gt=0)
    batch_size: int = Field(default=128, gt=0)
    bucket: bool = False  # batch molecules of similar length: less padding for the decoder
    word_dropout: float = Field(default=0.0, ge=0, lt=1)  # share of decoder inputs blanked
    lr: float = Field(default=1e-3, gt=0)
    lr_decay: Literal["none", "cosine"] = "none"  # cosine: per epoch from lr towards 0
    seed: int = 0
    max_len: int = Field(default=100, gt=8)
    max_molecules: int | None = Field(default=None, gt=0)  # seeded subsample of train (demos)
    validation_molecules: int = Field(default=200, ge=0)
    num_workers: int = Field(default=1, gt=0)
    use_gpu: bool = False
    cpus_per_worker: float = Field(default=1, gt=0)
    mixed_precision: bool = True  # bf16 autocast on GPU workers; ignored on CPU
    max_failures: int = Field(default=1, ge=0)
    checkpoint_every_steps: int | None = Field(default=None, gt=0)  # None: once per epoch
    execution_fields: ClassVar[frozenset[str]] = rt.TRAINING_EXECUTION_FIELDS

    @field_validator("model")
    @classmethod
    def _known_properties(cls, model: MoleculeVAEConfig) -> MoleculeVAEConfig:
        """Property heads can only learn columns ingest computes."""
        unknown = [p for p in model.properties if p not in DESCRIPTOR_NAMES]
        if unknown:
            raise ValueError(f"unknown property {unknown[0]!r} in model.properties (known: "
                             f"{', '.join(DESCRIPTOR_NAMES)})")
        return model


def _examples(smiles: list[str], props: list[list[float]] | None, vocab: SelfiesVocabulary):
    """Training examples of one worker's shard and how many molecules it could not use."""
    out, rejected = [], 0
    for i, text in enumerate(smiles):
        example = make_example(text, vocab, props[i] if props else None)
        if isinstance(example, Reject):
            rejected += 1
        else:
            out.append(example)
    return out, rejected


def _validate(model, valid_smiles: list[str], seed: int) -> dict[str, float]:
    """Reconstruction, prior validity and active units on the validation sample (rank 0)."""
    model.eval()
    if not valid_smiles:
        return {}
    mu = model.encode(valid_smiles)
    return {"recon_accuracy": reconstruction_accuracy(model, valid_smiles, decodes=3, seed=seed),
            "validity": prior_validity(model, min(len(valid_smiles), 200), seed=seed),
            "active_units": float(active_units(mu[np.isfinite(mu).all(1)]))}


def _resume(model, world: int) -> tuple[int, int, int, list, dict | None]:
    """Restore weights from the run's latest checkpoint: (epoch, batches done in it, step,
    history, optimizer state to load once the model sits on its device)."""
    with rt.latest_checkpoint() as folder:
        if folder is None:
            return 0, 0, 0, [], None
        resumed, meta = load_checkpoint(folder)
        model.load_state_dict(resumed.state_dict())
        optimizer_state = torch.load(folder / "optimizer.pt", map_location="cpu",
                                     weights_only=True)
    epoch, done = rt.resume_point(meta, world)
    return epoch, done, meta["step"], meta["history"], optimizer_state


def _epoch_lr(config: TrainConfig, epoch: int) -> float:
    """The learning rate an epoch trains at under the configured decay."""
    if config.lr_decay == "cosine":
        return rt.cosine_lr(config.lr, epoch, config.epochs)
    return config.lr


def _epoch_metrics(epoch: int, step: int, stats: EpochStats, world: int, rejected: int,
                   config: TrainConfig, start: tuple[int, int], lr: float) -> dict:
    """What every rank reports at the end of an epoch."""
    return {"epoch": epoch, "step": step, "loss": stats.loss, "recon": stats.recon,
            "kl": stats.kl, "token_accuracy": stats.token_accuracy,
            "molecules_per_s": stats.molecules_per_s * world, "rejected": rejected,
            "beta": config.kl.at(step), "lr": lr,
            "attempt_start_epoch": start[0],
            "attempt_start_step": start[1]}


def worker_loop(cfg: dict) -> None:
    """What every Ray Train worker runs: shard, resume if a checkpoint exists, train, report.

    A checkpoint is written every `checkpoint_every_steps` optimiser steps and at each epoch's end;
    batch order is seeded per epoch, so a resume mid-epoch skips exactly the batches done."""
    config = TrainConfig(**cfg["train"])
    vocab = SelfiesVocabulary.from_dict(cfg["vocab"])
    rank, world = rt.rank_and_size()
    torch.manual_seed(config.seed + rank)
    props = cfg.get("properties")
    examples, rejected = _examples(cfg["smiles"][rank::world],
                                   props[rank::world] if props else None, vocab)
    examples = examples[: rt.min_across_workers(len(examples))]
    model = build_molecule_vae(config.model, len(vocab))
    model.vocab = vocab
    if model.property_head is not None and props:
        model.property_head.fit_scale(np.asarray(props, dtype=np.float64))
    start_epoch, skip, step, history, optimizer_state = _resume(model, world)
    start = (start_epoch, step)
    wrapped = rt.prepare(model)
    # Built after prepare: a loaded state lands on the device the parameters now live on.
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    if optimizer_state is not None:
        optimizer.load_state_dict(optimizer_state)
    device = rt.device()
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16)
                if config.mixed_precision and device.type == "cuda" else nullcontext())

    def writer(epoch: int, batches_done: int | None):
        def write(folder: Path) -> None:
            save_checkpoint(folder, model, config.model, vocab,
                            {"epoch": epoch, "batches_done": batches_done, "step": step,
                             "world": world, "history": history})
            torch.save(optimizer.state_dict(), folder / "optimizer.pt")
        return write if rank == 0 else None

    for epoch in range(start_epoch, config.epochs):
        for group in optimizer.param_groups:  # set from the epoch, so resumes agree
            group["lr"] = _epoch_lr(config, epoch)
        batches = shuffled_batches(examples, config.batch_size, config.seed + 1000 * epoch + rank,
                                   bucket=config.bucket)
        parts = []
        for span in rt.checkpoint_spans(len(batches), config.checkpoint_every_steps,
                                        skip if epoch == start_epoch else 0):
            with autocast:
                stats, step = train_epoch(wrapped, batches[span.start : span.stop], optimizer,
                                          config.kl, step, device,
                                          word_dropout=config.word_dropout)
            parts.append(stats)
            if span.stop < len(batches):  # a mid-epoch checkpoint
                rt.report({"epoch": epoch, "step": step, "loss": stats.loss, "partial": 1},
                          writer(epoch, span.stop))
        epoch_stats = EpochStats.combine(parts)
        metrics = _epoch_metrics(epoch, step, epoch_stats, world, rejected, config, start,
                                 optimizer.param_groups[0]["lr"])  # the rate it trained at
        if rank == 0:
            metrics.update(_validate(model, cfg["valid_smiles"], config.seed))
            history.append({**metrics, "kl_per_dim": epoch_stats.kl_per_dim})
        rt.report(metrics, writer(epoch, None))


def train_molecule_vae(smiles: list[str], properties: list[list[float]] | None,
                       valid_smiles: list[str], config: TrainConfig, name: str,
                       storage: Path, model_dir: Path,
                       vocab_smiles: list[str] | None = None,
                       on_epoch: Callable[[dict], None] | None = None) -> list[dict]:
    """Train on Ray Train, resuming a run of the same name under `storage`; the final model is
    copied to `model_dir` and the per-epoch history returned. The SELFIES vocabulary comes from
    `vocab_smiles` (the whole train split when training on a subsample) or the training set.
    `on_epoch` gets each epoch's row while training runs."""
    vocab = SelfiesVocabulary.build(vocab_smiles or smiles, max_len=config.max_len)
    loop_config = {"train": config.model_dump(), "vocab": vocab.to_dict(), "smiles": smiles,
                   "properties": properties, "valid_smiles": valid_smiles}
    return rt.fit_and_export(worker_loop, loop_config, name, storage, model_dir,
                             num_workers=config.num_workers, use_gpu=config.use_gpu,
                             cpus_per_worker=config.cpus_per_worker,
                             max_failures=config.max_failures, fatal=NonFiniteLoss,
                             error=TrainingError, on_epoch=on_epoch)
