"""Field metrics and plots on small hand-checked cases."""

import math

import numpy as np
import pytest

from latentsci.fields.metrics import (
    band_shells,
    error_by_lead_time,
    isotropic_spectrum,
    relative_l2,
    spectrum_band_errors,
    vrmse,
)
from latentsci.fields.plots import error_vs_lead, rollout_frames, spectra


def wave(n: int, kx: int, ky: int = 0, phase: float = 0.0) -> np.ndarray:
    """sin(2 pi (kx x + ky y) + phase) on the n x n unit-periodic grid, x along axis 0."""
    x = np.arange(n) / n
    return np.sin(2 * np.pi * (kx * x[:, None] + ky * x[None, :]) + phase)


def test_vrmse_is_zero_for_a_perfect_prediction():
    true = np.random.default_rng(0).normal(size=(2, 3, 8, 8))
    assert np.array_equal(vrmse(true, true), np.zeros((2, 3)))


def test_vrmse_of_the_spatial_mean_uses_the_unbiased_variance_as_the_well():
    true = np.random.default_rng(1).normal(size=(1, 16, 16))
    pred = np.full_like(true, true.mean())
    n = 16 * 16
    assert vrmse(pred, true, eps=0.0)[0] == pytest.approx(math.sqrt((n - 1) / n), rel=1e-12)


def test_vrmse_of_a_constant_offset_is_per_channel():
    n = 8
    base = wave(n, 1)  # variance exactly 1/2 (population), so n^2/(n^2-1)/2 unbiased
    true = np.stack([base, 3 * base])[None]  # (batch 1, channel 2, x, y)
    pred = true + np.array([0.2, 0.6])[None, :, None, None]
    unbiased = 0.5 * n * n / (n * n - 1)
    expected = [0.2 / math.sqrt(unbiased), 0.6 / math.sqrt(9 * unbiased)]
    assert vrmse(pred, true, eps=0.0)[0] == pytest.approx(expected, rel=1e-12)
    # the default eps = 1e-7 sits inside the square root, added to each channel's variance
    with_eps = [0.2 / math.sqrt(unbiased + 1e-7), 0.6 / math.sqrt(9 * unbiased + 1e-7)]
    got = vrmse(pred, true)
    assert got.shape == (1, 2) and got[0] == pytest.approx(with_eps, rel=1e-12)


def test_relative_l2_of_a_ten_percent_scale_error():
    true = np.random.default_rng(2).normal(size=(4, 2, 2, 8, 8))
    assert relative_l2(1.1 * true, true) == pytest.approx(np.full((4, 2), 0.1), rel=1e-12)


def test_relative_l2_pools_channels_in_one_norm():
    true = np.stack([np.ones((4, 4)), 2 * np.ones((4, 4))])[None]
    pred = true + np.stack([np.ones((4, 4)), np.zeros((4, 4))])[None]
    assert relative_l2(pred, true) == pytest.approx([1 / math.sqrt(5)], rel=1e-12)


def test_single_mode_lands_in_its_shell_with_all_its_power():
    k, power = isotropic_spectrum(wave(32, 3))
    assert np.array_equal(k, np.arange(17))
    assert power[3] == pytest.approx(0.5, rel=1e-12)  # mean of sin^2
    assert np.delete(power, 3) == pytest.approx(np.zeros(16), abs=1e-20)
    # a diagonal wave |k| = sqrt(8) = 2.83 rounds into shell 3 as well
    assert isotropic_spectrum(wave(32, 2, 2))[1][3] == pytest.approx(0.5, rel=1e-12)


def test_spectrum_keeps_leading_axes_and_the_mean_in_shell_zero():
    field = np.stack([wave(16, 1) + 2.0, 3 * wave(16, 5)])[None]  # (1, 2, 16, 16)
    _, power = isotropic_spectrum(field)
    assert power.shape == (1, 2, 9)
    assert power[0, 0, [0, 1]] == pytest.approx([4.0, 0.5], rel=1e-12)
    assert power[0, 1, 5] == pytest.approx(4.5, rel=1e-12)


def test_spectrum_sums_to_the_mean_square_when_corners_are_empty():
    n = 32
    coefficients = np.fft.fft2(np.random.default_rng(3).normal(size=(n, n)))
    kx = np.fft.fftfreq(n, d=1 / n)
    corners = np.rint(np.hypot(kx[:, None], kx[None, :])) > n // 2
    coefficients[corners] = 0
    field = np.fft.ifft2(coefficients).real
    assert isotropic_spectrum(field)[1].sum() == pytest.approx(np.mean(field ** 2), rel=1e-12)


def test_bands_are_log_thirds_of_the_nonzero_shells():
    low, mid, high = band_shells(33)  # 64 x 64: edges 1, 2^(5/3) = 3.17, 2^(10/3) = 10.08, 32
    assert low.tolist() == [1, 2, 3]
    assert mid.tolist() == list(range(4, 11))
    assert high.tolist() == list(range(11, 33))
    low, mid, high = band_shells(9)  # 16 x 16: edges 1, 2, 4, 8 fall on shells, counted twice
    assert (low.tolist(), mid.tolist(), high.tolist()) == ([1, 2], [2, 3, 4], [4, 5, 6, 7, 8])


def test_band_errors_vanish_for_identical_fields_even_with_empty_shells():
    true = wave(16, 3)[None, None]  # every shell but 3 is empty in both fields
    errors = spectrum_band_errors(true, true)
    assert set(errors) == {"low", "mid", "high"}
    for value in errors.values():
        assert value.shape == (1, 1)
        assert value == pytest.approx(np.zeros((1, 1)), abs=1e-12)


def test_band_errors_of_a_doubled_field_are_three_everywhere():
    true = np.random.default_rng(4).normal(size=(2, 32, 32))
    for value in spectrum_band_errors(2 * true, true).values():  # (1 - 4)^2 = 9 in every shell
        assert value == pytest.approx(np.full(2, 3.0), rel=1e-5)


def test_high_frequency_perturbation_shows_only_in_the_high_band():
    n = 32
    true = np.random.default_rng(5).normal(size=(n, n))  # 32 x 32: high band is shells 7..16
    perturbation = 0.5 * wave(n, 12)
    errors = spectrum_band_errors(true + perturbation, true)
    assert errors["low"] == pytest.approx(0.0, abs=1e-10)
    assert errors["mid"] == pytest.approx(0.0, abs=1e-10)
    # by hand: the wave lives in shell 12 only, so only E(12) changes, by the cross term plus the
    # wave's own power, mean((t + p)^2 - t^2) = 2 mean(t p) + mean(p^2) = 2 mean(t p) + 1/8.
    # The other 9 high shells add zero, so err_high = |dE / (E_true(12) + floor)| / sqrt(10).
    delta = 2 * np.mean(true * perturbation) + 0.5 ** 2 / 2
    k = np.fft.fftfreq(n, d=1.0 / n)
    shell_12 = np.rint(np.hypot(k[:, None], k[None, :])) == 12
    e_true = np.sum(np.abs(np.fft.fft2(true)[shell_12]) ** 2) / n ** 4
    floor = 1e-6 * shell_12.sum() / n ** 2  # eps per mode, summed over the shell's modes
    expected = abs(delta) / (e_true + floor) / math.sqrt(10)
    assert errors["high"] == pytest.approx(expected, rel=1e-9)


def test_ensemble_spectra_are_averaged_before_comparing():
    true = np.random.default_rng(6).normal(size=(32, 32))
    members = np.stack([true, math.sqrt(3) * true])  # mean power 2 P: error |1 - 2| = 1
    errors = spectrum_band_errors(members, true, pred_is_ensemble=True)
    assert [float(v) for v in errors.values()] == pytest.approx([1.0, 1.0, 1.0], rel=1e-5)


def test_error_by_lead_time_averages_over_batch():
    true = np.random.default_rng(7).normal(size=(2, 3, 1, 4, 4))
    scale = np.array([[0.1, 0.2, 0.3], [0.3, 0.4, 0.5]])
    pred = true * (1 + scale[:, :, None, None, None])
    curve = error_by_lead_time(pred, true, relative_l2)
    assert curve == pytest.approx([0.2, 0.3, 0.4], rel=1e-12)
    # vrmse of true * (1 + s) is s * rms(true) / std(true) per field (std with ddof 1 and the
    # default eps, as in The Well); the curve is its mean over the batch
    rms = np.sqrt(np.mean(true[:, :, 0] ** 2, axis=(-2, -1)))
    std = np.sqrt(np.var(true[:, :, 0], axis=(-2, -1), ddof=1) + 1e-7)
    expected = (scale * rms / std).mean(axis=0)
    assert error_by_lead_time(pred, true, vrmse) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="batch, time, channel"):
        error_by_lead_time(pred[0], true[0], vrmse)


def is_png(path) -> bool:
    """A non-empty file that starts with the PNG signature."""
    data = path.read_bytes()
    return len(data) > 100 and data[:8] == b"\x89PNG\r\n\x1a\n"


def test_plots_write_pngs(tmp_path):
    rng = np.random.default_rng(8)
    true = rng.normal(size=(5, 2, 16, 16))
    preds = {"diffusion": true + 0.1 * rng.normal(size=true.shape), "deterministic": 0.8 * true}
    frames = rollout_frames(true, preds, [0, 2, 4], tmp_path / "frames.png", channel=1,
                            title="vorticity")
    lead = error_vs_lead({"diffusion": np.array([0.1, 0.2, 0.4]),
                          "deterministic": np.array([0.1, 0.3, 0.6])}, tmp_path / "lead.png",
                         spread={"diffusion": np.array([0.05, 0.15, 0.3])})
    curves = {name: isotropic_spectrum(field[-1, 0]) for name, field in
              {"truth": true, **preds}.items()}
    spectrum = spectra(curves, tmp_path / "spectra.png")
    for path, name in ((frames, "frames"), (lead, "lead"), (spectrum, "spectra")):
        assert path == tmp_path / f"{name}.png"
        assert is_png(path)
