"""Fourier-space operators on the periodic square [0, L)^2 shared by the pseudo-spectral solvers.

Fields are (..., x, y) with x on axis -2 and y on axis -1; rfft2 halves the y axis.
"""

from __future__ import annotations

import math

import torch


def wavenumbers(n: int, length: float = 1.0, device=None,
                dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Angular wavenumbers (kx, ky) of an n x n rfft2 grid, shaped to broadcast as (n, n//2+1)."""
    kx = torch.fft.fftfreq(n, d=1.0 / n, device=device, dtype=dtype) * (2 * math.pi / length)
    ky = torch.fft.rfftfreq(n, d=1.0 / n, device=device, dtype=dtype) * (2 * math.pi / length)
    return kx[:, None], ky[None, :]


def dealias_mask(n: int, device=None) -> torch.Tensor:
    """Orszag's 2/3 rule: keep modes with |k| <= n/3 along both axes (integer wavenumbers)."""
    k = torch.fft.fftfreq(n, d=1.0 / n, device=device).abs()
    ky = torch.fft.rfftfreq(n, d=1.0 / n, device=device)
    cutoff = 2.0 / 3.0 * (n // 2)
    return (k[:, None] <= cutoff) & (ky[None, :] <= cutoff)


def grid(n: int, length: float = 1.0, device=None,
         dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Cell-corner coordinates (X, Y) of the n x n periodic grid, X varying along axis -2."""
    t = torch.arange(n, device=device, dtype=dtype) * (length / n)
    return torch.meshgrid(t, t, indexing="ij")
