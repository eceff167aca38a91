"""Out-of-distribution checks over any latent store: detectors fitted on its training rows, a
combined score calibrated on held-out in-distribution rows, and the gate other stages call.

Detectors (higher = further from the training data):
    mahalanobis     distance to the training latents' mean under a Ledoit-Wolf covariance
    knn             k-th nearest training neighbour's distance between latents standardised by
                    the training rows' mean and std per dimension, Euclidean by default;
                    `knn_metric="cosine"` compares unit-normalised ones instead (Sun et al.
                    2022), which on a VAE's posterior means ranks far sets as nearer than
                    in-distribution ones (bench/RESULTS.md); the store's exact streamed
                    top-k under a row mask
    reconstruction  the codec's per-item reconstruction error (needs the items)
    similarity      1 - the largest similarity to the training items (molecules: Tanimoto of
                    Morgan fingerprints; needs the items and a domain that says how)
Mahalanobis and kNN compare raw z rows, or the domain's `latent_summary` of them where it has
one (`space`; fields: a translation-invariant summary of the latent grid, since raw distances
between grids of a convolutional autoencoder measure where structures sit, not what they are).
Each detector's score becomes its in-distribution percentile (the share of held-out training rows
scoring lower); the combined score is their mean, and the threshold keeps `keep` of held-out
in-distribution rows. An item the codec cannot encode is out of distribution by definition:
score 1, rejected, with the codec's reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from latentsci.latent.codec import Codec
from latentsci.latent.domain import DomainPieces

DETECTORS = ("mahalanobis", "knn", "reconstruction", "similarity")


class OODConfig(BaseModel):
    """Which detectors, on which rows, and the share of in-distribution items to keep."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    detectors: list[str] = Field(default_factory=lambda: list(DETECTORS))
    k: int = Field(default=10, gt=0)
    keep: float = Field(default=0.95, gt=0, lt=1)
    fit_split: str = "train"  # the store's split column value the detectors are fitted on
    calibration_rows: int = Field(default=2000, gt=10)  # held out of fitting, to calibrate
    # a store column whose groups are held out whole (fields: "trajectory"; frames of one
    # trajectory are near copies, so a held-out frame would have its neighbours in the fit)
    calibration_groups: str | None = None
    max_reference: int = Field(default=50000, gt=0)  # training items the similarity compares to
    seed: int = 0
    knn_metric: Literal["euclidean", "cosine"] = "euclidean"  # between standardised latents
    # what Mahalanobis and kNN compare: "auto" = the domain's latent summary where it has one
    space: Literal["auto", "latent", "summary"] = "auto"

    @field_validator("detectors")
    @classmethod
    def _known(cls, names: list[str]) -> list[str]:
        """Only detectors this module implements, at least one."""
        unknown = [n for n in names if n not in DETECTORS]
        if unknown or not names:
            raise ValueError(f"unknown detector {unknown[0]!r} (detectors: "
                             f"{', '.join(DETECTORS)})" if unknown else "no detector named")
        return names


@dataclass
class Detector:
    """A fitted OOD detector: what it was fitted on and the numbers it scores with."""

    config: OODConfig
    codec: dict  # codec_record of the codec it belongs to
    store: str  # the store it was fitted on
    dim: int
    fit_rows: np.ndarray
    mean: np.ndarray
    precision: np.ndarray
    calibration: dict[str, np.ndarray] = field(default_factory=dict)  # sorted held-out scores
    threshold: float = 1.0
    reference_items: list = field(default_factory=list)
    scale: np.ndarray | None = None  # per-dimension std of the fit rows (kNN standardises by it)
    space: Literal["latent", "summary"] = "latent"  # resolved from config.space at fitting


@dataclass
class Verdict:
    """Per item: combined score in [0, 1], keep or reject, why (None when kept), raw scores, and
    whether the codec could read it at all."""

    score: np.ndarray
    keep: np.ndarray
    reasons: list[str | None]
    raw: dict[str, np.ndarray]
    encoded: np.ndarray


def resolve_space(config: OODConfig, pieces: DomainPieces | None) -> str:
    """"summary" where the config asks for it (or leaves it to the domain and the domain has
    one), else "latent"; one line when a summary is asked of a domain without one."""
    has = pieces is not None and pieces.latent_summary is not None
    if config.space == "summary" and not has:
        raise ValueError("space = 'summary' but this codec's domain has no latent summary "
                         "(space: latent)")
    return "summary" if has and config.space != "latent" else "latent"


def summary_map(detector: Detector, codec: Codec | None, pieces: DomainPieces | None):
    """The z -> compared-vector map of the detector (None: the raw rows)."""
    return space_map(detector.space, codec, pieces)


def space_map(space: str, codec: Codec | None, pieces: DomainPieces | None):
    """The z -> compared-vector map of a space ("latent": None, the raw rows)."""
    if space == "latent":
        return None
    if codec is None or pieces is None or pieces.latent_summary is None:
        raise ValueError("this detector compares latent summaries: it needs the codec it was "
                         "fitted with and that codec's domain")
    return lambda z: pieces.latent_summary(codec, z)


def _mahalanobis(detector: Detector, z: np.ndarray) -> np.ndarray:
    """Mahalanobis distances of rows (compared vectors) to the training mean."""
    centred = z.astype(np.float64) - detector.mean
    squared = np.einsum("nd,nd->n", centred @ detector.precision, centred)  # BLAS, then a dot
    return np.sqrt(np.maximum(squared, 0))


def _knn(detector: Detector, store, z: np.ndarray, summary=None) -> np.ndarray:
    """k-th neighbour distance among the training rows, between standardised latents (or
    standardised summaries of them)."""
    from latentsci.store.neighbours import top_k

    allowed = np.zeros(len(store), dtype=bool)
    allowed[detector.fit_rows] = True
    metric = detector.config.knn_metric
    if detector.scale is None:  # a detector saved before standardising: raw cosine, as fitted
        standardise, metric = None, "cosine"
    else:
        standardise = (detector.mean, detector.scale)
    _, dist = top_k(store, z, detector.config.k, metric, allowed=allowed,
                    standardise=standardise, features=summary)
    kth = dist[:, -1].astype(np.float64)
    return np.sqrt(np.maximum(2.0 * kth, 0.0)) if metric == "cosine" else kth


def raw_scores(detector: Detector, store, z: np.ndarray, items: list | None, codec: Codec | None,
               pieces: DomainPieces | None) -> dict[str, np.ndarray]:
    """Every usable detector's raw score of the rows (inf where z is not finite)."""
    finite = np.isfinite(z).all(axis=1)
    summary = summary_map(detector, codec, pieces)
    out = {}
    for name in detector.config.detectors:
        values = np.full(len(z), np.inf)
        if name == "mahalanobis" and finite.any():
            values[finite] = _mahalanobis(
                detector, z[finite] if summary is None else summary(z[finite]))
        elif name == "knn" and finite.any():
            values[finite] = _knn(detector, store, z[finite], summary)
        elif name == "reconstruction" and items is not None and codec is not None:
            errors = np.asarray(codec.reconstruction_error(items), dtype=np.float64)
            values = np.where(np.isfinite(errors) & finite, errors, np.inf)
        elif (name == "similarity" and items is not None and pieces is not None
              and pieces.nearest_similarity is not None and detector.reference_items):
            best = pieces.nearest_similarity(items, detector.reference_items)
            values = np.where(np.isfinite(best) & finite, 1.0 - best, np.inf)
        elif name in ("reconstruction", "similarity"):
            continue  # needs items (or a domain that compares them): not part of this call
        out[name] = values
    return out


def percentiles(detector: Detector, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each raw score as the share of held-out in-distribution rows scoring at most as much."""
    out = {}
    for name, values in raw.items():
        reference = detector.calibration[name]
        out[name] = np.searchsorted(reference, values, side="right") / len(reference)
    return out


def combined(detector: Detector, raw: dict[str, np.ndarray]) -> np.ndarray:
    """The mean of the detectors' percentiles (1 for rows any detector could not score)."""
    shares = percentiles(detector, raw)
    stacked = np.stack(list(shares.values()))
    return np.where(np.isinf(np.stack(list(raw.values()))).any(axis=0), 1.0,
                    stacked.mean(axis=0))


def verdict(detector: Detector, raw: dict[str, np.ndarray], reasons: list[str | None]) -> Verdict:
    """Keep or reject each row against the calibrated threshold, saying why."""
    score = combined(detector, raw)
    encoded = np.array([r is None for r in reasons], dtype=bool)
    keep = (score <= detector.threshold) & encoded
    said = [r if r is not None else (None if k else
            f"out of distribution: combined score {s:.3f} > {detector.threshold:.3f}")
            for r, k, s in zip(reasons, keep, score)]
    return Verdict(score, keep, said, raw, encoded)
