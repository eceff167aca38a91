"""What the molecule stages share: the columns of a molecule store, the ingested table a stage
reads from the stages it needs, and the latent map drawn of every store."""

from __future__ import annotations

import numpy as np
import pandas as pd

from latentsci.errors import InputDataError
from latentsci.molecules.chem import DESCRIPTOR_NAMES
from latentsci.pipeline.stage import StageContext
from latentsci.plots import latent_map
from latentsci.store import LatentStore

# Columns every molecule store carries next to z.
STORE_PROPERTIES = {**dict.fromkeys(DESCRIPTOR_NAMES, "float64"), "smiles": "str", "split": "str"}


def molecules(ctx: StageContext) -> pd.DataFrame:
    """All molecule tables of the ingest stages this stage needs, in `needs` order."""
    tables = [pd.read_parquet(rec.outputs["molecules"]) for rec in ctx.givers("molecules")]
    if not tables:
        raise InputDataError(f"stage {ctx.name}: needs at least one ingest stage")
    return pd.concat(tables, ignore_index=True)


def store_map(store: LatentStore, path, title: str = "Morgan counts", sample: int = 20000):
    """PCA map of a random sample of the store's encoded rows, coloured by QED and logP."""
    rows = np.sort(np.random.default_rng(0).permutation(len(store))[:sample])
    z = store.vectors(rows)
    keep = np.isfinite(z).all(axis=1)
    frame = store.table(rows[keep])
    return latent_map(z[keep], {"qed": frame["qed"].to_numpy(), "logp": frame["logp"].to_numpy()},
                      path, title=title)
