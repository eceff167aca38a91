"""Latent surrogate: denoiser symmetry, flow matching, toy dynamics, rollout, calibration."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from torch import nn

from latentsci.fields.networks.denoiser import LatentDenoiser, LatentDenoiserConfig
from latentsci.fields.networks.flow_matching import EulerSampler, HeunSampler, flow_matching_loss
from latentsci.fields.forecast.rollout import ensemble_stats, rollout, spread_skill
from latentsci.fields.networks.surrogate import LatentSurrogate, SurrogateConfig, build_surrogate

C, H, N = 2, 2, 8  # latent channels, history length, grid side


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def small_config(kind: str, n_params: int = 0, periodic: bool = True) -> SurrogateConfig:
    """A surrogate small enough to train in seconds on one CPU thread."""
    return SurrogateConfig(kind=kind, denoiser=LatentDenoiserConfig(
        latent_channels=C, history=H, n_params=n_params, width=32, blocks=2, periodic=periodic))


def randomise_modulation(net: LatentDenoiser, seed: int = 0) -> None:
    """Give the zero-initialised FiLM layers random weights, so tau and params matter."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for block in net.blocks:
            block.modulation.weight.copy_(0.3 * torch.randn(block.modulation.weight.shape,
                                                            generator=gen))


def test_denoiser_output_shape_and_param_check():
    net = LatentDenoiser(small_config("flow", n_params=3).denoiser)
    x, hist = torch.randn(5, C, N, N), torch.randn(5, H, C, N, N)
    out = net(x, torch.rand(5), hist, torch.randn(5, 3))
    assert out.shape == (5, C, N, N)
    with pytest.raises(ValueError, match=r"^params shaped \(5, 0\), expected \(5, 3\)$"):
        net(x, torch.rand(5), hist, None)
    with pytest.raises(ValueError, match=r"^params shaped \(5, 2\), expected \(5, 3\)$"):
        net(x, torch.rand(5), hist, torch.randn(5, 2))


def test_denoiser_commutes_with_periodic_shifts_only_when_periodic():
    torch.manual_seed(0)
    x, tau = torch.randn(3, C, N, N), torch.rand(3)
    hist, params = torch.randn(3, H, C, N, N), torch.randn(3, 2)
    for periodic in (True, False):
        net = LatentDenoiser(small_config("flow", n_params=2, periodic=periodic).denoiser)
        randomise_modulation(net)
        shifted = net(torch.roll(x, (2, 3), (-2, -1)), tau,
                      torch.roll(hist, (2, 3), (-2, -1)), params)
        expected = torch.roll(net(x, tau, hist, params), (2, 3), (-2, -1))
        assert torch.allclose(shifted, expected, atol=1e-5) == periodic


def test_denoiser_is_conditioned_on_tau_and_params():
    torch.manual_seed(0)
    net = LatentDenoiser(small_config("flow", n_params=2).denoiser)
    randomise_modulation(net)
    x, hist, params = torch.randn(2, C, N, N), torch.randn(2, H, C, N, N), torch.randn(2, 2)
    base = net(x, torch.full((2,), 0.3), hist, params)
    assert not torch.allclose(base, net(x, torch.full((2,), 0.7), hist, params))
    assert not torch.allclose(base, net(x, torch.full((2,), 0.3), hist, params + 1.0))


def test_config_rejects_unknown_keys():
    with pytest.raises(ValidationError) as info:
        LatentDenoiserConfig(latent_channels=4, depth=3)
    assert [(e["loc"], e["type"]) for e in info.value.errors()] == [(("depth",), "extra_forbidden")]
    with pytest.raises(ValidationError) as info:
        SurrogateConfig(kind="ddpm", denoiser=LatentDenoiserConfig(latent_channels=4))
    assert [(e["loc"], e["type"]) for e in info.value.errors()] == [(("kind",), "literal_error")]


def test_both_kinds_have_equal_parameter_counts():
    counts = [sum(p.numel() for p in build_surrogate(small_config(kind, 2)).parameters())
              for kind in ("flow", "deterministic")]
    assert counts[0] == counts[1] > 0


def test_fit_scale_known_values():
    surrogate = build_surrogate(small_config("deterministic", n_params=1))
    # channel 0 climbs by 2 per step (values 0, 2, 4); channel 1 alternates +1, -1 (0, 1, 0)
    seq = np.zeros((1, 3, C, N, N))
    seq[0, :, 0] = np.array([0.0, 2.0, 4.0])[:, None, None]
    seq[0, :, 1] = np.array([0.0, 1.0, 0.0])[:, None, None]
    surrogate.fit_scale(seq, params=np.array([[5.0]]))
    assert torch.allclose(surrogate.latent_mean, torch.tensor([2.0, 1 / 3]))
    assert torch.allclose(surrogate.latent_std, torch.tensor([math.sqrt(8 / 3), math.sqrt(2 / 9)]))
    assert torch.allclose(surrogate.delta_std, torch.tensor([2.0, 1.0]))
    assert surrogate.param_mean.item() == 5.0 and surrogate.param_std.item() == pytest.approx(1e-6)


class ZeroNet(nn.Module):
    """A network that always predicts zero, with just the config a surrogate reads."""

    def __init__(self):
        super().__init__()
        self.config = LatentDenoiserConfig(latent_channels=C, history=H)
        self.bias = nn.Parameter(torch.zeros(()))

    def forward(self, x_t, tau, history, params):
        return torch.zeros_like(x_t) + self.bias


def test_deterministic_loss_is_mse_of_scaled_increment():
    surrogate = LatentSurrogate(ZeroNet(), "deterministic")
    surrogate.delta_std.copy_(torch.tensor([2.0, 0.5]))
    hist, target = torch.randn(4, H, C, N, N), torch.randn(4, C, N, N)
    increment = (target - hist[:, -1]) / torch.tensor([2.0, 0.5]).view(C, 1, 1)
    assert torch.allclose(surrogate(hist, target), increment.pow(2).mean())
    assert torch.equal(surrogate.predict(hist), hist[:, -1])


def test_flow_matching_loss_vanishes_for_the_straight_line_oracle():
    # for a known x1 the path's velocity is (x1 - x_tau) / (1 - tau),
    # exact iff x_tau = (1 - tau) x0 + tau x1
    x1 = torch.randn(64, C, N, N)

    def oracle(x, tau, history, params):
        return (x1 - x) / (1.0 - tau).view(-1, 1, 1, 1)

    loss = flow_matching_loss(oracle, x1, torch.zeros(64, H, C, N, N), None,
                              generator=torch.Generator().manual_seed(0))
    assert loss.item() < 1e-6
    # a zero velocity leaves E (x1 - x0)^2 = E x1^2 + E x0^2 = 2 for independent standard normals;
    # over 64 x 2 x 8 x 8 = 8192 elements the sample mean's std is sqrt(8 / 8192) = 0.03 (1.5%)
    zero = flow_matching_loss(lambda x, *_: torch.zeros_like(x), x1,
                              torch.zeros(64, H, C, N, N), None,
                              generator=torch.Generator().manual_seed(1))
    assert zero.item() == pytest.approx(2.0, rel=0.1)


def test_samplers_integrate_known_fields():
    hist = torch.zeros(2, H, 1, 4, 4)
    start = torch.randn(2, 1, 4, 4, generator=torch.Generator().manual_seed(3))
    shifted = EulerSampler(steps=5).sample(lambda x, *_: torch.full_like(x, 0.5), hist, None,
                                           torch.Generator().manual_seed(3))
    assert torch.allclose(shifted, start + 0.5, atol=1e-6)
    # dx/dtau = x has x(1) = e x(0): Euler gives (1 + 1/n)^n, Heun is second order
    euler = EulerSampler(steps=8).sample(lambda x, *_: x, hist, None,
                                         torch.Generator().manual_seed(3))
    heun = HeunSampler(steps=8).sample(lambda x, *_: x, hist, None,
                                       torch.Generator().manual_seed(3))
    assert torch.allclose(euler, start * (1 + 1 / 8) ** 8, atol=1e-5)
    heun_error = (heun - start * math.e).abs().max()
    assert heun_error < 0.1 * (euler - start * math.e).abs().max()


def test_euler_sampler_is_reproducible_with_a_generator():
    net = LatentDenoiser(small_config("flow").denoiser)
    hist = torch.randn(3, H, C, N, N)
    draws = [EulerSampler(4).sample(net, hist, None, torch.Generator().manual_seed(seed))
             for seed in (7, 7, 8)]
    assert torch.equal(draws[0], draws[1])
    assert not torch.allclose(draws[0], draws[2])


def shift_decay_trajectories(batch: int, length: int) -> torch.Tensor:
    """Trajectories (batch, length, C, N, N) of z_{t+1} = 0.9 roll(z_t, 1, x), z_0 ~ N(0, I)."""
    z = [torch.randn(batch, C, N, N)]
    for _ in range(length - 1):
        z.append(0.9 * torch.roll(z[-1], 1, dims=-2))
    return torch.stack(z, dim=1)


def train(surrogate: LatentSurrogate, batches, steps: int, lr: float = 2e-3) -> None:
    """Adam on the surrogate's own forward loss, as the distributed trainer would call it."""
    optimizer = torch.optim.Adam(surrogate.parameters(), lr=lr)
    for _ in range(steps):
        history, target, params = batches()
        loss = surrogate(history, target, params)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def test_deterministic_surrogate_learns_a_linear_latent_dynamic():
    torch.manual_seed(0)
    surrogate = build_surrogate(small_config("deterministic"))
    surrogate.fit_scale(shift_decay_trajectories(64, H + 1))

    def batches():
        traj = shift_decay_trajectories(32, H + 1)
        return traj[:, :H], traj[:, H], None

    train(surrogate, batches, steps=250)
    traj = shift_decay_trajectories(64, H + 1)
    error = surrogate.predict(traj[:, :H]) - traj[:, H]
    # measured against the increment, the part a persistence forecast would miss entirely
    assert (error.norm() / (traj[:, H] - traj[:, H - 1]).norm()).item() < 0.1


NOISE_STD = torch.tensor([0.1, 0.4])  # per channel, multiplied by the parameter p


def noisy_walk(params: torch.Tensor, length: int) -> torch.Tensor:
    """Random walks (B, length, C, N, N): z_{t+1} = z_t + p NOISE_STD_c eps, z_0 ~ N(0, I)."""
    batch = params.shape[0]
    scale = (params.view(batch, 1, 1, 1, 1) * NOISE_STD.view(1, 1, C, 1, 1))
    steps = scale * torch.randn(batch, length - 1, C, N, N)
    start = torch.randn(batch, 1, C, N, N)
    return torch.cat([start, start + steps.cumsum(dim=1)], dim=1)


def test_flow_surrogate_ensemble_spread_matches_the_noise():
    torch.manual_seed(0)
    surrogate = build_surrogate(small_config("flow", n_params=1))
    fit_params = torch.rand(256, 1) + 0.5
    surrogate.fit_scale(noisy_walk(fit_params, H + 1), fit_params)

    def batches():
        params = torch.rand(32, 1) + 0.5
        traj = noisy_walk(params, H + 1)
        return traj[:, :H], traj[:, H], params

    train(surrogate, batches, steps=300)
    for p in (0.6, 1.4):  # the std must follow the parameter, not just the pooled scale
        params = torch.full((4, 1), p)
        history = noisy_walk(params, H)
        ensemble = rollout(surrogate, history, params, steps=1, members=16,
                           generator=torch.Generator().manual_seed(1))
        increments = (ensemble[:, :, 0] - history[:, None, -1]).transpose(0, 2).flatten(1)
        std, bias = increments.std(dim=1), increments.mean(dim=1)
        assert torch.allclose(std, p * NOISE_STD, rtol=0.3), (p, std)
        # no drift beyond a fraction of the fitted increment scale (sampling error is ~2% of it)
        assert torch.all(bias.abs() < 0.2 * surrogate.delta_std), (p, bias)


def test_rollout_shapes_members_and_autoregression():
    torch.manual_seed(0)
    history, params = torch.randn(2, H, C, N, N), torch.randn(2, 1)
    deterministic = build_surrogate(small_config("deterministic", n_params=1))
    randomise_modulation(deterministic.network)
    deterministic.train()
    out = rollout(deterministic, history, params, steps=3, members=4)
    assert out.shape == (2, 4, 3, C, N, N)
    assert torch.equal(out[:, 0], out[:, 3])
    assert deterministic.training  # the caller's mode comes back
    first = deterministic.predict(history, params)
    second = deterministic.predict(torch.stack([history[:, -1], first], dim=1), params)
    assert torch.allclose(out[:, 0, 0], first, atol=1e-6)
    assert torch.allclose(out[:, 0, 1], second, atol=1e-6)

    flow = build_surrogate(small_config("flow", n_params=1))
    ensemble = rollout(flow, history, params, steps=2, members=3,
                       generator=torch.Generator().manual_seed(0))
    assert ensemble.shape == (2, 3, 2, C, N, N)
    assert not torch.allclose(ensemble[:, 0], ensemble[:, 1])


def test_spread_skill_exact_small_case():
    # one case, two members at 1 and 3, truth 2: mean is exact, unbiased variance is 2
    ensemble = np.array([1.0, 3.0]).reshape(1, 2, 1, 1)
    truth = np.array([2.0]).reshape(1, 1, 1)
    mean, spread = ensemble_stats(ensemble)
    assert mean.item() == 2.0 and spread.item() == pytest.approx(math.sqrt(2))
    stats = spread_skill(ensemble, truth)
    assert stats["skill"][0] == 0.0 and stats["spread"][0] == pytest.approx(math.sqrt(2))
    with pytest.raises(ValueError, match=r"^ensemble spread needs at least two members$"):
        ensemble_stats(ensemble[:, :1])


def test_spread_skill_ratio_is_one_when_truth_is_another_member():
    rng = np.random.default_rng(0)
    lead_std = np.array([0.5, 1.0, 2.0])  # errors grow with lead time
    draws = rng.normal(size=(4000, 6, 3, 2)) * lead_std[None, None, :, None]
    ensemble, truth = draws[:, :5], draws[:, 5]
    stats = spread_skill(ensemble, truth)
    assert np.allclose(stats["spread"], lead_std, rtol=0.03)
    assert np.allclose(stats["skill"], lead_std * math.sqrt(6 / 5), rtol=0.03)
    assert np.allclose(stats["ratio"], 1.0, atol=0.04)
    # an over-confident ensemble (half the true spread) is flagged: spread^2 = sigma^2 / 4 and
    # skill^2 = E (xbar / 2 - truth)^2 = sigma^2 (1/4 * 1/5 + 1), so the ratio is
    # sqrt(6/5) * (1/2) / sqrt(1.05) = 0.535 at every lead
    squeezed = spread_skill(0.5 * ensemble, truth)
    assert np.allclose(squeezed["ratio"], math.sqrt(6 / 5) * 0.5 / math.sqrt(1.05), atol=0.04)
