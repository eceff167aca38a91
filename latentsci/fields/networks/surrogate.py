"""LatentSurrogate: next-latent prediction z_{t+1} | (z_{t-H+1..t}, p), stochastic or deterministic.

Both kinds predict the normalised increment of the latent state,

    y = (z_{t+1} - z_t) / s,        z_{t+1} = z_t + s * y,

from the normalised history (z - m) / sigma and normalised parameters (p - mu_p) / sigma_p, where
m, sigma are per-channel latent means and standard deviations, s the per-channel RMS of one-step
increments, and mu_p, sigma_p the parameters' means and deviations, all fitted on training
sequences by `fit_scale`. Predicting the increment makes "nothing changes" the zero output, and
dividing by s makes y order one whatever the time step, so the flow's N(0, I) noise is on the
same scale as its targets.

    "flow":          y ~ p(y | history, p), learned by conditional flow matching, sampled by an ODE
                     sampler (see flow_matching.py); repeated calls give an ensemble.
    "deterministic": y = f(0, 0 | history, p), the same network called with x_t = 0 and tau = 0,
                     trained with MSE: the conditional mean, with exactly the same parameters.

`forward(history, target, params)` returns the training loss, so DistributedDataParallel sees
every trainable parameter used in the call that produced the loss.
"""

from __future__ import annotations

from typing import Literal, Protocol

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from latentsci.fields.networks.denoiser import LatentDenoiser, LatentDenoiserConfig
from latentsci.fields.networks.flow_matching import EulerSampler, HeunSampler, flow_matching_loss

SurrogateKind = Literal["flow", "deterministic"]

# floor on fitted scales: a constant latent channel must not divide by zero
_MIN_SCALE = 1e-6


class Sampler(Protocol):
    """What a flow surrogate needs of a sampler: one draw of y per conditioning row."""

    def sample(self, net: nn.Module, history: torch.Tensor, params: torch.Tensor | None,
               generator: torch.Generator | None = None) -> torch.Tensor: ...


class SurrogateConfig(BaseModel):
    """The surrogate's kind, its network and (for "flow") the ODE sampler used to predict."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: SurrogateKind = "flow"
    denoiser: LatentDenoiserConfig = Field(default_factory=LatentDenoiserConfig)
    sampler_steps: int = Field(default=16, gt=0)
    sampler: Literal["euler", "heun"] = "euler"


class LatentSurrogate(nn.Module):
    """An injected network (x_t, tau, history, params) -> field, and the latent scales it works in.

    The network carries a `config` with `latent_channels` and `n_params`, as LatentDenoiser does.
    """

    def __init__(self, network: nn.Module, kind: SurrogateKind, sampler: Sampler | None = None):
        super().__init__()
        if kind not in ("flow", "deterministic"):
            raise ValueError(f"unknown surrogate kind {kind!r}")
        if kind == "deterministic" and sampler is not None:
            raise ValueError("a deterministic surrogate takes no sampler")
        self.network = network
        self.kind = kind
        if kind == "flow" and sampler is None:
            sampler = EulerSampler()
        self.sampler = sampler
        self.config: SurrogateConfig | None = None  # set by build_surrogate
        channels, n_params = network.config.latent_channels, network.config.n_params
        self.register_buffer("latent_mean", torch.zeros(channels))
        self.register_buffer("latent_std", torch.ones(channels))
        self.register_buffer("delta_std", torch.ones(channels))
        self.register_buffer("param_mean", torch.zeros(n_params))
        self.register_buffer("param_std", torch.ones(n_params))

    @property
    def stochastic(self) -> bool:
        """Whether repeated predictions from one history differ (an ensemble is informative)."""
        return self.kind == "flow"

    @torch.no_grad()
    def fit_scale(self, sequences: np.ndarray | torch.Tensor,
                  params: np.ndarray | torch.Tensor | None = None) -> LatentSurrogate:
        """Fit the normalising scales from training latents (n, time, C, h, w) and params (n, P).

            m_c = mean z_c,   sigma_c = std z_c,   s_c = sqrt(mean (z_{t+1,c} - z_{t,c})^2)

        over trajectories, times and grid points of channel c; s is an RMS, not a centred std, so
        a steady drift is part of the increment's scale. params give mu_p and sigma_p per column.
        """
        z = torch.as_tensor(np.asarray(sequences), dtype=torch.float64)
        if z.dim() != 5 or z.shape[1] < 2:
            raise ValueError(f"sequences must be (n, time >= 2, C, h, w), got {tuple(z.shape)}")
        per_channel = z.transpose(0, 2).flatten(1)  # (C, everything else)
        deltas = (z[:, 1:] - z[:, :-1]).transpose(0, 2).flatten(1)
        self.latent_mean.copy_(per_channel.mean(dim=1))
        self.latent_std.copy_(per_channel.std(dim=1, correction=0).clamp_min(_MIN_SCALE))
        self.delta_std.copy_(deltas.pow(2).mean(dim=1).sqrt().clamp_min(_MIN_SCALE))
        if params is not None:
            p = torch.as_tensor(np.asarray(params), dtype=torch.float64).reshape(z.shape[0], -1)
            self.param_mean.copy_(p.mean(dim=0))
            self.param_std.copy_(p.std(dim=0, correction=0).clamp_min(_MIN_SCALE))
        return self

    def forward(self, history: torch.Tensor, target: torch.Tensor,
                params: torch.Tensor | None = None) -> torch.Tensor:
        """The training loss for histories (B, H, C, h, w) and next latents (B, C, h, w), a scalar.

        "flow": the flow matching loss on y; "deterministic": mean (f(0, 0 | c) - y)^2.
        """
        condition, p = self.normalise_history(history), self.normalise_params(params)
        increment = (target - history[:, -1]) / _channel_view(self.delta_std)
        if self.kind == "flow":
            return flow_matching_loss(self.network, increment, condition, p)
        return torch.mean((self.mean_increment(condition, p) - increment) ** 2)

    @torch.no_grad()
    def predict(self, history: torch.Tensor, params: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """The next latent z_{t+1} (B, C, h, w) in latent units: a draw ("flow") or the mean."""
        condition, p = self.normalise_history(history), self.normalise_params(params)
        if self.kind == "flow":
            increment = self.sampler.sample(self.network, condition, p, generator)
        else:
            increment = self.mean_increment(condition, p)
        return history[:, -1] + increment * _channel_view(self.delta_std)

    def mean_increment(self, condition: torch.Tensor, params: torch.Tensor | None) -> torch.Tensor:
        """The deterministic prediction of y: the network at x_t = 0, tau = 0."""
        x_t = torch.zeros_like(condition[:, -1])
        tau = x_t.new_zeros(x_t.shape[0])
        return self.network(x_t, tau, condition, params)

    def normalise_history(self, history: torch.Tensor) -> torch.Tensor:
        """(z - m) / sigma per channel, for latents shaped (..., C, h, w)."""
        return (history - _channel_view(self.latent_mean)) / _channel_view(self.latent_std)

    def normalise_params(self, params: torch.Tensor | None) -> torch.Tensor | None:
        """(p - mu_p) / sigma_p per column; None (no parameters) stays None."""
        if params is None:
            return None
        return (params - self.param_mean) / self.param_std


def _channel_view(per_channel: torch.Tensor) -> torch.Tensor:
    """A (C,) vector viewed as (C, 1, 1), to broadcast against any (..., C, h, w) tensor."""
    return per_channel.view(-1, 1, 1)


def build_surrogate(config: SurrogateConfig) -> LatentSurrogate:
    """A LatentDenoiser wrapped as the configured kind of surrogate, with its sampler if "flow"."""
    network = LatentDenoiser(config.denoiser)
    sampler = None
    if config.kind == "flow":
        sampler_type = EulerSampler if config.sampler == "euler" else HeunSampler
        sampler = sampler_type(steps=config.sampler_steps)
    surrogate = LatentSurrogate(network, config.kind, sampler)
    surrogate.config = config
    return surrogate
