"""Interpolation paths: exact ends, the geometry each method promises, chains, bad input."""

import numpy as np
import pytest

from latentsci.latent.interpolate import chain, interpolate, norm_report, positions


def _ends(seed=0, n=5, d=16, scale=(1.0, 1.0)):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)) * scale[0], rng.standard_normal((n, d)) * scale[1]


@pytest.mark.parametrize("method", ["lerp", "slerp", "norm"])
def test_paths_start_and_end_exactly_at_the_ends(method):
    z0, z1 = _ends()
    paths = interpolate(z0, z1, 7, method)
    assert paths.shape == (5, 7, 16) and paths.dtype == np.float32
    assert np.allclose(paths[:, 0], z0, atol=1e-6) and np.allclose(paths[:, -1], z1, atol=1e-6)


def test_lerp_is_a_straight_line_with_even_steps():
    z0, z1 = _ends()
    steps = np.diff(interpolate(z0, z1, 5, "lerp"), axis=1)
    assert np.allclose(steps, steps[:, :1], atol=1e-5)


def test_slerp_keeps_the_norm_of_ends_on_one_shell():
    z0, z1 = _ends(d=64)
    radius = np.sqrt(64)
    z0 = z0 / np.linalg.norm(z0, axis=1, keepdims=True) * radius
    z1 = z1 / np.linalg.norm(z1, axis=1, keepdims=True) * radius
    norms = np.linalg.norm(interpolate(z0, z1, 9, "slerp"), axis=2)
    assert np.allclose(norms, radius, rtol=1e-5)
    # lerp cuts through the ball: its midpoint is shorter
    assert (np.linalg.norm(interpolate(z0, z1, 9, "lerp")[:, 4], axis=1) < radius - 0.5).all()


def test_norm_aware_interpolates_radius_linearly_between_different_norms():
    z0, z1 = _ends(scale=(0.5, 3.0))
    paths = interpolate(z0, z1, 6, "norm")
    r0, r1 = np.linalg.norm(z0, axis=1), np.linalg.norm(z1, axis=1)
    t = positions(6)
    expected = r0[:, None] * (1 - t) + r1[:, None] * t
    assert np.allclose(np.linalg.norm(paths, axis=2), expected, rtol=1e-5)


def test_parallel_and_antipodal_ends_do_not_divide_by_zero():
    z0 = np.ones((2, 4))
    z1 = np.stack([2 * np.ones(4), -np.ones(4)])  # parallel, antipodal
    for method in ("slerp", "norm"):
        assert np.isfinite(interpolate(z0, z1, 5, method)).all()


def test_a_chain_visits_every_anchor_once_in_order():
    anchors = np.eye(4)[:3] * 2.0
    path = chain(anchors, 5, "slerp")
    assert path.shape == (9, 4)
    assert np.allclose(path[[0, 4, 8]], anchors, atol=1e-6)


def test_bad_input_is_one_clear_error():
    z0, z1 = _ends()
    with pytest.raises(ValueError, match="unknown interpolation method 'cubic'"):
        interpolate(z0, z1, 5, "cubic")
    with pytest.raises(ValueError, match="at least 2 steps"):
        interpolate(z0, z1, 1)
    with pytest.raises(ValueError, match="two \\(n, d\\) arrays of one shape"):
        interpolate(z0, z1[:, :3], 5)
    with pytest.raises(ValueError, match="at least 2 anchors"):
        chain(z0[:1], 5)


def test_norm_report_names_the_prior_radius():
    report = norm_report(np.random.default_rng(0).standard_normal((2000, 64)))
    assert report["prior_radius"] == 8.0 and abs(report["norm_mean"] - 8.0) < 0.2
