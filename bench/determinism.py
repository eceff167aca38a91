"""Deterministic single-process training outputs, as weight digests: run under two trees (e.g. a
checkout before a refactor and after) and compare the printed lines.

    PYTHONPATH=OLD_TREE python bench/determinism.py
    PYTHONPATH=. python bench/determinism.py

Trains a tiny molecule VAE and a tiny field autoencoder for two epochs on one Ray Train worker
(seeded, CPU) and prints the SHA-256 of each model's weights, with its last loss.
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def digest(state: dict) -> str:
    """SHA-256 over a state dict's tensors, in key order."""
    h = hashlib.sha256()
    for key in sorted(state):
        h.update(key.encode())
        h.update(state[key].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def molecule_run(tmp: Path) -> str:
    """Two epochs of a tiny VAE on 128 bundled training molecules."""
    from latentsci.molecules.vae import MoleculeVAE, MoleculeVAEConfig
    from latentsci.molecules.vae.train import TrainConfig, train_molecule_vae

    lines = (ROOT / "data/molecules/zinc_train_86k.smi").read_text().split()
    smiles = [s for s in lines if not s.lower().startswith("smiles")][:128]
    config = TrainConfig(model=MoleculeVAEConfig(latent_dim=8, encoder_hidden=16,
                                                 encoder_layers=2, decoder_hidden=32,
                                                 decoder_layers=1),
                         epochs=2, batch_size=32, lr=2e-3, num_workers=1,
                         validation_molecules=0)
    history = train_molecule_vae(smiles, None, smiles[:8], config, "vae", tmp / "state",
                                 tmp / "model")
    model = MoleculeVAE.load(str(tmp / "model"))
    return f"molecule_vae {digest(model.state_dict())} loss {history[-1]['loss']:.6f}"


def field_run(tmp: Path) -> str:
    """Two epochs of a tiny autoencoder on smooth random waves."""
    from latentsci.fields.data.writer import create_field_store, write_block
    from latentsci.fields.networks.autoencoder import FieldAutoencoderConfig, build_field_autoencoder
    from latentsci.fields.networks.checkpoint import AUTOENCODER_KIND
    from latentsci.fields.networks.registry import load_model, save_model
    from latentsci.fields.training import FieldTrainConfig, train_field_model

    x = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    rng = np.random.default_rng(0)
    data = np.stack([[[np.sin(x[:, None] * a + t) * np.cos(x[None, :] * b)] for t in range(3)]
                     for a, b in rng.integers(1, 3, (4, 2))]).astype("float32")
    create_field_store(tmp / "f.zarr", 4, np.arange(3.0), ["w"], (16, 16), ["viscosity"], 4)
    write_block(tmp / "f.zarr", 0, data, np.ones(4, bool), {"viscosity": np.ones(4)})
    torch.manual_seed(0)
    model = build_field_autoencoder(FieldAutoencoderConfig(channels=1, width=8, levels=2,
                                                           blocks=1, latent_channels=2,
                                                           upsample="nearest"))
    initial = save_model(tmp / "initial", model, {"kind": AUTOENCODER_KIND})
    history = train_field_model(initial, {"dataset": "frames", "kwargs": {
        "fields_path": str(tmp / "f.zarr"), "trajectories": [0, 1, 2, 3]}},
        FieldTrainConfig(epochs=2, batch_size=4, num_workers=1), "ae", tmp / "state",
        tmp / "model")
    trained, _ = load_model(tmp / "model")
    return f"field_autoencoder {digest(trained.state_dict())} loss {history[-1]['loss']:.6f}"


def main() -> int:
    """Print one digest line per model."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    for run in (molecule_run, field_run):
        with tempfile.TemporaryDirectory() as tmp:
            print(run(Path(tmp)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
