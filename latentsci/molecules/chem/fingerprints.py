"""Morgan count fingerprints as dense float vectors: a model-free baseline latent space."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from rdkit import Chem
from rdkit.Chem import rdFingerprintGenerator


@lru_cache(maxsize=8)
def _generator(radius: int, n_bits: int):
    """Generators are costly to build and safe to reuse within a process."""
    return rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=n_bits)


def morgan_counts(smiles: list[str], radius: int = 2, n_bits: int = 128) -> np.ndarray:
    """(n, n_bits) float32 Morgan count vectors; an unparsable SMILES gives a zero row."""
    generator = _generator(radius, n_bits)
    out = np.zeros((len(smiles), n_bits), dtype=np.float32)
    for i, text in enumerate(smiles):
        mol = Chem.MolFromSmiles(text)
        if mol is not None:
            out[i] = generator.GetCountFingerprintAsNumPy(mol)
    return out
