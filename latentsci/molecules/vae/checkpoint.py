"""Molecule-VAE checkpoints as plain files: weights (read weights-only) plus JSON metadata.

This module knows files, not the model class: `model.load_checkpoint` builds the model from
what `read_checkpoint` returns, so the model can load itself without an import cycle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from latentsci.errors import LatentsciError
from latentsci.model_files import model_folder, read_model_meta
from latentsci.molecules.vae.factory import MoleculeVAEConfig
from latentsci.molecules.vae.selfies_vocab import SelfiesVocabulary

if TYPE_CHECKING:
    from torch import nn

FORMAT = "latentsci.molecule_vae"
FORMAT_VERSION = 1
CODEC = {"kind": "molecule_vae", "module": "latentsci.molecules.codec"}  # what load_codec imports


class ModelFileError(LatentsciError):
    """A model path that does not hold a latentsci molecule VAE."""


def save_checkpoint(folder: Path, model: nn.Module, config: MoleculeVAEConfig,
                    vocab: SelfiesVocabulary, extra: dict | None = None) -> Path:
    """Write model.pt (state dict) and meta.json (format, config, vocabulary, extra) to a folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), folder / "model.pt")
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "config": config.model_dump(),
            "vocab": vocab.to_dict(), "codec": CODEC, **(extra or {})}
    (folder / "meta.json").write_text(json.dumps(meta, indent=2))
    return folder


def read_meta(folder: Path) -> dict:
    """The metadata of a saved model, or one line saying the folder is not one of ours."""
    return read_model_meta(folder, FORMAT, "a latentsci molecule VAE", "a latentsci model",
                           ModelFileError)


def upgrade_property_head(state: dict, model: nn.Module) -> dict:
    """Checkpoints written before property heads were standardised: an nn.Sequential head with
    no scale. Renaming its weights and taking scale 0/1 reproduces it exactly."""
    if "property_head.0.weight" not in state or model.property_head is None:
        return state
    upgraded = {k.replace("property_head.", "property_head.net.", 1)
                if k.startswith("property_head.") else k: v for k, v in state.items()}
    upgraded["property_head.mean"] = torch.zeros_like(model.property_head.mean)
    upgraded["property_head.std"] = torch.ones_like(model.property_head.std)
    return upgraded


def read_checkpoint(folder: Path, map_location: str = "cpu"
                    ) -> tuple[MoleculeVAEConfig, SelfiesVocabulary, dict, dict]:
    """Config, vocabulary, weights (torch.load with weights_only=True) and metadata of a folder."""
    folder = model_folder(folder)
    meta = read_meta(folder)
    try:
        state = torch.load(Path(folder) / "model.pt", map_location=map_location, weights_only=True)
    except (RuntimeError, OSError, ValueError) as exc:
        raise ModelFileError(f"{folder}/model.pt: cannot load weights: "
                             f"{str(exc).splitlines()[0]}") from None
    return (MoleculeVAEConfig(**meta["config"]), SelfiesVocabulary.from_dict(meta["vocab"]),
            state, meta)
