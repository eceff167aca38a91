"""The molecule VAE behind the codec contract: SMILES in, SMILES out, and each molecule's
reconstruction error as its token negative log-likelihood (nats) at the posterior mean."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from latentsci.inference import evaluating
from latentsci.latent.codec import (
    CodecError,
    Encoded,
    check_items,
    register_codec,
    to_latent,
    weights_sha256,
)
from latentsci.latent.domain import register_domain
from latentsci.molecules.domain import MOLECULE_PIECES
from latentsci.molecules.vae.model import MoleculeVAE

KIND = "molecule_vae"
VERSION = "1"


class MoleculeCodec:
    """A MoleculeVAE seen as a codec of SMILES strings."""

    kind = KIND
    version = VERSION

    def __init__(self, model: MoleculeVAE, source: str = "", weights: str = ""):
        if model.vocab is None:
            raise CodecError(f"{source or 'model'}: a molecule codec needs the model's vocabulary")
        self.model = model.eval()
        self.source = source
        self.weights_sha256 = weights
        self.latent_shape = (int(model.prior.latent_dim),)
        self.load_options: dict = {}

    def _examples(self, items: Sequence, tokens: bool) -> tuple[list, list[str | None]]:
        """Graph (and token) examples of the items, and why each unreadable one is not."""
        from latentsci.molecules.chem import Reject
        from latentsci.molecules.vae.batching import make_example

        examples, reasons = [], []
        for item in items:
            example = (make_example(item, self.model.vocab if tokens else None)
                       if isinstance(item, str) else Reject("not a SMILES string"))
            bad = isinstance(example, Reject)
            examples.append(None if bad else example)
            reasons.append(example.reason if bad else None)
        return examples, reasons

    def encode(self, items: Sequence[str]) -> Encoded:
        """Posterior means; a NaN row and the reason for each molecule the model cannot read."""
        check_items(items, self.source)
        items = list(items)  # positions, not labels (a pandas Series keeps its own index)
        _, reasons = self._examples(items, tokens=False)
        ok = [i for i, r in enumerate(reasons) if r is None]
        out = np.full((len(items), self.latent_shape[0]), np.nan, dtype=np.float32)
        if ok:
            out[ok] = self.model.encode([items[i] for i in ok])
        return Encoded(out, reasons)

    def decode(self, z: np.ndarray) -> list[str | None]:
        """Greedy decodes of latent rows (always valid molecules); None for a non-finite row (a
        rejected item's), which has no molecule."""
        z = to_latent(self, z)
        finite = np.isfinite(z).all(axis=1)
        decoded = iter(self.model.decode(z[finite]) if finite.any() else [])
        return [next(decoded) if ok else None for ok in finite]

    def reconstruction_error(self, items: Sequence[str], batch_size: int = 256) -> np.ndarray:
        """Token NLL of each molecule under the decoder at its posterior mean; NaN where the
        molecule cannot be encoded or its SELFIES uses tokens unseen in training."""
        from latentsci.molecules.vae.batching import collate

        check_items(items, self.source)
        items = list(items)
        examples, _ = self._examples(items, tokens=True)
        rows = [i for i, e in enumerate(examples) if e is not None]
        out = np.full(len(items), np.nan)
        device = next(self.model.parameters()).device
        with evaluating(self.model):
            for start in range(0, len(rows), batch_size):
                chunk = rows[start : start + batch_size]
                batch = collate([examples[i] for i in chunk]).to(device)
                mu, _ = self.model.encode_batch(batch)
                nll, _ = self.model.recon_per_molecule(mu, batch)
                out[chunk] = nll.double().cpu().numpy()
        return out


def load_molecule_codec(folder: Path, meta: dict, source: str,
                        map_location: str = "cpu") -> MoleculeCodec:
    """The codec of a saved molecule VAE (the checkpoint module rebuilds it weights-only)."""
    from latentsci.molecules.vae.model import load_checkpoint

    model, _ = load_checkpoint(folder, map_location=map_location)
    return MoleculeCodec(model, source, weights_sha256(folder))


register_codec(KIND, load_molecule_codec)
register_domain(KIND, MOLECULE_PIECES)
