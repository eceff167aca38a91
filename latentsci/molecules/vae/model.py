"""MoleculeVAE: an injected encoder, decoder and prior, with the loss pieces as named methods.

    loss = recon + beta * sum_d max(KL_d, free_bits) + property_weight * MSE(head(mu), y)

recon is the token cross-entropy summed over a sequence and averaged over molecules; KL_d is the
batch-mean KL of latent dimension d (free bits keep each dimension from collapsing below it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from latentsci.inference import inference
from latentsci.molecules.vae.batching import MoleculeBatch
from latentsci.molecules.vae.checkpoint import (
    ModelFileError,
    read_checkpoint,
    upgrade_property_head,
)
from latentsci.molecules.vae.factory import MoleculeVAEConfig, build_parts

if TYPE_CHECKING:
    from latentsci.latent.gaussian import LatentGaussian


@dataclass
class VAELoss:
    """The loss and its parts, detached parts ready for logging."""

    total: torch.Tensor
    recon: float
    kl: float
    kl_per_dim: torch.Tensor
    properties: float
    token_accuracy: float


def drop_words(batch: MoleculeBatch, rate: float) -> MoleculeBatch:
    """The batch with a random share of decoder inputs after BOS set to padding (a zero
    embedding); targets are unchanged."""
    tokens = batch.tokens_in
    drop = torch.rand(tokens.shape, device=tokens.device) < rate
    drop[:, 0] = False
    return MoleculeBatch(batch.graphs, tokens.masked_fill(drop, 0), batch.targets,
                         batch.properties)


class MoleculeVAE(nn.Module):
    """Encoder (graph -> mu, logvar), decoder (z, tokens -> logits), prior, optional property head."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, prior: nn.Module,
                 property_head: nn.Module | None = None):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.prior = prior
        self.property_head = property_head
        self.vocab = None  # set by the factory's callers / load: needed only for SMILES in and out
        self.config = None

    def forward(self, batch: MoleculeBatch, beta: float, free_bits: float = 0.0,
                property_weight: float = 1.0, word_dropout: float = 0.0) -> VAELoss:
        """The training loss (forward, so DistributedDataParallel syncs its gradients)."""
        return self.loss(batch, beta, free_bits, property_weight, word_dropout)

    def encode_batch(self, batch: MoleculeBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """mu and logvar of q(z | molecule)."""
        g = batch.graphs
        return self.encoder(g.x, g.edge_index, g.edge_attr, g.batch)

    @staticmethod
    def reparametrize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """z = mu + sigma * eps, differentiable in mu and logvar."""
        return mu + torch.randn_like(mu) * (0.5 * logvar).exp()

    def recon_per_molecule(self, z: torch.Tensor,
                           batch: MoleculeBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Token cross-entropy of each molecule given its z (nats, padding ignored), and the
        number of its tokens the teacher-forced decoder gets right."""
        logits = self.decoder(batch.tokens_in, z)
        mask = batch.targets != 0
        ce = F.cross_entropy(logits.transpose(1, 2), batch.targets, reduction="none")
        correct = ((logits.argmax(-1) == batch.targets) & mask).sum(dim=1)
        return (ce * mask).sum(dim=1), correct

    def recon_loss(self, z: torch.Tensor, batch: MoleculeBatch) -> tuple[torch.Tensor, float]:
        """Mean token cross-entropy per molecule, and teacher-forced token accuracy."""
        per_molecule, correct = self.recon_per_molecule(z, batch)
        tokens = int((batch.targets != 0).sum())
        return per_molecule.mean(), float(correct.sum()) / max(tokens, 1)

    def kl_loss(self, mu: torch.Tensor, logvar: torch.Tensor,
                free_bits: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed KL with each dimension floored at `free_bits`, and the raw KL per dimension."""
        per_dim = self.prior.kl_per_dim(mu, logvar)
        return per_dim.clamp(min=free_bits).sum(), per_dim.detach()

    def property_loss(self, mu: torch.Tensor, batch: MoleculeBatch) -> torch.Tensor:
        """MSE of the property head from mu on standardised targets (zero without a head)."""
        if self.property_head is None or batch.properties is None:
            return mu.new_zeros(())
        target = self.property_head.standardise(batch.properties)
        known = torch.isfinite(target)
        if not known.any():
            return mu.new_zeros(())
        return F.mse_loss(self.property_head(mu)[known], target[known])

    def loss(self, batch: MoleculeBatch, beta: float, free_bits: float = 0.0,
             property_weight: float = 1.0, word_dropout: float = 0.0) -> VAELoss:
        """The full training objective for one batch; `word_dropout` blanks that share of the
        decoder's input tokens in training (Bowman et al. 2016), so it must read z."""
        mu, logvar = self.encode_batch(batch)
        z = self.reparametrize(mu, logvar) if self.training else mu
        if self.training and word_dropout > 0:
            batch = drop_words(batch, word_dropout)
        recon, accuracy = self.recon_loss(z, batch)
        kl, per_dim = self.kl_loss(mu, logvar, free_bits)
        props = self.property_loss(mu, batch)
        total = recon + beta * kl + property_weight * props
        return VAELoss(total, float(recon.detach()), float(per_dim.sum()), per_dim,
                       float(props.detach()), accuracy)

    # ---- SMILES in, SMILES out ---------------------------------------------------------------
    @classmethod
    def load(cls, path_or_uri: str, tracking_uri: str | None = None) -> MoleculeVAE:
        """A saved model from a folder, or from MLflow (`runs:/ID/checkpoint`) on the tracking
        server given (default: MLFLOW_TRACKING_URI)."""
        if "://" in str(path_or_uri) or str(path_or_uri).startswith(("runs:", "models:")):
            import mlflow

            path_or_uri = mlflow.artifacts.download_artifacts(artifact_uri=str(path_or_uri),
                                                              tracking_uri=tracking_uri)
        model, _ = load_checkpoint(path_or_uri)
        return model.eval()

    @inference
    def encode(self, smiles: list[str], batch_size: int = 256,
               return_std: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Posterior means (and std) of z; rows of molecules the model cannot read are NaN."""
        from latentsci.molecules.chem import Reject
        from latentsci.molecules.vae.batching import collate, make_example

        mu_out = np.full((len(smiles), self.prior.latent_dim), np.nan, dtype=np.float32)
        std_out = mu_out.copy()
        examples = [make_example(s, None) for s in smiles]  # the encoder reads graphs only
        rows = [i for i, e in enumerate(examples) if not isinstance(e, Reject)]
        device = next(self.parameters()).device
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            mu, logvar = self.encode_batch(collate([examples[i] for i in chunk]).to(device))
            mu_out[chunk] = mu.float().cpu().numpy()
            std_out[chunk] = (0.5 * logvar).exp().float().cpu().numpy()
        return (mu_out, std_out) if return_std else mu_out

    @inference
    def decode(self, z: np.ndarray | torch.Tensor, temperature: float = 0.0,
               generator: torch.Generator | None = None) -> list[str]:
        """A molecule for every z (SELFIES decoding cannot produce an invalid one)."""
        from latentsci.molecules.vae.sampling import decode_tokens

        device = next(self.parameters()).device
        z = torch.as_tensor(np.asarray(z, dtype=np.float32), device=device)
        atoms = torch.tensor(self.vocab.atom_tokens())
        tokens = decode_tokens(self.decoder, z, self.vocab.max_len, temperature, generator,
                               first_allowed=atoms)
        return [self.vocab.decode(row) for row in tokens.cpu().tolist()]

    @inference
    def predict_properties(self, z: np.ndarray | torch.Tensor) -> np.ndarray:
        """The property head's predictions in the properties' units (columns: config.properties)."""
        if self.property_head is None:
            raise ValueError("this model has no property head (train it with model.properties)")
        device = next(self.parameters()).device
        z = torch.as_tensor(np.asarray(z, dtype=np.float32), device=device)
        return self.property_head.predict(z).float().cpu().numpy()

    def sample(self, n: int, temperature: float = 0.0, seed: int | None = None,
               latent: LatentGaussian | None = None) -> list[str]:
        """n molecules decoded from draws of z: from the prior, or from `latent` (anything with
        .sample(n, generator), e.g. a LatentGaussian fitted to encoded molecules)."""
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        source = self.prior if latent is None else latent
        return self.decode(source.sample(n, generator=generator), temperature, generator)


def build_molecule_vae(config: MoleculeVAEConfig, vocab_size: int) -> MoleculeVAE:
    """Encoder, decoder, prior and (if properties are named) a property head, wired together."""
    model = MoleculeVAE(*build_parts(config, vocab_size))
    model.config = config
    return model


def load_checkpoint(folder: Path, map_location: str = "cpu") -> tuple[MoleculeVAE, dict]:
    """Rebuild the model from meta.json and load its weights with weights_only=True."""
    config, vocab, state, meta = read_checkpoint(folder, map_location)
    model = build_molecule_vae(config, len(vocab))
    try:
        model.load_state_dict(upgrade_property_head(state, model))
    except RuntimeError as exc:
        raise ModelFileError(f"{folder}/model.pt: cannot load weights: "
                             f"{str(exc).splitlines()[0]}") from None
    model.vocab = vocab
    return model, meta
