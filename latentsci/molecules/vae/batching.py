"""Training examples and batches: a molecular graph plus its SELFIES tokens and properties."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from rdkit import Chem
from torch_geometric.data import Batch, Data

from latentsci.molecules.chem import Reject
from latentsci.molecules.vae.featurize import mol_to_graph
from latentsci.molecules.vae.sampling import BOS_ID, EOS_ID
from latentsci.molecules.vae.selfies_vocab import SelfiesVocabulary


@dataclass
class MoleculeBatch:
    """Graphs batched PyG-style, BOS-prefixed decoder inputs, EOS-suffixed targets, properties."""

    graphs: Batch
    tokens_in: torch.Tensor
    targets: torch.Tensor
    properties: torch.Tensor | None

    def to(self, device: torch.device | str) -> MoleculeBatch:
        props = None if self.properties is None else self.properties.to(device)
        return MoleculeBatch(self.graphs.to(device), self.tokens_in.to(device),
                             self.targets.to(device), props)


def make_example(smiles: str, vocab: SelfiesVocabulary | None,
                 properties: list[float] | None = None) -> Data | Reject:
    """One example: the graph, plus SELFIES `tokens` when a vocabulary is given (training needs
    them, encoding does not) and properties `y`; or a Reject saying why not."""
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        return Reject("unparsable SMILES")
    graph = mol_to_graph(mol)
    if isinstance(graph, Reject) or vocab is None:
        return graph
    tokens = vocab.encode(smiles)
    if isinstance(tokens, Reject):
        return tokens
    graph.tokens = torch.tensor(tokens, dtype=torch.long)
    if properties is not None:
        graph.y = torch.tensor([properties], dtype=torch.float32)
    return graph


def collate(examples: list[Data]) -> MoleculeBatch:
    """Pad token sequences and batch the graphs (examples without tokens give empty sequences)."""
    if "tokens" not in examples[0]:
        graphs = Batch.from_data_list(examples)
        empty = torch.zeros(len(examples), 0, dtype=torch.long)
        return MoleculeBatch(graphs, empty, empty, None)
    length = max(len(e.tokens) for e in examples) + 1
    tokens_in = torch.zeros(len(examples), length, dtype=torch.long)
    targets = torch.zeros(len(examples), length, dtype=torch.long)
    for i, example in enumerate(examples):
        n = len(example.tokens)
        tokens_in[i, 0] = BOS_ID
        tokens_in[i, 1 : n + 1] = example.tokens
        targets[i, :n] = example.tokens
        targets[i, n] = EOS_ID
    graphs = Batch.from_data_list(
        [Data(x=e.x, edge_index=e.edge_index, edge_attr=e.edge_attr) for e in examples])
    props = torch.cat([e.y for e in examples]) if "y" in examples[0] else None
    return MoleculeBatch(graphs, tokens_in, targets, props)
