"""What a search optimises: an objective scores a batch of items, each canonicalised first so a
repeat is recognised, and is found by name in a registry domains fill, or given as a user's
`module:function` entry point.

Domains register objectives when their module is imported (molecules: latentsci.molecules.oracles,
named in PROVIDERS as a string, so this package imports no domain until a name is looked up).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from latentsci.errors import LatentsciError

PROVIDERS = ("latentsci.molecules.oracles",  # modules that register the built-in objectives
             "latentsci.latent.search.combination")
PROBE_ITEMS = {"smiles": ["CCO", "c1ccccc1O"]}  # what a user oracle is checked on at load


class OracleError(LatentsciError):
    """An objective that cannot be found, loaded or called as an objective."""


@dataclass(frozen=True)
class Objective:
    """A named score of items: `score(canonical items) -> one float per item` (higher is
    better), `canonical(item) -> key or None` (None: not a valid item, scored 0 and free)."""

    name: str
    description: str
    score: Callable[[list[str]], Sequence[float]]
    canonical: Callable[[str], str | None]
    item_kind: str = "smiles"


_OBJECTIVES: dict[str, Callable[[], Objective]] = {}
_DESCRIPTIONS: dict[str, str] = {}
_CANONICAL: dict[str, Callable[[str], str | None]] = {}
_FAMILIES: dict[str, Callable[[str], Objective]] = {}  # "smarts:PATTERN" and the like


def register_objective(name: str, build: Callable[[], Objective], description: str) -> None:
    """Make `name` an objective (built lazily: some need reference fingerprints first)."""
    _OBJECTIVES[name] = build
    _DESCRIPTIONS[name] = description


def register_family(prefix: str, build: Callable[[str], Objective], description: str) -> None:
    """Make `prefix:ARGUMENT` an objective (e.g. `isomer:C7H8N2O2`); `build` may raise
    ValueError naming what is wrong with the argument."""
    _FAMILIES[prefix] = build
    _DESCRIPTIONS[f"{prefix}:..."] = description


def register_item_kind(kind: str, canonical: Callable[[str], str | None]) -> None:
    """How items of a kind are canonicalised (what a user oracle's items are keyed by)."""
    _CANONICAL[kind] = canonical


def _load_providers() -> None:
    """Import the modules that register the built-in objectives."""
    for module in PROVIDERS:
        importlib.import_module(module)


def list_objectives() -> dict[str, str]:
    """Every built-in objective's name and one-line description, sorted by name."""
    _load_providers()
    return dict(sorted(_DESCRIPTIONS.items()))


def _entry_point(spec: str, item_kind: str) -> Objective:
    """A user's `module:function` objective, checked on two small items before any work."""
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
        function = getattr(module, attr)
    except (ImportError, AttributeError) as exc:
        raise OracleError(f"objective {spec!r}: cannot import it ({exc})") from None
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(module)  # actors on other nodes need not have the file
    if not callable(function):
        raise OracleError(f"objective {spec!r}: {attr} is not a function")
    _load_providers()
    if item_kind not in _CANONICAL:
        raise OracleError(f"objective {spec!r}: unknown item kind {item_kind!r}")
    probe = PROBE_ITEMS.get(item_kind, [])
    if probe:
        try:
            out = np.asarray(function(list(probe)), dtype=float).reshape(-1)
        except Exception as exc:  # a user's function may raise anything
            raise OracleError(f"objective {spec!r}: raised on {probe}: "
                              f"{type(exc).__name__}: {exc}") from None
        if len(out) != len(probe):
            raise OracleError(f"objective {spec!r}: returned {len(out)} scores for "
                              f"{len(probe)} items (one per item expected)")
    return Objective(spec, f"user objective {spec}", function, _CANONICAL[item_kind], item_kind)


def get_objective(name: str, item_kind: str = "smiles") -> Objective:
    """A built-in objective by name, or a user's `module:function`; one line if neither."""
    _load_providers()
    prefix, _, argument = name.partition(":")
    if argument and prefix in _FAMILIES:
        try:
            return _FAMILIES[prefix](argument)
        except ValueError as exc:
            raise OracleError(f"objective {name!r}: {exc}") from None
    if ":" in name:
        return _entry_point(name, item_kind)
    if name not in _OBJECTIVES:
        raise OracleError(f"unknown objective {name!r} (`latentsci score --list` names them; "
                          f"a user objective is module:function)")
    return _OBJECTIVES[name]()
