"""The latent store: Zarr v3 arrays of latents, ids and properties, with safe queries."""

from latentsci.store.latent_store import LatentStore
from latentsci.store.neighbours import top_k
from latentsci.store.predicate import Predicate
from latentsci.store.query import query

__all__ = ["LatentStore", "Predicate", "query", "top_k"]
