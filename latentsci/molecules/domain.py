"""What latent operations need to know of molecules besides the codec: Tanimoto similarity of
Morgan fingerprints, and the physchem properties every store carries (pure RDKit functions)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rdkit import Chem, DataStructs
from rdkit.Chem import rdFingerprintGenerator

from latentsci.latent.domain import DomainPieces
from latentsci.molecules.chem import DESCRIPTOR_NAMES, Reject, describe
from latentsci.molecules.chem.molecules import murcko_scaffold, to_mol

RADIUS, BITS = 2, 2048


def _mol(text):
    """An RDKit molecule of a SMILES, or the Reject saying why there is none."""
    return to_mol(text) if isinstance(text, str) else Reject("not a SMILES string")


def _fingerprints(smiles: Sequence) -> list:
    """Morgan bit vectors of the molecules; None where a SMILES does not parse."""
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=RADIUS, fpSize=BITS)
    out = []
    for text in smiles:
        mol = _mol(text)
        out.append(None if isinstance(mol, Reject) else generator.GetFingerprint(mol))
    return out


def _packed(fingerprints: list) -> list:
    """The readable fingerprints rebuilt side by side in memory: made one molecule at a time,
    they lie scattered among the freed molecules, and a bulk similarity over 50,000 of them ran
    1.8x slower (bench/RESULTS.md, max-Tanimoto)."""
    return [DataStructs.ExplicitBitVect(f.ToBinary()) for f in fingerprints if f is not None]


def tanimoto(a: Sequence[str], b: Sequence[str]) -> np.ndarray:
    """Tanimoto similarity of every molecule of `a` to every one of `b` (NaN for unreadable)."""
    fa, fb = _fingerprints(a), _fingerprints(b)
    out = np.full((len(fa), len(fb)), np.nan)
    readable = [j for j, f in enumerate(fb) if f is not None]
    targets = [fb[j] for j in readable]
    for i, fp in enumerate(fa):
        if fp is not None and targets:
            out[i, readable] = DataStructs.BulkTanimotoSimilarity(fp, targets)
    return out


PER_TASK = 1000  # queries per Ray task of max_tanimoto


def _max_against(fingerprints: list, targets: list) -> np.ndarray:
    """The largest Tanimoto similarity of each fingerprint to the targets (NaN for None)."""
    out = np.full(len(fingerprints), np.nan)
    for i, fp in enumerate(fingerprints):
        if fp is not None and targets:
            out[i] = max(DataStructs.BulkTanimotoSimilarity(fp, targets))
    return out


def max_tanimoto_block(smiles: list[str], reference: list[bytes]) -> np.ndarray:
    """Ray task: max_tanimoto of a block of queries against reference fingerprints sent as
    RDKit's binary form (rebuilt here, cheaper than re-parsing the reference SMILES)."""
    targets = [DataStructs.ExplicitBitVect(b) for b in reference]
    return _max_against(_fingerprints(smiles), targets)


def max_tanimoto(smiles: Sequence[str], reference: Sequence[str],
                 per_task: int = PER_TASK) -> np.ndarray:
    """The largest Tanimoto similarity of each molecule to the reference molecules (RDKit's bulk
    similarity, one query at a time, so memory stays at one row), fanned out over Ray tasks of
    `per_task` queries when Ray is running and there is more than one task's worth."""
    import ray

    targets = _packed(_fingerprints(reference))
    if len(smiles) <= per_task or not ray.is_initialized():
        return _max_against(_fingerprints(smiles), targets)
    from latentsci.runtime import map_batches

    blocks = [list(smiles[a : a + per_task]) for a in range(0, len(smiles), per_task)]
    parts = map_batches(max_tanimoto_block, blocks, desc="max Tanimoto",
                        reference=[f.ToBinary() for f in targets])
    return np.concatenate(parts)


def _canonical(text) -> str | None:
    """RDKit's canonical SMILES of a molecule, None where it does not parse."""
    mol = _mol(text)
    return None if isinstance(mol, Reject) else Chem.MolToSmiles(mol)


def same_molecule(a: Sequence[str], b: Sequence[str]) -> np.ndarray:
    """Whether a[i] and b[i] are the same molecule (same canonical SMILES; False if unreadable)."""
    pairs = ((_canonical(x), _canonical(y)) for x, y in zip(a, b))
    return np.array([x is not None and x == y for x, y in pairs], dtype=bool)


def molecule_properties(smiles: Sequence[str]) -> dict[str, np.ndarray]:
    """The store's physchem descriptors of each molecule (NaN where a SMILES does not parse)."""
    out = {name: np.full(len(smiles), np.nan) for name in DESCRIPTOR_NAMES}
    for i, text in enumerate(smiles):
        mol = _mol(text)
        if not isinstance(mol, Reject):
            for name, value in describe(mol).items():
                out[name][i] = value
    return out


def molecule_strips(paths: list[list[str]], path: Path) -> Path:
    """RDKit drawings of a few interpolation paths, one row per path."""
    from latentsci.molecules.plots import molecule_grid

    return molecule_grid([s or "" for p in paths for s in p], path,
                         per_row=max(len(p) for p in paths))


def ecfp4(smiles: Sequence[str]) -> np.ndarray:
    """ECFP4 bits (Morgan radius 2, 2048 bits) as float32 rows; NaN rows for unreadable SMILES."""
    out = np.full((len(smiles), BITS), np.nan, dtype=np.float32)
    for i, fp in enumerate(_fingerprints(smiles)):
        if fp is not None:
            row = np.zeros(BITS, dtype=np.float32)
            DataStructs.ConvertToNumpyArray(fp, row)
            out[i] = row
    return out


def scaffolds(smiles: Sequence[str]) -> np.ndarray:
    """Each molecule's Murcko scaffold (acyclic ones share ""; unreadable ones get their text)."""
    out = []
    for text in smiles:
        mol = _mol(text)
        out.append(f"unreadable:{text}" if isinstance(mol, Reject) else murcko_scaffold(mol))
    return np.array(out, dtype=object)


def read_molecules(path: Path) -> list[str]:
    """The SMILES of a .smi/.csv/.parquet file (a `smiles` column), unparsed."""
    from latentsci.molecules.ingest import read_smiles_file

    return list(read_smiles_file(path).texts)


MOLECULE_PIECES = DomainPieces(
    similarity=tanimoto,
    similarity_name=f"Tanimoto of Morgan fingerprints (radius {RADIUS}, {BITS} bits)",
    properties=molecule_properties, property_names=tuple(DESCRIPTOR_NAMES), item_column="smiles",
    draw_paths=molecule_strips, same=same_molecule, nearest_similarity=max_tanimoto,
    read_items=read_molecules, baseline_features=ecfp4,
    baseline_name=f"ECFP4 (Morgan radius {RADIUS}, {BITS} bits)", groups=scaffolds)
