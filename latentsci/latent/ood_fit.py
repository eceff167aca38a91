"""Fitting an OOD detector on a store's training rows, calibrating it on held-out ones, and the
gate other stages call with items or z rows."""

from __future__ import annotations

import numpy as np

from latentsci.errors import StoreError
from latentsci.latent.codec import Codec, codec_record, store_codec
from latentsci.latent.domain import DomainPieces, pieces_or_none
from latentsci.latent.ood import (Detector, OODConfig, Verdict, combined, raw_scores,
                                  resolve_space, space_map, verdict)


def _split_rows(store, config: OODConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(encoded rows of the fit split, their z, a seeded mask of the ones held out to calibrate)."""
    if "split" in store.property_names:
        rows = np.flatnonzero(store.column("split") == config.fit_split)
    else:
        rows = np.arange(len(store))
    z = store.vectors(rows)
    finite = np.isfinite(z).all(axis=1)
    rows, z = rows[finite], z[finite]
    held = min(config.calibration_rows, len(rows) // 5)
    if held < 10 or len(rows) - held <= config.k:
        raise StoreError(f"{store.path}: {len(rows)} encoded rows of split "
                         f"{config.fit_split!r}: too few to fit and calibrate a detector")
    return rows, z, _held_out(store, rows, held, config)


def _held_out(store, rows: np.ndarray, held: int, config: OODConfig) -> np.ndarray:
    """A seeded mask of about `held` rows to calibrate on: single rows, or whole groups of
    `calibration_groups` until at least `held` rows (never every group)."""
    rng = np.random.default_rng(config.seed)
    calibrate = np.zeros(len(rows), dtype=bool)
    if config.calibration_groups is None:
        calibrate[rng.permutation(len(rows))[:held]] = True
        return calibrate
    groups = np.asarray(store.column(config.calibration_groups))[rows]
    names = np.unique(groups)
    if len(names) < 2:
        raise StoreError(f"{store.path}: calibration_groups {config.calibration_groups!r} has "
                         f"{len(names)} group in the fit rows; at least two are needed")
    for name in rng.permutation(names)[:-1]:
        calibrate |= groups == name
        if calibrate.sum() >= held:
            break
    return calibrate


def _items(store, rows: np.ndarray, pieces: DomainPieces | None):
    """The items of the store's rows: its item column (molecules: SMILES), or what the domain
    reads back for them (fields: the frames they were encoded from); None when neither."""
    if pieces is None:
        return None
    column = pieces.item_column
    if column is not None and column in store.property_names:
        return store.column(column)[rows].tolist()
    if pieces.stored_items is not None:
        return pieces.stored_items(store, rows)
    return None


def fit_detector(store, config: OODConfig | None = None, codec: Codec | None = None) -> Detector:
    """Fit every detector on the store's training rows and calibrate on held-out ones."""
    from sklearn.covariance import LedoitWolf

    config = config or OODConfig()
    codec = codec or store_codec(store)
    pieces = pieces_or_none(codec)
    rows, z, calibrate = _split_rows(store, config)
    items = _items(store, rows, pieces)
    fit = rows[~calibrate]
    try:
        space = resolve_space(config, pieces)
    except ValueError as exc:
        raise StoreError(f"{store.path}: {exc}") from None
    compared = z[~calibrate]
    summary = space_map(space, codec, pieces)
    if summary is not None:
        compared = summary(compared)
    shrunk = LedoitWolf().fit(compared.astype(np.float64))
    compares = items is not None and pieces.nearest_similarity is not None
    reference = [items[i] for i in np.flatnonzero(~calibrate)] if compares else []
    if len(reference) > config.max_reference:
        pick = np.random.default_rng(config.seed).permutation(len(reference))
        reference = [reference[i] for i in np.sort(pick[: config.max_reference])]
    detector = Detector(config, codec_record(codec), str(store.path), store.dim, fit,
                        shrunk.location_, shrunk.precision_, reference_items=reference,
                        scale=np.maximum(compared.std(axis=0), 1e-6), space=space)
    held_items = [items[i] for i in np.flatnonzero(calibrate)] if items is not None else None
    raw = raw_scores(detector, store, z[calibrate], held_items, codec, pieces)
    detector.calibration = {k: np.sort(v[np.isfinite(v)]) for k, v in raw.items()}
    detector.threshold = float(np.quantile(combined(detector, raw), config.keep))
    return detector


def gate(detector: Detector, store, codec: Codec, items: list | None = None,
         z: np.ndarray | None = None) -> Verdict:
    """Score items (encoded through the codec) or z rows, keep or reject each, and say why."""
    if items is None and z is None:
        raise ValueError("gate needs items or z rows")
    pieces = pieces_or_none(codec)
    reasons: list[str | None]
    if items is not None:
        encoded = codec.encode(items)
        z, reasons = encoded.z, list(encoded.reasons)
    else:
        z = np.asarray(z, dtype=np.float32)
        if z.ndim != 2 or z.shape[1] != detector.dim:
            raise StoreError(f"z rows shaped {z.shape}, the detector scores (n, {detector.dim})")
        reasons = [None if ok else "z row holds NaN or inf" for ok in np.isfinite(z).all(1)]
    raw = raw_scores(detector, store, z, items, codec, pieces)
    return verdict(detector, raw, reasons)


def score_store(detector: Detector, fitted_on, codec: Codec, store,
                rows: np.ndarray | None = None) -> Verdict:
    """Score a store's rows: through their items when the store holds them (every detector),
    else through their z rows (the latent detectors)."""
    rows = np.arange(len(store)) if rows is None else np.asarray(rows)
    items = _items(store, rows, pieces_or_none(codec))
    if items is not None:
        return gate(detector, fitted_on, codec, items=items)
    return gate(detector, fitted_on, codec, z=store.vectors(rows))


def read_items(codec: Codec, path) -> list:
    """The items of a file, read the way the codec's domain reads them."""
    pieces = pieces_or_none(codec)
    if pieces is None or pieces.read_items is None:
        raise StoreError(f"{path}: codecs of kind {codec.kind!r} read no item files; score a "
                         f"latent store of them instead")
    return pieces.read_items(path)
