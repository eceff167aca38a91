"""A user's scikit-learn model as an objective: it scores molecules from their Morgan bits
(radius 2, 2,048 bits by default), a regressor by `predict`, a classifier by the probability of
its last class. The model file is skops' format, never a pickle: loading refuses any type outside
scikit-learn, numpy and scipy, so a file cannot choose what code runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from rdkit import Chem, DataStructs
from rdkit.Chem import rdFingerprintGenerator

TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "builtins.")


def load_model(path: str | Path):
    """The estimator in a .skops file, refusing types outside the trusted packages."""
    import skops.io as sio

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such model file")
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # noqa: BLE001  (a corrupt file may raise anything)
        raise ValueError(f"{path}: not a skops model file ({type(exc).__name__})") from None
    outside = [t for t in untrusted if not t.startswith(TRUSTED_PREFIXES)]
    if outside:
        raise ValueError(f"{path}: refused, it holds types outside scikit-learn, numpy and "
                         f"scipy: {', '.join(outside)}")
    model = sio.load(path, trusted=untrusted)
    if not hasattr(model, "predict"):
        raise ValueError(f"{path}: holds a {type(model).__name__}, which has no predict")
    return model


@lru_cache(maxsize=8)
def _cached(path: str, stamp: float):
    """One load per process and file version."""
    return load_model(path)


def morgan_bits(smiles: list[str], radius: int = 2, bits: int = 2048) -> np.ndarray:
    """Morgan bit vectors of molecules as a (n, bits) array."""
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=bits)
    out = np.zeros((len(smiles), bits), dtype=np.float32)
    for i, text in enumerate(smiles):
        mol = Chem.MolFromSmiles(text)
        if mol is None:
            raise ValueError(f"not a valid SMILES: {text!r}")
        DataStructs.ConvertToNumpyArray(generator.GetFingerprint(mol), out[i])
    return out


@dataclass(frozen=True)
class FingerprintModel:
    """Scores of a batch of SMILES by a scikit-learn model on their Morgan bits."""

    path: str
    radius: int = 2
    bits: int = 2048

    def __call__(self, smiles: list[str]) -> list[float]:
        """Predictions (regressor) or last-class probabilities (classifier)."""
        model = _cached(self.path, Path(self.path).stat().st_mtime)
        x = morgan_bits(list(smiles), self.radius, self.bits)
        if hasattr(model, "predict_proba"):
            return model.predict_proba(x)[:, -1].astype(float).tolist()
        return np.asarray(model.predict(x), dtype=float).reshape(-1).tolist()
