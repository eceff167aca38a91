"""One training loop for every model: the trainer config, the optimiser step, and the per-worker
loop that resumes, checkpoints and reports (a model supplies a `TrainTask`; `runtime.train`
runs the loop on Ray Train).

What is the same for the molecule VAE and the field models lives here once, configured rather
than forked: the optimiser (Adam or AdamW, weight decay), the learning-rate schedule (constant or
cosine per epoch), gradient clipping, bf16 autocast on GPU workers, checkpoints every K steps and
at each epoch's end, resume mid-epoch, and a non-finite loss stopping the run with one error.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

from pydantic import Field

from latentsci.errors import LatentsciError
from latentsci.pipeline.stage import StageConfig
from latentsci.runtime import train as rt


class TrainingError(LatentsciError):
    """Training stopped for a reason the user must act on (a non-finite loss, no data)."""


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or infinite at a given optimiser step."""

    def __init__(self, step: int, value: float, where: str = ""):
        super().__init__(f"loss is {value} at step {step}{where}")
        self.step, self.value, self.where = step, value, where

    def __reduce__(self):
        """Rebuilt from its fields when it crosses from a Ray worker to the driver."""
        return type(self), (self.step, self.value, self.where)


class TrainerConfig(StageConfig):
    """How any model trains: optimiser, schedule, clipping, checkpoints and the worker group.

    Stage configs that train a model extend it with a nested `model` config; their defaults may
    differ (the field models default to AdamW with cosine decay) but the behaviour is this one."""

    epochs: int = Field(default=10, gt=0)
    batch_size: int = Field(default=32, gt=0)
    lr: float = Field(default=1e-3, gt=0)
    optimizer: Literal["adam", "adamw"] = "adam"
    weight_decay: float = Field(default=0.0, ge=0)  # AdamW: decoupled; Adam: L2 in the gradient
    lr_decay: Literal["none", "cosine"] = "cosine"  # cosine: per epoch from lr towards 0
    grad_clip: float | None = Field(default=1.0, gt=0)  # max global gradient norm; None: off
    seed: int = 0
    num_workers: int = Field(default=1, gt=0)
    use_gpu: bool = False
    cpus_per_worker: float = Field(default=1, gt=0)
    mixed_precision: bool = True  # bf16 autocast of the forward on GPU workers; ignored on CPU
    max_failures: int = Field(default=1, ge=0)
    checkpoint_every_steps: int | None = Field(default=None, gt=0)  # None: once per epoch
    execution_fields: ClassVar[frozenset[str]] = rt.TRAINING_EXECUTION_FIELDS

    def trainer_part(self) -> dict:
        """Only the trainer's own fields (what the shared loop needs from a stage config)."""
        return {name: getattr(self, name) for name in TrainerConfig.model_fields}


def make_optimizer(parameters: Iterable, config: TrainerConfig):
    """The configured optimiser over `parameters`."""
    import torch

    kind = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return kind(parameters, lr=config.lr, weight_decay=config.weight_decay)


def epoch_lr(config: TrainerConfig, epoch: int) -> float:
    """The learning rate an epoch trains at: a function of the epoch alone, so resumes agree."""
    if config.lr_decay == "cosine":
        return rt.cosine_lr(config.lr, epoch, config.epochs)
    return config.lr


def forward_precision(config: TrainerConfig, device) -> AbstractContextManager:
    """bf16 autocast for the forward pass on GPU workers when asked; a no-op on CPU."""
    import torch

    if config.mixed_precision and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def optimise(model, loss, optimizer, grad_clip: float | None, step: int, where: str = "") -> float:
    """One optimiser step on `loss`; a NaN or infinite loss raises NonFiniteLoss first."""
    import torch

    value = float(loss.detach())
    if not math.isfinite(value):
        raise NonFiniteLoss(step, value, where)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return value


class SpanStats(Protocol):
    """What a task's training span returns: at least the mean loss over its batches."""

    loss: float


class TrainTask(Protocol):
    """What a model supplies to the shared loop (one instance per worker)."""

    config: TrainerConfig

    def setup(self, rank: int, world: int) -> int:
        """Load this worker's data; the number of batches per epoch (equal on every worker)."""

    def build(self, folder: Path | None) -> tuple[Any, dict]:
        """A fresh model and its meta, or (folder given) the model resumed from a checkpoint."""

    def begin_epoch(self, epoch: int, rank: int) -> None:
        """Fix the epoch's seeded batch order."""

    def train_span(self, model, optimizer, span: range, step: int, device,
                   precision: Callable[[], AbstractContextManager]) -> tuple[SpanStats, int]:
        """Optimise over batches `span` of the epoch; their stats and the step reached."""

    def epoch_metrics(self, parts: list, world: int, step: int) -> dict:
        """Every rank's row for the epoch, from the stats of its spans."""

    def validate(self, model, parts: list) -> dict:
        """Rank 0's extra numbers for the epoch (validation), also kept in the history."""

    def save(self, folder: Path, model, meta: dict) -> None:
        """Write a checkpoint of `model` with `meta` (epoch, step, history, ...)."""


LOOP_STATE = "loop_state.pt"  # in a checkpoint beside optimizer.pt (older ones lack it)


def loop_state(device, parts: list) -> dict:
    """This rank's torch RNG state and the stats of the epoch's spans done so far: saved so a
    resume draws the same noise and logs the whole epoch, as an uninterrupted run does."""
    import torch

    rng = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(device)
    whole = all(dataclasses.is_dataclass(p) for p in parts)
    return {"rng": rng, "spans": [dataclasses.asdict(p) for p in parts] if whole else []}


def restore_rng(rng: dict, device) -> None:
    """Continue the random stream that `loop_state` recorded."""
    import torch

    torch.set_rng_state(rng["cpu"])
    if "cuda" in rng and device.type == "cuda":
        torch.cuda.set_rng_state(rng["cuda"], device)


def _resume_state(task: TrainTask, world: int):
    """(model, meta, epoch, batches done in it, step, history, optimizer state or None, the
    checkpoint's `loop_state` or None)."""
    import torch

    with rt.latest_checkpoint() as folder:
        model, meta = task.build(folder)
        if folder is None:
            return model, meta, 0, 0, 0, [], None, None
        optimizer_state = torch.load(folder / "optimizer.pt", map_location="cpu",
                                     weights_only=True)
        path = folder / LOOP_STATE
        saved = torch.load(path, map_location="cpu", weights_only=True) if path.exists() else None
    epoch, done = rt.resume_point(meta, world)
    return (model, meta, epoch, done, meta.get("step", 0), meta["history"], optimizer_state,
            saved)


def run_worker(task: TrainTask) -> None:
    """What every Ray Train worker runs: set up, resume if a checkpoint exists, train, report.

    A checkpoint is written every `checkpoint_every_steps` optimiser steps and at each epoch's
    end; batch order is seeded per epoch, so a resume mid-epoch skips exactly the batches done.
    Rank 0's RNG state and its stats of the interrupted epoch travel with the checkpoint (other
    ranks reseed), so a one-worker resume ends bit for bit where an uninterrupted run does."""
    import torch

    config = task.config
    rank, world = rt.rank_and_size()
    torch.manual_seed(config.seed + rank)
    batches = task.setup(rank, world)
    model, meta, start, skip, step, history, optimizer_state, saved = _resume_state(task, world)
    begun = (start, step)
    wrapped = rt.prepare(model)
    device = rt.device()
    # Built after prepare: a loaded state lands on the device the parameters now live on.
    optimizer = make_optimizer(model.parameters(), config)
    if optimizer_state is not None:
        optimizer.load_state_dict(optimizer_state)
    saved = saved if rank == 0 else None  # rank 0's state, the only one a checkpoint holds
    if saved is not None:
        restore_rng(saved["rng"], device)
    carried = saved["spans"] if saved is not None and skip else []  # the resumed epoch's

    def writer(epoch: int, done: int | None, parts: list):
        def write(folder: Path) -> None:
            task.save(folder, model, {**meta, "epoch": epoch, "batches_done": done,
                                      "step": step, "world": world, "history": history})
            torch.save(optimizer.state_dict(), folder / "optimizer.pt")
            torch.save(loop_state(device, parts if done is not None else []),
                       folder / LOOP_STATE)
        return write if rank == 0 else None

    for epoch in range(start, config.epochs):
        lr = epoch_lr(config, epoch)
        for group in optimizer.param_groups:  # set from the epoch, so resumes agree
            group["lr"] = lr
        task.begin_epoch(epoch, rank)
        parts = []
        for span in rt.checkpoint_spans(batches, config.checkpoint_every_steps,
                                        skip if epoch == start else 0):
            stats, step = task.train_span(wrapped, optimizer, span, step, device,
                                          lambda: forward_precision(config, device))
            if carried:  # the spans done before the resume come first, as they ran
                parts.extend(type(stats)(**before) for before in carried)
                carried = []
            parts.append(stats)
            if span.stop < batches:  # a mid-epoch checkpoint
                rt.report({"epoch": epoch, "step": step, "loss": stats.loss, "partial": 1},
                          writer(epoch, span.stop, parts))
        row = {"epoch": epoch, "step": step, **task.epoch_metrics(parts, world, step), "lr": lr,
               "attempt_start_epoch": begun[0], "attempt_start_step": begun[1]}
        if rank == 0:
            history.append({**row, **task.validate(model, parts)})
            row = {k: v for k, v in history[-1].items() if not isinstance(v, list)}
        rt.report(row, writer(epoch, None, parts))


def fit_task(loop: Callable[[dict], None], loop_config: dict, config: TrainerConfig, name: str,
             storage: Path, model_dir: Path,
             on_epoch: Callable[[dict], None] | None = None) -> list[dict]:
    """Run a task's worker loop on Ray Train with the trainer's worker group; a non-finite loss
    or a TrainingError in a worker becomes one TrainingError line."""
    return rt.fit_and_export(loop, loop_config, name, storage, model_dir,
                             num_workers=config.num_workers, use_gpu=config.use_gpu,
                             cpus_per_worker=config.cpus_per_worker,
                             max_failures=config.max_failures,
                             fatal=(NonFiniteLoss, TrainingError), error=TrainingError,
                             on_epoch=on_epoch)
