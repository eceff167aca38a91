"""The molecule VAE: a graph encoder and a SELFIES decoder as injected parts (PyG style), its
training, checkpoints, samplers and the fitted latent Gaussian it samples from."""

from latentsci.molecules.vae.factory import MoleculeVAEConfig
from latentsci.molecules.vae.model import MoleculeVAE, build_molecule_vae, load_checkpoint

__all__ = ["MoleculeVAE", "MoleculeVAEConfig", "build_molecule_vae", "load_checkpoint"]
