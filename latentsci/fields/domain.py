"""What latent operations need to know of fields besides the codec: pattern correlation between
frames (the anomaly correlation forecasters use, with each frame's own mean removed) and simple
per-channel statistics as properties."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from latentsci.latent.domain import DomainPieces


def _anomalies(frames) -> tuple[np.ndarray, np.ndarray]:
    """Frames flattened per item, mean removed, scaled to unit norm; and which are usable."""
    flat = np.asarray(frames, dtype=np.float64).reshape(len(frames), -1)
    finite = np.isfinite(flat).all(axis=1)
    flat = np.where(finite[:, None], flat, 0.0)
    flat = flat - flat.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(flat, axis=1, keepdims=True)
    return flat / np.where(norm > 0, norm, 1.0), finite & (norm[:, 0] > 0)


def pattern_correlation(a: Sequence, b: Sequence) -> np.ndarray:
    """Correlation (-1 to 1) of every frame of `a` with every frame of `b` over all channels and
    grid points; NaN for a non-finite or constant frame."""
    ua, oka = _anomalies(a)
    ub, okb = _anomalies(b)
    out = ua @ ub.T
    out[~oka, :] = np.nan
    out[:, ~okb] = np.nan
    return out


def field_statistics(frames: Sequence) -> dict[str, np.ndarray]:
    """Mean and standard deviation of each channel of each frame (NaN for non-finite frames)."""
    frames = np.asarray(frames, dtype=np.float64)
    finite = np.isfinite(frames).all(axis=tuple(range(1, frames.ndim)))
    out = {}
    for c in range(frames.shape[1]):
        channel = frames[:, c].reshape(len(frames), -1)
        out[f"mean_{c}"] = np.where(finite, channel.mean(axis=1), np.nan)
        out[f"std_{c}"] = np.where(finite, channel.std(axis=1), np.nan)
    return out


def frame_strips(paths: list, path: Path) -> Path:
    """The first channel of a few interpolation paths' frames, one row per path."""
    from latentsci.plots import plt  # headless matplotlib, set up once there

    rows, cols = len(paths), max(len(p) for p in paths)
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.6 * rows), squeeze=False)
    for r, frames in enumerate(paths):
        for c, ax in enumerate(axes[r]):
            ax.axis("off")
            if c < len(frames):
                ax.imshow(np.asarray(frames[c])[0], cmap="RdBu_r")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


RANGE_TRAJECTORIES = 64  # training trajectories read to find the frames' range
RANGE_SLACK = 0.05  # share of the range a decoded value may stray beyond it and stay "in range"


def training_range(store) -> dict:
    """Per-channel min and max of the training frames a fields latent store was encoded from
    (up to RANGE_TRAJECTORIES of them); empty when that field store is not there any more."""
    from latentsci.fields.data.sources import open_fields

    path, test_from = store.attrs.get("fields"), store.attrs.get("test_from")
    try:
        source = open_fields(path)
    except Exception:  # moved or deleted: the range metric is left out, nothing else
        return {}
    frames = source.read(np.arange(min(int(test_from or source.shape[0]), RANGE_TRAJECTORIES)))
    frames = np.moveaxis(frames, 2, 0).reshape(frames.shape[2], -1)
    return {"low": np.nanmin(frames, axis=1).tolist(), "high": np.nanmax(frames, axis=1).tolist()}


def stored_frames(store, rows: np.ndarray) -> np.ndarray | None:
    """The frames (n, channel, x, y) a fields latent store's rows were encoded from, read back
    from the field store it records (rows are trajectory-major); None when that is gone."""
    from latentsci.fields.data.sources import open_fields

    times = store.attrs.get("times_per_trajectory")
    try:
        source = open_fields(store.attrs.get("fields"))
    except Exception:  # moved or deleted: detectors that need frames are left out
        return None
    rows = np.asarray(rows, dtype=np.int64)
    if times is None or source.shape[1] != int(times):
        return None
    trajectory, step = np.divmod(rows, int(times))
    wanted = np.unique(trajectory)
    frames = source.read(wanted)  # (trajectories, times, channel, x, y)
    return frames[np.searchsorted(wanted, trajectory), step]


def frame_path_metrics(frames: list, context: dict) -> dict[str, float]:
    """VRMSE of the middle frame to each decoded end, mean VRMSE between consecutive frames,
    Spearman correlation of position with (VRMSE to the start - VRMSE to the end), and the
    share of frames whose every value stays within the training range (plus RANGE_SLACK)."""
    from scipy.stats import spearmanr

    from latentsci.fields.metrics import vrmse

    path = np.asarray(frames, dtype=np.float64)
    to_start = vrmse(path, np.broadcast_to(path[0], path.shape)).mean(axis=-1)
    to_end = vrmse(path, np.broadcast_to(path[-1], path.shape)).mean(axis=-1)
    mid = len(path) // 2
    gap = to_start - to_end
    out = {"vrmse_mid_start": float(to_start[mid]), "vrmse_mid_end": float(to_end[mid]),
           "vrmse_step": float(vrmse(path[1:], path[:-1]).mean()),
           "vrmse_monotonic": (float(spearmanr(np.arange(len(path)), gap).statistic)
                               if np.isfinite(gap).all() and np.ptp(gap) > 0 else float("nan"))}
    if context.get("low") is not None:
        low, high = np.asarray(context["low"]), np.asarray(context["high"])
        slack = RANGE_SLACK * (high - low)
        shape = (1, -1) + (1,) * (path.ndim - 2)
        inside = ((path >= (low - slack).reshape(shape)) & (path <= (high + slack).reshape(shape)))
        out["in_range"] = float(inside.reshape(len(path), -1).all(axis=1).mean())
    return out


SUMMARY_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
POWER_FLOOR = 1e-8  # keeps the log power of a flat latent channel finite


def latent_grid_summary(codec, z: np.ndarray) -> np.ndarray:
    """Per latent channel: the log power in each radial wavenumber shell of the latent grid and
    quantiles of its values: unchanged when structures move across a periodic domain (an
    autoencoder's latent grid moves with them), so OOD distances see the physics, not the phase.

    z (n, prod(latent_shape)) -> (n, channels * (shells + quantiles)); NaN rows stay NaN."""
    rows = np.asarray(z, dtype=np.float64)
    grids = rows.reshape(len(rows), *codec.latent_shape)
    if grids.ndim != 4:  # not a (channel, x, y) grid: nothing to summarise
        return rows
    h, w = grids.shape[2:]
    power = np.abs(np.fft.rfft2(grids, axes=(2, 3))) ** 2 / (h * w)
    ky, kx = np.fft.fftfreq(h) * h, np.fft.rfftfreq(w) * w
    shell = np.rint(np.hypot(ky[:, None], kx[None, :])).astype(int).ravel()
    # rfft2 holds each column 1..w/2-1 once for a pair of conjugate modes: count it twice
    weight = np.where((np.arange(len(kx)) == 0) | (np.arange(len(kx)) == w // 2 * (w % 2 == 0)),
                      1.0, 2.0)
    flat = (power * weight).reshape(len(rows), grids.shape[1], -1)
    shells = np.stack([flat[..., shell == s].sum(-1) for s in range(1, shell.max() + 1)], -1)
    quantiles = np.moveaxis(np.quantile(grids.reshape(*grids.shape[:2], -1), SUMMARY_QUANTILES,
                                        axis=-1), 0, -1)
    summary = np.concatenate([np.log(shells + POWER_FLOOR), quantiles], axis=-1)
    return summary.reshape(len(rows), -1).astype(np.float32)


FIELD_PIECES = DomainPieces(similarity=pattern_correlation,
                            similarity_name="pattern correlation (mean removed per frame)",
                            properties=field_statistics,
                            property_names=("mean_<channel>", "std_<channel>"),
                            draw_paths=frame_strips, path_metrics=frame_path_metrics,
                            path_context=training_range, latent_summary=latent_grid_summary,
                            stored_items=stored_frames)
