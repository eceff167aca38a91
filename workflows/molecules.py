"""Molecule workflow: ingest SMILES files, embed them, write latent stores.

Story of a run: each `ingest` stage reads a SMILES file, fans RDKit parsing out over Ray tasks,
and writes a de-duplicated, split Parquet table with a reject report. A `fingerprints` stage
turns the tables it needs into a latent store, each Ray task writing its own whole shards.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
from pydantic import Field

from latentsci.chem import DESCRIPTOR_NAMES, process_smiles_batch
from latentsci.chem.fingerprints import morgan_counts
from latentsci.errors import InputDataError
from latentsci.ingest import IngestConfig, assemble, batches, summary, write_outputs
from latentsci.pipeline.driver import main
from latentsci.models import MoleculeVAE
from latentsci.plots import kl_per_dimension, latent_map, property_histograms, training_curves
from latentsci.training.vae_train import TrainConfig, train_molecule_vae
from latentsci.pipeline.stage import Stage, StageConfig, StageContext, StageResult
from latentsci.runtime import map_batches
from latentsci.sources import read_smiles_file
from latentsci.store import LatentStore


def ingest(config: IngestConfig, ctx: StageContext) -> StageResult:
    """Read, parse in parallel, de-duplicate, split; write the table and the reject report."""
    records = read_smiles_file(config.source, config.format, config.smiles_column,
                               config.carry_columns)
    parsed_batches = map_batches(process_smiles_batch, batches(records, config.batch_size),
                                 desc=f"{ctx.name}: parse", progress=ctx.progress,
                                 keep_largest_fragment=config.keep_largest_fragment,
                                 max_heavy_atoms=config.max_heavy_atoms)
    parsed = [item for batch in parsed_batches for item in batch]
    table, report = assemble(records, parsed, config, config.id_prefix or ctx.name)
    if table.empty:
        raise InputDataError(f"{config.source}: no valid molecule among {len(records)} "
                             f"(see {ctx.out_dir / 'rejects.csv'})")
    paths = write_outputs(table, report, ctx.out_dir)
    plot = property_histograms(table, list(DESCRIPTOR_NAMES), ctx.out_dir / "properties.png")
    return StageResult(outputs={k: str(v) for k, v in paths.items()},
                       metrics=summary(records, table, report), artifacts=[paths["rejects"], plot])


class FingerprintConfig(StageConfig):
    """Parameters of the `fingerprints` stage (a model-free baseline latent space)."""

    radius: int = Field(default=2, ge=0, le=6)
    n_bits: int = Field(default=128, gt=0, le=8192)
    rows_per_shard: int | None = Field(default=None, gt=0)


def _embed_block(block: tuple[int, int], store_path: str, rows: pd.DataFrame,
                 radius: int, n_bits: int) -> int:
    """Ray task: fingerprint rows [start, stop) and write them into the store's own shards."""
    start, stop = block
    store = LatentStore.open(store_path, allow_incomplete=True, writable=True)
    part = rows.iloc[start:stop]
    z = morgan_counts(part["smiles"].tolist(), radius, n_bits)
    store.write_rows(start, z, part["id"].to_numpy(),
                     {name: part[name].to_numpy() for name in store.property_names})
    return stop - start


def fingerprints(config: FingerprintConfig, ctx: StageContext) -> StageResult:
    """Embed every molecule of the needed ingest stages as Morgan counts into one latent store."""
    tables = [pd.read_parquet(rec.outputs["molecules"]) for rec in ctx.inputs.values()
              if "molecules" in rec.outputs]
    if not tables:
        raise InputDataError(f"stage {ctx.name}: needs at least one ingest stage")
    table = pd.concat(tables, ignore_index=True)
    properties = {**dict.fromkeys(DESCRIPTOR_NAMES, "float64"), "smiles": "str", "split": "str"}
    store_path = ctx.out_dir / "fingerprints.zarr"
    store = LatentStore.create(store_path, len(table), config.n_bits, properties,
                               rows_per_shard=config.rows_per_shard,
                               attrs={"model": "morgan-counts", "model_version": "1",
                                      "radius": config.radius, **ctx.provenance()})
    blocks = [store.grid.bounds(b) for b in range(store.grid.n_blocks)]
    written = map_batches(_embed_block, blocks, desc=f"{ctx.name}: embed", progress=ctx.progress,
                          weight=lambda b: b[1] - b[0], store_path=str(store_path),
                          rows=table[["id", *properties]], radius=config.radius,
                          n_bits=config.n_bits)
    store.finalize(source_stages=list(ctx.inputs))
    plot = _latent_map(store, ctx.out_dir / "latent_map.png")
    return StageResult(outputs={"store": str(store_path)},
                       metrics={"rows": float(sum(written)), "dim": float(config.n_bits)},
                       artifacts=[plot])


def _latent_map(store: LatentStore, path, sample: int = 20000):
    """PCA map of a random sample of the store, coloured by QED and logP."""
    rows = np.sort(np.random.default_rng(0).permutation(len(store))[:sample])
    frame = store.table(rows)
    return latent_map(store.vectors(rows), {"qed": frame["qed"].to_numpy(),
                                            "logp": frame["logp"].to_numpy()},
                      path, title="Morgan counts")


def _molecules(ctx: StageContext) -> pd.DataFrame:
    """All molecule tables of the ingest stages this stage needs, in `needs` order."""
    tables = [pd.read_parquet(rec.outputs["molecules"]) for rec in ctx.inputs.values()
              if "molecules" in rec.outputs]
    if not tables:
        raise InputDataError(f"stage {ctx.name}: needs at least one ingest stage")
    return pd.concat(tables, ignore_index=True)


def train(config: TrainConfig, ctx: StageContext) -> StageResult:
    """Train the molecule VAE data-parallel on Ray Train; rerunning resumes from a checkpoint."""
    table = _molecules(ctx)
    train_rows = table[table["split"] == "train"]
    held_out = table[table["split"] != "train"]
    props = train_rows[config.model.properties].to_numpy().tolist() if config.model.properties \
        else None
    valid = held_out["smiles"].sample(min(len(held_out), config.validation_molecules),
                                      random_state=config.seed).tolist()
    model_dir = ctx.out_dir / "model"
    history = train_molecule_vae(train_rows["smiles"].tolist(), props, valid, config,
                                 name=ctx.name, storage=ctx.state_dir, model_dir=model_dir)
    curves = [{k: v for k, v in row.items() if k != "kl_per_dim"} for row in history]
    plots = [training_curves(curves, ["loss", "recon", "kl", "recon_accuracy", "active_units",
                                      "molecules_per_s"], ctx.out_dir / "training_curves.png"),
             kl_per_dimension(history[-1]["kl_per_dim"], ctx.out_dir / "kl_per_dim.png")]
    if ctx.tracker is not None:
        ctx.tracker.log_series(curves)
        ctx.tracker.log_torch_model(MoleculeVAE.load(str(model_dir)))
    # Curves carry their epoch as step; the stage summary gets its own names.
    final = {f"final_{k}": float(v) for k, v in curves[-1].items() if isinstance(v, (int, float))}
    return StageResult(outputs={"model": str(model_dir)}, metrics=final,
                       artifacts=[*plots, model_dir / "meta.json"])


STAGES = {
    "ingest": Stage("ingest", IngestConfig, ingest),
    "fingerprints": Stage("fingerprints", FingerprintConfig, fingerprints),
    "train": Stage("train", TrainConfig, train),
}

if __name__ == "__main__":
    sys.exit(main(STAGES, prog="python -m workflows.molecules"))
