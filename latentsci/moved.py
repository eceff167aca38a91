"""Old module paths that users' notebooks, saved MLflow models and checkpoints still name.

The code moved into domain packages (latentsci.molecules, latentsci.fields subpackages); each
old dotted path here is an alias of its new module, not a copy: `import latentsci.molecules.vae.model`
returns `latentsci.molecules.vae.model` itself, so classes compare equal and pickles saved
under the old names load. New code imports the new paths only (tests/test_layout.py checks).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys

# old module -> its home now
MOVED: dict[str, str] = {
    "latentsci.chem": "latentsci.molecules.chem",
    "latentsci.chem.fingerprints": "latentsci.molecules.chem.fingerprints",
    "latentsci.chem.molecules": "latentsci.molecules.chem.molecules",
    "latentsci.chem.splits": "latentsci.molecules.chem.splits",
    "latentsci.fields.autoencoder": "latentsci.fields.networks.autoencoder",
    "latentsci.molecules.vae.aggregate": "latentsci.latent.gaussian",
    "latentsci.fields.denoiser": "latentsci.fields.networks.denoiser",
    "latentsci.fields.field_checkpoint": "latentsci.fields.networks.checkpoint",
    "latentsci.fields.field_store": "latentsci.fields.data.writer",
    "latentsci.fields.flow_matching": "latentsci.fields.networks.flow_matching",
    "latentsci.fields.gray_scott": "latentsci.fields.solvers.gray_scott",
    "latentsci.fields.navier_stokes": "latentsci.fields.solvers.navier_stokes",
    "latentsci.fields.registry": "latentsci.fields.networks.registry",
    "latentsci.fields.rollout": "latentsci.fields.forecast.rollout",
    "latentsci.fields.simulate": "latentsci.fields.solvers.simulate",
    "latentsci.fields.sources": "latentsci.fields.data.sources",
    "latentsci.fields.spectral": "latentsci.fields.solvers.spectral",
    "latentsci.fields.surrogate": "latentsci.fields.networks.surrogate",
    "latentsci.fields.well": "latentsci.fields.data.well",
    "latentsci.ingest": "latentsci.molecules.ingest.table",
    "latentsci.metrics": "latentsci.molecules.metrics",
    "latentsci.metrics.filters": "latentsci.molecules.metrics.filters",
    "latentsci.metrics.moses": "latentsci.molecules.metrics.moses",
    "latentsci.metrics.similarity": "latentsci.molecules.metrics.similarity",
    "latentsci.models": "latentsci.molecules.vae",
    "latentsci.models.aggregate": "latentsci.latent.gaussian",
    "latentsci.models.batching": "latentsci.molecules.vae.batching",
    "latentsci.models.checkpoint": "latentsci.molecules.vae.checkpoint",
    "latentsci.models.codec": "latentsci.molecules.codec",
    "latentsci.models.decoder": "latentsci.molecules.vae.decoder",
    "latentsci.models.encoder": "latentsci.molecules.vae.encoder",
    "latentsci.models.factory": "latentsci.molecules.vae.factory",
    "latentsci.models.featurize": "latentsci.molecules.vae.featurize",
    "latentsci.models.prior": "latentsci.molecules.vae.prior",
    "latentsci.models.property_head": "latentsci.molecules.vae.property_head",
    "latentsci.models.sampling": "latentsci.molecules.vae.sampling",
    "latentsci.models.schedules": "latentsci.molecules.vae.schedules",
    "latentsci.models.selfies_vocab": "latentsci.molecules.vae.selfies_vocab",
    "latentsci.models.shipped": "latentsci.molecules.vae.shipped",
    "latentsci.models.vae": "latentsci.molecules.vae.model",
    "latentsci.molecule_tasks": "latentsci.molecules.tasks",
    "latentsci.sources": "latentsci.molecules.ingest",
    "latentsci.sources.smiles": "latentsci.molecules.ingest.files",
    "latentsci.training": "latentsci.molecules.vae",
    "latentsci.training.vae_steps": "latentsci.molecules.vae.steps",
    "latentsci.training.vae_train": "latentsci.molecules.vae.train",
}


class _Alias(importlib.abc.Loader):
    """Loads an old path by importing the new module and registering it under both names."""

    def __init__(self, target: str):
        self.target = target
        self.spec = None

    def create_module(self, spec):
        module = importlib.import_module(self.target)
        self.spec = module.__spec__  # the import system overwrites it with the alias's spec
        return module

    def exec_module(self, module) -> None:
        """Nothing to run (the new module ran when imported); give it its own spec back."""
        module.__spec__ = self.spec


class _MovedFinder(importlib.abc.MetaPathFinder):
    """Answers imports of moved paths before the file system is searched."""

    def find_spec(self, fullname, path=None, target=None):
        target_name = new_name(fullname)
        if target_name is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _Alias(target_name))


def new_name(old: str) -> str | None:
    """Where a moved module lives now: listed, or inside a moved package (so a module is never
    loaded twice under two names); None for modules that did not move."""
    if old in MOVED:
        return MOVED[old]
    package, _, leaf = old.rpartition(".")
    while package:
        if package in MOVED:
            return f"{MOVED[package]}.{old[len(package) + 1:]}"
        package, _, leaf = package.rpartition(".")
    return None


def install() -> None:
    """Put the finder first on sys.meta_path (once)."""
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _MovedFinder())
