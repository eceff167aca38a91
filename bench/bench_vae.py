"""Molecule-VAE speed: training (1 vs 2 Ray Train workers), encoding vs the RDKit floor, sampling.

Usage: python bench/bench_vae.py [--n 4000]
Model: the demo profile of pipelines/zinc_vae.toml. All rates are molecules per second on this
machine; ratios compare two runs made in this same process.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from rdkit import Chem

from latentsci.molecules.vae import MoleculeVAEConfig, build_molecule_vae
from latentsci.molecules.vae.featurize import mol_to_graph
from latentsci.molecules.vae.schedules import KLSchedule
from latentsci.molecules.vae.selfies_vocab import SelfiesVocabulary
from latentsci.runtime import connect, disconnect
from latentsci.molecules.ingest import read_smiles_file
from latentsci.molecules.vae.train import TrainConfig, train_molecule_vae

ROOT = Path(__file__).resolve().parents[1]
DEMO = MoleculeVAEConfig(latent_dim=56, encoder_hidden=96, encoder_layers=3, decoder_embed=48,
                         decoder_hidden=192, decoder_layers=1)


def timed(fn) -> float:
    """Seconds one call takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000)
    args = parser.parse_args()
    texts = read_smiles_file(ROOT / "data/molecules/zinc_train_86k.smi").texts[: args.n]
    smiles = [Chem.CanonSmiles(t) for t in texts]
    torch.set_num_threads(2)
    print(f"{len(smiles)} ZINC molecules, demo model, torch threads {torch.get_num_threads()}")

    connect(num_cpus=2)
    for workers in (1, 2):
        config = TrainConfig(model=DEMO, kl=KLSchedule(), epochs=1, batch_size=128,
                             validation_molecules=0, num_workers=workers)
        with tempfile.TemporaryDirectory() as folder:
            history = train_molecule_vae(smiles, None, [], config, "bench", Path(folder),
                                         Path(folder) / "model")
        print(f"train, {workers} Ray Train worker(s): {history[-1]['molecules_per_s']:7.0f} mol/s")
    disconnect()

    vocab = SelfiesVocabulary.build(smiles, max_len=100)
    model = build_molecule_vae(DEMO, len(vocab)).eval()
    model.vocab = vocab
    floor = timed(lambda: [mol_to_graph(Chem.MolFromSmiles(s)) for s in smiles])
    encode = timed(lambda: model.encode(smiles))
    print(f"RDKit parse + featurise (floor): {len(smiles) / floor:7.0f} mol/s")
    print(f"encode (parse, featurise, GNN): {len(smiles) / encode:7.0f} mol/s "
          f"ratio {floor / encode:.2f} (goal >= 0.5)")
    n = 2000
    sample = timed(lambda: model.sample(n, seed=0))
    print(f"sample + decode (greedy, batch {n}): {n / sample:7.0f} mol/s")


if __name__ == "__main__":
    main()
