"""Ex-post latent density: a Gaussian fitted to the encoded training molecules, to sample from.

A VAE's aggregate posterior q(z) = E_x q(z | x) rarely fills its N(0, I) prior. Prior draws that
land in the holes decode to fragments: on the 2-core run of pipelines/zinc_vae.toml, 19% of
N(0, I) draws decoded to 5 heavy atoms or fewer, against none of the draws near encoded
molecules. Drawing z from a full-covariance Gaussian fitted to the posterior means (ex-post
density estimation, Ghosh et al. 2020, "From variational to deterministic autoencoders") keeps
samples where the decoder was trained. Training is unchanged: the KL term still uses N(0, I).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from latentsci.errors import InputDataError


@dataclass(frozen=True)
class LatentGaussian:
    """N(mean, L L^T) over z, with L the Cholesky factor of the fitted covariance."""

    mean: np.ndarray
    scale_tril: np.ndarray

    @classmethod
    def fit(cls, z: np.ndarray, ridge: float = 1e-6) -> LatentGaussian:
        """Mean and covariance of the finite rows of z (n, d); a small ridge keeps L defined."""
        z = np.asarray(z, dtype=np.float64)
        z = z[np.isfinite(z).all(axis=1)]
        if len(z) <= z.shape[1]:
            raise InputDataError(f"fitting a {z.shape[1]}-dimensional latent Gaussian needs more "
                                 f"than {z.shape[1]} encoded molecules, got {len(z)}")
        cov = np.cov(z, rowvar=False) + ridge * np.eye(z.shape[1])
        return cls(z.mean(axis=0), np.linalg.cholesky(cov))

    @classmethod
    def from_store(cls, store_path: str | Path, split: str | None = "train",
                   limit: int = 20000, seed: int = 0) -> LatentGaussian:
        """Fit to up to `limit` random rows of a latent store (of `split`, when it has splits)."""
        from latentsci.store import LatentStore

        store = LatentStore.open(store_path)
        rows = np.arange(len(store))
        if split is not None and "split" in store.property_names:
            rows = rows[store.column("split") == split]
        if len(rows) > limit:
            rows = np.sort(np.random.default_rng(seed).choice(rows, limit, replace=False))
        return cls.fit(store.vectors(rows))

    def save(self, path: str | Path) -> Path:
        """Mean and Cholesky factor as a plain .npz (no pickled objects)."""
        path = Path(path)
        np.savez(path, mean=self.mean, scale_tril=self.scale_tril)
        return path

    @classmethod
    def load(cls, path: str | Path) -> LatentGaussian:
        """A Gaussian written by `save` (read without unpickling), or one line saying why not."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                mean, tril = np.asarray(data["mean"]), np.asarray(data["scale_tril"])
        except (OSError, KeyError, ValueError) as exc:
            raise InputDataError(f"{path}: not a saved latent Gaussian "
                                 f"({str(exc).splitlines()[0]})") from None
        if mean.ndim != 1 or tril.shape != (len(mean), len(mean)):
            raise InputDataError(f"{path}: mean {mean.shape} and scale_tril {tril.shape} disagree")
        return cls(mean, tril)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n draws of z (n, d) as float32."""
        eps = torch.randn(n, len(self.mean), generator=generator, dtype=torch.float64)
        # torch.tensor copies: arrays that come through Ray's object store are read-only
        z = torch.tensor(self.mean) + eps @ torch.tensor(self.scale_tril).T
        return z.float()
