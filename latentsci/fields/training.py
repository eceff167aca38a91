"""Data-parallel training of field models (autoencoder, surrogates) on Ray Train.

One loop serves every field model: the model's forward returns its training loss, its
normalisation is fitted by the driver and shipped inside an initial checkpoint, and each worker
reads its own trajectories from the stores (`latentsci.fields.data.windows`). Same machinery as the
molecule VAE: gloo on CPU, NCCL and bf16 autocast on GPU, checkpoints every K steps and at each
epoch's end, resume.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from pydantic import Field

from latentsci.errors import LatentsciError
from latentsci.pipeline.stage import StageConfig
from latentsci.runtime import train as rt


class FieldTrainingError(LatentsciError):
    """Field-model training stopped for a reason the user must act on."""


class FieldTrainConfig(StageConfig):
    """Optimisation and worker group of a field model's training."""

    epochs: int = Field(default=10, gt=0)
    batch_size: int = Field(default=32, gt=0)
    lr: float = Field(default=1e-3, gt=0)
    seed: int = 0
    num_workers: int = Field(default=1, gt=0)
    use_gpu: bool = False
    cpus_per_worker: float = Field(default=1, gt=0)
    mixed_precision: bool = True  # bf16 autocast on GPU workers; ignored on CPU
    max_failures: int = Field(default=1, ge=0)
    checkpoint_every_steps: int | None = Field(default=None, gt=0)  # None: once per epoch
    execution_fields: ClassVar[frozenset[str]] = rt.TRAINING_EXECUTION_FIELDS


def _loader(spec: dict, rank: int, world: int) -> tuple[torch.Tensor, ...]:
    """This worker's share of the training set (trajectories rank::world)."""
    from latentsci.fields.data.windows import DATASETS

    kwargs = dict(spec["kwargs"])
    kwargs["trajectories"] = kwargs["trajectories"][rank::world]
    return DATASETS[spec["dataset"]](**kwargs)


def _batches(model, data, optimizer, config: FieldTrainConfig, order: torch.Tensor,
             span: range, epoch: int, device) -> tuple[float, float]:
    """Train on batches `span` of this epoch's `order`; summed loss and seconds taken."""
    model.train()
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16)
                if config.mixed_precision and device.type == "cuda" else nullcontext())
    total, started = 0.0, time.perf_counter()
    for b in span:
        idx = order[b * config.batch_size : (b + 1) * config.batch_size]
        with autocast:
            loss = model(*(t[idx].to(device) for t in data))
        if not math.isfinite(float(loss)):
            raise FloatingPointError(f"loss is {float(loss)} in batch {b} of epoch {epoch}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        total += float(loss)
    return total, time.perf_counter() - started


def _resume(folder: Path | None, model, meta: dict, world: int):
    """(model, meta, epoch, batches already done in it, step, history, optimizer state)."""
    from latentsci.fields.networks.registry import load_model

    if folder is None:
        return model, meta, 0, 0, 0, [], None
    model, meta = load_model(folder)
    optimizer_state = torch.load(folder / "optimizer.pt", map_location="cpu", weights_only=True)
    epoch, done = rt.resume_point(meta, world)
    return model, meta, epoch, done, meta.get("step", 0), meta["history"], optimizer_state


def field_worker_loop(cfg: dict) -> None:
    """What every Ray Train worker runs: load the initial model or resume, train, report.

    A checkpoint is written every `checkpoint_every_steps` optimiser steps and at each epoch's
    end; batch order is seeded per epoch, so a resume mid-epoch skips exactly the batches done."""
    from latentsci.fields.networks.registry import load_model, save_model

    config = FieldTrainConfig(**cfg["train"])
    rank, world = rt.rank_and_size()
    torch.manual_seed(config.seed + rank)
    data = _loader(cfg["data"], rank, world)
    batches = rt.min_across_workers(max(len(data[0]) // config.batch_size, 1 if len(data[0])
                                        else 0))
    if batches == 0:
        raise FieldTrainingError("a training worker got no examples (fewer trajectories or "
                                 "windows than workers?)")
    with rt.latest_checkpoint() as folder:
        model, meta, start, skip, step, history, optimizer_state = _resume(
            folder, *load_model(cfg["initial"]), world)
    begun = (start, step)
    wrapped = rt.prepare(model)
    device = rt.device()
    # Built after prepare: a loaded state lands on the device the parameters now live on.
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
    if optimizer_state is not None:
        optimizer.load_state_dict(optimizer_state)

    def writer(epoch: int, done: int | None):
        def write(folder: Path) -> None:
            save_model(folder, model, {**meta, "epoch": epoch, "batches_done": done,
                                       "step": step, "world": world, "history": history})
            torch.save(optimizer.state_dict(), folder / "optimizer.pt")
        return write if rank == 0 else None

    for epoch in range(start, config.epochs):
        for group in optimizer.param_groups:  # cosine decay, recomputed so resumes agree
            group["lr"] = rt.cosine_lr(config.lr, epoch, config.epochs)
        order = torch.randperm(len(data[0]), generator=torch.Generator().manual_seed(
            config.seed + 1000 * epoch + rank))
        loss, seconds, counted = 0.0, 0.0, 0
        for span in rt.checkpoint_spans(batches, config.checkpoint_every_steps,
                                        skip if epoch == start else 0):
            part_loss, part_s = _batches(wrapped, data, optimizer, config, order, span, epoch,
                                         device)
            loss, seconds, counted = loss + part_loss, seconds + part_s, counted + len(span)
            step += len(span)
            if span.stop < batches:  # a mid-epoch checkpoint
                rt.report({"epoch": epoch, "step": step, "loss": part_loss / len(span),
                           "partial": 1}, writer(epoch, span.stop))
        metrics = {"epoch": epoch, "step": step, "loss": loss / max(counted, 1),
                   "examples_per_s": counted * config.batch_size * world / max(seconds, 1e-9),
                   "attempt_start_epoch": begun[0], "attempt_start_step": begun[1]}
        if rank == 0:
            history.append(metrics)
        rt.report(metrics, writer(epoch, None))


def train_field_model(initial: Path, data: dict, config: FieldTrainConfig, name: str,
                      storage: Path, model_dir: Path,
                      on_epoch: Callable[[dict], None] | None = None) -> list[dict]:
    """Train the model saved at `initial` on Ray Train (resuming a run of the same name);
    the final model goes to `model_dir` and the per-epoch history is returned (and handed to
    `on_epoch` row by row as training goes)."""
    # Stage configs extend FieldTrainConfig with model sizes; the loop needs only the training part.
    train = {name: getattr(config, name) for name in FieldTrainConfig.model_fields}
    loop_config = {"train": train, "data": data, "initial": str(initial)}
    return rt.fit_and_export(field_worker_loop, loop_config, name, storage, model_dir,
                             num_workers=config.num_workers, use_gpu=config.use_gpu,
                             cpus_per_worker=config.cpus_per_worker,
                             max_failures=config.max_failures,
                             fatal=(FloatingPointError, FieldTrainingError),
                             error=FieldTrainingError, on_epoch=on_epoch)


def sample_frames(source, trajectories: list[int], limit: int = 256, seed: int = 0) -> np.ndarray:
    """Up to `limit` random frames (n, channel, x, y) of the trajectories, for fitting scales."""
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.permutation(trajectories)[: max(1, limit // source.shape[1])])
    frames = source.read(chosen)
    return frames.reshape(-1, *frames.shape[2:])
