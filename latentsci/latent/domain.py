"""The domain pieces latent operations use besides the codec: how alike two items are, and which
properties an item has (an interpolation's path is scored by similarity to its ends, a search
ranks by properties, an OOD check compares neighbours).

Like codecs, they are registered by codec kind, from the module that registers the codec, so
this package knows neither molecules nor fields and a fresh process that loaded a codec has its
pieces too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from latentsci.latent.codec import Codec, CodecError


@dataclass(frozen=True)
class DomainPieces:
    """Item similarity and item properties of one codec kind.

    similarity(a, b) -> (len(a), len(b)) array, 1 for identical items, NaN where an item cannot
    be read; properties(items) -> {name: array (len(items),)}, NaN where undefined."""

    similarity: Callable[[Sequence[Any], Sequence[Any]], np.ndarray]
    similarity_name: str  # e.g. "Tanimoto of Morgan fingerprints (radius 2, 2048 bits)"
    properties: Callable[[Sequence[Any]], dict[str, np.ndarray]]
    property_names: tuple[str, ...]
    item_column: str | None = None  # the store column holding each row's item (molecules: smiles)
    draw_paths: Callable[[list[list[Any]], Path], Path] | None = None  # one strip per path
    # whether a[i] is b[i] (n,) (molecules: the same canonical SMILES); default: similarity 1
    same: Callable[[Sequence[Any], Sequence[Any]], np.ndarray] | None = None
    # the largest similarity of each item to a reference set (n,), NaN for unreadable items
    nearest_similarity: Callable[[Sequence[Any], Sequence[Any]], np.ndarray] | None = None
    # the items of a file a user hands in (molecules: SMILES of a .smi/.csv/.parquet file)
    read_items: Callable[[Path], list[Any]] | None = None
    # metrics of one decoded path beyond the shared ones, given what path_context(store) found
    # once per store (fields: VRMSE to each end, staying in the training frames' range)
    path_metrics: Callable[[list[Any], dict], dict[str, float]] | None = None
    path_context: Callable[[Any], dict] | None = None
    # what a probe compares latents with (molecules: ECFP4 bits; NaN rows for unreadable items)
    baseline_features: Callable[[Sequence[Any]], np.ndarray] | None = None
    baseline_name: str = ""
    # the group of each item a probe's splits keep on one side (molecules: Murcko scaffold)
    groups: Callable[[Sequence[Any]], np.ndarray] | None = None
    # summary(codec, z) -> (n, m): what OOD detectors compare instead of raw z rows where the
    # raw rows measure the wrong thing (fields: a latent grid's power spectrum and quantiles,
    # which do not move when the same structures sit elsewhere on a periodic domain)
    latent_summary: Callable[[Any, np.ndarray], np.ndarray] | None = None
    # stored_items(store, rows) -> the items those rows were encoded from, for stores that do not
    # hold them in a column (fields: frames read back from the field store the latents record),
    # or None when they cannot be found; what reconstruction-error detectors need
    stored_items: Callable[[Any, np.ndarray], Any] | None = None


_PIECES: dict[str, DomainPieces] = {}


def register_domain(kind: str, pieces: DomainPieces) -> None:
    """Give codecs of `kind` their similarity and properties."""
    _PIECES[kind] = pieces


def domain_pieces(codec: Codec | str) -> DomainPieces:
    """The similarity and properties of a codec's items (or of a codec kind's)."""
    kind = codec if isinstance(codec, str) else codec.kind
    if kind not in _PIECES:
        raise CodecError(f"codec kind {kind!r} registers no similarity or properties (kinds "
                         f"that do: {', '.join(sorted(_PIECES)) or 'none'})")
    return _PIECES[kind]


def pieces_or_none(codec: Codec | str | None) -> DomainPieces | None:
    """A codec's (or codec kind's) domain pieces, or None when its domain registered none: the
    latent-only operations still run for it."""
    if codec is None:
        return None
    try:
        return domain_pieces(codec)
    except CodecError:
        return None
