"""The thin Ray Train layer: fit a per-worker loop data-parallel, and what the loop may call.

Same code on CPUs (gloo) and GPUs (NCCL): only ScalingConfig changes. A rerun with the same run
name and storage path resumes from the latest reported checkpoint; FailureConfig restarts a worker
group that lost a worker from that checkpoint too.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from latentsci.storage.location import Address, for_ray_train, join

TRAINING_EXECUTION_FIELDS = frozenset({
    "num_workers", "use_gpu", "cpus_per_worker", "mixed_precision", "max_failures",
    "checkpoint_every_steps"})
"""How a Ray Train stage runs rather than what it trains: kept out of stage ids, so a rerun may
change them and still resume (`num_workers` does change the global batch, batch_size x workers)."""


def fit(loop: Callable[[dict], object], config: dict, name: str, storage_path: Address,
        num_workers: int = 1, use_gpu: bool = False, resources_per_worker: dict | None = None,
        max_failures: int = 1, num_to_keep: int = 2):
    """Run `loop(config)` on `num_workers` Ray Train workers; returns Ray's Result."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    # The controller polls workers every 2 s by default: a second of idle per report on small runs.
    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.5")
    path, filesystem = for_ray_train(storage_path)  # a local folder, or a URL via fsspec
    trainer = TorchTrainer(
        loop, train_loop_config=config,
        scaling_config=ScalingConfig(num_workers=num_workers, use_gpu=use_gpu,
                                     resources_per_worker=resources_per_worker),
        run_config=RunConfig(name=name, storage_path=path, storage_filesystem=filesystem,
                             checkpoint_config=CheckpointConfig(num_to_keep=num_to_keep),
                             failure_config=FailureConfig(max_failures=max_failures)))
    # Ray Train sets a SIGINT handler of its own in fit() and never restores it: Ctrl-C would
    # abort the controller and let the pipeline go on, or exit 1 with no line. The driver's
    # handler stops the run instead (ray.shutdown ends the controller; checkpoints stay).
    if hasattr(trainer, "_register_sigint_handler"):
        trainer._register_sigint_handler = lambda controller: None
    return trainer.fit()


def fit_and_export(loop: Callable[[dict], object], config: dict, name: str, storage_path: Address,
                   model_dir: Path, *, num_workers: int, use_gpu: bool, cpus_per_worker: float,
                   max_failures: int,
                   fatal: type[BaseException] | tuple[type[BaseException], ...],
                   error: type[Exception],
                   on_epoch: Callable[[dict], None] | None = None) -> list[dict]:
    """fit(), then copy the final checkpoint to `model_dir` and return its meta.json history.

    `on_epoch` gets each history row once, in order: live while training runs (read from the
    checkpoints), the rest at the end. A worker that raised `fatal` (e.g. a non-finite loss)
    becomes one line of `error`, naming where the last good checkpoint stays (or that there is
    none yet)."""
    import json

    from latentsci.runtime.cluster import require_gpus
    from latentsci.runtime.follow import EpochFeed, checkpoint_folders, following

    feed = EpochFeed(on_epoch or (lambda row: None))

    if use_gpu:
        require_gpus(f"training {name!r} (use_gpu = true, {num_workers} workers)", num_workers,
                     per_unit=1)
    try:
        with following(join(storage_path, name), feed):
            result = fit(loop, config, name=name, storage_path=storage_path,
                         num_workers=num_workers, use_gpu=use_gpu,
                         resources_per_worker={"CPU": cpus_per_worker}, max_failures=max_failures)
    except Exception as exc:
        bad = [e for e in worker_failures(exc).values() if isinstance(e, fatal)]
        if bad:
            run = join(storage_path, name)
            kept = (f"the last good checkpoint is kept under {run}"
                    if checkpoint_folders(run) else "no checkpoint was written before it")
            raise error(f"training stopped: {bad[0]}; {kept}") from None
        raise
    result.checkpoint.to_directory(str(model_dir))
    for state in ("optimizer.pt", "loop_state.pt"):  # not the model's: a resume reads Ray's copy
        (Path(model_dir) / state).unlink(missing_ok=True)
    history = json.loads((Path(model_dir) / "meta.json").read_text())["history"]
    feed.offer(history)
    return history


def resume_point(meta: dict, world: int) -> tuple[int, int]:
    """(epoch to train next, batches of it already done per worker) from a checkpoint's meta: a
    checkpoint written mid-epoch records `batches_done`, one written at an epoch's end None.
    A resume on another number of workers restarts the interrupted epoch: its data are split
    differently, so no batch count of the old split marks the same place."""
    done = meta.get("batches_done")
    if done is None:
        return meta["epoch"] + 1, 0
    return meta["epoch"], done if meta.get("world", world) == world else 0


def cosine_lr(lr: float, epoch: int, epochs: int) -> float:
    """The learning rate of an epoch under cosine decay from `lr` towards 0: a function of the
    epoch alone, so a resumed run sets the same rate the uninterrupted one would."""
    return lr * 0.5 * (1 + math.cos(math.pi * epoch / max(epochs, 1)))


def checkpoint_spans(batches: int, every: int | None, begin: int = 0) -> list[range]:
    """The batch ranges of one epoch between checkpoints, from `begin` (a resume) to its end;
    every=None gives one range, checkpointed at the epoch's end only."""
    size = every or max(batches, 1)
    return [range(s, min(s + size, batches)) for s in range(begin, batches, size)]


def worker_failures(error: Exception) -> dict[int, BaseException]:
    """The original exception of each failed rank, from Ray Train's error."""
    return dict(getattr(error, "worker_failures", {}) or {})


def rank_and_size() -> tuple[int, int]:
    """This worker's rank and the number of workers."""
    import ray.train

    context = ray.train.get_context()
    return context.get_world_rank(), context.get_world_size()


def min_across_workers(value: int) -> int:
    """The smallest value any worker holds (equal batch counts keep DDP's all-reduces in step)."""
    import torch
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_initialized() or dist.get_world_size() == 1:
        return value
    tensor = torch.tensor([value], dtype=torch.long, device=device())  # NCCL: CUDA tensors only
    dist.all_reduce(tensor, op=dist.ReduceOp.MIN)
    return int(tensor.item())


def device():
    """The torch device Ray Train gave this worker (cuda:N on GPU workers, else cpu)."""
    import ray.train.torch

    return ray.train.torch.get_device()


def prepare(model):
    """Move to the worker's device and wrap in DistributedDataParallel when there are several."""
    import ray.train.torch

    return ray.train.torch.prepare_model(model)


@contextmanager
def latest_checkpoint() -> Iterator[Path | None]:
    """The folder of the latest reported checkpoint of this run (a resume), or None."""
    import ray.train

    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None:
        yield None
        return
    with checkpoint.as_directory() as folder:
        yield Path(folder)


def report(metrics: dict, write: Callable[[Path], None] | None) -> None:
    """Every rank calls this in step; rank 0 passes `write`, which fills the checkpoint folder."""
    import ray.train

    if write is None:
        ray.train.report(metrics, checkpoint=None)
        return
    with tempfile.TemporaryDirectory() as folder:
        write(Path(folder))
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(folder))
