"""The `structure` stage: how a store's latents cluster by known classes and how disentangled
they are with respect to known factors (latentsci/latent/structure.py).

`classes` names a store column of known classes (Gray-Scott: preset), or is "groups": the
domain's groups of the store's items (molecules: Murcko scaffolds), keeping the `top_classes`
largest; the domain's baseline features (ECFP4) are clustered the same way beside the latents.
`factors` names store columns of known generative factors (NS: viscosity, forcing amplitude;
Gray-Scott: F, k; molecules: properties) for MIG and DCI; `group_column` (fields: trajectory)
keeps each group on one side of DCI's train/test split.
"""

from __future__ import annotations

import json

import numpy as np
from pydantic import Field, model_validator

from latentsci.errors import InputDataError
from latentsci.pipeline.stage import ONE, Stage, StageConfig, StageContext, StageResult


class StructureConfig(StageConfig):
    """Which known classes and factors to judge the latents by."""

    classes: str | None = None
    top_classes: int = Field(default=10, ge=2)
    factors: list[str] = Field(default_factory=list)
    group_column: str | None = None  # DCI's split keeps each group whole (fields: trajectory)
    max_rows: int = Field(default=10000, gt=10)
    seed: int = 0

    @model_validator(mode="after")
    def _something(self) -> StructureConfig:
        """At least one way to judge."""
        if self.classes is None and not self.factors:
            raise ValueError("give classes (a column, or \"groups\") or factors (columns)")
        return self


def _rows(store, config: StructureConfig) -> tuple[np.ndarray, np.ndarray]:
    """Encoded rows with finite factors (a seeded draw of at most max_rows) and their z."""
    z = store.vectors(slice(None))
    ok = np.isfinite(z).all(axis=1)
    for name in config.factors:
        ok &= np.isfinite(np.asarray(store.column(name), dtype=float))
    rows = np.flatnonzero(ok)
    rows = np.sort(rows[np.random.default_rng(config.seed).permutation(len(rows))[
        :config.max_rows]])
    return rows, z[rows]


def _classes(store, rows: np.ndarray, config: StructureConfig, pieces):
    """(which of `rows` are kept, their class labels, their items or None)."""
    column = pieces.item_column if pieces is not None else None
    items = store.column(column)[rows] if column and column in store.property_names else None
    if config.classes == "groups":
        if items is None or pieces.groups is None:
            raise InputDataError(f"{store.path}: classes = \"groups\" needs a store of items "
                                 f"whose domain groups them (molecules: scaffolds)")
        labels = pieces.groups(list(items))
    else:
        labels = store.column(config.classes)[rows]
    values, counts = np.unique(labels.astype(str), return_counts=True)
    largest = set(values[np.argsort(-counts, kind="stable")[:config.top_classes]])
    keep = np.array([str(v) in largest for v in labels])
    return keep, labels[keep].astype(str), (items[keep] if items is not None else None)


def structure(config: StructureConfig, ctx: StageContext) -> StageResult:
    """Clustering scores of the latents (and baseline features), MIG and DCI of the factors."""
    from latentsci.latent.domain import pieces_or_none
    from latentsci.latent.structure import cluster_scores, dci, mig
    from latentsci.store import LatentStore

    store = LatentStore.open(ctx.output("store"))
    pieces = pieces_or_none((store.attrs.get("codec") or {}).get("kind"))
    rows, z = _rows(store, config)
    metrics: dict[str, float] = {"rows": float(len(rows))}
    if config.classes is not None:
        kept, labels, items = _classes(store, rows, config, pieces)
        metrics.update({f"latent_{k}": v for k, v in
                        cluster_scores(z[kept], labels, config.seed).items()})
        if items is not None and pieces.baseline_features is not None:
            metrics.update({f"baseline_{k}": v for k, v in cluster_scores(
                pieces.baseline_features(list(items)), labels, config.seed).items()})
    if config.factors:
        factors = np.stack([np.asarray(store.column(f)[rows], dtype=float)
                            for f in config.factors], axis=1)
        z = z.astype(np.float64)
        groups = store.column(config.group_column)[rows] if config.group_column else None
        metrics.update({**mig(z, factors, config.factors),
                        **dci(z, factors, config.seed, groups=groups)})
    path = ctx.out_dir / "structure.json"
    path.write_text(json.dumps(metrics, indent=2))
    return StageResult(outputs={"structure": str(path)}, metrics=metrics, artifacts=[path])


STRUCTURE = Stage("structure", StructureConfig, structure, reads={"store": ONE},
                  gives=("structure",))
