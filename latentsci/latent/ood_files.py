"""A fitted OOD detector on disk, in plain formats (JSON and .npz arrays, never a pickle), with
the codec and the store it belongs to; loading refuses another codec, store or dimension."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from latentsci.errors import InputDataError
from latentsci.latent.codec import Codec, CodecError, codec_record
from latentsci.latent.ood import Detector, OODConfig

FORMAT, VERSION = "latentsci.ood_detector", 1


def save_detector(detector: Detector, folder: Path) -> Path:
    """detector.json (config, codec, store, threshold), arrays.npz, reference.txt (items)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "format_version": VERSION, "config": detector.config.model_dump(),
            "codec": detector.codec, "store": detector.store, "dim": detector.dim,
            "threshold": detector.threshold, "calibrated": sorted(detector.calibration),
            "space": detector.space}
    (folder / "detector.json").write_text(json.dumps(meta, indent=2))
    arrays = {"fit_rows": detector.fit_rows, "mean": detector.mean,
              "precision": detector.precision,
              **({"scale": detector.scale} if detector.scale is not None else {}),
              **{f"calibration__{k}": v for k, v in detector.calibration.items()}}
    np.savez(folder / "arrays.npz", **arrays)
    (folder / "reference.txt").write_text("".join(f"{s}\n" for s in detector.reference_items))
    return folder


def _read_meta(folder: Path) -> dict:
    """detector.json, or one line saying why the folder holds no detector."""
    path = folder / "detector.json"
    if not path.is_file():
        raise InputDataError(f"{folder}: not an OOD detector (no detector.json)")
    meta = json.loads(path.read_text())
    if meta.get("format") != FORMAT or meta.get("format_version", 0) > VERSION:
        raise InputDataError(f"{folder}: detector.json is not a latentsci OOD detector of format "
                             f"version <= {VERSION}")
    return meta


def check_detector(detector: Detector, folder: Path, codec: Codec | None = None,
                   store=None) -> Detector:
    """Refuse a detector about to be used with a codec or a store it was not fitted for."""
    if codec is not None and codec_record(codec)["weights_sha256"] != detector.codec.get(
            "weights_sha256"):
        raise CodecError(f"{folder}: fitted for the codec at {detector.codec.get('source')}, "
                         f"not {codec.source} (their weights differ)")
    if store is not None and store.dim != detector.dim:
        raise CodecError(f"{folder}: scores {detector.dim}-dimensional latents; {store.path} "
                         f"holds {store.dim}")
    return detector


def load_detector(folder: Path, codec: Codec | None = None, store=None) -> Detector:
    """A saved detector, checked against the codec and store it is about to be used with."""
    folder = Path(folder)
    meta = _read_meta(folder)
    with np.load(folder / "arrays.npz", allow_pickle=False) as arrays:
        calibration = {k: arrays[f"calibration__{k}"] for k in meta["calibrated"]}
        fit_rows, mean, precision = arrays["fit_rows"], arrays["mean"], arrays["precision"]
        scale = arrays["scale"] if "scale" in arrays.files else None  # older files: raw cosine
    reference = (folder / "reference.txt").read_text().splitlines()
    detector = Detector(OODConfig(**meta["config"]), meta["codec"], meta["store"], meta["dim"],
                        fit_rows, mean, precision, calibration, float(meta["threshold"]),
                        reference, scale, meta.get("space", "latent"))
    return check_detector(detector, folder, codec, store)


def open_detector(folder: Path, model: str | None = None):
    """(detector, the store it was fitted on, its codec) from a saved folder, checked against
    each other; the codec is the one the detector records unless `model` names another."""
    from latentsci.latent.codec import load_codec
    from latentsci.store import LatentStore

    saved = load_detector(folder)
    fitted_on = LatentStore.open(saved.store)
    codec = (load_codec(model) if model else
             load_codec(saved.codec["source"], **saved.codec.get("load_options", {})))
    return check_detector(saved, folder, codec, fitted_on), fitted_on, codec
