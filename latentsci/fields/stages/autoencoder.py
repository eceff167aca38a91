"""The `train_autoencoder` stage: the periodic conv autoencoder that is the fields' codec, fitted
to the training trajectories on Ray Train and scored on held-out frames."""

from __future__ import annotations

import torch
from pydantic import Field, model_validator

from latentsci.errors import InputDataError
from latentsci.fields.data.sources import open_fields
from latentsci.fields.forecast.forecasts import reconstruction_scores
from latentsci.fields.networks.autoencoder import FieldAutoencoderConfig, build_field_autoencoder
from latentsci.fields.networks.checkpoint import AUTOENCODER_CODEC, AUTOENCODER_KIND
from latentsci.fields.networks.registry import load_model, save_model
from latentsci.fields.plots import rollout_frames
from latentsci.fields.stages.common import enough, split, test_from
from latentsci.fields.training import FieldTrainConfig, sample_frames, train_field_model
from latentsci.pipeline.stage import ONE, Stage, StageContext, StageResult, nested_keys
from latentsci.plots import training_curves

# Pipeline files written before the model config was nested set its sizes at the top level.
_FLAT = nested_keys({k: ("model", k) for k in ("width", "levels", "blocks", "latent_channels",
                                               "periodic", "upsample")})


class AutoencoderStageConfig(FieldTrainConfig):
    """The autoencoder (`model`, channels filled in from the data) and its training."""

    model: FieldAutoencoderConfig = Field(default_factory=FieldAutoencoderConfig)

    @model_validator(mode="before")
    @classmethod
    def _flat_sizes(cls, data):
        """Accept the older flat layout (`width = 16` for `model.width`)."""
        return _FLAT(data)


def _autoencoder(config: AutoencoderStageConfig, ctx: StageContext, channels: int):
    """The configured autoencoder for fields with `channels` channels."""
    if config.model.channels not in (None, channels):
        raise InputDataError(f"stage {ctx.name}: model.channels = {config.model.channels} but "
                             f"the fields have {channels} channels (leave it out)")
    return build_field_autoencoder(config.model.model_copy(update={"channels": channels}))


def train_autoencoder(config: AutoencoderStageConfig, ctx: StageContext) -> StageResult:
    """Fit the normalisation, train on Ray Train, score reconstruction on test frames."""
    fields = ctx.output("fields")
    source = open_fields(fields)
    train_ids, test_ids = split(source, test_from(ctx))
    enough(ctx, len(train_ids), config.num_workers, "training trajectories")
    model = _autoencoder(config, ctx, source.shape[2])
    try:
        model.latent_shape(tuple(source.shape[3:]))
    except ValueError as exc:
        raise InputDataError(f"stage {ctx.name}: {exc}") from None
    model.fit_scale(sample_frames(source, train_ids, seed=config.seed))
    initial = save_model(ctx.out_dir / "initial", model, {
        "kind": AUTOENCODER_KIND, "codec": AUTOENCODER_CODEC,
        "frame_shape": list(source.shape[2:])})  # the grid its codec encodes
    model_dir = ctx.out_dir / "model"
    history = train_field_model(ctx.shared(initial), {"dataset": "frames", "kwargs": {
        "fields_path": fields, "trajectories": train_ids}}, config, ctx.name, ctx.state_dir,
        model_dir, ctx.epoch_logger(config.epochs, ("loss", "examples_per_s")))
    trained, _ = load_model(model_dir)
    grid = tuple(source.shape[3:])
    frames = sample_frames(source, test_ids or train_ids, limit=512, seed=1)
    metrics = {**reconstruction_scores(trained, frames),
               "compression_ratio": trained.compression_ratio(grid),
               "final_loss": history[-1]["loss"]}
    example = frames[:1]
    with torch.no_grad():
        recon = trained.reconstruct(torch.from_numpy(example)).numpy()
    plots = [training_curves(history, ["loss", "examples_per_s"], ctx.out_dir / "curves.png"),
             rollout_frames(example, {"reconstruction": recon}, [0],
                            ctx.out_dir / "reconstruction.png", title="autoencoder")]
    if ctx.tracker is not None:
        ctx.tracker.log_folder(model_dir, "autoencoder")
    return StageResult(outputs={"codec": str(model_dir)}, metrics=metrics, artifacts=plots)


TRAIN_AUTOENCODER = Stage("train_autoencoder", AutoencoderStageConfig, train_autoencoder,
                          reads={"fields": ONE, "split": ONE}, gives=("codec",))
