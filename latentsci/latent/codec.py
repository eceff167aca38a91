"""The codec contract: what a model that maps items to latents offers every latent operation.

    encode(items) -> Encoded          z rows (n, d), a NaN row and a reason for each unreadable item
    decode(z) -> items                molecules: SMILES; fields: frames (n, channel, x, y)
    reconstruction_error(items)       one number per item (NaN where it cannot be encoded)
    latent_shape, to_latent(rows)     how a flat store row maps to the latent's own shape
    kind, version, source, weights_sha256

This package knows neither domain. A checkpoint names the module that provides its kind (meta.json
`codec.module`); that module calls `register_codec` when imported, so `load_codec` in a fresh
process loads any checkpoint without this file importing molecules or fields.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from latentsci.errors import LatentsciError
from latentsci.model_files import read_meta_json
from latentsci.storage.location import is_url

WEIGHTS_FILE = "model.pt"
TRUSTED_PREFIX = "latentsci."  # the only package whose codec modules load_codec imports
# Checkpoints written before meta.json named its codec module: format -> the module that reads it.
LEGACY_MODULES = {"latentsci.molecule_vae": "latentsci.molecules.codec",
                  "latentsci.field_model": "latentsci.fields.codec"}


class CodecError(LatentsciError):
    """A path or URI that does not hold a model with a codec, or items a codec cannot take."""


@dataclass(frozen=True)
class Encoded:
    """z rows (n, d) float32, NaN rows where `reasons[i]` says why item i could not be encoded."""

    z: np.ndarray
    reasons: list[str | None]

    @property
    def ok(self) -> np.ndarray:
        """Which items were encoded."""
        return np.array([r is None for r in self.reasons], dtype=bool)


@runtime_checkable
class Codec(Protocol):
    """A trained model seen as a map between items and latent rows."""

    kind: str
    version: str
    source: str
    latent_shape: tuple[int, ...]

    def encode(self, items: Sequence[Any]) -> Encoded: ...

    def decode(self, z: np.ndarray) -> Any: ...

    def reconstruction_error(self, items: Sequence[Any]) -> np.ndarray: ...


Loader = Callable[..., Codec]
_LOADERS: dict[str, Loader] = {}


def register_codec(kind: str, loader: Loader) -> None:
    """Make `load_codec` build `kind` with loader(folder, meta, source, **options)."""
    _LOADERS[kind] = loader


def check_items(items: Any, source: str) -> None:
    """A batch of items is a sequence of them: a lone string would be read letter by letter."""
    if isinstance(items, (str, bytes)):
        raise CodecError(f"{source or 'codec'}: items must be a list (one string was given: "
                         f"{items[:40]!r})")


def latent_dim(codec: Codec) -> int:
    """Values in one flat latent row."""
    return int(np.prod(codec.latent_shape))


def to_latent(codec: Codec, rows: np.ndarray) -> np.ndarray:
    """Flat store rows (n, d) as latents in the codec's own shape (n, *latent_shape)."""
    rows = np.asarray(rows, dtype=np.float32)
    if rows.ndim != 2 or rows.shape[1] != latent_dim(codec):
        raise CodecError(f"{codec.source}: z has shape {rows.shape}, expected (rows, "
                         f"{latent_dim(codec)}) for latents shaped {codec.latent_shape}")
    return rows.reshape(len(rows), *codec.latent_shape)


def weights_sha256(folder: Path) -> str:
    """Content hash of a model folder's weights file: which weights wrote a store."""
    digest = hashlib.sha256()
    with (Path(folder) / WEIGHTS_FILE).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def codec_record(codec: Codec) -> dict[str, Any]:
    """What a store records of the codec that wrote it (enough for `store_codec` to reload it)."""
    record = {"kind": codec.kind, "version": codec.version, "source": codec.source,
              "weights_sha256": getattr(codec, "weights_sha256", "")}
    options = getattr(codec, "load_options", None)
    return {**record, "load_options": options} if options else record


def store_codec(store: Any, **options: Any) -> Codec:
    """The codec that wrote a latent store (its `codec` attribute), refused if its weights
    changed since."""
    record = store.attrs.get("codec")
    if not isinstance(record, dict) or not record.get("source"):
        raise CodecError(f"{store.path}: the store records no codec (written before stores did, "
                         "or not by a codec): pass the model explicitly")
    codec = load_codec(record["source"], **{**record.get("load_options", {}), **options})
    if record.get("weights_sha256") and codec_record(codec)["weights_sha256"] != record[
            "weights_sha256"]:
        raise CodecError(f"{store.path}: the model at {record['source']} is not the one that "
                         "wrote this store (its weights changed)")
    return codec


MLFLOW_SCHEMES = ("runs:", "models:", "mlflow-artifacts:")


def _is_uri(text: str) -> bool:
    """Whether a model source names an MLflow artifact rather than a folder on disk."""
    return "://" in text or text.startswith(("runs:", "models:"))


def _local_folder(path_or_uri: str, tracking_uri: str | None) -> Path:
    """A model folder on disk: the path itself, or an MLflow artifact downloaded from its URI."""
    text = str(path_or_uri)
    if is_url(text) and not text.startswith(MLFLOW_SCHEMES):  # a run directory on S3, say
        from latentsci.storage.fetch import fetched

        return fetched(text)
    if _is_uri(text):
        import mlflow

        try:
            return Path(mlflow.artifacts.download_artifacts(artifact_uri=text,
                                                            tracking_uri=tracking_uri))
        except Exception as exc:  # MLflow raises many kinds for a bad URI or server
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise CodecError(f"{text}: cannot fetch the model from MLflow: {first}") from None
    return Path(text)


def read_codec_meta(folder: Path) -> tuple[str, str, dict]:
    """(kind, module, meta) of a model folder, or one line saying why it holds no codec."""
    meta = read_meta_json(folder, "a latentsci model", CodecError)
    named = meta.get("codec")
    if isinstance(named, dict) and named.get("kind") and named.get("module"):
        return str(named["kind"]), str(named["module"]), meta
    found = meta.get("format")
    module = LEGACY_MODULES.get(found)
    if module is None:
        raise CodecError(f"{folder}: meta.json names no codec (format {found!r})")
    kind = meta.get("kind", "field_autoencoder") if found == "latentsci.field_model" \
        else "molecule_vae"
    return str(kind), module, meta


def load_codec(path_or_uri: str | Path, tracking_uri: str | None = None,
               **options: Any) -> Codec:
    """The codec of a model folder or MLflow URI (`runs:/ID/checkpoint`), whatever its domain."""
    folder = _local_folder(str(path_or_uri), tracking_uri)
    kind, module, meta = read_codec_meta(folder)
    if not module.startswith(TRUSTED_PREFIX):  # meta.json must not choose what code runs
        raise CodecError(f"{folder}: codec module {module!r} is not part of latentsci")
    if kind not in _LOADERS:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise CodecError(f"{folder}: codec kind {kind!r} needs module {module!r}, which "
                             f"cannot be imported: {exc}") from None
    if kind not in _LOADERS:
        raise CodecError(f"{folder}: a {kind!r} model is not a codec (codecs: "
                         f"{', '.join(sorted(_LOADERS)) or 'none registered'})")
    return _LOADERS[kind](folder, meta, str(path_or_uri), **options)


_WORKER_CODECS: dict[tuple, Codec] = {}  # one process's loaded codecs (Ray workers run many tasks)


def _folder_stamp(source: str) -> tuple:
    """What changes when a local model folder is rewritten (names, sizes, mtimes); a URI names
    one logged artifact, so it is its own stamp."""
    folder = Path(source)
    if _is_uri(source) or not folder.is_dir():
        return (source,)
    return tuple(sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns)
                        for f in folder.iterdir() if f.is_file()))


def worker_codec(store: Any, model: str | None = None) -> Codec:
    """The codec a Ray task decodes through (`model`, else the store's), loaded once per worker
    process: the tasks of a stage reuse it instead of each reading and hashing the weights."""
    record = store.attrs.get("codec") or {}
    source = str(model or record.get("source", ""))
    key = (str(store.path), model, record.get("weights_sha256"), _folder_stamp(source))
    if key not in _WORKER_CODECS:
        if len(_WORKER_CODECS) >= 4:  # a long-lived worker that served many stores
            _WORKER_CODECS.pop(next(iter(_WORKER_CODECS)))
        _WORKER_CODECS[key] = load_codec(model) if model else store_codec(store)
    return _WORKER_CODECS[key]

