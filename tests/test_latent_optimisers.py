"""The latent optimisers on a toy codec whose decodes are grid points of a 4-d latent and whose
objective peaks away from the data: Bayesian optimisation and gradient ascent must find far
better points than random draws within the same budget; their states round-trip through JSON;
the trust region, GP cap, caps and guards do what they say."""

import json

import numpy as np
import pytest

from latentsci.latent.codec import Encoded
from latentsci.latent.search.bayesian import BOConfig, gp_rows
from latentsci.latent.search.gradient import GradientConfig
from latentsci.latent.search.guards import chained
from latentsci.latent.search.latent_methods import latent_optimiser, latent_space, typed_config
from latentsci.latent.search.latent_space import LatentGaussian
from latentsci.latent.search.objective import OracleError
from latentsci.latent.search.trust_region import TrustRegion

PEAK = np.array([1.5, -1.0, 1.0, 1.5])  # where the toy objective peaks (latent units)


class GridCodec:
    """z rows decode to their rounding on a 0.25 grid, written as text; text encodes back."""

    kind, version, source, weights_sha256, latent_shape = "toy", "1", "toy", "", (4,)

    def decode(self, z):
        return [",".join(str(int(v)) for v in np.round(np.asarray(row) * 4)) for row in z]

    def encode(self, items):
        z = np.array([[float(v) / 4 for v in item.split(",")] for item in items], np.float32)
        return Encoded(z, [None] * len(items))

    def reconstruction_error(self, items):
        return np.zeros(len(items))


def toy_score(items):
    """Higher nearer PEAK (a smooth bump, 0 far away)."""
    z = GridCodec().encode(items).z
    return np.exp(-0.5 * ((z - PEAK) ** 2).sum(axis=1))


def library(n=400, seed=0):
    z = np.random.default_rng(seed).normal(size=(n, 4)) * 0.5
    return GridCodec().decode(z)


def run(method, budget=120, options=None, seed=0, guard=None):
    """Ask and tell to the budget; the best score found and the optimiser."""
    space = latent_space(GridCodec(), library(), lambda s: s, guard)
    optimiser = latent_optimiser(method, space, seed, options=options)
    best, calls = 0.0, 0
    while calls < budget:
        items = optimiser.ask(min(20, budget - calls))
        if not items:
            break
        scores = toy_score(items)
        optimiser.tell(items, scores)
        calls += len(items)
        best = max(best, float(scores.max()))
    return best, optimiser


def test_bo_and_gradient_find_the_peak_random_draws_miss():
    random_best, _ = run("latent_random")
    bo_best, bo = run("bo", budget=80, options={"initial": 20, "batch": 10, "raw_samples": 64,
                                                "mc_samples": 64, "fit_iterations": 50})
    gradient_best, _ = run("gradient", budget=80,
                           options={"initial": 20, "starts": 4, "steps": 10, "epochs": 40})
    assert random_best < 0.5  # the peak sits where draws from the data's Gaussian rarely go
    # BO's path depends on BLAS threads (0.75 with one torch thread, 0.83 with two): the bar
    # is well above what random draws reach, not an exact value
    assert bo_best > max(0.65, random_best + 0.3) and gradient_best > max(0.65, random_best + 0.3)
    assert bo.timings["gp_fit"] > 0 and bo.region.best == pytest.approx(bo_best)


@pytest.mark.parametrize("method", ["latent_random", "gradient", "bo"])
def test_state_round_trips_through_json_and_nothing_is_proposed_twice(method):
    options = {"initial": 20, "batch": 5, "raw_samples": 32, "mc_samples": 32,
               "fit_iterations": 20} if method == "bo" else (
        {"initial": 20} if method == "gradient" else {})
    _, optimiser = run(method, budget=30, options=options)
    state = json.loads(json.dumps(optimiser.state()))
    space = latent_space(GridCodec(), library(), lambda s: s)
    again = latent_optimiser(method, space, 0, options=options)
    again.restore(state)
    assert json.loads(json.dumps(again.state())) == state  # nothing lost on the way
    assert again.space.known == optimiser.space.known
    proposed = again.ask(10)
    assert proposed and not set(proposed) & set(optimiser.space.known)


def test_the_guard_rejects_before_scoring_and_counts_reasons():
    def no_negative_first(items):
        return [("first coordinate negative" if int(s.split(",")[0]) < 0 else None)
                for s in items]

    _, optimiser = run("latent_random", budget=60, guard=no_negative_first)
    assert all(int(s.split(",")[0]) >= 0 for s in optimiser.space.known)
    assert optimiser.space.rejected["first coordinate negative"] > 0


def test_chained_guards_give_the_first_reason():
    first = lambda items: ["a" if i == "x" else None for i in items]  # noqa: E731
    second = lambda items: ["b" for _ in items]  # noqa: E731
    assert chained(first, second)(["x", "y"]) == ["a", "b"]
    assert chained(None, None) is None


def test_gaussian_whitens_colours_and_bounds():
    z = np.random.default_rng(1).normal(size=(500, 3)) @ np.diag([1.0, 2.0, 0.5]) + 3.0
    gaussian = LatentGaussian.shrunk(z, quantile=0.9)
    u = gaussian.whiten(z)
    np.testing.assert_allclose(gaussian.colour(u), z, atol=1e-4)
    assert np.mean(np.linalg.norm(u, axis=1) <= gaussian.radius) == pytest.approx(0.9, abs=0.01)
    far = gaussian.bound(np.full((1, 3), 100.0))
    assert np.linalg.norm(far) == pytest.approx(gaussian.radius)


def test_trust_region_grows_shrinks_and_restarts():
    region = TrustRegion(dim=8, batch=4, success_tolerance=2)
    region.update(np.array([1.0]))
    region.update(np.array([2.0]))
    assert region.length == pytest.approx(1.6)  # two successes: doubled (capped at 1.6)
    for _ in range(region.failure_tolerance):
        region.update(np.array([0.0]))
    assert region.length == pytest.approx(0.8)
    region.length = region.length_min
    for _ in range(region.failure_tolerance):
        region.update(np.array([0.0]))
    assert region.length == pytest.approx(0.8) and region.restarts == 1
    assert region.best == -np.inf and region.failures == 0  # a restart forgets the old best
    lower, upper = region.box(np.full(8, 0.5), np.ones(8))
    np.testing.assert_allclose(upper - lower, 0.8)


def test_gp_keeps_the_best_and_the_most_recent():
    y = np.arange(10, dtype=float)[::-1]  # best first
    kept = gp_rows(y, best=2, most=5)
    assert list(kept) == [0, 1, 7, 8, 9]
    assert list(gp_rows(y, 2, 20)) == list(range(10))


def test_bo_fits_hyperparameters_on_a_subset_and_conditions_on_every_point():
    from latentsci.latent.search.bayesian import conditioned_gp, fit_gp, hyperparameters

    rng = np.random.default_rng(0)
    x = rng.random((60, 4))
    y = np.exp(-4 * ((x - 0.7) ** 2).sum(axis=1)) + 0.01 * rng.normal(size=60)
    config = BOConfig(fit_points=30, fit_iterations=30)
    sub = gp_rows(y, 10, config.fit_points)
    fitted = hyperparameters(fit_gp(x[sub], y[sub], config, None))
    gp = conditioned_gp(x, y, config, fitted)
    assert gp.train_inputs[0].shape == (60, 4)  # every point in the posterior ...
    for key, value in hyperparameters(gp).items():  # ... under the subset's hyperparameters
        assert np.allclose(value.numpy(), fitted[key].numpy()), key
    # the posterior mean follows all 60 points: closer to them than one on the 30 alone
    import torch

    with torch.no_grad():
        full = gp.posterior(torch.tensor(x)).mean.numpy().ravel()
    assert np.sqrt(np.mean((full - y) ** 2)) < 0.05
    # inside a search: hyperparameters from 30 of up to 80 points still find the peak
    best, _ = run("bo", budget=80, options={"initial": 20, "batch": 10, "raw_samples": 64,
                                            "mc_samples": 64, "fit_points": 30})
    assert best > 0.65


class CoarseCodec(GridCodec):
    """Decodes to a unit grid: a small trust region soon decodes only to items already seen."""

    def decode(self, z):
        return [",".join(str(int(v)) for v in np.round(np.asarray(row))) for row in z]

    def encode(self, items):
        z = np.array([[float(v) for v in item.split(",")] for item in items], np.float32)
        return Encoded(z, [None] * len(items))


def test_bo_spends_its_whole_budget_when_its_region_decodes_only_repeats():
    space = latent_space(CoarseCodec(), library(), lambda s: s)
    optimiser = latent_optimiser("bo", space, 0, options={
        "initial": 10, "batch": 10, "raw_samples": 32, "mc_samples": 32, "fit_iterations": 20})
    calls = 0
    while calls < 120:
        items = optimiser.ask(min(10, 120 - calls))
        assert items, f"BO gave up after {calls} of 120 calls"
        peak_at_ones = [-sum(abs(float(v) - 1) for v in item.split(",")) for item in items]
        optimiser.tell(items, np.array(peak_at_ones))
        calls += len(items)
    assert calls == 120 and optimiser.region.restarts >= 1


def test_unknown_options_and_methods_are_one_line():
    with pytest.raises(OracleError, match="unknown option 'stepz'"):
        typed_config(GradientConfig, {"stepz": 3}, "gradient")
    with pytest.raises(OracleError, match="bo.batch: expected int, got 'ten'"):
        typed_config(BOConfig, {"batch": "ten"}, "bo")
    with pytest.raises(OracleError, match="gradient.draws: unknown option 'x'"):
        typed_config(GradientConfig, {"draws": {"x": 1}}, "gradient")
    space = latent_space(GridCodec(), library(), lambda s: s)
    with pytest.raises(OracleError, match="unknown latent method 'vae_bo'"):
        latent_optimiser("vae_bo", space, 0)
