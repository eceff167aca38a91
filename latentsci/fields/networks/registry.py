"""Every kind of saved field model and how to rebuild it: one place for loaders to look."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from latentsci.fields.networks.checkpoint import (
    AUTOENCODER_KIND,
    RESERVED,
    autoencoder_from_config,
    load_field_model,
    save_field_model,
)
from latentsci.fields.networks.surrogate import SurrogateConfig, build_surrogate

SURROGATE_KIND = "latent_surrogate"

BUILDERS = {
    AUTOENCODER_KIND: autoencoder_from_config,
    SURROGATE_KIND: lambda config: build_surrogate(SurrogateConfig(**config)),
}


def load_model(folder: str | Path) -> tuple[nn.Module, dict]:
    """Any saved field model (autoencoder or surrogate) and its metadata, in eval mode."""
    model, meta = load_field_model(folder, BUILDERS)  # a folder, or its URL
    return model.eval(), meta


def save_model(folder: str | Path, model: nn.Module, meta: dict) -> Path:
    """Save a model under the kind in `meta`, keeping meta's other entries."""
    extra = {k: v for k, v in meta.items() if k not in RESERVED}
    return save_field_model(Path(folder), model, meta["kind"], model.config, extra)
