"""PDE generators against known answers, and their Ray fan-out into a Zarr field store."""

import math

import numpy as np
import pytest
import torch

from latentsci.fields.solvers.gray_scott import PRESETS, GrayScottConfig, simulate_gray_scott
from latentsci.fields.solvers.navier_stokes import (
    NavierStokesConfig,
    gaussian_random_field,
    simulate_navier_stokes,
    solve_vorticity,
)
from latentsci.fields.solvers.spectral import grid


def test_taylor_green_vortex_decays_exactly():
    # sin(2 pi x) sin(2 pi y) is steady for the Euler part (u . grad w = 0) and decays as
    # exp(-8 pi^2 nu t); Crank-Nicolson is second order, so the error is tiny at small dt.
    x, y = grid(32)
    w0 = (torch.sin(2 * math.pi * x) * torch.sin(2 * math.pi * y)).expand(2, 32, 32)
    nu = torch.tensor([1e-2, 1e-3], dtype=torch.float64)
    w = solve_vorticity(w0.clone(), None, nu, dt=1e-3, t_final=1.0, frames=4)
    for i in range(2):
        for frame, t in enumerate([0.25, 0.5, 0.75, 1.0]):
            exact = w0[i] * math.exp(-8 * math.pi ** 2 * float(nu[i]) * t)
            assert torch.allclose(w[i, frame], exact, atol=1e-7)


def test_unforced_turbulence_loses_enstrophy_and_keeps_zero_mean():
    w0 = gaussian_random_field(2, 32, alpha=2.5, tau=7.0, generator=torch.Generator().manual_seed(0),
                               dtype=torch.float64)
    w = solve_vorticity(w0, None, torch.tensor([1e-3, 1e-3]), dt=1e-3, t_final=2.0, frames=8)
    enstrophy = (w ** 2).mean(dim=(-1, -2))
    assert (enstrophy.diff(dim=1) < 0).all()  # viscosity only removes enstrophy in 2D
    assert w.mean(dim=(-1, -2)).abs().max() < 1e-10


def test_random_field_is_seeded_and_zero_mean():
    a = gaussian_random_field(1, 32, 2.5, 7.0, torch.Generator().manual_seed(3))
    b = gaussian_random_field(1, 32, 2.5, 7.0, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and abs(float(a.mean())) < 1e-5 and float(a.std()) > 0.1


def test_random_field_has_the_covariance_it_is_meant_to_have():
    # C = sigma^2 (-lap + tau^2)^(-alpha), sigma^2 = tau^(2 alpha - 2): in Fourier space each
    # mode k != 0 of an n x n field has mean power E|fft2(w)_k|^2 / n^4 = sigma^2 (4 pi^2 |k|^2 +
    # tau^2)^(-alpha). The mean of M samples of an exponential (chi-square, 1 dof at the modes
    # that are their own conjugate) power has relative standard error 1/sqrt(M) (sqrt(2/M)).
    n, samples, alpha, tau = 32, 2000, 2.5, 7.0
    w = gaussian_random_field(samples, n, alpha, tau, torch.Generator().manual_seed(0),
                              dtype=torch.float64)
    power = (torch.fft.fft2(w).abs() ** 2).mean(dim=0) / n ** 4
    k = torch.fft.fftfreq(n, d=1.0 / n, dtype=torch.float64)
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    expected = tau ** (2 * alpha - 2) * (4 * math.pi ** 2 * k2 + tau ** 2) ** (-alpha)
    own_conjugate = ((2 * k[:, None]) % n == 0) & ((2 * k[None, :]) % n == 0)
    stderr = torch.where(own_conjugate, math.sqrt(2 / samples), 1 / math.sqrt(samples))
    ratio = power / expected
    assert float(power[0, 0]) < 1e-20  # zero mean, exactly
    ratio, stderr = ratio[k2 > 0], stderr[k2 > 0]
    assert ((ratio - 1).abs() < 5 * stderr).all(), float((ratio - 1).abs().max())
    # and over all modes at once (each mode counted once with its conjugate twin): 3 std errors
    assert abs(float(ratio.mean()) - 1) < 3 / math.sqrt(samples * len(ratio) / 2)
    # the pointwise variance is the covariance summed over modes (its std error here ~1%)
    assert float(w.var()) == pytest.approx(float(expected[k2 > 0].sum()), rel=0.05)


def test_gray_scott_spots_form_but_the_uniform_regime_stays_uniform():
    config = GrayScottConfig(resolution=48, t_final=3000, frames=3)
    fields = simulate_gray_scott(config, [0, 1], ["spots", "0.09,0.07"])
    v = fields[:, :, 1]
    covered = (v > 0.1).float().mean(dim=(-1, -2))
    assert covered[0, -1] > 0.2 and float(v[0, -1].std()) > 0.05  # a spot pattern filled in
    assert float(v[1, -1].abs().max()) < 1e-3  # F, k outside the pattern region: v dies out
    assert torch.isfinite(fields).all() and (fields[:, :, 0] <= 1.05).all()


def test_every_preset_keeps_a_pattern_from_the_default_initial_state():
    # gliders used to die to the uniform state in about half the seeds (bigger, more blobs)
    names = list(PRESETS) * 2
    config = GrayScottConfig(resolution=64, t_final=1500.0, frames=1)
    fields = simulate_gray_scott(config, list(range(len(names))), names)
    alive = fields[:, -1, 1].flatten(1).std(1) > 1e-3
    assert alive.all(), [n for n, a in zip(names, alive) if not a]


def test_bigger_domains_are_seeded_as_densely_so_gliders_survive():
    assert GrayScottConfig().blobs() == 4 and GrayScottConfig(resolution=128).blobs() == 16
    assert GrayScottConfig(resolution=128, seeds_per_field=4).blobs() == 4  # explicit count
    # gliders seeds 6, 8, 9 and 11 died by t = 2000 on 128 x 128 from 4 blobs
    config = GrayScottConfig(resolution=128, t_final=2000.0, frames=1)
    v = simulate_gray_scott(config, [6, 8, 9, 11], ["gliders"] * 4)[:, -1, 1]
    assert (v.flatten(1).std(1) > 1e-3).all()


def test_unknown_preset_is_one_clear_error():
    with pytest.raises(ValueError, match="unknown Gray-Scott preset 'stripes'"):
        GrayScottConfig(presets=["stripes"])


def test_simulate_to_zarr_stores_sound_trajectories_and_reports_blowups(ray_cluster, tmp_path):
    from latentsci.fields.solvers.simulate import simulate_to_zarr
    from latentsci.fields.data.sources import open_fields

    # Large forcing and time step: the nearly inviscid trajectories blow up, the viscous survive.
    config = NavierStokesConfig(resolution=16, t_final=5.0, frames=4, dt=0.05,
                                viscosity=[1e-1, 1e-5], forcing_amplitude=1.0)
    rejects = simulate_to_zarr(tmp_path / "ns.zarr", "navier_stokes", config, trajectories=6,
                               per_task=2, seed=7, attrs={"note": "test"})
    assert [r["trajectory"] for r in rejects] == [1, 3, 5]
    assert all(r["viscosity"] == 1e-5 and "blew up" in r["reason"] for r in rejects)
    source = open_fields(tmp_path / "ns.zarr")
    assert source.shape == (6, 5, 1, 16, 16) and source.channels == ["vorticity"]
    assert source.valid.tolist() == [True, False] * 3
    np.testing.assert_allclose(source.times, [0, 1.25, 2.5, 3.75, 5.0])
    np.testing.assert_allclose(source.parameters["viscosity"], [1e-1, 1e-5] * 3)
    stored = source.read(np.array([0, 2, 4]))
    again = simulate_navier_stokes(config, [7, 9, 11], [1e-1] * 3).numpy()
    # The promise: a trajectory depends only on its seed and parameters, not on its block. Not
    # to the bit: float32 FFTs and vectorised loops round differently for another batch size or
    # thread count (seen: 3e-8). Each of the 100 steps adds a few float32 epsilons (1.2e-7) of
    # the field's size and viscosity 0.1 damps rather than amplifies them, so 1e-5 of the largest
    # value bounds round-off; a wrong seed, offset or viscosity differs by O(1).
    np.testing.assert_allclose(stored, again, rtol=0, atol=1e-5 * np.abs(again).max())
    assert np.abs(stored[0] - stored[1]).max() > 0.1 * np.abs(again).max()  # seeds differ
    assert np.isnan(source.read(np.array([1]))).all()  # a blown-up run is not stored as data


def test_simulate_to_zarr_rejects_a_pattern_that_died_out(ray_cluster, tmp_path):
    from latentsci.fields.solvers.simulate import simulate_to_zarr
    from latentsci.fields.data.sources import open_fields

    config = GrayScottConfig(resolution=48, t_final=3000, frames=3, presets=["spots", "0.09,0.07"])
    rejects = simulate_to_zarr(tmp_path / "gs.zarr", "gray_scott", config, trajectories=2,
                               per_task=2, seed=0, attrs={})
    assert [(r["trajectory"], r["F"], r["k"]) for r in rejects] == [(1, 0.09, 0.07)]
    assert rejects[0]["reason"].startswith("pattern died out (last frame uniform")
    assert open_fields(tmp_path / "gs.zarr").valid.tolist() == [True, False]


def test_gpu_requests_on_a_cluster_without_gpus_are_one_line_errors(ray_cluster, tmp_path):
    import ray

    from latentsci.errors import ClusterError
    from latentsci.fields.solvers.simulate import simulate_to_zarr
    from latentsci.fields.training import FieldTrainConfig, train_field_model

    if ray.cluster_resources().get("GPU", 0) > 0:
        pytest.skip("the test cluster has a GPU: these requests would be met")
    config = NavierStokesConfig(resolution=16, t_final=1.0, frames=1, dt=0.05)
    with pytest.raises(ClusterError, match=r"^simulate navier_stokes \(gpus_per_task = 0.25\) "
                       r"asks for 0.25 GPUs, but the Ray cluster has 0: turn it off"):
        simulate_to_zarr(tmp_path / "ns.zarr", "navier_stokes", config, trajectories=2,
                         per_task=1, seed=0, attrs={}, gpus_per_task=0.25)
    assert not (tmp_path / "ns.zarr").exists()  # refused before any work
    with pytest.raises(ClusterError, match=r"training 'ae' \(use_gpu = true, 2 workers\) asks "
                       r"for 2 GPUs"):
        train_field_model(tmp_path / "none", {}, FieldTrainConfig(use_gpu=True, num_workers=2),
                          "ae", tmp_path / "state", tmp_path / "model")


def test_a_subsampled_solve_stores_the_fine_solve_on_the_coarse_grid():
    # The FNO protocol: solve at 256 x 256, store 64 x 64; here 32 -> 16, the same process and
    # batch on both sides, so the kept points are the same numbers.
    fine = NavierStokesConfig(resolution=32, dt=0.01, t_final=0.5, frames=5, double=True)
    coarse = fine.model_copy(update={"subsample": 2})
    kept = simulate_navier_stokes(coarse, [0, 1], [1e-3, 1e-3])
    full = simulate_navier_stokes(fine, [0, 1], [1e-3, 1e-3])
    assert kept.shape == (2, 6, 1, 16, 16)
    assert torch.equal(kept, full[..., ::2, ::2]) and kept[:, -1].std() > 0.1


def test_solver_configs_refuse_frames_between_steps_and_uneven_subsampling():
    with pytest.raises(ValueError, match="t_final / dt = 3.33333 steps must be a whole multiple"):
        NavierStokesConfig(t_final=1.0, dt=0.3, frames=2)
    with pytest.raises(ValueError, match="subsample 3 does not divide resolution 64"):
        NavierStokesConfig(resolution=64, subsample=3)
    with pytest.raises(ValueError, match="warmup / dt = 0.5 steps"):
        GrayScottConfig(warmup=0.5)
    with pytest.raises(ValueError, match="unknown Gray-Scott preset 'a,b'"):
        GrayScottConfig(presets=["a,b"])


def test_forcing_amplitudes_cycle_per_trajectory_and_are_recorded(ray_cluster, tmp_path):
    from latentsci.fields.data.sources import open_fields
    from latentsci.fields.solvers.simulate import simulate_to_zarr

    config = NavierStokesConfig(resolution=16, t_final=1.0, frames=2, dt=0.05,
                                viscosity=[1e-2, 1e-3], forcing_amplitude=[0.05, 0.1, 0.2])
    assert simulate_to_zarr(tmp_path / "ns.zarr", "navier_stokes", config, trajectories=6,
                            per_task=3, seed=1, attrs={}) == []
    source = open_fields(tmp_path / "ns.zarr")
    # cycled like viscosity: (2 x 3) coprime lengths give every pair over 6 trajectories
    np.testing.assert_allclose(source.parameters["forcing_amplitude"], [0.05, 0.1, 0.2] * 2)
    pairs = set(zip(source.parameters["viscosity"], source.parameters["forcing_amplitude"]))
    assert len(pairs) == 6
    # each trajectory is the solve with its own amplitude alone
    one = NavierStokesConfig(resolution=16, t_final=1.0, frames=2, dt=0.05, viscosity=[1e-3],
                             forcing_amplitude=0.2)
    alone = simulate_navier_stokes(one, [1 + 5], [1e-3]).numpy()
    np.testing.assert_allclose(source.read(np.array([5])), alone, rtol=0,
                               atol=1e-5 * np.abs(alone).max())
