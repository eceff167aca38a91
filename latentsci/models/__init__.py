"""Models as injected parts (PyG style): encoder + decoder + prior, samplers kept apart."""

from latentsci.models.factory import MoleculeVAEConfig, build_molecule_vae
from latentsci.models.vae import MoleculeVAE

__all__ = ["MoleculeVAE", "MoleculeVAEConfig", "build_molecule_vae"]
