"""Pictures every workflow makes: latent maps, training curves, metric histograms (PNG, for MLflow)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: drivers run headless on clusters
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def latent_map(z: np.ndarray, colours: dict[str, np.ndarray], path: Path, title: str = "") -> Path:
    """First two principal components of z, one panel per colouring property."""
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2, random_state=0)
    xy = pca.fit_transform(z)
    explained = pca.explained_variance_ratio_
    fig, axes = plt.subplots(1, len(colours), figsize=(5 * len(colours), 4.2), squeeze=False)
    for ax, (name, values) in zip(axes.flat, colours.items()):
        points = ax.scatter(xy[:, 0], xy[:, 1], c=values, s=2, cmap="viridis", rasterized=True)
        fig.colorbar(points, ax=ax, label=name)
        ax.set_xlabel(f"PC1 ({explained[0]:.0%})")
        ax.set_ylabel(f"PC2 ({explained[1]:.0%})")
        ax.set_title(f"{title} coloured by {name}".strip())
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def training_curves(history: list[dict], keys: list[str], path: Path) -> Path:
    """One panel per logged quantity against epoch."""
    keys = [k for k in keys if any(k in row for row in history)]
    fig, axes = plt.subplots(1, len(keys), figsize=(3.6 * len(keys), 3), squeeze=False)
    epochs = [row["epoch"] for row in history]
    for ax, key in zip(axes.flat, keys):
        ax.plot(epochs, [row.get(key, np.nan) for row in history], marker="o", ms=3)
        ax.set_xlabel("epoch")
        ax.set_title(key)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _panels(count: int, width: float = 3.4, height: float = 3.0):
    """A figure with one row of `count` panels (at least one)."""
    n = max(count, 1)
    return plt.subplots(1, n, figsize=(width * n, height), squeeze=False)


def _save(fig, path: Path, title: str = "") -> Path:
    """Title, lay out, write and close a figure."""
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def metric_histograms(frame, columns: list[str], path: Path, title: str = "") -> Path:
    """One histogram panel per numeric column of a table (NaN left out)."""
    columns = [c for c in columns if c in frame and np.isfinite(frame[c].astype(float)).any()]
    fig, axes = _panels(len(columns), 3.2, 2.8)
    for ax, name in zip(axes.flat, columns):
        values = frame[name].astype(float)
        ax.hist(values[np.isfinite(values)], bins=20)
        ax.set_title(name)
    return _save(fig, path, title)


def score_histograms(inside: dict[str, np.ndarray], sets: dict[str, dict[str, np.ndarray]],
                     path: Path, title: str = "") -> Path:
    """One panel per score: the in-distribution histogram against each other set's (densities;
    +inf, the items a codec could not read, left out of the bars)."""
    names = list(inside)
    fig, axes = _panels(len(names))
    for ax, name in zip(axes.flat, names):
        groups = {"in-distribution": inside[name],
                  **{s: v[name] for s, v in sets.items() if name in v}}
        finite = np.concatenate([g[np.isfinite(g)] for g in groups.values()])
        bins = np.histogram_bin_edges(finite, bins=30) if len(finite) else 10
        for label, values in groups.items():
            ax.hist(values[np.isfinite(values)], bins=bins, density=True, alpha=0.45,
                    label=label, histtype="stepfilled")
        ax.set_title(name)
    axes.flat[0].legend(fontsize=6)
    return _save(fig, path, title)


def probe_chart(summary, path: Path) -> Path:
    """One panel per probed set: each (features, model)'s mean score with its std over splits."""
    sets = list(dict.fromkeys(summary["set"]))
    fig, axes = _panels(len(sets))
    for ax, name in zip(axes.flat, sets):
        rows = summary[summary["set"] == name]
        labels = [f"{f.split(' ')[0]}\n{m}" for f, m in zip(rows["features"], rows["model"])]
        ax.bar(range(len(rows)), rows["mean"], yerr=rows["std"].fillna(0), capsize=3)
        ax.set_xticks(range(len(rows)), labels, fontsize=7)
        ax.set_title(f"{name} ({rows['metric'].iloc[0]})")
    return _save(fig, path)


def best_so_far(calls: np.ndarray, scores: np.ndarray, path: Path, title: str = "") -> Path:
    """The best score found against oracle calls used (what a search under a budget buys)."""
    order = np.argsort(calls, kind="stable")
    fig, axes = _panels(1, 5.0, 3.4)
    axes[0, 0].plot(calls[order], np.fmax.accumulate(scores[order]), drawstyle="steps-post")
    axes[0, 0].set_xlabel("oracle calls")
    axes[0, 0].set_ylabel("best score so far")
    return _save(fig, path, title)
