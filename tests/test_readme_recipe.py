"""The README's analysis recipe, run as it stands on a store of the shipped model."""

import os
import re

import numpy as np
import pandas as pd

from latentsci.molecules.domain import molecule_properties
from latentsci.molecules.stages.common import STORE_PROPERTIES
from latentsci.molecules.tasks import encode_table
from latentsci.molecules.vae.shipped import shipped_model_dir

from conftest import ROOT


def _recipe(name: str) -> str:
    """The python block between the README's recipe markers."""
    text = (ROOT / "README.md").read_text()
    found = re.search(rf"<!-- recipe:{name} -->\n```python\n(.*?)```\n<!-- /recipe:{name} -->",
                      text, re.S)
    assert found, f"README has no recipe:{name} block"
    return found.group(1)


def test_the_analysis_recipe_runs_and_draws(ray_cluster, tmp_path):
    smiles = (shipped_model_dir() / "heldout_sample.smi").read_text().split()[:200]
    table = pd.DataFrame({"id": [f"m{i}" for i in range(200)], "smiles": smiles,
                          "split": "train", **molecule_properties(smiles)})
    encode_table(table, str(shipped_model_dir()), tmp_path / "latents.zarr", STORE_PROPERTIES,
                 {}, 64, False)
    here = os.getcwd()
    os.chdir(tmp_path)
    try:
        scope: dict = {}
        exec(compile(_recipe("analysis"), "README.md:recipe:analysis", "exec"), scope)
    finally:
        os.chdir(here)
    assert (tmp_path / "latent_map.png").stat().st_size > 10_000
    assert (tmp_path / "neighbours.png").stat().st_size > 10_000
    assert len(scope["neighbours"]) == 8 and (scope["drug_like"]["qed"].values > 0.6).all()
    assert np.all(np.diff(scope["distance"][0]) >= 0)
