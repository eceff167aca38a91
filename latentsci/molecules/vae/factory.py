"""The molecule VAE's architecture as plain config data, and the parts it builds (pipeline files
and checkpoints hold the config; `model.build_molecule_vae` wires the parts into a MoleculeVAE)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from latentsci.molecules.vae.decoder import SelfiesDecoder, SelfiesDecoderConfig
from latentsci.molecules.vae.encoder import GraphEncoder, GraphEncoderConfig
from latentsci.molecules.vae.prior import StandardNormalPrior
from latentsci.molecules.vae.property_head import PropertyHead
from torch import nn


class MoleculeVAEConfig(BaseModel):
    """Architecture of the molecule VAE; the vocabulary size is filled in from the data."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    latent_dim: int = Field(default=64, ge=2, le=1024)
    encoder_hidden: int = Field(default=128, gt=0)
    encoder_layers: int = Field(default=4, gt=0)
    decoder_embed: int = Field(default=64, gt=0)
    decoder_hidden: int = Field(default=256, gt=0)
    decoder_layers: int = Field(default=2, gt=0)
    dropout: float = Field(default=0.0, ge=0, lt=1)
    mu_batchnorm: float = Field(default=0.0, ge=0)  # spread of mu, 0 = off (models/encoder.py)
    properties: list[str] = Field(default_factory=list)  # e.g. ["logp", "qed", "sa"]


def build_parts(config: MoleculeVAEConfig, vocab_size: int) -> tuple[nn.Module, nn.Module,
                                                                       nn.Module, nn.Module | None]:
    """Encoder, decoder, prior and (if properties are named) a property head for a config."""
    encoder = GraphEncoder(GraphEncoderConfig(hidden=config.encoder_hidden,
                                              layers=config.encoder_layers,
                                              latent_dim=config.latent_dim,
                                              dropout=config.dropout,
                                              mu_batchnorm=config.mu_batchnorm))
    decoder = SelfiesDecoder(SelfiesDecoderConfig(vocab_size=vocab_size,
                                                  latent_dim=config.latent_dim,
                                                  embed=config.decoder_embed,
                                                  hidden=config.decoder_hidden,
                                                  layers=config.decoder_layers,
                                                  dropout=config.dropout))
    head = PropertyHead(config.latent_dim, len(config.properties)) if config.properties else None
    return encoder, decoder, StandardNormalPrior(config.latent_dim), head
