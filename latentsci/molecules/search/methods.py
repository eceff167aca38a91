"""The molecule methods of the benchmark harness (Graph GA), and what the harness records of
each run's ten best molecules so reward hacking shows: diversity, SA, QED, weight, filters."""

from __future__ import annotations

import numpy as np
from rdkit import Chem
from rdkit.Chem import Descriptors

from latentsci.latent.search.harness import register_method
from latentsci.molecules.search.graph_ga import GraphGA, GraphGAConfig


def _graph_ga(seed: int, library: list[str], options: dict) -> GraphGA:
    """Graph GA started from the library, with PMO's settings unless options change them."""
    return GraphGA(library, seed, GraphGAConfig(**options))


register_method("graph_ga", _graph_ga)


def top_molecules(smiles: list[str]) -> dict[str, float]:
    """Internal diversity (1 - mean pairwise Tanimoto, Morgan 1024 bits as MOSES), mean SA, QED
    and molecular weight, and the share passing the MOSES filters, of a few molecules."""
    from latentsci.molecules.metrics.filters import passes_filters
    from latentsci.molecules.metrics.similarity import fingerprints, internal_diversity
    from latentsci.molecules.oracles.basic import qed, sa

    mols = [m for m in (Chem.MolFromSmiles(s) for s in smiles) if m is not None]
    if not mols:
        return {}
    return {"diversity": internal_diversity(fingerprints(mols)) if len(mols) > 1 else 0.0,
            "sa": float(np.mean([sa(m) for m in mols])),
            "qed": float(np.mean([qed(m) for m in mols])),
            "mw": float(np.mean([Descriptors.MolWt(m) for m in mols])),
            "filters": float(np.mean([passes_filters(m) for m in mols]))}
