"""All MOSES metrics of a generated set against train and test sets, in one call.

Definitions follow molecularsets/moses `moses/metrics/metrics.py`: invalid samples count against
validity and are then dropped; every other metric uses the valid samples as canonical SMILES with
duplicates kept, except unique@k (first k valid) and novelty (unique valid ones).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from rdkit import Chem
from scipy.stats import wasserstein_distance

from latentsci.molecules.chem import describe
from latentsci.molecules.metrics.filters import passes_filters
from latentsci.molecules.metrics.similarity import (
    average_agg_tanimoto,
    cosine_similarity,
    fingerprints,
    fragment_counts,
    internal_diversity,
    scaffold_counts,
)

PROPERTIES = {"logP": "logp", "SA": "sa", "QED": "qed", "weight": "mw"}


def moses_mol(smiles: str | None) -> Chem.Mol | None:
    """MOSES's get_mol: empty text, unparsable or unsanitisable SMILES give None."""
    if not smiles:
        return None
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        return None
    try:
        Chem.SanitizeMol(mol)
    except ValueError:
        return None
    return mol


def fraction_valid(samples: Sequence[str | None]) -> float:
    """Share of samples that RDKit parses (multi-fragment SMILES count as valid)."""
    return sum(moses_mol(s) is not None for s in samples) / len(samples)


def fraction_unique(valid_smiles: Sequence[str], k: int | None = None) -> float:
    """Distinct canonical SMILES among the first k valid samples (all of them if fewer than k)."""
    if k is not None and len(valid_smiles) < k:
        warnings.warn(f"unique@{k}: only {len(valid_smiles)} valid samples", stacklevel=2)
    head = valid_smiles[:k] if k is not None else valid_smiles
    return len(set(head)) / len(head) if head else float("nan")


def novelty(valid_smiles: Sequence[str], train: set[str]) -> float:
    """Share of distinct valid samples absent from the (canonical) training set."""
    distinct = set(valid_smiles)
    return len(distinct - train) / len(distinct) if distinct else float("nan")


def canonical(smiles: Sequence[str]) -> list[str]:
    """Canonical SMILES of the parsable inputs, in order (reference sets are canonicalised once)."""
    mols = (moses_mol(s) for s in smiles)
    return [Chem.MolToSmiles(m) for m in mols if m is not None]


def _frechet_chemnet(gen: list[str], ref: list[str], device: str) -> float:
    """FCD with fcd_torch's ChemNet (weights ship in its wheel; torch.load is weights-only)."""
    from fcd_torch import FCD

    if len(gen) < 2 or len(ref) < 2:
        return float("nan")
    return float(FCD(device=device, n_jobs=1, batch_size=512)(gen=gen, ref=ref))


def moses_metrics(samples: Sequence[str | None], train: Sequence[str], test: Sequence[str],
                  ks: Sequence[int] = (1000, 10000), fcd: bool = True,
                  device: str = "cpu") -> dict[str, float]:
    """valid, unique@k, IntDiv, IntDiv2, Filters, Novelty, FCD/SNN/Frag/Scaf to test, and the
    Wasserstein distances of logP, SA, QED and weight to test."""
    if not samples:
        raise ValueError("no samples to evaluate")
    mols = [moses_mol(s) for s in samples]
    valid = [m for m in mols if m is not None]
    gen = [Chem.MolToSmiles(m) for m in valid]
    result: dict[str, float] = {"valid": len(valid) / len(samples)}
    for k in ks:
        result[f"unique@{k}"] = fraction_unique(gen, k)
    if not valid:
        return result
    fps = fingerprints(valid)
    result["IntDiv"] = internal_diversity(fps, p=1)
    result["IntDiv2"] = internal_diversity(fps, p=2)
    result["Filters"] = float(np.mean([passes_filters(m) for m in valid]))
    result["Novelty"] = novelty(gen, set(canonical(train)))
    test_mols = [m for m in (moses_mol(s) for s in test) if m is not None]
    if fcd:
        result["FCD/Test"] = _frechet_chemnet(gen, [Chem.MolToSmiles(m) for m in test_mols], device)
    result["SNN/Test"] = average_agg_tanimoto(fingerprints(test_mols), fps, agg="max")
    result["Frag/Test"] = cosine_similarity(fragment_counts(test_mols), fragment_counts(valid))
    result["Scaf/Test"] = cosine_similarity(scaffold_counts(test_mols), scaffold_counts(valid))
    gen_props = [describe(m) for m in valid]
    test_props = [describe(m) for m in test_mols]
    for name, key in PROPERTIES.items():
        result[name] = float(wasserstein_distance([p[key] for p in test_props],
                                                  [p[key] for p in gen_props]))
    return result
