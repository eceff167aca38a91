"""Data-parallel training of field models (autoencoder, surrogates) on Ray Train.

One loop serves every field model: the model's forward returns its training loss, its
normalisation is fitted by the driver and shipped inside an initial checkpoint, and each worker
reads its own trajectories from the stores (`latentsci.fields.data`). Same machinery as the
molecule VAE: gloo on CPU, NCCL and bf16 autocast on GPU, checkpoint every epoch, resume.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from pathlib import Path

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


def _loader(spec: dict, rank: int, world: int) -> tuple[torch.Tensor, ...]:
    """This worker's share of the training set (trajectories rank::world)."""
    from latentsci.fields.data import DATASETS

    kwargs = dict(spec["kwargs"])
    kwargs["trajectories"] = kwargs["trajectories"][rank::world]
    return DATASETS[spec["dataset"]](**kwargs)


def _epoch(model, data, optimizer, config: FieldTrainConfig, epoch: int, rank: int,
           device, batches: int) -> tuple[float, float]:
    """One pass over `batches` shuffled batches; mean loss and examples/s of this worker."""
    model.train()
    order = torch.randperm(len(data[0]), generator=torch.Generator().manual_seed(
        config.seed + 1000 * epoch + rank))
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16)
                if config.mixed_precision and device.type == "cuda" else nullcontext())
    total, started = 0.0, time.perf_counter()
    for b in range(batches):
        idx = order[b * config.batch_size : (b + 1) * config.batch_size]
        with autocast:
            loss = model(*(t[idx].to(device) for t in data))
        if not math.isfinite(float(loss)):
            raise FloatingPointError(f"loss is {float(loss)} in epoch {epoch}, batch {b}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        total += float(loss)
    seconds = time.perf_counter() - started
    return total / max(batches, 1), batches * config.batch_size / max(seconds, 1e-9)


def field_worker_loop(cfg: dict) -> None:
    """What every Ray Train worker runs: load the initial model or resume, train, report."""
    from latentsci.fields.registry import load_model, save_model

    config = FieldTrainConfig(**cfg["train"])
    rank, world = rt.rank_and_size()
    torch.manual_seed(config.seed + rank)
    data = _loader(cfg["data"], rank, world)
    batches = rt.min_across_workers(max(len(data[0]) // config.batch_size, 1 if len(data[0])
                                        else 0))
    model, meta = load_model(cfg["initial"])
    start, history, optimizer_state = 0, [], None
    with rt.latest_checkpoint() as folder:
        if folder is not None:
            model, meta = load_model(folder)
            optimizer_state = torch.load(folder / "optimizer.pt", map_location="cpu",
                                         weights_only=True)
            start, history = meta["epoch"] + 1, meta["history"]
    wrapped = rt.prepare(model)
    device = rt.device()
    # Built after prepare: a loaded state lands on the device the parameters now live on.
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
    if optimizer_state is not None:
        optimizer.load_state_dict(optimizer_state)
    for epoch in range(start, config.epochs):
        for group in optimizer.param_groups:  # cosine decay, recomputed so resumes agree
            group["lr"] = config.lr * 0.5 * (1 + math.cos(math.pi * epoch / config.epochs))
        loss, rate = _epoch(wrapped, data, optimizer, config, epoch, rank, device, batches)
        metrics = {"epoch": epoch, "loss": loss, "examples_per_s": rate * world,
                   "attempt_start_epoch": start}
        if rank == 0:
            history.append(metrics)

        def write(folder: Path, epoch=epoch) -> None:
            save_model(folder, model, {**meta, "epoch": epoch, "history": history})
            torch.save(optimizer.state_dict(), folder / "optimizer.pt")

        rt.report(metrics, write if rank == 0 else None)


def train_field_model(initial: Path, data: dict, config: FieldTrainConfig, name: str,
                      storage: Path, model_dir: Path) -> list[dict]:
    """Train the model saved at `initial` on Ray Train (resuming a run of the same name);
    the final model goes to `model_dir` and the per-epoch history is returned."""
    # Stage configs extend FieldTrainConfig with model sizes; the loop needs only the training part.
    train = {name: getattr(config, name) for name in FieldTrainConfig.model_fields}
    loop_config = {"train": train, "data": data, "initial": str(initial)}
    return rt.fit_and_export(field_worker_loop, loop_config, name, storage, model_dir,
                             num_workers=config.num_workers, use_gpu=config.use_gpu,
                             cpus_per_worker=config.cpus_per_worker,
                             max_failures=config.max_failures, fatal=FloatingPointError,
                             error=FieldTrainingError)


def sample_frames(source, trajectories: list[int], limit: int = 256, seed: int = 0) -> np.ndarray:
    """Up to `limit` random frames (n, channel, x, y) of the trajectories, for fitting scales."""
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.permutation(trajectories)[: max(1, limit // source.shape[1])])
    frames = source.read(chosen)
    return frames.reshape(-1, *frames.shape[2:])
