"""GNN encoder: edge-aware message passing (GINE) pooled into the mean and log-variance of z."""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from torch_geometric.nn import GINEConv, global_add_pool, global_max_pool, global_mean_pool

from latentsci.molecules.vae.featurize import ATOM_DIM, BOND_DIM


class GraphEncoderConfig(BaseModel):
    """Sizes of the graph encoder."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    hidden: int = Field(default=128, gt=0)
    layers: int = Field(default=4, gt=0)
    latent_dim: int = Field(default=64, gt=0)
    dropout: float = Field(default=0.0, ge=0, lt=1)
    # > 0: batch-normalise mu to this spread across molecules (BN-VAE, Zhu et al. 2020), so the
    # decoder sees distinct codes from the first step instead of learning to ignore z
    mu_batchnorm: float = Field(default=0.0, ge=0)


class GraphEncoder(nn.Module):
    """q(z | G): GINE layers with residuals, then mean+max+sum pooling to (mu, logvar)."""

    def __init__(self, config: GraphEncoderConfig):
        super().__init__()
        h = config.hidden
        self.config = config
        self.atom_in = nn.Linear(ATOM_DIM, h)
        self.convs = nn.ModuleList(
            GINEConv(nn.Sequential(nn.Linear(h, h), nn.SiLU(), nn.Linear(h, h)), edge_dim=BOND_DIM)
            for _ in range(config.layers))
        self.norms = nn.ModuleList(nn.LayerNorm(h) for _ in range(config.layers))
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Sequential(nn.Linear(3 * h, 2 * h), nn.SiLU(),
                                  nn.Linear(2 * h, 2 * config.latent_dim))
        self.mu_norm = (nn.BatchNorm1d(config.latent_dim, affine=False)
                        if config.mu_batchnorm > 0 else None)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor,
                batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar), each (graphs, latent_dim)."""
        h = self.atom_in(x)
        for conv, norm in zip(self.convs, self.norms):
            h = h + self.dropout(torch.nn.functional.silu(norm(conv(h, edge_index, edge_attr))))
        pooled = torch.cat([global_mean_pool(h, batch), global_max_pool(h, batch),
                            global_add_pool(h, batch) / 10.0], dim=1)
        mu, logvar = self.head(pooled).chunk(2, dim=1)
        return self.normalise(mu), logvar.clamp(-10.0, 10.0)

    def normalise(self, mu: torch.Tensor) -> torch.Tensor:
        """mu scaled to the configured spread (batch statistics in training, running ones else)."""
        if self.mu_norm is None:
            return mu
        norm = self.mu_norm
        batch_stats = self.training and mu.shape[0] > 1  # a lone last molecule uses running stats
        out = nn.functional.batch_norm(mu, norm.running_mean, norm.running_var,
                                       training=batch_stats, momentum=norm.momentum, eps=norm.eps)
        return self.config.mu_batchnorm * out
