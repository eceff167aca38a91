"""Priors over z: the KL term and prior sampling live here, not in the VAE."""

from __future__ import annotations

import torch
from torch import nn


class StandardNormalPrior(nn.Module):
    """p(z) = N(0, I)."""

    def __init__(self, latent_dim: int):
        super().__init__()
        self.latent_dim = latent_dim

    def kl_per_dim(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """KL(q || p) per latent dimension, averaged over the batch: 0.5 (mu^2 + s^2 - log s^2 - 1)."""
        return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1.0).mean(dim=0)

    def sample(self, n: int, generator: torch.Generator | None = None,
               device: torch.device | str = "cpu") -> torch.Tensor:
        """n draws of z."""
        return torch.randn(n, self.latent_dim, generator=generator, device=device)
