"""Fields speed: surrogate rollout vs the solver on the same trajectories, and the generator
on 1 vs 2 Ray workers (and a plain in-process loop).

Usage: python bench/bench_fields.py [--trajectories 16] [--model RUN_DIR/stages/flow-ID/model]
Without --model the demo-sized networks of pipelines/ns2d_latent_diffusion.toml are built
untrained (speed does not depend on the weights). Ratios compare runs made in this process.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from latentsci.fields.networks.autoencoder import FieldAutoencoderConfig, build_field_autoencoder
from latentsci.fields.networks.denoiser import LatentDenoiserConfig
from latentsci.fields.forecast.forecasts import forecast_fields
from latentsci.fields.solvers.navier_stokes import NavierStokesConfig, simulate_navier_stokes
from latentsci.fields.forecast.rollout import rollout
from latentsci.fields.solvers.simulate import simulate_to_zarr
from latentsci.fields.networks.surrogate import SurrogateConfig, build_surrogate
from latentsci.runtime import connect, disconnect

SOLVER = NavierStokesConfig(resolution=64, viscosity=[1e-3], dt=4e-3, t_final=20.0, frames=20)


def timed(fn) -> float:
    """Seconds one call takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def demo_models(kind: str):
    """The demo pipeline's autoencoder and surrogate sizes, untrained."""
    ae = build_field_autoencoder(FieldAutoencoderConfig(channels=1, width=16, levels=3,
                                                        latent_channels=1, blocks=1,
                                                        upsample="bilinear")).eval()
    surrogate = build_surrogate(SurrogateConfig(kind=kind, sampler_steps=8, denoiser=(
        LatentDenoiserConfig(latent_channels=1, history=2, n_params=1, width=48, blocks=3))))
    return ae, surrogate.eval()


def rollout_vs_solver(n: int, model: str | None) -> None:
    """Forecast the 10 -> 20 horizon of n trajectories both ways, on one core each."""
    torch.set_num_threads(1)
    horizon = SOLVER.frames - 10
    config = SOLVER.model_copy(update={"t_final": float(horizon), "frames": horizon})
    solver_s = timed(lambda: simulate_navier_stokes(config, list(range(n)), [1e-3] * n))
    frames = np.random.default_rng(0).standard_normal((n, 2, 1, 64, 64)).astype(np.float32)
    params = np.full((n, 1), 1e-3, dtype=np.float32)
    for kind in ("deterministic", "flow"):
        ae, surrogate = demo_models(kind)
        if model is not None:
            from latentsci.fields.networks.registry import load_model

            surrogate, meta = load_model(model)
            ae, _ = load_model(meta["autoencoder"])
            if surrogate.kind != kind:
                continue
        seconds = timed(lambda: forecast_fields(ae, surrogate, frames, params, horizon))
        print(f"forecast {kind:13s} (encode, roll, decode every frame): {n} trajectories x "
              f"{horizon} steps at 64x64 in {seconds:.2f} s; solver {solver_s:.2f} s -> "
              f"{solver_s / seconds:.1f}x faster")
        with torch.no_grad():
            z = ae.encode(torch.from_numpy(frames).flatten(0, 1)).unflatten(0, frames.shape[:2])
        latent_s = timed(lambda: rollout(surrogate, z, torch.from_numpy(params), horizon))
        print(f"latent rollout {kind:13s} alone: {latent_s:.3f} s -> "
              f"{solver_s / latent_s:.0f}x faster than the solver")


def generator_workers(n: int) -> None:
    """Trajectories per second: plain loop, then 1 and 2 Ray workers writing Zarr."""
    torch.set_num_threads(1)
    config = SOLVER.model_copy(update={"t_final": 5.0, "frames": 5})
    plain = timed(lambda: [simulate_navier_stokes(config, list(range(s, s + 4)), [1e-3] * 4)
                           for s in range(0, n, 4)])
    print(f"generator plain loop: {n / plain:.2f} trajectories/s")
    connect(num_cpus=2)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            # Warm-up: start both worker processes and import torch there before timing.
            simulate_to_zarr(Path(tmp) / "warm.zarr", "navier_stokes",
                             config.model_copy(update={"t_final": 0.1, "frames": 1}), 2, 1, 0, {})
            for workers in (1, 2):
                seconds = timed(lambda: simulate_to_zarr(
                    Path(tmp) / f"w{workers}.zarr", "navier_stokes", config, n, 4, 0, {},
                    cpus_per_task=2 / workers))
                print(f"generator {workers} Ray worker(s): {n / seconds:.2f} trajectories/s, "
                      f"{plain / seconds:.2f}x the plain loop")
    finally:
        disconnect()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trajectories", type=int, default=32)
    parser.add_argument("--model", help="a trained surrogate folder (else untrained demo size)")
    args = parser.parse_args()
    rollout_vs_solver(args.trajectories, args.model)
    generator_workers(args.trajectories)


if __name__ == "__main__":
    main()
