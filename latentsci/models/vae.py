"""MoleculeVAE: an injected encoder, decoder and prior, with the loss pieces as named methods.

    loss = recon + beta * sum_d max(KL_d, free_bits) + property_weight * MSE(head(mu), y)

recon is the token cross-entropy summed over a sequence and averaged over molecules; KL_d is the
batch-mean KL of latent dimension d (free bits keep each dimension from collapsing below it).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from latentsci.models.batching import MoleculeBatch


@dataclass
class VAELoss:
    """The loss and its parts, detached parts ready for logging."""

    total: torch.Tensor
    recon: float
    kl: float
    kl_per_dim: torch.Tensor
    properties: float
    token_accuracy: float


class MoleculeVAE(nn.Module):
    """Encoder (graph -> mu, logvar), decoder (z, tokens -> logits), prior, optional property head."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, prior: nn.Module,
                 property_head: nn.Module | None = None):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.prior = prior
        self.property_head = property_head

    def encode(self, batch: MoleculeBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """mu and logvar of q(z | molecule)."""
        g = batch.graphs
        return self.encoder(g.x, g.edge_index, g.edge_attr, g.batch)

    @staticmethod
    def reparametrize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """z = mu + sigma * eps, differentiable in mu and logvar."""
        return mu + torch.randn_like(mu) * (0.5 * logvar).exp()

    def recon_loss(self, z: torch.Tensor, batch: MoleculeBatch) -> tuple[torch.Tensor, float]:
        """Token cross-entropy per molecule (padding ignored), and teacher-forced token accuracy."""
        logits = self.decoder(batch.tokens_in, z)
        mask = batch.targets != 0
        ce = F.cross_entropy(logits.transpose(1, 2), batch.targets, reduction="none")
        per_molecule = (ce * mask).sum(dim=1)
        correct = ((logits.argmax(-1) == batch.targets) & mask).sum()
        return per_molecule.mean(), float(correct) / max(int(mask.sum()), 1)

    def kl_loss(self, mu: torch.Tensor, logvar: torch.Tensor,
                free_bits: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed KL with each dimension floored at `free_bits`, and the raw KL per dimension."""
        per_dim = self.prior.kl_per_dim(mu, logvar)
        return per_dim.clamp(min=free_bits).sum(), per_dim.detach()

    def property_loss(self, mu: torch.Tensor, batch: MoleculeBatch) -> torch.Tensor:
        """MSE of the property head from mu (zero without a head or targets)."""
        if self.property_head is None or batch.properties is None:
            return mu.new_zeros(())
        return F.mse_loss(self.property_head(mu), batch.properties)

    def loss(self, batch: MoleculeBatch, beta: float, free_bits: float = 0.0,
             property_weight: float = 1.0) -> VAELoss:
        """The full training objective for one batch."""
        mu, logvar = self.encode(batch)
        z = self.reparametrize(mu, logvar) if self.training else mu
        recon, accuracy = self.recon_loss(z, batch)
        kl, per_dim = self.kl_loss(mu, logvar, free_bits)
        props = self.property_loss(mu, batch)
        total = recon + beta * kl + property_weight * props
        return VAELoss(total, float(recon.detach()), float(per_dim.sum()), per_dim,
                       float(props.detach()), accuracy)
