"""The fields domain's latent summary the OOD detectors compare: unchanged by a circular shift of
the latent grid, Parseval's energy split into wavenumber shells, NaN rows kept NaN."""

from types import SimpleNamespace

import numpy as np

from latentsci.fields.domain import POWER_FLOOR, SUMMARY_QUANTILES, latent_grid_summary

CODEC = SimpleNamespace(latent_shape=(2, 8, 8))  # only its latent shape is read


def _grids(n: int = 5, seed: int = 0) -> np.ndarray:
    """Random latent grids (n, 2, 8, 8)."""
    return np.random.default_rng(seed).normal(size=(n, *CODEC.latent_shape)).astype(np.float32)


def test_a_circular_shift_of_the_grid_leaves_the_summary_unchanged():
    grids = _grids()
    moved = np.roll(grids, shift=(3, -2), axis=(2, 3))
    a = latent_grid_summary(CODEC, grids.reshape(5, -1))
    b = latent_grid_summary(CODEC, moved.reshape(5, -1))
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    other = latent_grid_summary(CODEC, _grids(seed=1).reshape(5, -1))
    assert not np.allclose(a, other, atol=1e-2)  # it does tell different grids apart


def test_the_shells_hold_the_grids_energy_less_its_mean():
    grids = _grids(3).astype(np.float64)
    summary = latent_grid_summary(CODEC, grids.reshape(3, -1)).reshape(3, 2, -1)
    shells = np.exp(summary[..., : -len(SUMMARY_QUANTILES)].astype(np.float64)) - POWER_FLOOR
    assert summary.shape[-1] - len(SUMMARY_QUANTILES) == 6  # |k| rounds to 1..6 on 8 x 8
    energy = (grids ** 2).sum(axis=(2, 3)) - 64 * grids.mean(axis=(2, 3)) ** 2
    np.testing.assert_allclose(shells.sum(-1), energy, rtol=1e-4)
    np.testing.assert_allclose(summary[..., -3], np.median(grids.reshape(3, 2, -1), -1),
                               rtol=1e-5, atol=1e-6)


def test_a_nan_row_stays_nan_and_flat_latents_are_not():
    rows = _grids(3).reshape(3, -1)
    rows[1, 4] = np.nan
    rows[2] = 0.5  # a flat latent: zero power, floored
    summary = latent_grid_summary(CODEC, rows)
    assert np.isnan(summary[1]).any() and np.isfinite(summary[[0, 2]]).all()


def test_latents_that_are_not_grids_pass_through():
    flat = SimpleNamespace(latent_shape=(16,))
    rows = np.arange(32, dtype=np.float32).reshape(2, 16)
    np.testing.assert_array_equal(latent_grid_summary(flat, rows), rows)
