"""The molecule model that ships with the project: where it is, and its fitted latent Gaussian.

`data/models/zinc-vae-v2/` holds a checkpoint (model.pt + meta.json, loaded weights-only), the
Gaussian fitted to its encoded training molecules (latent_gaussian.npz) and MODEL_CARD.md with
its data, command and metrics. CLI verbs that take `--model` use it when the flag is left out.
"""

from __future__ import annotations

from pathlib import Path

from latentsci.errors import InputDataError

SHIPPED_NAME = "zinc-vae-v2"
LATENT_FILE = "latent_gaussian.npz"  # the fitted Gaussian beside a model's checkpoint
MODELS_DIR = Path(__file__).resolve().parents[3] / "data" / "models"


def shipped_model_dir() -> Path:
    """The shipped model's folder, or one line saying it is missing from this checkout."""
    folder = MODELS_DIR / SHIPPED_NAME
    if not (folder / "meta.json").is_file():
        raise InputDataError(f"{folder}: the shipped molecule model is missing from this "
                             f"checkout; pass --model with a trained model folder")
    return folder


def fitted_latent_file(model_dir: str | Path) -> Path | None:
    """The fitted latent Gaussian saved beside a model, if there is one."""
    path = Path(model_dir) / LATENT_FILE
    return path if path.is_file() else None
