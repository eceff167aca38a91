"""2D incompressible Navier-Stokes in vorticity form on the unit torus, as in the FNO paper's data.

    dw/dt + u . grad(w) = nu * lap(w) + f,    u = (d psi/dy, -d psi/dx),    -lap(psi) = w

Pseudo-spectral in space; Crank-Nicolson for viscosity, explicit Euler for advection and forcing;
the advection term is dealiased with the 2/3 rule. Initial vorticity is a Gaussian random field
with covariance tau^(2 alpha - 2) (-lap + tau^2)^(-alpha) (alpha 2.5, tau 7 in the paper).
Batched over trajectories, each with its own viscosity; runs on CPU or GPU.
"""

from __future__ import annotations

import math

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from latentsci.fields.solvers.spectral import dealias_mask, grid, wavenumbers


class NavierStokesConfig(BaseModel):
    """Grid, physics and sampling of a Navier-Stokes data set (FNO defaults at 64 x 64)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    resolution: int = Field(default=64, ge=8)
    subsample: int = Field(default=1, ge=1)  # solve at resolution, store every subsample-th point
    viscosity: list[float] = Field(default_factory=lambda: [1e-3], min_length=1)  # cycled over
    dt: float = Field(default=1e-3, gt=0)
    t_final: float = Field(default=50.0, gt=0)
    frames: int = Field(default=50, ge=1)  # saved at t_final * i / frames, i = 1..frames
    save_initial: bool = True  # also store w(t=0) as frame 0
    alpha: float = 2.5
    tau: float = 7.0
    # a in a (sin 2pi(x+y) + cos 2pi(x+y)); a list is cycled over trajectories like viscosity
    forcing_amplitude: float | list[float] = 0.1
    double: bool = False  # float64 arithmetic (tests); float32 is the FNO data's precision

    @model_validator(mode="after")
    def _consistent(self) -> NavierStokesConfig:
        """Frames must fall on whole steps, and subsampling must divide the grid."""
        check_frames(self.t_final, self.dt, self.frames)
        if self.resolution % self.subsample:
            raise ValueError(f"subsample {self.subsample} does not divide resolution "
                             f"{self.resolution}")
        return self


def check_frames(t_final: float, dt: float, frames: int, name: str = "t_final") -> None:
    """t_final must be a whole number of steps dt, and those steps a multiple of `frames`, so
    frame i is stored at exactly t_final * i / frames."""
    steps = t_final / dt
    if abs(steps - round(steps)) > 1e-6 * max(steps, 1) or round(steps) % frames:
        raise ValueError(f"{name} / dt = {steps:g} steps must be a whole multiple of "
                         f"frames = {frames} (frame times would not match the stored times)")


def gaussian_random_field(batch: int, n: int, alpha: float, tau: float,
                          generator: torch.Generator | None = None,
                          dtype=torch.float32) -> torch.Tensor:
    """Periodic samples with spectrum sigma^2 (4 pi^2 |k|^2 + tau^2)^(-alpha), zero mean (n x n)."""
    kx = torch.fft.fftfreq(n, d=1.0 / n, dtype=torch.float64)[:, None]
    ky_full = torch.fft.fftfreq(n, d=1.0 / n, dtype=torch.float64)[None, :]
    sigma = tau ** (0.5 * (2 * alpha - 2))
    amplitude = (n * n) * math.sqrt(2.0) * sigma * (
        4 * math.pi ** 2 * (kx ** 2 + ky_full ** 2) + tau ** 2) ** (-alpha / 2)
    amplitude[0, 0] = 0.0
    # Standard complex normal noise: E|xi|^2 = 1 (each part variance 1/2), as the FNO generator
    # draws it; then E|fft2(w)_k|^2 = amplitude_k^2 / 2 = n^4 sigma^2 (4 pi^2 |k|^2 + tau^2)^-alpha.
    noise = torch.randn(batch, n, n, generator=generator, dtype=torch.complex128)
    return torch.fft.ifft2(amplitude * noise).real.to(dtype)


def kolmogorov_forcing(n: int, amplitude: float = 0.1, dtype=torch.float32) -> torch.Tensor:
    """The FNO paper's forcing f(x, y) = a (sin 2pi(x + y) + cos 2pi(x + y))."""
    x, y = grid(n, dtype=torch.float64)
    phase = 2 * math.pi * (x + y)
    return (amplitude * (torch.sin(phase) + torch.cos(phase))).to(dtype)


def solve_vorticity(w0: torch.Tensor, forcing: torch.Tensor | None, viscosity: torch.Tensor,
                    dt: float, t_final: float, frames: int, subsample: int = 1) -> torch.Tensor:
    """Vorticity at t_final * i / frames for i = 1..frames: (batch, frames, n/s, n/s) from w0
    (batch, n, n), keeping every `subsample`-th grid point of each saved frame.

    `viscosity` has one value per trajectory. Non-finite values are left in place for the caller
    to detect (an unstable time step blows up one trajectory, not the batch)."""
    n = w0.shape[-1]
    if n % subsample:
        raise ValueError(f"subsample {subsample} does not divide the grid ({n})")
    steps = max(round(t_final / dt), frames)
    record_every = steps // frames
    real = w0.dtype
    kx, ky = wavenumbers(n, device=w0.device, dtype=real)
    lap = kx ** 2 + ky ** 2
    inverse_lap = torch.where(lap > 0, 1.0 / torch.where(lap > 0, lap, 1.0), 0.0)
    keep = dealias_mask(n, device=w0.device)
    nu = viscosity.to(device=w0.device, dtype=real)[:, None, None]
    implicit = 1.0 + 0.5 * dt * nu * lap
    explicit = 1.0 - 0.5 * dt * nu * lap
    w_h = torch.fft.rfft2(w0)
    f_h = torch.fft.rfft2(forcing.to(w0.device, real)) if forcing is not None else 0.0
    kept = n // subsample
    out = torch.empty((w0.shape[0], frames, kept, kept), dtype=real, device=w0.device)
    for step in range(1, record_every * frames + 1):
        psi_h = w_h * inverse_lap
        u = torch.fft.irfft2(1j * ky * psi_h, s=(n, n))      # d psi / dy
        v = torch.fft.irfft2(-1j * kx * psi_h, s=(n, n))     # -d psi / dx
        w_x = torch.fft.irfft2(1j * kx * w_h, s=(n, n))
        w_y = torch.fft.irfft2(1j * ky * w_h, s=(n, n))
        advection_h = torch.fft.rfft2(u * w_x + v * w_y) * keep
        w_h = (explicit * w_h + dt * (f_h - advection_h)) / implicit
        if step % record_every == 0:
            frame = torch.fft.irfft2(w_h, s=(n, n))
            out[:, step // record_every - 1] = frame[..., ::subsample, ::subsample]
    return out


def amplitudes(config: NavierStokesConfig, indices: list[int]) -> list[float]:
    """The forcing amplitude of each trajectory (a list in the config is cycled over them)."""
    given = config.forcing_amplitude
    values = given if isinstance(given, list) else [given]
    return [float(values[i % len(values)]) for i in indices]


def simulate_navier_stokes(config: NavierStokesConfig, seeds: list[int],
                           viscosities: list[float], device: str = "cpu",
                           forcing: list[float] | None = None) -> torch.Tensor:
    """Trajectories (batch, time, 1, x, y) from GRF initial conditions seeded per trajectory,
    each with its viscosity and (when `forcing` is given) its forcing amplitude."""
    real = torch.float64 if config.double else torch.float32
    n = config.resolution
    w0 = torch.cat([gaussian_random_field(1, n, config.alpha, config.tau,
                                          torch.Generator().manual_seed(s), real) for s in seeds])
    w0 = w0.to(device)
    forcing = forcing or amplitudes(config, list(range(len(seeds))))
    if len(set(forcing)) == 1:  # one field for the whole batch, as before per-trajectory forcing
        field = kolmogorov_forcing(n, forcing[0], real)
    else:
        field = torch.stack([kolmogorov_forcing(n, a, real) for a in forcing])
    s = config.subsample
    w = solve_vorticity(w0, field, torch.tensor(viscosities), config.dt, config.t_final,
                        config.frames, subsample=s)
    if config.save_initial:
        w = torch.cat([w0[:, None, ::s, ::s], w], dim=1)
    return w[:, :, None].float().cpu()
