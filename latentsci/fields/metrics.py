"""Scores of predicted against true fields: VRMSE, relative L2, isotropic spectra and their errors.

Fields are numpy arrays shaped (..., channel, x, y) on a periodic grid, x on axis -2 and y on
axis -1; any leading axes (batch, time, ...) are carried through. Definitions follow The Well
(VRMSE), the FNO paper's `LpLoss.rel` (relative L2) and LOLA's `eval.py` (per-band power
spectrum errors); each docstring says where and how this code departs from its source.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

BAND_NAMES = ("low", "mid", "high")


def vrmse(pred: np.ndarray, true: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    """Variance-scaled RMSE of each field, shape (..., channel); predicting the mean scores ~1.

        VRMSE = sqrt( mean_xy (pred - true)^2 / (var_xy(true) + eps) )

    as The Well's `VRMSE` (`NRMSE` with norm_mode="std" in the_well/benchmark/metrics/spatial.py):
    eps is added to the variance, inside the square root, and the variance is `torch.std(...)**2`,
    i.e. with Bessel's correction (divide by n_x n_y - 1). Predicting the spatial mean of `true`
    therefore scores sqrt((N - 1) / N) for N grid points, not exactly 1.
    """
    pred, true = np.asarray(pred, dtype=float), np.asarray(true, dtype=float)
    mse = np.mean((pred - true) ** 2, axis=(-2, -1))
    variance = np.var(true, axis=(-2, -1), ddof=1)
    return np.sqrt(mse / (variance + eps))


def relative_l2(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Relative L2 error of each sample over its channels and grid, shape (...).

        rel = ||pred - true||_2 / ||true||_2,   norms over the trailing (channel, x, y) axes

    as `LpLoss.rel` with p=2 in the FNO repository's utilities3.py, before its batch mean. Like
    the original there is no epsilon: an all-zero `true` gives inf (or nan for pred == true == 0).
    """
    pred, true = np.asarray(pred, dtype=float), np.asarray(true, dtype=float)
    axes = (-3, -2, -1)
    return np.sqrt(np.sum((pred - true) ** 2, axis=axes) / np.sum(true ** 2, axis=axes))


def _shell_index(nx: int, ny: int) -> np.ndarray:
    """Integer |k| shell (cycles per domain, rounded) of every mode of an nx x ny FFT grid."""
    kx = np.fft.fftfreq(nx, d=1.0 / nx)[:, None]
    ky = np.fft.fftfreq(ny, d=1.0 / ny)[None, :]
    # |k| = sqrt(integer) is never exactly half-integer, so rounding has no ties
    return np.rint(np.sqrt(kx ** 2 + ky ** 2)).astype(int)


def _shell_counts(nx: int, ny: int) -> np.ndarray:
    """Number of Fourier modes in each shell 0..min(nx, ny)//2."""
    shells = min(nx, ny) // 2 + 1
    return np.bincount(_shell_index(nx, ny).ravel(), minlength=shells)[:shells]


def isotropic_spectrum(field: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Radially binned power spectrum over the last two axes: (k, E(k) shaped (..., n_shells)).

    Shell k = 0..n//2 (n = min(nx, ny), k in cycles per domain) holds the modes with
    round(|k|) = k, and E(k) is their summed power normalised so that

        sum_k E(k) = mean_xy field^2     (Parseval)

    for fields with no power in the square's corners beyond shell n//2, which are left out.
    E(0) is the squared spatial mean. The sum over a shell (not LOLA's mean per mode) makes
    log-log slopes read as energy spectra; ratios between two spectra are the same either way.
    """
    field = np.asarray(field, dtype=float)
    nx, ny = field.shape[-2:]
    shells = min(nx, ny) // 2 + 1
    modes = np.abs(np.fft.fft2(field, axes=(-2, -1))) ** 2 / float(nx * ny) ** 2
    index = _shell_index(nx, ny).ravel()
    keep = index < shells
    onehot = np.zeros((nx * ny, shells))
    onehot[np.flatnonzero(keep), index[keep]] = 1.0
    power = modes.reshape(*field.shape[:-2], nx * ny) @ onehot
    return np.arange(shells, dtype=float), power


def band_shells(n_shells: int, bands: int = 3) -> list[np.ndarray]:
    """Shells of each band: log2-equal slices of [1, n_shells - 1], both edges inclusive (LOLA)."""
    top = n_shells - 1
    edges = np.linspace(0.0, np.log2(top), bands + 1) if top >= 1 else np.zeros(bands + 1)
    log_k = np.log2(np.arange(1, n_shells))
    tol = 1e-9  # an edge that lands on an integer shell must catch it on both sides
    return [np.flatnonzero((log_k >= lo - tol) & (log_k <= hi + tol)) + 1
            for lo, hi in zip(edges[:-1], edges[1:])]


def spectrum_band_errors(pred: np.ndarray, true: np.ndarray, bands: int = 3, eps: float = 1e-6,
                         pred_is_ensemble: bool = False) -> dict[str, np.ndarray]:
    """Relative power-spectrum error per frequency band, each of shape (..., channel).

    As in LOLA's experiments/eval.py (Rozet et al. 2025): the nonzero shells 1..n//2 are cut
    into `bands` bands of equal width in log2(k), from the first shell to the Nyquist shell,
    with both edges inclusive (a shell exactly on an edge counts in both bands), and

        err_band = sqrt( mean_{k in band} (1 - (P_pred(k) + eps) / (P_true(k) + eps))^2 )

    where P is the mean power per mode of the orthonormal FFT, as LOLA uses, so eps has the
    same meaning (it keeps shells that are empty in both fields at zero error). Departures from
    LOLA: integer |k| shells up to n//2 (LOLA: ~sqrt(2) n/2 linear bins reaching the corners,
    which it reports as a fourth, "tail" band, left out here). With pred_is_ensemble, pred has
    an extra leading sample axis and its spectra are averaged over it first, as LOLA does.
    Names are low/mid/high for 3 bands, else band0, band1, ...; a band with no shell is nan.
    """
    _, p_pred = isotropic_spectrum(pred)
    _, p_true = isotropic_spectrum(true)
    if pred_is_ensemble:
        p_pred = p_pred.mean(axis=0)
    nx, ny = np.shape(true)[-2:]
    per_mode = _shell_counts(nx, ny) / float(nx * ny)  # E(k) = count_k * P_ortho(k) / (nx ny)
    floor = eps * per_mode
    squared = (1.0 - (p_pred + floor) / (p_true + floor)) ** 2
    names = BAND_NAMES if bands == 3 else tuple(f"band{i}" for i in range(bands))
    errors = {}
    for name, shells in zip(names, band_shells(p_true.shape[-1], bands)):
        if len(shells) == 0:
            errors[name] = np.full(p_true.shape[:-1], np.nan)
        else:
            errors[name] = np.sqrt(squared[..., shells].mean(axis=-1))
    return errors


def error_by_lead_time(pred: np.ndarray, true: np.ndarray,
                       metric: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
    """A metric averaged over batch (and channel, or any other axis it keeps) per lead time.

    pred and true are (batch, time, channel, x, y); `metric` maps them to an array whose first
    two axes are (batch, time), such as `vrmse` (batch, time, channel) or `relative_l2`
    (batch, time). For a band error use e.g. `lambda p, t: spectrum_band_errors(p, t)["high"]`.
    """
    pred, true = np.asarray(pred), np.asarray(true)
    if pred.ndim != 5 or pred.shape != true.shape:
        raise ValueError(f"expected two (batch, time, channel, x, y) arrays of one shape, "
                         f"got {pred.shape} and {true.shape}")
    scores = np.asarray(metric(pred, true), dtype=float)
    batch, time = pred.shape[:2]
    if scores.shape[:2] != (batch, time):
        raise ValueError(f"metric returned shape {scores.shape}, expected ({batch}, {time}, ...)")
    return scores.reshape(batch, time, -1).mean(axis=(0, 2))
