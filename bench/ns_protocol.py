"""How far NS data made at cheaper settings are from the FNO protocol's (256 x 256, dt 1e-4,
subsampled to 64 x 64), measured on the same initial states in float64.

  python bench/ns_protocol.py compare --reference 256:1e-4 --settings 64:4e-3:f32 64:4e-3 64:1e-3
      Every setting (RES:DT[:f32]) starts from the reference's Gaussian random fields (drawn on the
      reference grid, subsampled to the setting's grid, as the stored frame 0 is) and is solved to
      --t-final; each saved frame, subsampled to 64 x 64, is compared with the reference's by
      relative L2 (||a - b|| / ||b||), per trajectory. Prints the largest over trajectories at
      chosen times, the largest over all frames to t = 20 and to --t-final, and each setting's
      cost in trajectories per second (one thread, a batch of --trajectories at once).
  python bench/ns_protocol.py cost --settings 256:1e-4 --t-final 50 --steps 300
      Trajectories per second of a setting to --t-final, timed over --steps steps and extrapolated
      (the protocol itself is too costly to finish on a CPU).

Float32 solves are compared too (`:f32`); round-off alone separates a float32 solve from a float64
one by about 0.01% at t = 20 and 0.09% at t = 50 on this flow (bench/RESULTS.md), so dt and grid
are compared in float64.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
import torch

from latentsci.fields.solvers.navier_stokes import (
    gaussian_random_field,
    kolmogorov_forcing,
    solve_vorticity,
)

STORED = 64  # the protocol's stored grid
SHOWN_TIMES = (1, 5, 10, 20, 30, 40, 50)


@dataclass(frozen=True)
class Setting:
    """A solver setting: grid, time step and precision."""

    resolution: int
    dt: float
    double: bool

    @classmethod
    def parse(cls, text: str) -> Setting:
        """RES:DT[:f32], e.g. 64:4e-3:f32."""
        parts = text.split(":")
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("f32", "f64")):
            raise SystemExit(f"error: setting {text!r}: expected RES:DT[:f32|f64]")
        return cls(int(parts[0]), float(parts[1]), len(parts) == 2 or parts[2] == "f64")

    def __str__(self) -> str:
        return f"{self.resolution}:{self.dt:g}:{'f64' if self.double else 'f32'}"


def initial_states(n_traj: int, resolution: int) -> torch.Tensor:
    """GRF initial vorticity (alpha 2.5, tau 7) on the given grid, seeds 0..n-1, float64."""
    return torch.cat([gaussian_random_field(1, resolution, 2.5, 7.0,
                                            torch.Generator().manual_seed(s), torch.float64)
                      for s in range(n_traj)])


def solve(setting: Setting, w0_fine: torch.Tensor, t_final: float, frames: int,
          device: str = "cpu") -> tuple[np.ndarray, float]:
    """Frames (traj, frame, 64, 64) of one setting from the reference-grid initial states, and
    the wall seconds of the solve."""
    step = w0_fine.shape[-1] // setting.resolution
    real = torch.float64 if setting.double else torch.float32
    w0 = w0_fine[..., ::step, ::step].to(device=device, dtype=real).contiguous()
    forcing = kolmogorov_forcing(setting.resolution, 0.1, real).to(device)
    viscosity = torch.full((len(w0),), 1e-3)
    start = time.perf_counter()
    w = solve_vorticity(w0, forcing, viscosity, setting.dt, t_final, frames,
                        subsample=setting.resolution // STORED).cpu()
    seconds = time.perf_counter() - start
    return w.double().numpy(), seconds


def relative_l2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per trajectory and frame: ||a - b|| / ||b|| over the grid."""
    return (np.sqrt(((a - b) ** 2).sum(axis=(-1, -2))) / np.sqrt((b ** 2).sum(axis=(-1, -2))))


def compare(args: argparse.Namespace) -> None:
    """Print each setting's distance to the reference per saved frame, and its cost."""
    reference = Setting.parse(args.reference)
    settings = [Setting.parse(s) for s in args.settings]
    for s in [reference, *settings]:
        if reference.resolution % s.resolution or s.resolution % STORED:
            raise SystemExit(f"error: {s}: grids must divide {reference.resolution} and be "
                             f"multiples of {STORED}")
    torch.set_num_threads(args.threads)
    w0 = initial_states(args.trajectories, reference.resolution)
    times = args.t_final * np.arange(1, args.frames + 1) / args.frames
    truth, seconds = solve(reference, w0, args.t_final, args.frames, args.device)
    print(f"reference {reference}: {args.trajectories} trajectories to t = {args.t_final:g} in "
          f"{seconds:.0f} s ({args.trajectories / seconds:.3g} trajectories/s, "
          f"{args.device}, {args.threads} CPU thread)", flush=True)
    shown = [t for t in SHOWN_TIMES if t <= args.t_final]
    print(f"\n| setting | trajectories/s | {' | '.join(f't = {t}' for t in shown)} | "
          f"max to t = 20 | max to t = {args.t_final:g} |")
    print("|---|---:|" + "---:|" * (len(shown) + 2))
    for setting in settings:
        frames, seconds = solve(setting, w0, args.t_final, args.frames, args.device)
        worst = relative_l2(frames, truth).max(axis=0)  # over trajectories, per frame
        at = [worst[np.argmin(np.abs(times - t))] for t in shown]
        early = worst[times <= 20].max() if (times <= 20).any() else float("nan")
        cells = " | ".join(f"{v:.2e}" for v in at)
        print(f"| {setting} | {args.trajectories / seconds:.3g} | {cells} | {early:.2e} | "
              f"{worst.max():.2e} |", flush=True)


def cost(args: argparse.Namespace) -> None:
    """Trajectories per second to t_final, extrapolated from a timed run of a few steps."""
    torch.set_num_threads(args.threads)
    for text in args.settings:
        setting = Setting.parse(text)
        if setting.resolution % STORED:
            raise SystemExit(f"error: {setting}: the grid must be a multiple of {STORED}")
        w0 = initial_states(args.trajectories, setting.resolution)
        _, seconds = solve(setting, w0, args.steps * setting.dt, 1, args.device)
        total_steps = round(args.t_final / setting.dt)
        per_traj = seconds / args.steps * total_steps / args.trajectories
        print(f"{setting}: {seconds / args.steps * 1e3:.2f} ms per step for {args.trajectories} "
              f"trajectories; to t = {args.t_final:g} ({total_steps} steps): {per_traj:.0f} s "
              f"per trajectory = {1 / per_traj:.3g} trajectories/s ({args.device}, {args.threads} CPU thread)")


def main() -> None:
    """Pick the command from the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("compare", "cost"):
        p = sub.add_parser(name)
        p.add_argument("--settings", nargs="+", required=True)
        p.add_argument("--trajectories", type=int, default=8)
        p.add_argument("--t-final", type=float, default=50.0)
        p.add_argument("--threads", type=int, default=1)
        p.add_argument("--device", default="cpu", help="torch device of the solves (cuda)")
    sub.choices["compare"].add_argument("--reference", default="256:1e-4")
    sub.choices["compare"].add_argument("--frames", type=int, default=50)
    sub.choices["cost"].add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    compare(args) if args.command == "compare" else cost(args)


if __name__ == "__main__":
    main()
