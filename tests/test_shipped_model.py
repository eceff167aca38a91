"""The molecule model shipped in data/models: it loads weights-only, round-trips molecules, matches
its card, and the CLI samples from it with no --model."""

import json
import subprocess

import numpy as np
import torch
from rdkit import Chem

from latentsci.molecules.vae import MoleculeVAE
from latentsci.latent.gaussian import LatentGaussian
from latentsci.molecules.vae.shipped import LATENT_FILE, shipped_model_dir

from conftest import ROOT, cli_env, latentsci_cmd

HELD_OUT = "heldout_sample.smi"  # test-split molecules shipped beside the model


def _card() -> dict:
    return json.loads((shipped_model_dir() / "card.json").read_text())


def test_files_are_small_and_load_weights_only():
    folder = shipped_model_dir()
    assert sum(p.stat().st_size for p in folder.iterdir()) < 25 * 2**20
    state = torch.load(folder / "model.pt", map_location="cpu", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    model = MoleculeVAE.load(str(folder))
    assert model.config.model_dump() == _card()["model_config"]
    meta = json.loads((folder / "meta.json").read_text())
    assert "optimizer" not in " ".join(p.name for p in folder.iterdir())
    assert meta["config"] == _card()["model_config"]


def test_round_trip_of_held_out_molecules():
    model = MoleculeVAE.load(str(shipped_model_dir()))
    # test-split molecules the card ships (never trained on): the card's greedy round trip
    lines = (shipped_model_dir() / HELD_OUT).read_text().splitlines()[:200]
    smiles = [Chem.CanonSmiles(s) for s in lines]
    z = model.encode(smiles)
    assert z.shape == (200, model.prior.latent_dim) and np.isfinite(z).all()
    decoded = [Chem.CanonSmiles(s) for s in model.decode(z)]
    exact = np.mean([a == b for a, b in zip(smiles, decoded)])
    # 200 of the card's 1,000: within 4 binomial standard errors of its rate
    rate = _card()["metrics"]["recon_accuracy"]
    assert abs(exact - rate) <= 4 * np.sqrt(rate * (1 - rate) / 200) + 1e-9
    assert np.isnan(model.encode(["not a molecule"])).all()


def test_fitted_gaussian_sits_on_the_encoded_training_molecules():
    gaussian = LatentGaussian.load(shipped_model_dir() / LATENT_FILE)
    model = MoleculeVAE.load(str(shipped_model_dir()))
    assert gaussian.mean.shape == (model.prior.latent_dim,)
    samples = model.sample(50, temperature=1.0, seed=0, latent=gaussian)
    heavy = [Chem.MolFromSmiles(s).GetNumHeavyAtoms() for s in samples]
    assert min(heavy) >= 5 and np.median(heavy) >= 15  # drug-like sizes, no fragments


def test_cli_samples_from_the_shipped_model_by_default(ray_cluster, tmp_path):
    out = subprocess.run(latentsci_cmd("sample", "-n", "10", "--out", str(tmp_path / "s.smi"),
                                       "--address", ray_cluster.address),
                         cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    drawn = (tmp_path / "s.smi").read_text().splitlines()
    assert len(drawn) == 10 and all(Chem.MolFromSmiles(s) is not None for s in drawn)
    helped = subprocess.run(latentsci_cmd("sample", "--help"), env=cli_env(),
                            capture_output=True, text=True, timeout=60)
    assert "data/models/zinc-vae-v2" in helped.stdout
