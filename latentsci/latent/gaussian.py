"""A Gaussian over a codec's latent rows: what samplers draw from and what searches move in.

A VAE's aggregate posterior q(z) = E_x q(z | x) rarely fills its N(0, I) prior. Prior draws that
land in the holes decode to fragments: on the 2-core run of pipelines/zinc_vae.toml, 19% of
N(0, I) draws decoded to 5 heavy atoms or fewer, against none of the draws near encoded
molecules. Drawing z from a full-covariance Gaussian fitted to the posterior means (ex-post
density estimation, Ghosh et al. 2020, "From variational to deterministic autoencoders") keeps
samples where the decoder was trained; training is unchanged (the KL term still uses N(0, I)).

Searches move in whitened coordinates u (z = mean + L u) inside a norm bound, `radius`: a
quantile of the training latents' whitened norms, so proposals stay near the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from latentsci.errors import InputDataError


@dataclass(frozen=True)
class LatentGaussian:
    """N(mean, L L^T) over flat latent rows (L the Cholesky factor), and the whitened radius
    that bounds a search (infinite until one is set)."""

    mean: np.ndarray
    scale_tril: np.ndarray
    radius: float = float("inf")

    @classmethod
    def fit(cls, z: np.ndarray, ridge: float = 1e-6) -> LatentGaussian:
        """Sample mean and covariance of the finite rows of z (n, d), more rows than d; a small
        ridge keeps L defined (what the samplers draw from)."""
        z = _finite(z)
        if len(z) <= z.shape[1]:
            raise InputDataError(f"fitting a {z.shape[1]}-dimensional latent Gaussian needs more "
                                 f"than {z.shape[1]} encoded items, got {len(z)}")
        cov = np.cov(z, rowvar=False) + ridge * np.eye(z.shape[1])
        return cls(z.mean(axis=0), np.linalg.cholesky(cov))

    @classmethod
    def shrunk(cls, z: np.ndarray, quantile: float = 0.99) -> LatentGaussian:
        """Ledoit-Wolf covariance (sound with a few thousand rows in 64-d, or fewer rows than
        d), bounded by the `quantile` of z's whitened norms (what a search moves in)."""
        from sklearn.covariance import LedoitWolf

        z = _finite(z)
        if len(z) < 2:
            raise InputDataError(f"a latent Gaussian needs 2 or more encoded items, got {len(z)}")
        covariance = LedoitWolf().fit(z).covariance_
        scale = np.linalg.cholesky(covariance + 1e-9 * np.eye(z.shape[1]))
        return cls.with_radius(z.mean(axis=0), scale, z, quantile)

    @classmethod
    def with_radius(cls, mean: np.ndarray, scale_tril: np.ndarray, z: np.ndarray | None,
                    quantile: float = 0.99) -> LatentGaussian:
        """A given Gaussian, bounded by the quantile of z's whitened norms (sqrt(d)+3 without z)."""
        base = cls(np.asarray(mean, float), np.asarray(scale_tril, float))
        if z is None or len(z) == 0:
            return cls(base.mean, base.scale_tril, float(np.sqrt(len(base.mean)) + 3.0))
        norms = np.linalg.norm(base.whiten(z), axis=1)
        return cls(base.mean, base.scale_tril, float(np.quantile(norms, quantile)))

    @classmethod
    def from_store(cls, store_path: str | Path, split: str | None = "train",
                   limit: int = 20000, seed: int = 0) -> LatentGaussian:
        """`fit` to up to `limit` random rows of a latent store (of `split`, when it has splits)."""
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

    @property
    def dim(self) -> int:
        """Latent size."""
        return len(self.mean)

    def sample(self, n: int, generator=None):
        """n draws of z (n, d) as a float32 torch tensor (`generator`: a torch.Generator)."""
        import torch

        eps = torch.randn(n, len(self.mean), generator=generator, dtype=torch.float64)
        # torch.tensor copies: arrays that come through Ray's object store are read-only
        z = torch.tensor(self.mean) + eps @ torch.tensor(self.scale_tril).T
        return z.float()

    def whiten(self, z: np.ndarray) -> np.ndarray:
        """u with z = mean + L u."""
        from scipy.linalg import solve_triangular

        centred = np.asarray(z, float) - self.mean
        return solve_triangular(self.scale_tril, centred.T, lower=True).T

    def colour(self, u: np.ndarray) -> np.ndarray:
        """z rows of whitened u rows."""
        return (self.mean + np.asarray(u, float) @ self.scale_tril.T).astype(np.float32)

    def bound(self, u: np.ndarray) -> np.ndarray:
        """u rows pulled back inside the norm bound."""
        norms = np.linalg.norm(u, axis=1, keepdims=True)
        return u * np.minimum(1.0, self.radius / np.maximum(norms, 1e-12))


def _finite(z: np.ndarray) -> np.ndarray:
    """The rows of z (as float64) with no NaN or inf."""
    z = np.asarray(z, dtype=np.float64)
    return z[np.isfinite(z).all(axis=1)]
