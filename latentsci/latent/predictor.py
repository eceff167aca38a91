"""A differentiable property predictor z -> y: its own small model, checkpoint and training.

Search moves z along the predictor's gradient, so `predict` keeps the autograd graph (no
no-grad path): `predictor.predict(z).sum().backward()` fills `z.grad`. It is fitted to any
store's columns (a property the store holds for its rows, or oracle labels gathered during a
search), standardised per column, with NaN targets left out of the loss. It knows neither
molecules nor fields; a molecule VAE's property head can seed it (latentsci.molecules.vae).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from latentsci.errors import InputDataError, LatentsciError
from latentsci.inference import inference
from latentsci.model_files import model_folder, read_model_meta

FORMAT = "latentsci.property_predictor"
FORMAT_VERSION = 1


class PredictorFileError(LatentsciError):
    """A folder that does not hold a latentsci property predictor."""


class PredictorConfig(BaseModel):
    """Shape of the predictor and how it is fitted."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    properties: list[str] = Field(min_length=1)
    hidden: int = Field(default=256, gt=0)
    layers: int = Field(default=2, ge=1)
    epochs: int = Field(default=200, gt=0)
    lr: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=1e-4, ge=0)
    batch_size: int = Field(default=256, gt=0)
    valid_fraction: float = Field(default=0.1, ge=0, lt=1)
    seed: int = 0


class PropertyPredictor(nn.Module):
    """An MLP from z to standardised properties, with the scale to undo it kept as buffers."""

    def __init__(self, latent_dim: int, config: PredictorConfig):
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        width = latent_dim
        for _ in range(config.layers):
            layers += [nn.Linear(width, config.hidden), nn.SiLU()]
            width = config.hidden
        self.net = nn.Sequential(*layers, nn.Linear(width, len(config.properties)))
        self.register_buffer("mean", torch.zeros(len(config.properties)))
        self.register_buffer("std", torch.ones(len(config.properties)))
        self.latent_dim = latent_dim

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Standardised predictions (what the loss compares)."""
        return self.net(z)

    def predict(self, z: torch.Tensor) -> torch.Tensor:
        """Predictions in the properties' own units, differentiable in z."""
        return self.net(z) * self.std + self.mean

    @inference
    def predict_numpy(self, z: np.ndarray) -> np.ndarray:
        """Predictions for rows of z, no gradient (reports, tables)."""
        return self.predict(torch.as_tensor(np.asarray(z, dtype=np.float32))).numpy()


@dataclass
class FitReport:
    """How the fit went: per-property RMSE and R^2 on the held-out rows, rows used."""

    rmse: dict[str, float]
    r2: dict[str, float]
    train_rows: int
    valid_rows: int


def _checked(z: np.ndarray, y: np.ndarray, config: PredictorConfig) -> tuple[np.ndarray, np.ndarray]:
    """Float arrays with matching rows; rows whose z is not finite dropped; one line if unusable."""
    z, y = np.asarray(z, dtype=np.float32), np.asarray(y, dtype=np.float32)
    y = y[:, None] if y.ndim == 1 else y
    if z.ndim != 2 or len(z) != len(y) or y.shape[1] != len(config.properties):
        raise InputDataError(f"predictor data: z {z.shape} and targets {y.shape} do not match "
                             f"{len(config.properties)} properties {config.properties}")
    keep = np.isfinite(z).all(axis=1) & np.isfinite(y).any(axis=1)
    if keep.sum() < 2:
        raise InputDataError(f"predictor data: {int(keep.sum())} usable rows (finite z and at "
                             "least one finite target); need 2 or more")
    return z[keep], y[keep]


def _r2(pred: np.ndarray, target: np.ndarray) -> float:
    """Coefficient of determination over the finite targets."""
    known = np.isfinite(target)
    if known.sum() < 2:
        return float("nan")
    residual = np.sum((pred[known] - target[known]) ** 2)
    total = np.sum((target[known] - target[known].mean()) ** 2)
    return float(1 - residual / total) if total > 0 else float("nan")


def fit_predictor(z: np.ndarray, y: np.ndarray, config: PredictorConfig,
                  start: PropertyPredictor | None = None) -> tuple[PropertyPredictor, FitReport]:
    """Fit (or refit, from `start`) a predictor on rows of z and targets y (NaN = unknown)."""
    z, y = _checked(z, y, config)
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(len(z))
    n_valid = int(round(config.valid_fraction * len(z))) if len(z) >= 10 else 0
    valid, train = order[:n_valid], order[n_valid:]
    torch.manual_seed(config.seed)
    model = start if start is not None else PropertyPredictor(z.shape[1], config)
    mean, std = np.nanmean(y[train], axis=0), np.nanstd(y[train], axis=0)
    model.mean.copy_(torch.as_tensor(np.nan_to_num(mean)))
    model.std.copy_(torch.as_tensor(np.where(np.isfinite(std) & (std > 1e-6), std, 1.0)))
    zt, yt = torch.from_numpy(z), (torch.from_numpy(y) - model.mean) / model.std
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr,
                                  weight_decay=config.weight_decay)
    model.train()
    for _ in range(config.epochs):
        shuffled = train[rng.permutation(len(train))]
        for s in range(0, len(shuffled), config.batch_size):
            rows = torch.from_numpy(shuffled[s : s + config.batch_size])
            target = yt[rows]
            known = torch.isfinite(target)
            loss = ((model(zt[rows]) - target.nan_to_num())[known] ** 2).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    model.eval()
    return model, _report(model, z, y, train, valid)


def _report(model: PropertyPredictor, z: np.ndarray, y: np.ndarray, train: np.ndarray,
            valid: np.ndarray) -> FitReport:
    """Held-out RMSE and R^2 per property (on the training rows when none were held out)."""
    rows = valid if len(valid) else train
    pred, target = model.predict_numpy(z[rows]), y[rows]
    names = model.config.properties
    rmse = {n: float(np.sqrt(np.nanmean((pred[:, i] - target[:, i]) ** 2)))
            for i, n in enumerate(names)}
    r2 = {n: _r2(pred[:, i], target[:, i]) for i, n in enumerate(names)}
    return FitReport(rmse, r2, len(train), len(valid))


def save_predictor(folder: str | Path, model: PropertyPredictor, extra: dict | None = None) -> Path:
    """model.pt (state dict) and meta.json (format, latent size, config) in a folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), folder / "model.pt")
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": "property_predictor",
            "latent_dim": model.latent_dim, "config": model.config.model_dump(), **(extra or {})}
    (folder / "meta.json").write_text(json.dumps(meta, indent=2))
    return folder


def load_predictor(folder: str | Path) -> PropertyPredictor:
    """A saved predictor, weights read with weights_only=True; one line if the folder is not one."""
    folder = model_folder(folder)
    meta = read_model_meta(folder, FORMAT, "a latentsci property predictor",
                           "a latentsci model", PredictorFileError)
    model = PropertyPredictor(int(meta["latent_dim"]), PredictorConfig(**meta["config"]))
    try:
        state = torch.load(Path(folder) / "model.pt", map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except (RuntimeError, OSError, ValueError) as exc:
        raise PredictorFileError(f"{folder}/model.pt: cannot load weights: "
                                 f"{str(exc).splitlines()[0]}") from None
    return model.eval()


def store_training_data(store_path: str | Path, properties: list[str],
                        split: str | None = "train") -> tuple[np.ndarray, np.ndarray]:
    """z rows and property columns of a latent store (its `split` rows when it has splits)."""
    from latentsci.store import LatentStore

    store = LatentStore.open(store_path)
    missing = [p for p in properties if p not in store.property_names]
    if missing:
        raise InputDataError(f"{store_path}: no column {missing[0]!r} (columns: "
                             f"{', '.join(store.property_names)})")
    rows = np.arange(len(store))
    if split is not None and "split" in store.property_names:
        rows = rows[store.column("split") == split]
    y = np.stack([np.asarray(store.column(p), dtype=np.float64)[rows] for p in properties], 1)
    return store.vectors(rows), y
