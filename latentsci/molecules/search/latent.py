"""The molecule side of latent search: a molecule model's latent space (its saved Gaussian, or
one fitted to the library) with the caps and OOD gate outside PMO mode, and the latent methods
registered with the benchmark harness (PMO mode: no gate, no caps)."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from latentsci.latent.search.harness import register_method
from latentsci.latent.search.latent_methods import LATENT_METHODS, fitted_gaussian, latent_optimiser
from latentsci.latent.search.latent_space import Guard, LatentSpace


@functools.lru_cache(maxsize=4)
def molecule_codec(model: str | None):
    """The codec of a model folder or MLflow URI (the shipped model when None), once a process."""
    from latentsci.latent.codec import load_codec
    from latentsci.molecules.vae.shipped import shipped_model_dir

    return load_codec(model or str(shipped_model_dir()))


def _saved_gaussian(codec) -> tuple[np.ndarray, np.ndarray] | None:
    """The Gaussian fitted to the model's encoded training molecules, when saved beside it."""
    from latentsci.latent.gaussian import LatentGaussian
    from latentsci.molecules.vae.shipped import fitted_latent_file

    source = Path(codec.source) if codec.source else None
    found = fitted_latent_file(source) if source is not None and source.is_dir() else None
    if found is None:
        return None
    saved = LatentGaussian.load(found)
    return saved.mean, saved.scale_tril


@functools.lru_cache(maxsize=4)
def _gaussian(model: str | None, library: tuple[str, ...]):
    """The bounded Gaussian of a model over a library (cached: one encode per process)."""
    codec = molecule_codec(model)
    return fitted_gaussian(codec, list(library), _saved_gaussian(codec))


def molecule_space(model: str | None, library: list[str], guard: Guard | None = None) -> LatentSpace:
    """A molecule model's latent space around a library, behind an optional guard."""
    from latentsci.molecules.oracles import canonical_smiles

    gaussian = _gaussian(model, tuple(library))
    return LatentSpace(molecule_codec(model), gaussian, canonical_smiles, guard)


def _harness_method(method: str):
    """A harness builder of a latent method: options name the model (default: shipped)."""

    def build(seed: int, library: list[str], options: dict):
        options = dict(options)
        space = molecule_space(options.pop("model", None), library)
        return latent_optimiser(method, space, seed, options=options)

    return build


for _name in LATENT_METHODS:
    register_method(_name, _harness_method(_name))
