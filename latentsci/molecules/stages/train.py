"""The `train` stage: the molecule VAE, data-parallel on Ray Train; a rerun resumes."""

from __future__ import annotations

from latentsci.errors import InputDataError
from latentsci.molecules.plots import kl_per_dimension
from latentsci.molecules.stages.common import molecules
from latentsci.molecules.vae import MoleculeVAE
from latentsci.molecules.vae.train import TrainConfig, train_molecule_vae
from latentsci.pipeline.stage import ONE_OR_MORE, Stage, StageContext, StageResult
from latentsci.plots import training_curves

CURVES = ("loss", "recon", "kl", "recon_accuracy", "active_units", "molecules_per_s")


def _flat_epoch(row: dict) -> dict:
    """An epoch's row with its KL per latent dimension as one metric each (kl_dim_000, ...)."""
    per_dim = {f"kl_dim_{d:03d}": v for d, v in enumerate(row.get("kl_per_dim", []))}
    return {**{k: v for k, v in row.items() if k != "kl_per_dim"}, **per_dim}


def train(config: TrainConfig, ctx: StageContext) -> StageResult:
    """Train the molecule VAE data-parallel on Ray Train; rerunning resumes from a checkpoint."""
    table = molecules(ctx)
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
    log_epoch = ctx.epoch_logger(config.epochs, CURVES)
    history = train_molecule_vae(train_rows["smiles"].tolist(), props, valid, config,
                                 name=ctx.name, storage=ctx.state_dir, model_dir=model_dir,
                                 vocab_smiles=vocab_smiles,
                                 on_epoch=lambda row: log_epoch(_flat_epoch(row)))
    curves = [{k: v for k, v in row.items() if k != "kl_per_dim"} for row in history]
    plots = [training_curves(curves, list(CURVES), ctx.out_dir / "training_curves.png"),
             kl_per_dimension(history[-1]["kl_per_dim"], ctx.out_dir / "kl_per_dim.png")]
    if ctx.tracker is not None:
        ctx.tracker.log_torch_model(MoleculeVAE.load(str(model_dir)))
        ctx.tracker.log_folder(model_dir, "checkpoint")  # MoleculeVAE.load("runs:/ID/checkpoint")
    # Curves carry their epoch as step; the stage summary gets its own names.
    final = {f"final_{k}": float(v) for k, v in curves[-1].items() if isinstance(v, (int, float))}
    return StageResult(outputs={"codec": str(model_dir)}, metrics=final, artifacts=plots)


TRAIN = Stage("train", TrainConfig, train, reads={"molecules": ONE_OR_MORE}, gives=("codec",))
