"""Autoregressive SELFIES decoder: a GRU conditioned on z at every step (always-valid output)."""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn


class SelfiesDecoderConfig(BaseModel):
    """Sizes of the SELFIES decoder (vocab_size comes from the vocabulary)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    vocab_size: int = Field(gt=3)
    latent_dim: int = Field(default=64, gt=0)
    embed: int = Field(default=64, gt=0)
    hidden: int = Field(default=256, gt=0)
    layers: int = Field(default=2, gt=0)
    dropout: float = Field(default=0.0, ge=0, lt=1)


class SelfiesDecoder(nn.Module):
    """p(tokens | z): token logits step by step; sampling lives in `latentsci.molecules.vae.sampling`."""

    def __init__(self, config: SelfiesDecoderConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.embed, padding_idx=0)
        self.z_to_hidden = nn.Linear(config.latent_dim, config.layers * config.hidden)
        self.gru = nn.GRU(config.embed + config.latent_dim, config.hidden, config.layers,
                          batch_first=True, dropout=config.dropout if config.layers > 1 else 0.0)
        self.out = nn.Linear(config.hidden, config.vocab_size)

    def initial_state(self, z: torch.Tensor) -> torch.Tensor:
        """GRU state (layers, batch, hidden) from z."""
        h = torch.tanh(self.z_to_hidden(z))
        return h.view(z.shape[0], self.config.layers, self.config.hidden).transpose(0, 1).contiguous()

    def step(self, tokens: torch.Tensor, z: torch.Tensor,
             state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (batch, steps, vocab) for input tokens (batch, steps), and the new state."""
        steps = tokens.shape[1]
        inputs = torch.cat([self.embed(tokens), z[:, None, :].expand(-1, steps, -1)], dim=2)
        output, state = self.gru(inputs, state)
        return self.out(output), state

    def forward(self, tokens_in: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits for a batch of BOS-prefixed token sequences."""
        logits, _ = self.step(tokens_in, z, self.initial_state(z))
        return logits
