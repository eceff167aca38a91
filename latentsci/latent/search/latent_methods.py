"""The latent optimisers by name, their typed settings from plain options, and the latent space
they search built from a codec and the items it was trained on."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import fields, is_dataclass
from typing import Any

import numpy as np

from latentsci.latent.codec import Codec
from latentsci.latent.search.bayesian import BOConfig, LatentBO
from latentsci.latent.search.gradient import GradientAscent, GradientConfig
from latentsci.latent.search.latent_random import LatentDraws, LatentRandom
from latentsci.latent.gaussian import LatentGaussian
from latentsci.latent.search.latent_space import Guard, LatentSpace
from latentsci.latent.search.objective import OracleError

LATENT_METHODS: dict[str, tuple[type, type]] = {
    "latent_random": (LatentRandom, LatentDraws),
    "gradient": (GradientAscent, GradientConfig),
    "bo": (LatentBO, BOConfig),
}


def typed_config(kind: type, options: dict[str, Any], where: str) -> Any:
    """A settings dataclass from plain options (nested ones from dicts); one line naming an
    unknown key."""
    known = {f.name: f for f in fields(kind)}
    values = {}
    for key, value in options.items():
        if key not in known:
            raise OracleError(f"{where}: unknown option {key!r} (options: {', '.join(known)})")
        factory = known[key].default_factory
        default = factory() if callable(factory) else known[key].default
        if is_dataclass(default):
            if not isinstance(value, dict):
                raise OracleError(f"{where}.{key}: expected a table of options, got {value!r}")
            values[key] = typed_config(type(default), value, f"{where}.{key}")
        else:
            values[key] = _typed(value, default, f"{where}.{key}")
    return kind(**values)


def _typed(value: Any, default: Any, where: str) -> Any:
    """An option's value in its default's type (an int where a float is wanted is fine)."""
    kind = type(default)
    if kind is bool or default is None:
        ok = kind is not bool or isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if not ok:
        raise OracleError(f"{where}: expected {kind.__name__}, got {value!r}")
    return float(value) if kind is float else value


def latent_optimiser(method: str, space: LatentSpace, seed: int,
                     origin: np.ndarray | None = None, options: dict | None = None):
    """A latent optimiser by name, searching `space` (from `origin`'s whitened latent if given)."""
    if method not in LATENT_METHODS:
        raise OracleError(f"unknown latent method {method!r} (latent methods: "
                          f"{', '.join(LATENT_METHODS)})")
    optimiser, settings = LATENT_METHODS[method]
    return optimiser(space, seed, origin, typed_config(settings, options or {}, method))


def fitted_gaussian(codec: Codec, items: Sequence,
                    gaussian: tuple[np.ndarray, np.ndarray] | None = None,
                    fit_size: int = 2000, seed: int = 0) -> LatentGaussian:
    """A Gaussian fitted to up to `fit_size` of the items, encoded (or the given (mean,
    scale_tril), e.g. the one saved beside a model), bounded by their whitened norms."""
    rng = np.random.default_rng(seed)
    picked = [items[i] for i in np.sort(rng.permutation(len(items))[:fit_size])]
    z = codec.encode(picked).z
    z = z[np.isfinite(z).all(axis=1)]
    if gaussian is None:
        return LatentGaussian.shrunk(z)
    return LatentGaussian.with_radius(gaussian[0], gaussian[1], z)


def latent_space(codec: Codec, items: Sequence, canonical: Callable[[str], Any],
                 guard: Guard | None = None, gaussian: tuple[np.ndarray, np.ndarray] | None = None,
                 fit_size: int = 2000, seed: int = 0) -> LatentSpace:
    """The space around the items (see `fitted_gaussian`), behind an optional guard."""
    return LatentSpace(codec, fitted_gaussian(codec, items, gaussian, fit_size, seed),
                       canonical, guard)
