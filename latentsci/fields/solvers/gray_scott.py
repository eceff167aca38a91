"""Gray-Scott reaction-diffusion on a periodic square, with the usual (F, k) pattern presets.

    du/dt = Du lap(u) - u v^2 + F (1 - u)
    dv/dt = Dv lap(v) + u v^2 - (F + k) v

Semi-implicit pseudo-spectral Euler: diffusion implicit in Fourier space (stable at any step),
reaction explicit. Pearson's (1993) setting: Du = 2e-5, Dv = 1e-5, grid spacing 0.01, the
domain at rest (u = 1, v = 0) seeded with a few perturbed blobs and 1% noise.
"""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from latentsci.fields.solvers.navier_stokes import check_frames
from latentsci.fields.solvers.spectral import wavenumbers

PRESETS: dict[str, tuple[float, float]] = {
    "gliders": (0.014, 0.054), "bubbles": (0.098, 0.057), "maze": (0.029, 0.057),
    "worms": (0.058, 0.065), "spirals": (0.018, 0.051), "spots": (0.030, 0.062),
}


class GrayScottConfig(BaseModel):
    """Grid, physics and sampling of a Gray-Scott data set; `presets` are cycled over trajectories."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    resolution: int = Field(default=64, ge=8)
    dx: float = Field(default=0.01, gt=0)  # domain length = resolution * dx
    diffusion_u: float = Field(default=2e-5, gt=0)
    diffusion_v: float = Field(default=1e-5, gt=0)
    presets: list[str] = Field(default_factory=lambda: list(PRESETS), min_length=1)
    dt: float = Field(default=1.0, gt=0)
    warmup: float = Field(default=0.0, ge=0)  # time simulated before the first saved frame
    t_final: float = Field(default=2000.0, gt=0)
    frames: int = Field(default=20, ge=1)
    # Gaussian blobs in the initial state: `blob_density` per unit of domain area (about 4 on the
    # 64 x 64 default), or exactly `seeds_per_field` when given.
    blob_density: float = Field(default=10.0, gt=0)
    seeds_per_field: int | None = Field(default=None, ge=1)
    blob_width: float = Field(default=0.03, gt=0)  # their standard deviation, in domain units
    double: bool = False

    @field_validator("presets")
    @classmethod
    def _known(cls, presets: list[str]) -> list[str]:
        """Only named presets or explicit 'F,k' pairs."""
        for name in presets:
            try:
                feed_kill(name)
            except ValueError:
                raise ValueError(f"unknown Gray-Scott preset {name!r} (known: "
                                 f"{', '.join(PRESETS)}, or 'F,k')") from None
        return presets

    def blobs(self) -> int:
        """Blobs per initial state: as many per area on any grid, so a bigger domain is seeded
        as densely (too few blobs on 128 x 128 let the gliders preset die out)."""
        if self.seeds_per_field is not None:
            return self.seeds_per_field
        return max(1, round(self.blob_density * (self.resolution * self.dx) ** 2))

    @model_validator(mode="after")
    def _whole_steps(self) -> GrayScottConfig:
        """Frames and warm-up must fall on whole steps."""
        check_frames(self.t_final, self.dt, self.frames)
        if self.warmup:
            check_frames(self.warmup, self.dt, 1, name="warmup")
        return self


def feed_kill(preset: str) -> tuple[float, float]:
    """(F, k) of a named preset or of an explicit 'F,k' string."""
    if preset in PRESETS:
        return PRESETS[preset]
    parts = preset.split(",")
    if len(parts) != 2:
        raise ValueError(f"not a preset or 'F,k': {preset!r}")
    feed, kill = (float(v) for v in parts)
    return feed, kill


def seeded_state(n: int, blobs: int, generator: torch.Generator, dtype=torch.float32,
                 width: float = 3.0) -> torch.Tensor:
    """(2, n, n) rest state u = 1, v = 0 with Gaussian blobs of v (peaks alternating 0.5 and 0.25,
    standard deviation `width` cells, u lowered by up to 0.5 under them) and 1% noise.

    Both amplitudes are needed: the low-feed presets (gliders) only grow from weak seeds, the
    high-feed ones (bubbles, worms) from strong. Gliders also need small seeds at the right
    density: with 8 blobs of 5 cells, about half the seeds died to the uniform state at 64 x 64;
    4 blobs of 3 cells (0.03 at dx 0.01) kept all 12 seeds of every preset alive. Too few die
    too: at 128 x 128, 4 blobs kept 8 of 12 gliders seeds, 16 (the same density) all 12
    (bench/RESULTS.md)."""
    x = torch.arange(n, dtype=dtype)
    u_dip = torch.zeros(n, n, dtype=dtype)
    v = torch.zeros(n, n, dtype=dtype)
    for i in range(blobs):
        cx, cy = (torch.rand(2, generator=generator, dtype=dtype) * n).tolist()
        dx = (x[:, None] - cx + n / 2) % n - n / 2  # periodic distance
        dy = (x[None, :] - cy + n / 2) % n - n / 2
        bump = torch.exp(-(dx ** 2 + dy ** 2) / (2 * width ** 2))
        v = torch.maximum(v, (0.25 if i % 2 else 0.5) * bump)
        u_dip = torch.maximum(u_dip, 0.5 * bump)
    state = torch.stack([1.0 - u_dip, v])
    return state + 0.01 * torch.rand(state.shape, generator=generator, dtype=dtype)


def solve_gray_scott(state: torch.Tensor, feed: torch.Tensor, kill: torch.Tensor,
                     config: GrayScottConfig) -> torch.Tensor:
    """(batch, frames, 2, n, n) saved at warmup + t_final * i / frames, from (batch, 2, n, n)."""
    n = state.shape[-1]
    steps = max(round(config.t_final / config.dt), config.frames)
    record_every = steps // config.frames
    kx, ky = wavenumbers(n, length=n * config.dx, device=state.device, dtype=state.dtype)
    lap = kx ** 2 + ky ** 2
    diffusion = torch.tensor([config.diffusion_u, config.diffusion_v], dtype=state.dtype,
                             device=state.device)[:, None, None]
    implicit = 1.0 + config.dt * diffusion * lap
    feed = feed.to(state)[:, None, None]
    kill = kill.to(state)[:, None, None]
    out = torch.empty((state.shape[0], config.frames, 2, n, n), dtype=state.dtype,
                      device=state.device)
    warmup = round(config.warmup / config.dt)
    for step in range(1, warmup + record_every * config.frames + 1):
        u, v = state[:, 0], state[:, 1]
        uvv = u * v * v
        reaction = torch.stack([-uvv + feed * (1 - u), uvv - (feed + kill) * v], dim=1)
        state_h = torch.fft.rfft2(state + config.dt * reaction) / implicit
        state = torch.fft.irfft2(state_h, s=(n, n))
        done = step - warmup
        if done > 0 and done % record_every == 0:
            out[:, done // record_every - 1] = state
    return out


def simulate_gray_scott(config: GrayScottConfig, seeds: list[int], presets: list[str],
                        device: str = "cpu") -> torch.Tensor:
    """Trajectories (batch, time, 2, x, y) with channels (u, v), one preset per trajectory."""
    real = torch.float64 if config.double else torch.float32
    state = torch.stack([seeded_state(config.resolution, config.blobs(),
                                      torch.Generator().manual_seed(s), real,
                                      config.blob_width / config.dx) for s in seeds])
    feed, kill = zip(*(feed_kill(p) for p in presets))
    out = solve_gray_scott(state.to(device), torch.tensor(feed), torch.tensor(kill), config)
    return out.float().cpu()
