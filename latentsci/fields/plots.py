"""Pictures of field emulation: rollout snapshots, error against lead time, isotropic spectra (PNG).

Fields follow latentsci.fields: (time, channel, x, y) with x on axis -2; images show x across.
Saved like latentsci.plots (tight layout, 110 dpi, figure closed) so MLflow gets small PNGs.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: drivers run headless on clusters
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

TRUTH_NAMES = ("truth", "true", "reference")


def _save(fig: plt.Figure, path: Path) -> Path:
    """Write the figure the way latentsci.plots does and free it."""
    if fig.get_layout_engine() is None:  # constrained figures (colorbars) lay themselves out
        fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def rollout_frames(true: np.ndarray, preds: dict[str, np.ndarray], times: list[int], path: Path,
                   channel: int = 0, title: str = "") -> Path:
    """Snapshots of one trajectory: truth then each prediction by row, chosen lead times by column.

    All rows share the colour scale of the truth frames shown, so a prediction that drifts in
    amplitude saturates visibly instead of being rescaled to look right.
    """
    rows = {"truth": np.asarray(true), **{k: np.asarray(v) for k, v in preds.items()}}
    shown = np.stack([rows["truth"][t, channel] for t in times])
    vmin, vmax = float(shown.min()), float(shown.max())
    size = (2.2 * len(times) + 0.8, 2.2 * len(rows))
    fig, axes = plt.subplots(len(rows), len(times), figsize=size, squeeze=False,
                             layout="constrained")
    for r, (name, frames) in enumerate(rows.items()):
        for c, t in enumerate(times):
            ax = axes[r, c]
            image = ax.imshow(frames[t, channel].T, origin="lower", cmap="RdBu_r",
                              vmin=vmin, vmax=vmax)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"t = {t}")
            if c == 0:
                ax.set_ylabel(name)
    fig.colorbar(image, ax=axes, shrink=0.8)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def error_vs_lead(errors: dict[str, np.ndarray], path: Path, ylabel: str = "VRMSE",
                  spread: dict[str, np.ndarray] | None = None) -> Path:
    """One line of error against lead time per model; an ensemble's spread dashed in its colour.

    Lead times are 1..T steps, the first predicted frame being lead 1.
    """
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for name, values in errors.items():
        lead = np.arange(1, len(values) + 1)
        (line,) = ax.plot(lead, values, marker="o", ms=3, label=name)
        if spread is not None and name in spread:
            ax.plot(lead, spread[name], ls="--", color=line.get_color(), label=f"{name} spread")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("lead time (steps)")
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    return _save(fig, path)


def spectra(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> Path:
    """Isotropic power spectra (k, power) on log-log axes; the truth drawn black and thicker."""
    fig, ax = plt.subplots(figsize=(5, 3.8))
    for name, (k, power) in curves.items():
        k, power = np.asarray(k, dtype=float), np.asarray(power, dtype=float)
        visible = (k > 0) & (power > 0)  # the mean (k = 0) and empty shells have no log
        style = {"color": "black", "lw": 2.0} if name.lower() in TRUTH_NAMES else {"lw": 1.2}
        ax.loglog(k[visible], power[visible], label=name, **style)
    ax.set_xlabel("wavenumber k (cycles per domain)")
    ax.set_ylabel("power E(k)")
    ax.legend(fontsize=8)
    return _save(fig, path)
