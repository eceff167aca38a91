"""Data-parallel molecule-VAE training: the loop each Ray Train worker runs, and its launcher."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, field_validator

from latentsci.molecules.chem import DESCRIPTOR_NAMES, Reject
from latentsci.molecules.vae.batching import make_example
from latentsci.molecules.vae.checkpoint import save_checkpoint
from latentsci.molecules.vae import MoleculeVAEConfig, build_molecule_vae, load_checkpoint
from latentsci.molecules.vae.schedules import KLSchedule
from latentsci.molecules.vae.selfies_vocab import SelfiesVocabulary
from latentsci.runtime import train as rt
from latentsci.runtime.trainer import (  # noqa: F401  (TrainingError: this module's old name)
    TrainerConfig,
    TrainingError,
    fit_task,
    run_worker,
)
from latentsci.molecules.vae.steps import (
    EpochStats,
    active_units,
    prior_validity,
    reconstruction_accuracy,
    shuffled_batches,
    train_epoch,
)


class TrainConfig(TrainerConfig):
    """How to train the molecule VAE: model, KL schedule, data, and the shared trainer's fields."""

    model: MoleculeVAEConfig = Field(default_factory=MoleculeVAEConfig)
    kl: KLSchedule = Field(default_factory=KLSchedule)
    batch_size: int = Field(default=128, gt=0)
    lr_decay: Literal["none", "cosine"] = "none"  # cosine: per epoch from lr towards 0
    bucket: bool = False  # batch molecules of similar length: less padding for the decoder
    word_dropout: float = Field(default=0.0, ge=0, lt=1)  # share of decoder inputs blanked
    max_len: int = Field(default=100, gt=8)
    max_molecules: int | None = Field(default=None, gt=0)  # seeded subsample of train (demos)
    validation_molecules: int = Field(default=200, ge=0)

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


class MoleculeVAETask:
    """The molecule VAE's part of the shared training loop (one per Ray Train worker)."""

    def __init__(self, cfg: dict):
        self.config = TrainConfig(**cfg["train"])
        self.cfg = cfg
        self.vocab = SelfiesVocabulary.from_dict(cfg["vocab"])
        self.batches: list = []

    def setup(self, rank: int, world: int) -> int:
        """This worker's shard of the molecules as examples; batches per epoch."""
        props = self.cfg.get("properties")
        self.props = props
        examples, self.rejected = _examples(self.cfg["smiles"][rank::world],
                                            props[rank::world] if props else None, self.vocab)
        self.examples = examples[: rt.min_across_workers(len(examples))]
        return -(-len(self.examples) // self.config.batch_size)

    def build(self, folder: Path | None):
        """A fresh VAE (property scales fitted on the data), with a checkpoint's weights if any."""
        model = build_molecule_vae(self.config.model, len(self.vocab))
        model.vocab = self.vocab
        if model.property_head is not None and self.props:
            model.property_head.fit_scale(np.asarray(self.props, dtype=np.float64))
        if folder is None:
            return model, {}
        resumed, meta = load_checkpoint(folder)
        model.load_state_dict(resumed.state_dict())
        return model, {k: meta[k] for k in ("epoch", "batches_done", "step", "world", "history")
                       if k in meta}

    def begin_epoch(self, epoch: int, rank: int) -> None:
        """The epoch's seeded (optionally length-bucketed) batches."""
        self.batches = shuffled_batches(self.examples, self.config.batch_size,
                                        self.config.seed + 1000 * epoch + rank,
                                        bucket=self.config.bucket)

    def train_span(self, model, optimizer, span: range, step: int, device, precision):
        """Optimise over this span of the epoch's batches."""
        return train_epoch(model, self.batches[span.start : span.stop], optimizer,
                           self.config.kl, step, device, grad_clip=self.config.grad_clip,
                           word_dropout=self.config.word_dropout, precision=precision)

    def epoch_metrics(self, parts: list[EpochStats], world: int, step: int) -> dict:
        """Loss terms, throughput and KL weight of the epoch."""
        stats = EpochStats.combine(parts)
        return {"loss": stats.loss, "recon": stats.recon, "kl": stats.kl,
                "token_accuracy": stats.token_accuracy,
                "molecules_per_s": stats.molecules_per_s * world, "rejected": self.rejected,
                "beta": self.config.kl.at(step)}

    def validate(self, model, parts: list[EpochStats]) -> dict:
        """Reconstruction, prior validity and active units on the validation sample; KL per
        dimension for the history."""
        model.eval()
        out = {}
        valid_smiles = self.cfg["valid_smiles"]
        if valid_smiles:
            mu = model.encode(valid_smiles)
            out = {"recon_accuracy": reconstruction_accuracy(model, valid_smiles, decodes=3,
                                                             seed=self.config.seed),
                   "validity": prior_validity(model, min(len(valid_smiles), 200),
                                              seed=self.config.seed),
                   "active_units": float(active_units(mu[np.isfinite(mu).all(1)]))}
        return {**out, "kl_per_dim": EpochStats.combine(parts).kl_per_dim}

    def save(self, folder: Path, model, meta: dict) -> None:
        """A checkpoint in the molecule model format."""
        save_checkpoint(folder, model, self.config.model, self.vocab, meta)


def worker_loop(cfg: dict) -> None:
    """What every Ray Train worker runs: the shared loop over the molecule VAE task."""
    run_worker(MoleculeVAETask(cfg))


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
    return fit_task(worker_loop, loop_config, config, name, storage, model_dir, on_epoch)
