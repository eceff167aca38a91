"""Property head: predicts descriptors (logP, QED, SA...) from z, on standardised targets.

Targets are standardised with the training set's mean and std (kept as buffers, so they travel
in the checkpoint): logP (about -3..8) would otherwise dominate QED (0..1) in the MSE.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class PropertyHead(nn.Module):
    """A small MLP from z to standardised properties, with the scale to undo it."""

    def __init__(self, latent_dim: int, n_properties: int, hidden: int = 128):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(latent_dim, hidden), nn.SiLU(),
                                 nn.Linear(hidden, n_properties))
        self.register_buffer("mean", torch.zeros(n_properties))
        self.register_buffer("std", torch.ones(n_properties))

    def fit_scale(self, targets: np.ndarray) -> None:
        """Take the standardisation from the training targets (NaN-aware; std floored)."""
        values = np.asarray(targets, dtype=np.float64)
        mean = np.nanmean(values, axis=0)
        std = np.nanstd(values, axis=0)
        self.mean.copy_(torch.as_tensor(np.nan_to_num(mean), dtype=torch.float32))
        self.std.copy_(torch.as_tensor(np.where(np.isfinite(std) & (std > 1e-6), std, 1.0),
                                       dtype=torch.float32))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Standardised predictions (what the loss compares)."""
        return self.net(z)

    def standardise(self, targets: torch.Tensor) -> torch.Tensor:
        """Targets in the head's standardised units."""
        return (targets - self.mean) / self.std

    def predict(self, z: torch.Tensor) -> torch.Tensor:
        """Predictions in the properties' own units."""
        return self.net(z) * self.std + self.mean


def as_predictor(head: PropertyHead, properties: list[str]):
    """The head as a stand-alone differentiable predictor (latentsci.latent.predictor) with the
    same weights and scale: a seed that search can refit on oracle labels."""
    from latentsci.latent.predictor import PredictorConfig, PropertyPredictor

    first, last = head.net[0], head.net[2]
    if last.out_features != len(properties):
        raise ValueError(f"the head predicts {last.out_features} properties, not {properties}")
    predictor = PropertyPredictor(first.in_features, PredictorConfig(
        properties=properties, hidden=first.out_features, layers=1))
    predictor.load_state_dict(head.state_dict())
    return predictor.eval()
