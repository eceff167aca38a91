"""Save and load field models (autoencoders, surrogates) as plain files: weights plus JSON metadata.

A folder holds model.pt (a state dict, read back with weights_only=True) and meta.json:

    {"format": "latentsci.field_model", "format_version": 1, "kind": ..., "config": ..., **extra}

`kind` picks the builder that turns the config back into a module; callers pass the registry of
builders, so a model defined elsewhere (the latent surrogate) registers its own without this file
knowing it.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from pathlib import Path

import torch
from pydantic import BaseModel, ValidationError
from torch import nn

from latentsci.errors import LatentsciError
from latentsci.model_files import model_folder, read_model_meta
from latentsci.fields.networks.autoencoder import (FieldAutoencoder, FieldAutoencoderConfig,
                                          build_field_autoencoder)

FORMAT = "latentsci.field_model"
FORMAT_VERSION = 1
RESERVED = ("format", "format_version", "kind", "config")
AUTOENCODER_KIND = "field_autoencoder"
AUTOENCODER_CODEC = {"kind": AUTOENCODER_KIND, "module": "latentsci.fields.codec"}  # for load_codec

Builder = Callable[[dict], nn.Module]


class FieldModelError(LatentsciError):
    """A model folder that does not hold a latentsci field model we can rebuild."""


def save_field_model(folder: Path, model: nn.Module, kind: str, config: BaseModel,
                     extra: dict | None = None) -> Path:
    """Write model.pt (state dict) and meta.json (format, kind, config, extra) to a folder."""
    extra = extra or {}
    clash = [key for key in RESERVED if key in extra]
    if clash:
        raise ValueError(f"extra metadata may not set {', '.join(clash)} (reserved)")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), folder / "model.pt")
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind,
            "config": config.model_dump(mode="json"), **extra}
    (folder / "meta.json").write_text(json.dumps(meta, indent=2))
    return folder


def read_field_meta(folder: Path) -> dict:
    """The metadata of a saved field model, or one line saying why the folder is not one."""
    what = "a latentsci field model"
    meta = read_model_meta(folder, FORMAT, what, what, FieldModelError)
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise FieldModelError(f"{folder}: field model format_version {version!r} is not one "
                              f"this latentsci reads (<= {FORMAT_VERSION})")
    return meta


def _reason(exc: Exception) -> str:
    """One line of an exception: the first pydantic error's place and message, else line one."""
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        place = ".".join(str(p) for p in error["loc"])
        return f"{place}: {error['msg']}" if place else error["msg"]
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _state_mismatch(model: nn.Module, state: dict) -> str | None:
    """One line naming what in a state dict does not fit the model, or None when it all fits."""
    own = model.state_dict()
    problems = [f"missing {k}" for k in own if k not in state]
    problems += [f"unexpected {k}" for k in state if k not in own]
    problems += [f"{k} has shape {tuple(state[k].shape)}, model expects {tuple(own[k].shape)}"
                 for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if not problems:
        return None
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return problems[0] + more


def _build(folder: Path, meta: dict, builders: dict[str, Builder]) -> nn.Module:
    """The untrained module that meta.json describes, built by the registered builder."""
    kind = meta.get("kind")
    if kind not in builders:
        raise FieldModelError(f"{folder}: unknown field model kind {kind!r} "
                              f"(known: {', '.join(sorted(builders))})")
    try:
        return builders[kind](meta.get("config") or {})
    except (ValidationError, ValueError, TypeError) as exc:
        raise FieldModelError(f"{folder}/meta.json: config does not build a {kind!r}: "
                              f"{_reason(exc)}") from None


def load_field_model(folder: Path, builders: dict[str, Builder],
                     map_location: str = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild a field model by its kind from `builders`, load its weights; return it with meta."""
    folder = model_folder(folder)
    meta = read_field_meta(folder)
    model = _build(folder, meta, builders)
    try:
        state = torch.load(folder / "model.pt", map_location=map_location, weights_only=True)
    except (RuntimeError, OSError, ValueError, EOFError, pickle.UnpicklingError) as exc:
        raise FieldModelError(f"{folder}/model.pt: cannot load weights: {_reason(exc)}") from None
    if not isinstance(state, dict):
        raise FieldModelError(f"{folder}/model.pt: cannot load weights: holds a "
                              f"{type(state).__name__}, not a state dict")
    mismatch = _state_mismatch(model, state)
    if mismatch:
        raise FieldModelError(f"{folder}/model.pt: weights do not fit a {meta['kind']!r}: "
                              f"{mismatch}")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise FieldModelError(f"{folder}/model.pt: cannot load weights: {_reason(exc)}") from None
    return model, meta


def autoencoder_from_config(config: dict) -> FieldAutoencoder:
    """The builder of the autoencoder kind: config data -> untrained FieldAutoencoder.

    Checkpoints written before `upsample` existed decoded with nearest-neighbour upsampling."""
    return build_field_autoencoder(FieldAutoencoderConfig(**{"upsample": "nearest", **config}))


def save_field_autoencoder(folder: Path, model: FieldAutoencoder,
                           extra: dict | None = None) -> Path:
    """save_field_model for an autoencoder from build_field_autoencoder (its config is known)."""
    if model.config is None:
        raise ValueError("the autoencoder has no config; build it with build_field_autoencoder")
    return save_field_model(folder, model, AUTOENCODER_KIND, model.config,
                            {"codec": AUTOENCODER_CODEC, **(extra or {})})


def load_field_autoencoder(folder: Path, map_location: str = "cpu") -> FieldAutoencoder:
    """A saved FieldAutoencoder with its weights and normalisation, or one line saying why not."""
    meta = read_field_meta(folder)
    if meta.get("kind") != AUTOENCODER_KIND:
        raise FieldModelError(f"{folder}: holds a {meta.get('kind')!r} field model, "
                              f"not a {AUTOENCODER_KIND!r}")
    model, _ = load_field_model(folder, {AUTOENCODER_KIND: autoencoder_from_config},
                                map_location)
    return model
