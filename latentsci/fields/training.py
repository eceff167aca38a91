"""Data-parallel training of field models (autoencoder, surrogates): their task in the shared loop.

Every field model trains the same way: its forward returns its training loss, its normalisation
is fitted by the driver and shipped inside an initial checkpoint, and each worker reads its own
trajectories from the stores (`latentsci.fields.data.windows`). The loop itself (optimiser,
schedule, checkpoints, resume, non-finite loss) is `latentsci.runtime.trainer`'s, the same one
the molecule VAE runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import Field

from latentsci.runtime import train as rt
from latentsci.runtime.trainer import TrainerConfig, TrainingError, fit_task, optimise, run_worker

FieldTrainingError = TrainingError  # the name this module raised before the loops were one


class FieldTrainConfig(TrainerConfig):
    """The shared trainer's fields with the field models' defaults (AdamW, cosine decay)."""

    optimizer: Literal["adam", "adamw"] = "adamw"
    weight_decay: float = Field(default=0.01, ge=0)


@dataclass
class SpanLoss:
    """Summed loss, batches and seconds of a span of an epoch."""

    total: float
    batches: int
    seconds: float

    @property
    def loss(self) -> float:
        """Mean loss over the span's batches."""
        return self.total / max(self.batches, 1)


class FieldModelTask:
    """A field model's part of the shared training loop: its forward returns the loss."""

    def __init__(self, cfg: dict):
        self.config = FieldTrainConfig(**cfg["train"])
        self.cfg = cfg
        self.epoch = 0

    def setup(self, rank: int, world: int) -> int:
        """This worker's share of the training set (trajectories rank::world); batches per epoch."""
        from latentsci.fields.data.windows import DATASETS

        spec = self.cfg["data"]
        kwargs = dict(spec["kwargs"])
        kwargs["trajectories"] = kwargs["trajectories"][rank::world]
        self.data = DATASETS[spec["dataset"]](**kwargs)
        size = len(self.data[0])
        batches = rt.min_across_workers(max(size // self.config.batch_size, 1 if size else 0))
        if batches == 0:
            raise TrainingError("a training worker got no examples (fewer trajectories or "
                                "windows than workers?)")
        return batches

    def build(self, folder: Path | None):
        """The initial model the driver saved (with its fitted normalisation), or a checkpoint."""
        from latentsci.fields.networks.registry import load_model

        return load_model(folder if folder is not None else self.cfg["initial"])

    def begin_epoch(self, epoch: int, rank: int) -> None:
        """The epoch's seeded order of examples."""
        self.epoch = epoch
        self.order = torch.randperm(len(self.data[0]), generator=torch.Generator().manual_seed(
            self.config.seed + 1000 * epoch + rank))

    def train_span(self, model, optimizer, span: range, step: int, device, precision):
        """Optimise over batches `span` of this epoch's order."""
        model.train()
        size, total, started = self.config.batch_size, 0.0, time.perf_counter()
        for b in span:
            idx = self.order[b * size : (b + 1) * size]
            with precision():
                loss = model(*(t[idx].to(device) for t in self.data))
            total += optimise(model, loss, optimizer, self.config.grad_clip, step,
                              f" (batch {b} of epoch {self.epoch})")
            step += 1
        return SpanLoss(total, len(span), time.perf_counter() - started), step

    def epoch_metrics(self, parts: list[SpanLoss], world: int, step: int) -> dict:
        """Mean loss and throughput of the epoch."""
        counted = sum(p.batches for p in parts)
        seconds = sum(p.seconds for p in parts)
        return {"loss": sum(p.total for p in parts) / max(counted, 1),
                "examples_per_s": counted * self.config.batch_size * world / max(seconds, 1e-9)}

    def validate(self, model, parts: list[SpanLoss]) -> dict:
        """Field models validate after training (the stages score held-out frames)."""
        return {}

    def save(self, folder: Path, model, meta: dict) -> None:
        """A checkpoint in the field model format, keeping the initial model's meta."""
        from latentsci.fields.networks.registry import save_model

        save_model(folder, model, meta)


def field_worker_loop(cfg: dict) -> None:
    """What every Ray Train worker runs: the shared loop over a field model's task."""
    run_worker(FieldModelTask(cfg))


def train_field_model(initial: Path, data: dict, config: TrainerConfig, name: str,
                      storage: Path, model_dir: Path,
                      on_epoch: Callable[[dict], None] | None = None) -> list[dict]:
    """Train the model saved at `initial` on Ray Train (resuming a run of the same name);
    the final model goes to `model_dir` and the per-epoch history is returned (and handed to
    `on_epoch` row by row as training goes)."""
    loop_config = {"train": config.trainer_part(), "data": data, "initial": str(initial)}
    return fit_task(field_worker_loop, loop_config, config, name, storage, model_dir, on_epoch)


def sample_frames(source, trajectories: list[int], limit: int = 256, seed: int = 0) -> np.ndarray:
    """Up to `limit` random frames (n, channel, x, y) of the trajectories, for fitting scales."""
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.permutation(trajectories)[: max(1, limit // source.shape[1])])
    frames = source.read(chosen)
    return frames.reshape(-1, *frames.shape[2:])
