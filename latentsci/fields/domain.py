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


FIELD_PIECES = DomainPieces(similarity=pattern_correlation,
                            similarity_name="pattern correlation (mean removed per frame)",
                            properties=field_statistics,
                            property_names=("mean_<channel>", "std_<channel>"),
                            draw_paths=frame_strips)
