"""Data generation on Ray: each task simulates a block of trajectories and writes its own region.

A trajectory whose solver blew up (NaN/Inf, or values beyond `blowup_limit`), or whose pattern
died out to a uniform state, is not stored: its slot keeps the NaN fill, `valid` stays False, and
it is reported with its id, parameters and reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel

from latentsci.errors import ClusterError
from latentsci.fields.data.writer import create_field_store, write_block
from latentsci.fields.solvers.gray_scott import GrayScottConfig, feed_kill, simulate_gray_scott
from latentsci.fields.solvers.navier_stokes import (NavierStokesConfig, amplitudes,
                                                   simulate_navier_stokes)


@dataclass(frozen=True)
class Generator:
    """A PDE data generator: its config type, channels, parameters, frame times and solver."""

    config_type: type[BaseModel]
    channels: list[str]
    parameters: list[str]
    times: Callable[[BaseModel], np.ndarray]
    run: Callable[..., tuple[torch.Tensor, dict[str, list[float]]]]  # (config, ids, seed, device)
    grid: Callable[[BaseModel], int]


def _ns_times(config: NavierStokesConfig) -> np.ndarray:
    """Frame times: optional t = 0, then t_final * i / frames."""
    times = config.t_final * np.arange(1, config.frames + 1) / config.frames
    return np.concatenate([[0.0], times]) if config.save_initial else times


def _ns_run(config: NavierStokesConfig, indices: list[int], seed: int = 0, device: str = "cpu"):
    """Trajectories `indices` (seeded by seed + index), viscosities and forcing amplitudes
    cycled over indices."""
    viscosity = [config.viscosity[i % len(config.viscosity)] for i in indices]
    forcing = amplitudes(config, indices)
    fields = simulate_navier_stokes(config, [seed + i for i in indices], viscosity, device,
                                    forcing)
    return fields, {"viscosity": viscosity, "forcing_amplitude": forcing}


def _gs_run(config: GrayScottConfig, indices: list[int], seed: int = 0, device: str = "cpu"):
    """Trajectories `indices`, presets cycled over indices; F and k as parameters."""
    presets = [config.presets[i % len(config.presets)] for i in indices]
    fields = simulate_gray_scott(config, [seed + i for i in indices], presets, device)
    feed, kill = zip(*(feed_kill(p) for p in presets))
    return fields, {"F": list(feed), "k": list(kill)}


GENERATORS: dict[str, Generator] = {
    "navier_stokes": Generator(NavierStokesConfig, ["vorticity"], ["viscosity", "forcing_amplitude"], _ns_times,
                               _ns_run, lambda c: c.resolution // c.subsample),
    "gray_scott": Generator(GrayScottConfig, ["u", "v"], ["F", "k"],
                            lambda c: c.warmup + c.t_final * np.arange(1, c.frames + 1) / c.frames,
                            _gs_run, lambda c: c.resolution),
}


def task_device(use_gpu: bool) -> str:
    """cuda when the task was given a GPU (Ray set CUDA_VISIBLE_DEVICES), else cpu."""
    if use_gpu and not torch.cuda.is_available():
        raise ClusterError("a simulate task was given a GPU but torch sees none (a CPU-only "
                           "torch on the GPU nodes?)")
    return "cuda" if use_gpu else "cpu"


def simulate_block(block: tuple[int, int], path: str, generator: str, config: dict, seed: int,
                   blowup_limit: float, use_gpu: bool = False, threads: int = 1) -> list[dict]:
    """Ray task: simulate trajectories [start, stop), store the sound ones, report the others."""
    torch.set_num_threads(threads)  # as many as the task reserved CPUs
    start, stop = block
    spec = GENERATORS[generator]
    indices = list(range(start, stop))
    fields, params = spec.run(spec.config_type(**config), indices, seed, task_device(use_gpu))
    reasons = [rejection(f, blowup_limit) for f in fields]
    write_block(path, start, fields.numpy(), np.array([r is None for r in reasons]),
                {k: np.asarray(v) for k, v in params.items()})
    return [{"trajectory": i, "reason": reasons[j], **{k: v[j] for k, v in params.items()}}
            for j, i in enumerate(indices) if reasons[j] is not None]


def rejection(trajectory: torch.Tensor, blowup_limit: float,
              flat_limit: float = 1e-6) -> str | None:
    """Why a (time, channel, x, y) trajectory cannot be data, or None when it can.

    A blow-up (non-finite, or values beyond `blowup_limit`) is an unstable step. A last frame
    that is uniform in every channel (spatial std < `flat_limit`) is a pattern that died out (a
    Gray-Scott run falling to its rest state): VRMSE divides by that frame's variance.
    """
    values = trajectory.flatten()
    if not (torch.isfinite(values).all() and values.abs().amax() < blowup_limit):
        return f"solver blew up (non-finite or values beyond {blowup_limit:g})"
    if trajectory[-1].flatten(1).std(dim=1).amax() < flat_limit:
        return f"pattern died out (last frame uniform: spatial std < {flat_limit:g})"
    return None


def simulate_to_zarr(path: Path, generator: str, config: BaseModel, trajectories: int,
                     per_task: int, seed: int, attrs: dict, progress: bool = False,
                     blowup_limit: float = 1e6, cpus_per_task: int = 1,
                     gpus_per_task: float = 0) -> list[dict]:
    """Create the store and fan the blocks out over Ray; returns the blown-up trajectories.

    gpus_per_task > 0 runs the solver on CUDA (0.25 packs four tasks on each GPU)."""
    from latentsci.runtime import map_batches, require_gpus

    if gpus_per_task > 0:
        require_gpus(f"simulate {generator} (gpus_per_task = {gpus_per_task:g})", gpus_per_task)
    spec = GENERATORS[generator]
    create_field_store(path, trajectories, spec.times(config), spec.channels,
                       (spec.grid(config),) * 2, spec.parameters, per_task,
                       {"generator": generator, "solver_config": config.model_dump(),
                        "seed": seed, **attrs})
    blocks = [(s, min(s + per_task, trajectories)) for s in range(0, trajectories, per_task)]
    results = map_batches(simulate_block, blocks, desc=f"simulate {generator}",
                          progress=progress, weight=lambda b: b[1] - b[0],
                          num_cpus=cpus_per_task, num_gpus=gpus_per_task, path=str(path),
                          generator=generator, config=config.model_dump(), seed=seed,
                          blowup_limit=blowup_limit, use_gpu=gpus_per_task > 0,
                          threads=max(1, int(cpus_per_task)))
    return [reject for block in results for reject in block]
