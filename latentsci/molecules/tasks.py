"""Ray task bodies of the molecule workflow.

They live in the library, not in the workflow module, because a driver started with
`python -m workflows.molecules` is `__main__` there, and workers cannot import from `__main__`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from latentsci.molecules.chem.fingerprints import morgan_counts
from latentsci.molecules.metrics import moses_metrics
from latentsci.molecules.vae import MoleculeVAE
from latentsci.molecules.vae.batching import make_example
from latentsci.store import LatentStore
from latentsci.molecules.vae.steps import reconstruction_accuracy

if TYPE_CHECKING:
    from latentsci.latent.gaussian import LatentGaussian


def embed_block(block: tuple[int, int], store_path: str, rows: pd.DataFrame,
                 radius: int, n_bits: int) -> int:
    """Ray task: fingerprint rows [start, stop) and write them into the store's own shards."""
    start, stop = block
    store = LatentStore.open(store_path, allow_incomplete=True, writable=True)
    part = rows.iloc[start:stop]
    z = morgan_counts(part["smiles"].tolist(), radius, n_bits)
    store.write_rows(start, z, part["id"].to_numpy(),
                     {name: part[name].to_numpy() for name in store.property_names})
    return stop - start


@lru_cache(maxsize=2)
def loaded_model(model_dir: str) -> MoleculeVAE:
    """One loaded model per worker process, reused across the tasks it runs."""
    torch.set_num_threads(1)  # one task per core: no thread oversubscription
    return MoleculeVAE.load(model_dir)


def encode_block(block: tuple[int, int], store_path: str, model_dir: str,
                  rows: pd.DataFrame) -> list[tuple[str, str]]:
    """Ray task: posterior mean and std of rows [start, stop) into the store; (id, reason) rejects."""
    start, stop = block
    part = rows.iloc[start:stop]
    model = loaded_model(model_dir)
    mu, std = model.encode(part["smiles"].tolist(), return_std=True)
    store = LatentStore.open(store_path, allow_incomplete=True, writable=True)
    store.write_rows(start, mu, part["id"].to_numpy(),
                     {n: part[n].to_numpy() for n in store.property_names}, z_std=std)
    bad = np.flatnonzero(~np.isfinite(mu).all(axis=1))
    return [(part["id"].iloc[i], make_example(part["smiles"].iloc[i], None).reason) for i in bad]


def sample_block(block: tuple[int, int], model_dir: str, temperature: float,
                 latent: LatentGaussian | None = None) -> list[str]:
    """Ray task: `count` molecules from draws of z (the prior, or `latent`) seeded by the
    block's own seed."""
    seed, count = block
    return loaded_model(model_dir).sample(count, temperature=temperature, seed=seed,
                                          latent=latent)


def reconstruction_molecules(test: list[str], n: int, seed: int) -> list[str]:
    """The held-out molecules the evaluate stage reconstructs: a seeded draw from the test split."""
    return list(np.random.default_rng(seed).permutation(test))[:n]


def evaluate_job(job: str, samples: list[str], train: list[str], test: list[str],
                 model_dir: str, options: dict) -> dict[str, float]:
    """Ray task: MOSES metrics, or reconstruction accuracy on held-out molecules."""
    if job == "moses":
        return moses_metrics(samples, train, test, ks=options["ks"], fcd=options["fcd"])
    held_out = reconstruction_molecules(test, options["reconstruction_molecules"], options["seed"])
    return {"recon_accuracy": reconstruction_accuracy(
        loaded_model(model_dir), held_out, options["reconstruction_decodes"], options["seed"],
        from_mean=options.get("reconstruction_from") == "mean")}




def encode_table(table: pd.DataFrame, model_dir: str, store_path: Path, properties: dict[str, str],
                 attrs: dict, rows_per_shard: int | None, progress: bool) -> pd.DataFrame:
    """Encode every row of `table` (id, smiles, properties) into a new store; the reject report."""
    from latentsci.latent import codec_record, load_codec
    from latentsci.molecules.vae.checkpoint import read_meta
    from latentsci.runtime import map_batches

    meta = read_meta(model_dir)
    record = codec_record(load_codec(model_dir))
    store = LatentStore.create(store_path, len(table), int(meta["config"]["latent_dim"]),
                               properties, with_std=True, rows_per_shard=rows_per_shard,
                               attrs={"model": "molecule_vae", "model_path": model_dir,
                                      "codec": record, **attrs})
    blocks = [store.grid.bounds(b) for b in range(store.grid.n_blocks)]
    rejects = map_batches(encode_block, blocks, desc="encode", progress=progress,
                          weight=lambda b: b[1] - b[0], store_path=str(store_path),
                          model_dir=model_dir, rows=table[["id", *properties]])
    store.finalize()
    return pd.DataFrame([r for part in rejects for r in part], columns=["id", "reason"])


def sample_molecules(model_dir: str, n: int, per_task: int, seed: int, temperature: float,
                     progress: bool, latent: LatentGaussian | None = None) -> list[str]:
    """n samples decoded across Ray tasks, each task with its own derived seed; z comes from the
    prior, or from `latent` (a LatentGaussian fitted to encoded molecules)."""
    from latentsci.runtime import map_batches

    blocks = [(seed * 100_003 + i, min(per_task, n - start))
              for i, start in enumerate(range(0, n, per_task))]
    parts = map_batches(sample_block, blocks, desc="sample", progress=progress,
                        weight=lambda b: b[1], model_dir=model_dir, temperature=temperature,
                        latent=latent)
    return [s for part in parts for s in part]
