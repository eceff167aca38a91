"""LatentDenoiser: a periodic conv residual net on latent grids, conditioned on time and physics.

    out = Head( Block_K( ... Block_1( Stem([x_t, z_{t-H+1}, ..., z_t]), e ) ..., e ) )
    e   = MLP([sinusoid(tau), params])
    Block(h, e) = h + Conv(SiLU(Norm(Conv(SiLU((1 + scale(e)) * Norm(h) + shift(e))))))

The current state x_t and the H history latents are stacked as channels; the flow/diffusion time
tau and the physical parameters enter only through the embedding e, which rescales and shifts
(FiLM) the normalised activations of every block. With periodic padding and GroupNorm every layer
commutes with translations of the periodic grid, so the whole network does too.

What x_t and the output mean is up to the objective that calls it (a velocity for flow matching,
a direct increment for a deterministic model); the network itself knows neither.
"""

from __future__ import annotations

import math

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from torch.nn import functional as F


class LatentDenoiserConfig(BaseModel):
    """Size of the latent grid's channel axis, the conditioning it takes and the network's size."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    latent_channels: int | None = Field(default=None, gt=0)  # None: a stage fills it from the store
    history: int = Field(default=2, gt=0)
    n_params: int = Field(default=0, ge=0)
    width: int = Field(default=64, gt=0)
    blocks: int = Field(default=4, ge=0)
    periodic: bool = True


def time_features(tau: torch.Tensor, dim: int, max_frequency: float = 1000.0) -> torch.Tensor:
    """Sinusoidal features of times tau (B,) in [0, 1], shape (B, 2 * (dim // 2)).

        phi(tau) = [sin(w_1 tau), ..., sin(w_n tau), cos(w_1 tau), ..., cos(w_n tau)]

    with n = dim // 2 frequencies w_i spaced geometrically from 1 to `max_frequency` (radians per
    unit time), so both the coarse position in [0, 1] and small steps of a sampler are resolved.
    """
    half = dim // 2
    frequencies = torch.exp(torch.linspace(0.0, math.log(max_frequency), half,
                                           device=tau.device, dtype=tau.dtype))
    angles = tau[:, None] * frequencies[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


def _conv3x3(channels_in: int, channels_out: int, periodic: bool) -> nn.Conv2d:
    """A 3x3 same-size convolution, wrapping around the grid's edges when it is periodic."""
    return nn.Conv2d(channels_in, channels_out, kernel_size=3, padding=1,
                     padding_mode="circular" if periodic else "zeros")


def _group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with up to 8 groups that always divide the channel count."""
    return nn.GroupNorm(math.gcd(8, channels), channels)


class ConditionEmbedding(nn.Module):
    """Embeds (tau, params) into one vector e that every block reads its scale and shift from."""

    def __init__(self, width: int, n_params: int):
        super().__init__()
        self.width = width
        features = 2 * (width // 2) + n_params
        self.mlp = nn.Sequential(nn.Linear(features, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, tau: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """e = MLP([sinusoid(tau), params]), shape (B, width)."""
        return self.mlp(torch.cat([time_features(tau, self.width), params], dim=1))


class FiLMResidualBlock(nn.Module):
    """Two periodic 3x3 convolutions on a residual branch whose input is FiLM-modulated by e."""

    def __init__(self, width: int, periodic: bool):
        super().__init__()
        self.norm_in = _group_norm(width)
        self.modulation = nn.Linear(width, 2 * width)
        self.conv_in = _conv3x3(width, width, periodic)
        self.norm_out = _group_norm(width)
        self.conv_out = _conv3x3(width, width, periodic)
        # zero modulation at start: every block begins as an unconditioned residual block, and
        # the conditioning grows in only as far as the loss asks for it
        nn.init.zeros_(self.modulation.weight)
        nn.init.zeros_(self.modulation.bias)

    def forward(self, h: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        """h + Conv(SiLU(Norm(Conv(SiLU((1 + scale) * Norm(h) + shift))))), shape of h."""
        scale, shift = self.modulation(F.silu(embedding))[:, :, None, None].chunk(2, dim=1)
        branch = F.silu((1.0 + scale) * self.norm_in(h) + shift)
        branch = self.conv_out(F.silu(self.norm_out(self.conv_in(branch))))
        return h + branch


class LatentDenoiser(nn.Module):
    """(x_t, tau, history, params) -> a field shaped like x_t on the same (periodic) latent grid."""

    def __init__(self, config: LatentDenoiserConfig):
        super().__init__()
        if config.latent_channels is None:
            raise ValueError("LatentDenoiserConfig.latent_channels is not set (a stage fills it "
                             "from the latent store)")
        self.config = config
        width, periodic = config.width, config.periodic
        stacked = config.latent_channels * (config.history + 1)
        self.stem = _conv3x3(stacked, width, periodic)
        self.embedding = ConditionEmbedding(width, config.n_params)
        self.blocks = nn.ModuleList(FiLMResidualBlock(width, periodic)
                                    for _ in range(config.blocks))
        self.head_norm = _group_norm(width)
        self.head = _conv3x3(width, config.latent_channels, periodic)

    def forward(self, x_t: torch.Tensor, tau: torch.Tensor, history: torch.Tensor,
                params: torch.Tensor | None = None) -> torch.Tensor:
        """Network output (B, C, h, w) for x_t (B, C, h, w), tau (B,), history (B, H, C, h, w)
        and params (B, P) (None when P = 0)."""
        params = self.check_params(params, x_t)
        h = self.stem(torch.cat([x_t, history.flatten(1, 2)], dim=1))
        embedding = self.embedding(tau.to(x_t.dtype), params)
        for block in self.blocks:
            h = block(h, embedding)
        return self.head(F.silu(self.head_norm(h)))

    def check_params(self, params: torch.Tensor | None, x_t: torch.Tensor) -> torch.Tensor:
        """params as (B, P) on x_t's device and dtype; an empty (B, 0) when none are given."""
        expected = self.config.n_params
        if params is None:
            params = x_t.new_zeros(x_t.shape[0], 0)
        if params.shape != (x_t.shape[0], expected):
            raise ValueError(f"params shaped {tuple(params.shape)}, expected "
                             f"({x_t.shape[0]}, {expected})")
        return params.to(x_t)
