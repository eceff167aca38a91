"""The `train_surrogate` stage: the next latent from the last few (flow matching, or a
deterministic baseline of the same network), learnt on the training trajectories' latents."""

from __future__ import annotations

import numpy as np
from pydantic import Field, model_validator

from latentsci.errors import InputDataError
from latentsci.fields.data.sources import open_fields
from latentsci.fields.data.windows import latent_sequences
from latentsci.fields.networks.registry import SURROGATE_KIND, save_model
from latentsci.fields.networks.surrogate import SurrogateConfig, build_surrogate
from latentsci.fields.stages.common import enough
from latentsci.fields.training import FieldTrainConfig, train_field_model
from latentsci.pipeline.stage import ONE, Stage, StageContext, StageResult, nested_keys
from latentsci.plots import training_curves
from latentsci.store import LatentStore

# Pipeline files written before the model config was nested set its parts at the top level.
_FLAT = nested_keys({"objective": ("model", "kind"), "sampler_steps": ("model", "sampler_steps"),
                     "sampler": ("model", "sampler"), "history": ("model", "denoiser", "history"),
                     "width": ("model", "denoiser", "width"),
                     "blocks": ("model", "denoiser", "blocks")})


class SurrogateStageConfig(FieldTrainConfig):
    """The surrogate (`model`: its kind, sampler and denoiser network; latent channels and
    parameters filled in from the store) and its training."""

    model: SurrogateConfig = Field(default_factory=SurrogateConfig)

    @model_validator(mode="before")
    @classmethod
    def _flat_sizes(cls, data):
        """Accept the older flat layout (`objective`, `history`, `width` at the top level)."""
        return _FLAT(data)


def _training_trajectories(store: LatentStore) -> list[int]:
    """The store's training trajectories whose fields are valid (the rule every stage uses)."""
    table = store.table(slice(None))[["trajectory", "split"]].query("split == 'train'")
    valid = open_fields(store.attrs["fields"]).valid
    return [t for t in np.unique(table["trajectory"]).tolist() if valid[t]]


def _surrogate(config: SurrogateStageConfig, shape: list[int], n_params: int):
    """The configured surrogate for latents of `shape` and `n_params` conditioning parameters."""
    denoiser = config.model.denoiser.model_copy(update={"latent_channels": shape[0],
                                                        "n_params": n_params})
    return build_surrogate(config.model.model_copy(update={"denoiser": denoiser}))


def train_surrogate(config: SurrogateStageConfig, ctx: StageContext) -> StageResult:
    """Learn the next latent from the last `history` ones on the training trajectories."""
    store_path = ctx.output("store")
    store = LatentStore.open(store_path)
    trajectories = _training_trajectories(store)
    z, params = latent_sequences(store_path, trajectories)
    keep = np.isfinite(z).reshape(len(z), -1).all(axis=1)
    trajectories = [t for t, k in zip(trajectories, keep) if k]
    enough(ctx, len(trajectories), config.num_workers, "training trajectories")
    history = config.model.denoiser.history
    if history >= z.shape[1]:
        raise InputDataError(f"stage {ctx.name}: history {history} leaves no next frame "
                             f"to learn in trajectories of {z.shape[1]} frames")
    surrogate = _surrogate(config, store.attrs["latent_shape"], params.shape[1])
    surrogate.fit_scale(z[keep], params[keep] if params.shape[1] else None)
    meta = {"kind": SURROGATE_KIND, "autoencoder": store.attrs["model_path"],
            "parameters": store.attrs["parameters"]}
    initial = save_model(ctx.out_dir / "initial", surrogate, meta)
    model_dir = ctx.out_dir / "model"
    curve = train_field_model(ctx.shared(initial), {"dataset": "windows", "kwargs": {
        "store_path": store_path, "trajectories": trajectories, "history": history}},
        config, ctx.name, ctx.state_dir, model_dir,
        ctx.epoch_logger(config.epochs, ("loss", "examples_per_s")))
    plot = training_curves(curve, ["loss", "examples_per_s"], ctx.out_dir / "curves.png")
    if ctx.tracker is not None:
        ctx.tracker.log_folder(model_dir, "surrogate")
    return StageResult(outputs={"surrogate": str(model_dir)},
                       metrics={"final_loss": curve[-1]["loss"],
                                "parameters": float(sum(p.numel() for p in surrogate.parameters()))},
                       artifacts=[plot])


TRAIN_SURROGATE = Stage("train_surrogate", SurrogateStageConfig, train_surrogate,
                        reads={"store": ONE}, gives=("surrogate",))
