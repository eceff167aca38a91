"""Single-molecule scores search objectives are built from (pure RDKit functions of a molecule).

Penalized logP comes in two published forms:
- `plogp` (GCPN, GraphAF, MoFlow): z(logP) + z(-SA) + z(-ring penalty), each z-scored with the
  means and standard deviations of ZINC250k their code fixes (below); the ring penalty is
  max(largest cycle - 6, 0) over networkx's cycle basis of the atom graph, as their code takes it.
- `plogp_jtvae` (the JT-VAE paper): logP - SA - max(largest ring - 6, 0), unnormalised. The
  JT-VAE authors' released scoring code leaves the ring term out; this is the paper's form.
"""

from __future__ import annotations

import networkx as nx
from rdkit import Chem
from rdkit.Chem import QED, Crippen, rdmolops

from latentsci.molecules.chem.molecules import _sascorer

# ZINC250k statistics fixed in GCPN's reward code (and reused by GraphAF and MoFlow)
LOGP_MEAN, LOGP_STD = 2.4570953396190123, 1.434324401111988
SA_MEAN, SA_STD = -3.0525811293166134, 0.8335207024513095  # of -SA
CYCLE_MEAN, CYCLE_STD = -0.0485696876403053, 0.2860212110245455  # of -ring penalty


def canonical_smiles(text: str) -> str | None:
    """RDKit's canonical SMILES (all fragments kept, as PMO keys its calls), None if invalid."""
    if not isinstance(text, str) or not text.strip():
        return None
    mol = Chem.MolFromSmiles(text.strip())
    if mol is None or mol.GetNumAtoms() == 0:
        return None
    return Chem.MolToSmiles(mol)


def qed(mol: Chem.Mol) -> float:
    """Quantitative estimate of drug-likeness (Bickerton 2012), in [0, 1]."""
    return float(QED.qed(mol))


def sa(mol: Chem.Mol) -> float:
    """Synthetic accessibility (Ertl and Schuffenhauer 2009): 1 easy to 10 hard."""
    return float(_sascorer().calculateScore(mol))


def logp(mol: Chem.Mol) -> float:
    """Crippen logP (Wildman and Crippen 1999)."""
    return float(Crippen.MolLogP(mol))


def cycle_penalty(mol: Chem.Mol) -> float:
    """max(largest cycle - 6, 0), cycles from networkx's cycle basis of the atom graph (GCPN)."""
    graph = nx.Graph(rdmolops.GetAdjacencyMatrix(mol))
    largest = max((len(c) for c in nx.cycle_basis(graph)), default=0)
    return float(max(largest - 6, 0))


def ring_penalty(mol: Chem.Mol) -> float:
    """max(largest ring - 6, 0) over RDKit's smallest set of smallest rings (JT-VAE paper)."""
    largest = max((len(r) for r in mol.GetRingInfo().AtomRings()), default=0)
    return float(max(largest - 6, 0))


def plogp(mol: Chem.Mol) -> float:
    """Penalized logP, z-scored (GCPN / GraphAF / MoFlow)."""
    return ((logp(mol) - LOGP_MEAN) / LOGP_STD + (-sa(mol) - SA_MEAN) / SA_STD
            + (-cycle_penalty(mol) - CYCLE_MEAN) / CYCLE_STD)


def plogp_jtvae(mol: Chem.Mol) -> float:
    """Penalized logP as the JT-VAE paper writes it: logP - SA - ring penalty."""
    return logp(mol) - sa(mol) - ring_penalty(mol)
