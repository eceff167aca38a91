"""Pictures of molecules and their models: property distributions, KL per dimension, drawings."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: drivers run headless on clusters
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def property_histograms(table: pd.DataFrame, columns: list[str], path: Path,
                        by: str = "split") -> Path:
    """One histogram per property, one colour per split, so shifts between splits show at once."""
    cols = 3
    rows = -(-len(columns) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
    groups = list(table.groupby(by)) if by in table else [("all", table)]
    for ax, column in zip(axes.flat, columns):
        values = table[column].to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        if len(values) and np.all(values == np.round(values)):  # counts: one bar per integer
            bins = np.arange(values.min(), values.max() + 2) - 0.5
        else:
            bins = np.histogram_bin_edges(values, bins=40)
        for name, group in groups:
            ax.hist(group[column], bins=bins, density=True, histtype="step", label=str(name))
        ax.set_title(column)
    for ax in list(axes.flat)[len(columns):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def kl_per_dimension(kl: list[float], path: Path, floor: float = 0.01) -> Path:
    """KL of each latent dimension, sorted: collapsed dimensions sit at the bottom."""
    values = np.sort(np.asarray(kl))[::-1]
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar(np.arange(len(values)), values)
    ax.axhline(floor, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("latent dimension (sorted)")
    ax.set_ylabel("KL (nats)")
    ax.set_title(f"{int((values > floor).sum())} of {len(values)} dimensions above {floor}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def molecule_grid(smiles: list[str], path: Path, per_row: int = 6) -> Path:
    """RDKit drawings of molecules with their SMILES as legends (unparsable ones left blank)."""
    from rdkit import Chem
    from rdkit.Chem import Draw

    mols = [Chem.MolFromSmiles(s) if s else None for s in smiles]
    image = Draw.MolsToGridImage([m if m is not None else Chem.Mol() for m in mols],
                                 molsPerRow=per_row, subImgSize=(220, 180),
                                 legends=[s[:40] for s in smiles])
    image.save(str(path))
    return path
