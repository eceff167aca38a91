"""Design checks behind the molecule VAE, each a repeatable command.

  python bench/vae_ablations.py memorise [--molecules 1000] [--epochs 60] [--only 0 3]
      Where reconstruction is slow to learn. The demo-size SELFIES decoder is trained on a
      random sample of bundled ZINC training molecules (seed 0, batch 128, Adam lr 2e-3,
      2 threads) with its code z coming from: the graph encoder as a VAE (beta 0.05, the
      demo's), the graph encoder as a plain autoencoder (z = mu, no KL), or a free learned
      code per molecule (an embedding table: no encoder at all), or nothing (z = 0: the decoder
      as a plain language model, the floor); and the graph VAE with mu_batchnorm = 1 (mu
      batch-normalised to unit spread, BN-VAE), the pipeline's setting. Prints the teacher-forced
      reconstruction loss and the exact greedy reconstruction (z = mu) of those same molecules.
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import numpy as np
import torch
from rdkit import Chem

from latentsci.molecules.vae.batching import collate, make_example
from latentsci.molecules.vae import MoleculeVAEConfig, build_molecule_vae
from latentsci.molecules.vae.selfies_vocab import SelfiesVocabulary
from latentsci.molecules.ingest import read_smiles_file

ZINC = Path(__file__).resolve().parents[1] / "data" / "molecules" / "zinc_train_86k.smi"
DEMO = MoleculeVAEConfig(latent_dim=56, encoder_hidden=96, encoder_layers=3, decoder_embed=48,
                         decoder_hidden=192, decoder_layers=1)
CODES = ("graph VAE (beta 0.05)", "graph AE (z = mu)", "free code per molecule",
         "no code (z = 0)", "graph VAE (beta 0.05), mu batch-normalised")


def zinc_sample(n: int) -> list[str]:
    """n molecules drawn at random (seed 0) from the bundled training file."""
    texts = read_smiles_file(ZINC).texts
    return [texts[i] for i in np.random.default_rng(0).permutation(len(texts))[:n]]


def exact_share(model: torch.nn.Module, z: torch.Tensor, smiles: list[str]) -> float:
    """Share of molecules whose greedy decode from z is the same canonical SMILES."""
    return float(np.mean([Chem.CanonSmiles(a) == Chem.CanonSmiles(b)
                          for a, b in zip(smiles, model.decode(z))]))


def memorise_one(code: str, smiles: list[str], epochs: int, report_every: int = 20) -> float:
    """Train one variant and print its curve; returns the untrained spread of its training-time
    codes (the mean over dimensions of their standard deviation across molecules)."""
    torch.manual_seed(0)
    vocab = SelfiesVocabulary.build(smiles)
    config = DEMO.model_copy(update={"mu_batchnorm": 1.0}) if code == CODES[4] else DEMO
    model = build_molecule_vae(config, len(vocab))
    model.vocab = vocab
    table = torch.nn.Embedding(len(smiles), DEMO.latent_dim)
    torch.nn.init.normal_(table.weight)
    examples = [make_example(s, vocab, None) for s in smiles]
    params = list(model.parameters()) + (list(table.parameters()) if code == CODES[2] else [])
    optimizer = torch.optim.Adam(params, lr=2e-3)
    with torch.no_grad():  # training-time codes (batch statistics), on a copy left untouched
        start_spread = float(copy.deepcopy(model).train().encode_batch(collate(examples[:512]))[0]
                             .std(dim=0).mean())
    if code == CODES[2]:
        start_spread = float(table.weight.detach().std(dim=0).mean())
    elif code == CODES[3]:
        start_spread = 0.0
    started = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        order = np.random.default_rng(epoch).permutation(len(smiles))
        losses = []
        for start in range(0, len(order), 128):
            rows = order[start : start + 128]
            batch = collate([examples[i] for i in rows])
            if code == CODES[2]:
                z, kl = table(torch.as_tensor(rows)), 0.0
            elif code == CODES[3]:
                z, kl = torch.zeros(len(rows), DEMO.latent_dim), 0.0
            else:
                mu, logvar = model.encode_batch(batch)
                vae = code in (CODES[0], CODES[4])
                z = model.reparametrize(mu, logvar) if vae else mu
                kl = 0.05 * model.kl_loss(mu, logvar)[0] if vae else 0.0
            recon, _ = model.recon_loss(z, batch)
            optimizer.zero_grad(set_to_none=True)
            (recon + kl).backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            losses.append(float(recon.detach()))
        if epoch % report_every == 0 or epoch == epochs:
            model.eval()
            z = {CODES[2]: table.weight.detach(),
                 CODES[3]: torch.zeros(len(smiles), DEMO.latent_dim)}.get(code)
            z = torch.as_tensor(model.encode(smiles)) if z is None else z
            share = exact_share(model, z, smiles)
            print(f"| {code} | {epoch} | {np.mean(losses):.2f} | {share:.3f} | "
                  f"{time.perf_counter() - started:.0f} s |", flush=True)
    return start_spread


def memorise(molecules: int, epochs: int, variants: list[str] | None = None) -> None:
    """The code sources (all, or those asked for), one after the other in this process."""
    torch.set_num_threads(2)
    smiles = zinc_sample(molecules)
    print(f"{molecules} ZINC molecules, {epochs} epochs\n")
    print("| code z from | epoch | recon loss (nats/molecule) | exact reconstruction | time |")
    print("|---|---:|---:|---:|---:|")
    spreads = {code: memorise_one(code, smiles, epochs) for code in variants or CODES}
    print("\nspread of the codes before training (std across molecules, mean over dimensions):")
    for code, spread in spreads.items():
        print(f"  {code}: {spread:.3f}")


def main() -> None:
    """Pick a check."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="check", required=True)
    mem = sub.add_parser("memorise")
    mem.add_argument("--molecules", type=int, default=1000)
    mem.add_argument("--epochs", type=int, default=60)
    mem.add_argument("--only", type=int, nargs="*", help="variant numbers (0-4), default all")
    args = parser.parse_args()
    if args.check == "memorise":
        memorise(args.molecules, args.epochs, [CODES[i] for i in args.only or []])


if __name__ == "__main__":
    main()
