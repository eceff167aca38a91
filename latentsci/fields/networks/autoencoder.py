"""FieldAutoencoder: a convolutional encoder and decoder between a frame and a small latent grid.

    z = E((x - mean) / std),    x_rec = D(z) * std + mean

x is a frame (batch, channel, nx, ny) on a (by default periodic) grid; z is a latent grid
(batch, latent_channels, nx / 2^levels, ny / 2^levels). The encoder is a stem conv, then per level
`blocks` residual blocks and a stride-2 conv, then `blocks` residual blocks at the latent
resolution and a norm-act-conv head; the decoder mirrors it with x2 upsampling (nearest, or
bilinear wrapped around a periodic grid) + conv.
With `periodic`, every conv pads circularly, so the whole map commutes with shifts by 2^levels
pixels: rolling the frame by one latent cell rolls z by exactly one cell (GroupNorm statistics are
taken over the whole grid, hence shift invariant too).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import Tensor, nn
from torch.nn import functional as F

GROUPS = 8  # GroupNorm groups where the width allows it (fewer for narrow layers)


class FieldAutoencoderConfig(BaseModel):
    """Sizes of the field autoencoder; `levels` halvings of x and y between frame and latent."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    # input channels: 1 for vorticity, 2 for Gray-Scott (u, v); None: a stage fills it from the data
    channels: int | None = Field(default=None, ge=1)
    width: int = Field(default=32, ge=1)
    levels: int = Field(default=3, ge=1)
    blocks: int = Field(default=2, ge=0)  # residual blocks per level
    latent_channels: int = Field(default=4, ge=1)
    periodic: bool = True  # circular padding everywhere; zero padding otherwise
    # decoder's x2 interpolation; bilinear keeps spurious high-wavenumber power down (bench/RESULTS.md)
    upsample: Literal["nearest", "bilinear"] = "bilinear"
    width_multiplier: list[int] | None = None  # per level; default 1, 2, 4, 4, ...
    # > 0: a beta-VAE (the encoder gives a mean and a log-variance per latent value; the loss adds
    # beta times the KL to N(0, I) per frame value); 0: a plain autoencoder
    beta: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _multiplier_per_level(self) -> FieldAutoencoderConfig:
        """One positive multiplier per level when given."""
        m = self.width_multiplier
        if m is not None and len(m) != self.levels:
            raise ValueError(f"width_multiplier has {len(m)} entries, expected one per level "
                             f"(levels={self.levels})")
        if m is not None and any(k < 1 for k in m):
            raise ValueError(f"width_multiplier entries must be >= 1, got {m}")
        return self

    def level_widths(self) -> list[int]:
        """Channels of the feature maps at each level, finest first."""
        multiplier = self.width_multiplier or [min(2 ** i, 4) for i in range(self.levels)]
        return [self.width * k for k in multiplier]


def conv3x3(in_channels: int, out_channels: int, periodic: bool, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution that keeps the grid (or halves it with stride 2), padded for the domain."""
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1,
                     padding_mode="circular" if periodic else "zeros")


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with as many of GROUPS groups as divide the channels."""
    return nn.GroupNorm(math.gcd(GROUPS, channels), channels)


class ResidualBlock(nn.Module):
    """Pre-activation residual block at fixed width and grid.

        h = x + conv2(SiLU(norm2(conv1(SiLU(norm1(x))))))
    """

    def __init__(self, channels: int, periodic: bool):
        super().__init__()
        self.norm1 = group_norm(channels)
        self.conv1 = conv3x3(channels, channels, periodic)
        self.norm2 = group_norm(channels)
        self.conv2 = conv3x3(channels, channels, periodic)
        # each block starts as the identity, so a deep stack trains like a shallow one at first
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: Tensor) -> Tensor:
        """x plus the two-conv residual."""
        h = self.conv1(F.silu(self.norm1(x)))
        return x + self.conv2(F.silu(self.norm2(h)))


class Downsample(nn.Module):
    """Halve x and y with a stride-2 3x3 convolution."""

    def __init__(self, in_channels: int, out_channels: int, periodic: bool):
        super().__init__()
        self.conv = conv3x3(in_channels, out_channels, periodic, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        """(b, in, nx, ny) -> (b, out, nx/2, ny/2)."""
        return self.conv(x)


def double_grid(x: Tensor, mode: str, periodic: bool) -> Tensor:
    """x2 interpolation of (b, c, nx, ny); bilinear wraps around the edges of a periodic grid.

    Bilinear reads one neighbour cell past each edge, so a periodic grid is padded circularly by
    one cell, interpolated, and the two extra output cells on each side are cut off again.
    """
    if mode == "nearest" or not periodic:
        return F.interpolate(x, scale_factor=2, mode=mode)
    wide = F.pad(x, (1, 1, 1, 1), mode="circular")
    return F.interpolate(wide, scale_factor=2, mode="bilinear", align_corners=False)[
        ..., 2:-2, 2:-2]


class Upsample(nn.Module):
    """Double x and y: interpolate x2, then a 3x3 convolution (no checkerboard artefacts).

    Nearest copies each cell into a 2x2 block, which leaves step edges at the coarse cell size
    for the conv to smooth; bilinear starts smooth, which keeps spurious power at high
    wavenumbers down.
    """

    def __init__(self, in_channels: int, out_channels: int, periodic: bool,
                 mode: str = "nearest"):
        super().__init__()
        self.conv = conv3x3(in_channels, out_channels, periodic)
        self.mode, self.periodic = mode, periodic

    def forward(self, x: Tensor) -> Tensor:
        """(b, in, nx, ny) -> (b, out, 2nx, 2ny)."""
        return self.conv(double_grid(x, self.mode, self.periodic))


def residual_stack(channels: int, count: int, periodic: bool) -> nn.Sequential:
    """`count` residual blocks in a row (the identity when count is 0)."""
    return nn.Sequential(*(ResidualBlock(channels, periodic) for _ in range(count)))


def output_head(in_channels: int, out_channels: int, periodic: bool) -> nn.Sequential:
    """GroupNorm, SiLU and a 3x3 conv to the output channels."""
    return nn.Sequential(group_norm(in_channels), nn.SiLU(),
                         conv3x3(in_channels, out_channels, periodic))


class FieldEncoder(nn.Module):
    """Frame (b, channels, nx, ny) -> latent grid (b, latent_channels, nx/2^L, ny/2^L)."""

    def __init__(self, config: FieldAutoencoderConfig):
        super().__init__()
        widths = config.level_widths()
        coarser = widths[1:] + widths[-1:]  # the latent level keeps the coarsest width
        p = config.periodic
        self.config = config
        self.in_channels = config.channels
        self.latent_channels = config.latent_channels
        self.levels = config.levels
        self.stem = conv3x3(config.channels, widths[0], p)
        self.down = nn.ModuleList(
            nn.Sequential(residual_stack(w, config.blocks, p), Downsample(w, w_next, p))
            for w, w_next in zip(widths, coarser))
        self.middle = residual_stack(widths[-1], config.blocks, p)
        self.variational = config.beta > 0
        out = config.latent_channels * (2 if self.variational else 1)  # mean, log-variance
        self.head = output_head(widths[-1], out, p)

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """(mean, log-variance) of the latent grid of (already normalised) frames; the
        log-variance is None for a plain autoencoder."""
        h = self.stem(x)
        for level in self.down:
            h = level(h)
        out = self.head(self.middle(h))
        if not self.variational:
            return out, None
        mean, log_var = out.chunk(2, dim=1)
        return mean, log_var.clamp(-12.0, 8.0)

    def forward(self, x: Tensor) -> Tensor:
        """Encode (already normalised) frames: the posterior mean of a beta-VAE."""
        return self.posterior(x)[0]


class FieldDecoder(nn.Module):
    """Latent grid (b, latent_channels, mx, my) -> frame (b, channels, 2^L mx, 2^L my)."""

    def __init__(self, config: FieldAutoencoderConfig):
        super().__init__()
        widths = config.level_widths()
        coarser = widths[1:] + widths[-1:]
        p = config.periodic
        self.config = config
        self.out_channels = config.channels
        self.latent_channels = config.latent_channels
        self.stem = conv3x3(config.latent_channels, widths[-1], p)
        self.middle = residual_stack(widths[-1], config.blocks, p)
        self.up = nn.ModuleList(
            nn.Sequential(Upsample(w_next, w, p, config.upsample),
                          residual_stack(w, config.blocks, p))
            for w, w_next in reversed(list(zip(widths, coarser))))
        self.head = output_head(widths[0], config.channels, p)

    def forward(self, z: Tensor) -> Tensor:
        """Decode latent grids to frames in normalised units."""
        h = self.middle(self.stem(z))
        for level in self.up:
            h = level(h)
        return self.head(h)


class FieldAutoencoder(nn.Module):
    """Per-channel normalisation around an injected encoder and decoder.

    The encoder must expose `in_channels`, `latent_channels` and `levels` (each level halves x
    and y); the decoder `out_channels`. `mean` and `std` are buffers of shape (channels,), set by
    `fit_scale` before training and saved with the weights.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module):
        super().__init__()
        if decoder.out_channels != encoder.in_channels:
            raise ValueError(f"decoder gives {decoder.out_channels} channels, encoder takes "
                             f"{encoder.in_channels}")
        self.encoder = encoder
        self.decoder = decoder
        self.channels = encoder.in_channels
        self.register_buffer("mean", torch.zeros(self.channels))
        self.register_buffer("std", torch.ones(self.channels))
        self.config = None  # set by build_field_autoencoder: what a checkpoint records

    def fit_scale(self, frames: np.ndarray | Tensor, min_std: float = 1e-6) -> None:
        """Set `mean` and `std` per channel from frames shaped (n, channel, x, y).

            mean_c = mean_{n,x,y} frames[:, c],   std_c = max(std_{n,x,y} frames[:, c], min_std)

        The floor keeps a constant channel (e.g. Gray-Scott v before any reaction) finite.
        """
        data = frames.detach().cpu().numpy() if isinstance(frames, Tensor) else np.asarray(frames)
        if data.ndim != 4 or data.shape[1] != self.channels:
            raise ValueError(f"fit_scale expects frames shaped (n, {self.channels}, x, y), "
                             f"got {data.shape}")
        # channel by channel, so only one channel is ever copied to float64
        mean = np.array([data[:, c].mean(dtype=np.float64) for c in range(self.channels)])
        std = np.array([data[:, c].std(dtype=np.float64) for c in range(self.channels)])
        if not (np.isfinite(mean).all() and np.isfinite(std).all()):
            raise ValueError("fit_scale: frames hold non-finite values")
        self.mean.copy_(torch.as_tensor(mean))
        self.std.copy_(torch.as_tensor(np.maximum(std, min_std)))

    def normalise(self, x: Tensor) -> Tensor:
        """Frames in physical units -> zero mean, unit std per channel."""
        return (x - self.mean[:, None, None]) / self.std[:, None, None]

    def denormalise(self, x: Tensor) -> Tensor:
        """Frames in normalised units -> physical units."""
        return x * self.std[:, None, None] + self.mean[:, None, None]

    def latent_shape(self, grid: tuple[int, int]) -> tuple[int, int, int]:
        """(latent_channels, nx / 2^levels, ny / 2^levels) of a frame on an nx x ny grid."""
        factor = 2 ** self.encoder.levels
        nx, ny = grid
        if nx % factor or ny % factor:
            raise ValueError(f"grid {nx}x{ny} is not divisible by 2^{self.encoder.levels} = "
                             f"{factor} (levels={self.encoder.levels})")
        return self.encoder.latent_channels, nx // factor, ny // factor

    def compression_ratio(self, grid: tuple[int, int]) -> float:
        """Values in a frame over values in its latent: channels * nx * ny / prod(latent_shape)."""
        return self.channels * grid[0] * grid[1] / math.prod(self.latent_shape(grid))

    def _check_frames(self, x: Tensor) -> None:
        """Frames must be (batch, channels, nx, ny) on a grid the levels divide."""
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ValueError(f"expected frames shaped (batch, {self.channels}, x, y), "
                             f"got {tuple(x.shape)}")
        self.latent_shape((x.shape[-2], x.shape[-1]))

    def encode(self, x: Tensor) -> Tensor:
        """Latent grid of frames given in physical units."""
        self._check_frames(x)
        return self.encoder(self.normalise(x))

    def decode(self, z: Tensor) -> Tensor:
        """Frames in physical units from a latent grid."""
        return self.denormalise(self.decoder(z))

    def reconstruct(self, x: Tensor) -> Tensor:
        """decode(encode(x)), differentiable; wrap in torch.no_grad() for evaluation."""
        return self.decode(self.encode(x))

    def forward(self, x: Tensor) -> Tensor:
        """The training loss: MSE of the reconstruction in normalised units, plus for a beta-VAE
        beta times the KL of the posterior to N(0, I) per frame value.

            L = mean_{b,c,i,j} (D(z) - u)_{bcij}^2 + beta * mean_b KL_b / (C nx ny),
            u_c = (x_c - mean_c) / std_c,   z = mu + sigma * eps (mu alone without beta)

        Normalised units weigh every channel alike whatever its physical scale; L = 1 is as bad as
        predicting each channel's mean. When frames vary about as much as the data set, sqrt(L)
        approximates VRMSE. It is `forward` so DistributedDataParallel syncs its gradients.
        """
        self._check_frames(x)
        u = self.normalise(x)
        mean, log_var = self.encoder.posterior(u)
        if log_var is None:
            return F.mse_loss(self.decoder(mean), u)
        z = mean + torch.randn_like(mean) * (0.5 * log_var).exp()
        kl = 0.5 * (mean.square() + log_var.exp() - 1.0 - log_var).flatten(1).sum(1)
        return F.mse_loss(self.decoder(z), u) + self.encoder.config.beta * kl.mean() / u[0].numel()


def build_field_autoencoder(config: FieldAutoencoderConfig) -> FieldAutoencoder:
    """Encoder and decoder from one config, wrapped with (unfitted) normalisation."""
    if config.channels is None:
        raise ValueError("FieldAutoencoderConfig.channels is not set (a stage fills it from the "
                         "fields it trains on)")
    model = FieldAutoencoder(FieldEncoder(config), FieldDecoder(config))
    model.config = config
    return model
