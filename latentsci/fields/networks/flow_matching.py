"""Conditional flow matching (rectified flow): the training objective and ODE samplers.

A straight path joins a noise sample x0 ~ N(0, I) to a data sample x1 (here the normalised
latent increment), indexed by the flow time tau in [0, 1]:

    x_tau = (1 - tau) x0 + tau x1,        d x_tau / d tau = x1 - x0.

A network v(x, tau | c) conditioned on c = (history, params) is regressed onto that velocity,

    L = E_{tau ~ U[0, 1], x0, x1} || v(x_tau, tau | c) - (x1 - x0) ||^2,

whose minimiser is v*(x, tau | c) = E[x1 - x0 | x_tau = x, c]. Integrating dx/dtau = v*(x, tau | c)
from x(0) ~ N(0, I) to tau = 1 carries the noise distribution onto p(x1 | c) (Lipman et al. 2023;
Liu et al. 2023). The samplers below are fixed-step integrators of that ODE; swapping this file
for a DDPM schedule and sampler changes the objective, not the network or the rollout.

The network is any callable net(x_t, tau, history, params) -> velocity shaped like x_t.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

VelocityField = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None],
                         torch.Tensor]


def _noise(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard normal noise shaped like `like`, drawn from `generator` when one is given."""
    return torch.randn(like.shape, generator=generator, device=like.device, dtype=like.dtype)


def flow_matching_loss(net: VelocityField, target: torch.Tensor, history: torch.Tensor,
                       params: torch.Tensor | None,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """The conditional flow matching loss for one batch of targets x1 (B, C, h, w), a scalar.

        tau ~ U[0, 1] per sample, x0 ~ N(0, I),  x_tau = (1 - tau) x0 + tau x1,
        L = mean over batch and elements of (v(x_tau, tau | history, params) - (x1 - x0))^2
    """
    x0 = _noise(target, generator)
    tau = torch.rand(target.shape[0], generator=generator, device=target.device,
                     dtype=target.dtype)
    tau_b = tau.view(-1, *([1] * (target.dim() - 1)))
    x_tau = (1.0 - tau_b) * x0 + tau_b * target
    velocity = net(x_tau, tau, history, params)
    return torch.mean((velocity - (target - x0)) ** 2)


def _initial_state(history: torch.Tensor,
                   generator: torch.Generator | None) -> torch.Tensor:
    """x(0) ~ N(0, I) shaped like one latent of the history (B, C, h, w)."""
    return _noise(history[:, -1], generator)


def _times(steps: int, batch: int, like: torch.Tensor) -> list[torch.Tensor]:
    """The grid tau_i = i / steps, i = 0..steps, each broadcast to a (B,) tensor."""
    return [torch.full((batch,), i / steps, device=like.device, dtype=like.dtype)
            for i in range(steps + 1)]


@dataclass(frozen=True)
class EulerSampler:
    """Forward Euler on dx/dtau = v(x, tau | c) over `steps` equal steps from tau = 0 to 1.

        x_{i+1} = x_i + dt v(x_i, tau_i | c),   dt = 1 / steps,   tau_i = i dt

    One network call per step; exact after one step where the learned flow is straight.
    """

    steps: int = 16

    def sample(self, net: VelocityField, history: torch.Tensor, params: torch.Tensor | None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """One sample of x1 (B, C, h, w) per conditioning row of history (B, H, C, h, w)."""
        x = _initial_state(history, generator)
        taus, dt = _times(self.steps, x.shape[0], x), 1.0 / self.steps
        for i in range(self.steps):
            x = x + dt * net(x, taus[i], history, params)
        return x


@dataclass(frozen=True)
class HeunSampler:
    """Heun's second-order method (explicit trapezoid) on the same ODE, two calls per step.

        x' = x_i + dt v(x_i, tau_i),   x_{i+1} = x_i + dt/2 (v(x_i, tau_i) + v(x', tau_{i+1}))
    """

    steps: int = 8

    def sample(self, net: VelocityField, history: torch.Tensor, params: torch.Tensor | None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """One sample of x1 (B, C, h, w) per conditioning row of history (B, H, C, h, w)."""
        x = _initial_state(history, generator)
        taus, dt = _times(self.steps, x.shape[0], x), 1.0 / self.steps
        for i in range(self.steps):
            slope = net(x, taus[i], history, params)
            predicted = x + dt * slope
            x = x + 0.5 * dt * (slope + net(predicted, taus[i + 1], history, params))
        return x
