"""Molecule workflow: ingest SMILES files, embed them, write latent stores.

Story of a run: each `ingest` stage reads a SMILES file, fans RDKit parsing out over Ray tasks,
and writes a de-duplicated, split Parquet table with a reject report. A `fingerprints` stage
turns the tables it needs into a latent store, each Ray task writing its own whole shards.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from latentsci.molecules.chem import DESCRIPTOR_NAMES, process_smiles_batch
from latentsci.errors import ConfigError, InputDataError
from latentsci.molecules.ingest.table import (
    IngestConfig,
    assemble,
    batches,
    read_sources,
    summary,
    write_outputs,
)
from latentsci.pipeline.driver import main
from latentsci.molecules.metrics.moses import fraction_valid
from latentsci.molecules.vae import MoleculeVAE
from latentsci.molecules.vae.aggregate import LatentGaussian
from latentsci.molecules.tasks import embed_block, encode_table, evaluate_job, sample_molecules
from latentsci.molecules.plots import kl_per_dimension, molecule_grid, property_histograms
from latentsci.plots import latent_map, training_curves
from latentsci.molecules.vae.train import TrainConfig, train_molecule_vae
from latentsci.pipeline.stage import Stage, StageConfig, StageContext, StageResult
from latentsci.runtime import map_batches
from latentsci.molecules.ingest import read_generated
from latentsci.store import LatentStore


# Columns every molecule store carries next to z.
STORE_PROPERTIES = {**dict.fromkeys(DESCRIPTOR_NAMES, "float64"), "smiles": "str", "split": "str"}


def _molecules(ctx: StageContext) -> pd.DataFrame:
    """All molecule tables of the ingest stages this stage needs, in `needs` order."""
    tables = [pd.read_parquet(rec.outputs["molecules"]) for rec in ctx.inputs.values()
              if "molecules" in rec.outputs]
    if not tables:
        raise InputDataError(f"stage {ctx.name}: needs at least one ingest stage")
    return pd.concat(tables, ignore_index=True)


def _names(source) -> str:
    """The input file, or files, for a message."""
    return ", ".join(map(str, source)) if isinstance(source, list) else str(source)


def ingest(config: IngestConfig, ctx: StageContext) -> StageResult:
    """Read, parse in parallel, de-duplicate, split; write the table and the reject report."""
    records = read_sources(config)
    parsed_batches = map_batches(process_smiles_batch, batches(records, config.batch_size),
                                 desc=f"{ctx.name}: parse", progress=ctx.progress,
                                 keep_largest_fragment=config.keep_largest_fragment,
                                 max_heavy_atoms=config.max_heavy_atoms)
    parsed = [item for batch in parsed_batches for item in batch]
    table, report = assemble(records, parsed, config, config.id_prefix or ctx.name)
    if table.empty:
        raise InputDataError(f"{_names(config.source)}: no valid molecule among {len(records)} "
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


def fingerprints(config: FingerprintConfig, ctx: StageContext) -> StageResult:
    """Embed every molecule of the needed ingest stages as Morgan counts into one latent store."""
    table = _molecules(ctx)
    store_path = ctx.out_dir / "fingerprints.zarr"
    properties = STORE_PROPERTIES
    store = LatentStore.create(store_path, len(table), config.n_bits, properties,
                               rows_per_shard=config.rows_per_shard,
                               attrs={"model": "morgan-counts", "model_version": "1",
                                      "radius": config.radius, **ctx.provenance()})
    blocks = [store.grid.bounds(b) for b in range(store.grid.n_blocks)]
    written = map_batches(embed_block, blocks, desc=f"{ctx.name}: embed", progress=ctx.progress,
                          weight=lambda b: b[1] - b[0], store_path=str(store_path),
                          rows=table[["id", *properties]], radius=config.radius,
                          n_bits=config.n_bits)
    store.finalize(source_stages=list(ctx.inputs))
    plot = _latent_map(store, ctx.out_dir / "latent_map.png")
    return StageResult(outputs={"store": str(store_path)},
                       metrics={"rows": float(sum(written)), "dim": float(config.n_bits)},
                       artifacts=[plot])


def _latent_map(store: LatentStore, path, title: str = "Morgan counts", sample: int = 20000):
    """PCA map of a random sample of the store's encoded rows, coloured by QED and logP."""
    rows = np.sort(np.random.default_rng(0).permutation(len(store))[:sample])
    z = store.vectors(rows)
    keep = np.isfinite(z).all(axis=1)
    frame = store.table(rows[keep])
    return latent_map(z[keep], {"qed": frame["qed"].to_numpy(), "logp": frame["logp"].to_numpy()},
                      path, title=title)


def _flat_epoch(row: dict) -> dict:
    """An epoch's row with its KL per latent dimension as one metric each (kl_dim_000, ...)."""
    per_dim = {f"kl_dim_{d:03d}": v for d, v in enumerate(row.get("kl_per_dim", []))}
    return {**{k: v for k, v in row.items() if k != "kl_per_dim"}, **per_dim}


def train(config: TrainConfig, ctx: StageContext) -> StageResult:
    """Train the molecule VAE data-parallel on Ray Train; rerunning resumes from a checkpoint."""
    table = _molecules(ctx)
    train_rows = table[table["split"] == "train"]
    if train_rows.empty:
        raise InputDataError(f"stage {ctx.name}: no molecules in the 'train' split of its inputs")
    vocab_smiles = train_rows["smiles"].tolist()
    if config.max_molecules and len(train_rows) > config.max_molecules:
        train_rows = train_rows.sample(config.max_molecules, random_state=config.seed)
    held_out = table[table["split"] != "train"]
    props = train_rows[config.model.properties].to_numpy().tolist() if config.model.properties \
        else None
    valid = held_out["smiles"].sample(min(len(held_out), config.validation_molecules),
                                      random_state=config.seed).tolist()
    model_dir = ctx.out_dir / "model"
    log_epoch = ctx.epoch_logger(config.epochs, ("loss", "recon", "kl", "recon_accuracy",
                                                 "active_units", "molecules_per_s"))
    history = train_molecule_vae(train_rows["smiles"].tolist(), props, valid, config,
                                 name=ctx.name, storage=ctx.state_dir, model_dir=model_dir,
                                 vocab_smiles=vocab_smiles,
                                 on_epoch=lambda row: log_epoch(_flat_epoch(row)))
    curves = [{k: v for k, v in row.items() if k != "kl_per_dim"} for row in history]
    plots = [training_curves(curves, ["loss", "recon", "kl", "recon_accuracy", "active_units",
                                      "molecules_per_s"], ctx.out_dir / "training_curves.png"),
             kl_per_dimension(history[-1]["kl_per_dim"], ctx.out_dir / "kl_per_dim.png")]
    if ctx.tracker is not None:
        ctx.tracker.log_torch_model(MoleculeVAE.load(str(model_dir)))
        ctx.tracker.log_folder(model_dir, "checkpoint")  # MoleculeVAE.load("runs:/ID/checkpoint")
    # Curves carry their epoch as step; the stage summary gets its own names.
    final = {f"final_{k}": float(v) for k, v in curves[-1].items() if isinstance(v, (int, float))}
    return StageResult(outputs={"model": str(model_dir)}, metrics=final,
                       artifacts=plots)


def _output(ctx: StageContext, key: str) -> str:
    """The one needed stage output called `key` (a model, a samples file)."""
    found = [rec.outputs[key] for rec in ctx.inputs.values() if key in rec.outputs]
    if len(found) != 1:
        raise InputDataError(f"stage {ctx.name}: needs exactly one stage with a {key!r} output "
                             f"(found {len(found)})")
    return found[0]


class EncodeConfig(StageConfig):
    """Parameters of the `encode` stage."""

    rows_per_shard: int | None = Field(default=4096, gt=0)


def encode(config: EncodeConfig, ctx: StageContext) -> StageResult:
    """Every ingested molecule's latent mean and std into a store, one Ray task per block."""
    table = _molecules(ctx)
    properties = STORE_PROPERTIES
    store_path = ctx.out_dir / "latents.zarr"
    trained = next(r for r in ctx.inputs.values() if "model" in r.outputs)
    report = encode_table(table, _output(ctx, "model"), store_path, properties,
                          {"model_version": trained.config_hash,
                           "model_mlflow_run_id": trained.mlflow_run_id, **ctx.provenance()},
                          config.rows_per_shard, ctx.progress)
    report.to_csv(ctx.out_dir / "rejects.csv", index=False)
    plot = _latent_map(LatentStore.open(store_path), ctx.out_dir / "latent_map.png", "VAE z")
    return StageResult(outputs={"store": str(store_path), "rejects": str(ctx.out_dir / "rejects.csv")},
                       metrics={"rows": float(len(table)), "rejected": float(len(report))},
                       artifacts=[plot, ctx.out_dir / "rejects.csv"])


class SampleConfig(StageConfig):
    """Parameters of the `sample` stage."""

    n: int = Field(default=1000, gt=0)
    temperature: float = Field(default=1.0, ge=0)  # 1: sample tokens (MOSES VAE); 0: greedy
    seed: int = 0
    per_task: int = Field(default=500, gt=0)
    # where z comes from: "prior" N(0, I), or "aggregate", a Gaussian fitted to the encoded
    # training molecules of a needed encode stage (no prior holes: latentsci/molecules/vae/aggregate.py)
    latent: Literal["prior", "aggregate"] = "prior"
    aggregate_molecules: int = Field(default=20000, gt=0)


def _latent_source(config: SampleConfig, ctx: StageContext) -> LatentGaussian | None:
    """The distribution z is drawn from (None: the model's prior)."""
    if config.latent == "prior":
        return None
    stores = [rec.outputs["store"] for rec in ctx.inputs.values() if "store" in rec.outputs]
    if len(stores) != 1:
        raise ConfigError(f"stage {ctx.name}: latent = 'aggregate' needs one encode stage in "
                          f"`needs` (found {len(stores)}), or use latent = 'prior'")
    return LatentGaussian.from_store(stores[0], "train", config.aggregate_molecules, config.seed)


def sample(config: SampleConfig, ctx: StageContext) -> StageResult:
    """n molecules decoded across Ray tasks from the prior or the fitted latent Gaussian;
    written one SMILES per line."""
    samples = sample_molecules(_output(ctx, "model"), config.n, config.per_task, config.seed,
                               config.temperature, ctx.progress, _latent_source(config, ctx))
    path = ctx.out_dir / "samples.smi"
    path.write_text("\n".join(samples) + "\n")
    grid = molecule_grid(samples[:24], ctx.out_dir / "samples_grid.png")
    return StageResult(outputs={"samples": str(path)},
                       metrics={"samples": float(len(samples)), "valid": fraction_valid(samples)},
                       artifacts=[grid])


class EvaluateConfig(StageConfig):
    """Parameters of the `evaluate` stage (MOSES metrics, reconstruction on held-out molecules)."""

    test_splits: list[str] = Field(default_factory=lambda: ["test"])
    ks: list[int] = Field(default_factory=lambda: [1000, 10000])
    fcd: bool = True
    reconstruction_molecules: int = Field(default=500, ge=0)
    reconstruction_decodes: int = Field(default=5, gt=0)
    # z for reconstruction: draws from q(z|x) (`reconstruction_decodes` each), or its mean
    # decoded once, greedily (the encode-decode round trip interpolation and search rely on)
    reconstruction_from: Literal["posterior", "mean"] = "posterior"
    seed: int = 0


def evaluate(config: EvaluateConfig, ctx: StageContext) -> StageResult:
    """MOSES metrics of the samples vs train and test splits, and held-out reconstruction."""
    table = _molecules(ctx)
    test = table.loc[table["split"].isin(config.test_splits), "smiles"].tolist()
    if not test:
        raise InputDataError(f"stage {ctx.name}: no molecules in splits {config.test_splits}")
    train_smiles = table.loc[table["split"] == "train", "smiles"].tolist()
    samples = read_generated(Path(_output(ctx, "samples")))
    results = map_batches(evaluate_job, ["moses", "reconstruction"], desc=f"{ctx.name}",
                          weight=lambda _: 1, samples=samples, train=train_smiles, test=test,
                          model_dir=_output(ctx, "model"), options=config.model_dump())
    metrics = {k: float(v) for part in results for k, v in part.items()}
    path = ctx.out_dir / "metrics.json"
    path.write_text(json.dumps(metrics, indent=2))  # MOSES's own names, e.g. unique@1000
    mlflow_names = {k.replace("@", "_at_"): v for k, v in metrics.items()}  # '@' is not allowed
    return StageResult(outputs={"metrics": str(path)}, metrics=mlflow_names, artifacts=[path])


STAGES = {
    "ingest": Stage("ingest", IngestConfig, ingest),
    "fingerprints": Stage("fingerprints", FingerprintConfig, fingerprints),
    "train": Stage("train", TrainConfig, train),
    "encode": Stage("encode", EncodeConfig, encode),
    "sample": Stage("sample", SampleConfig, sample),
    "evaluate": Stage("evaluate", EvaluateConfig, evaluate),
}

if __name__ == "__main__":
    sys.exit(main(STAGES, prog="python -m workflows.molecules"))
