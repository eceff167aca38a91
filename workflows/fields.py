"""Fields workflow: simulate PDE trajectories, compress them, learn a latent surrogate, evaluate.

Story of a run: `simulate` fans a solver out over Ray tasks into a Zarr field store (or
`import_fields` checks a user's Zarr/HDF5 array); `train_autoencoder` learns a periodic conv
autoencoder on Ray Train; `encode` writes every frame's latent into a latent store;
`train_surrogate` learns the next latent from the last few (flow matching or a deterministic
baseline of the same network); `evaluate` rolls the surrogates out on the test trajectories
and scores them against the solver.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field

from latentsci.errors import InputDataError
from latentsci.fields.networks.autoencoder import FieldAutoencoderConfig, build_field_autoencoder
from latentsci.fields.data.windows import latent_sequences
from latentsci.fields.networks.denoiser import LatentDenoiserConfig
from latentsci.fields.encode import encode_fields
from latentsci.fields.networks.checkpoint import AUTOENCODER_CODEC, AUTOENCODER_KIND
from latentsci.fields.forecast.forecasts import forecast_fields, forecast_metrics, reconstruction_scores
from latentsci.fields.solvers.gray_scott import GrayScottConfig
from latentsci.fields.solvers.navier_stokes import NavierStokesConfig
from latentsci.fields.metrics import isotropic_spectrum
from latentsci.fields.plots import error_vs_lead, rollout_frames, spectra
from latentsci.fields.networks.registry import SURROGATE_KIND, load_model, save_model
from latentsci.fields.solvers.simulate import GENERATORS, simulate_to_zarr
from latentsci.fields.data.sources import check_finite, open_fields
from latentsci.fields.networks.surrogate import SurrogateConfig, build_surrogate
from latentsci.fields.training import FieldTrainConfig, sample_frames, train_field_model
from latentsci.pipeline.driver import main
from latentsci.pipeline.stage import InputPath, Stage, StageConfig, StageContext, StageResult
from latentsci.plots import training_curves


def _output(ctx: StageContext, key: str) -> str:
    """The one upstream output called `key` (fields, autoencoder, store)."""
    found = [rec.outputs[key] for rec in ctx.inputs.values() if key in rec.outputs]
    if len(found) != 1:
        raise InputDataError(f"stage {ctx.name}: needs exactly one stage with a {key!r} output "
                             f"(found {len(found)})")
    return found[0]


def _write_split(ctx: StageContext, test_from: int) -> str:
    """Record the first test trajectory once, where the fields enter; later stages read it."""
    path = ctx.out_dir / "split.json"
    path.write_text(json.dumps({"test_from": test_from}))
    return str(path)


def _test_from(ctx: StageContext) -> int:
    """First test trajectory, fixed once by the stage that brought the fields in."""
    return int(json.loads(Path(_output(ctx, "split")).read_text())["test_from"])


def _split(source, test_from: int) -> tuple[list[int], list[int]]:
    """Valid trajectories before `test_from` train, the rest test (the last ones)."""
    valid = np.flatnonzero(source.valid)
    return [int(t) for t in valid if t < test_from], [int(t) for t in valid if t >= test_from]


def _enough(ctx: StageContext, count: int, workers: int, what: str) -> None:
    """Refuse to train when some worker would get no data (it would report an untrained model)."""
    if count < max(workers, 1):
        raise InputDataError(f"stage {ctx.name}: {count} {what} for {workers} workers "
                             f"(each worker needs at least one)")


# ---- simulate / import ------------------------------------------------------------------------
class SimulateConfig(StageConfig):
    """Which solver, how many trajectories, and how they are spread over Ray tasks."""

    generator: Literal["navier_stokes", "gray_scott"]
    trajectories: int = Field(gt=0)
    test_trajectories: int = Field(default=0, ge=0)  # the last ones; never trained on
    per_task: int = Field(default=8, gt=0)
    cpus_per_task: int = Field(default=1, gt=0)  # also the task's torch threads
    gpus_per_task: float = Field(default=0, ge=0, le=1)  # > 0: solve on CUDA (0.25: 4 per GPU)
    execution_fields: ClassVar[frozenset[str]] = frozenset({"cpus_per_task", "gpus_per_task"})
    seed: int = 0
    navier_stokes: NavierStokesConfig = Field(default_factory=NavierStokesConfig)
    gray_scott: GrayScottConfig = Field(default_factory=GrayScottConfig)


def simulate(config: SimulateConfig, ctx: StageContext) -> StageResult:
    """Fan the solver out over Ray; blown-up trajectories are reported, not stored."""
    if config.test_trajectories >= config.trajectories:
        raise InputDataError(f"stage {ctx.name}: test_trajectories must leave some to train on")
    solver = getattr(config, config.generator)
    path = ctx.out_dir / "fields.zarr"
    rejects = simulate_to_zarr(path, config.generator, solver, config.trajectories,
                               config.per_task, config.seed,
                               {"test_from": config.trajectories - config.test_trajectories,
                                **ctx.provenance()}, ctx.progress,
                               cpus_per_task=config.cpus_per_task,
                               gpus_per_task=config.gpus_per_task)
    report = ctx.out_dir / "rejects.csv"
    pd.DataFrame(rejects, columns=["trajectory", "reason", *GENERATORS[config.generator].parameters]
                 ).to_csv(report, index=False)
    source = open_fields(path)
    first = int(np.flatnonzero(source.valid)[0]) if source.valid.any() else 0
    frames = source.read(np.array([first]))[0]
    picks = sorted({0, len(frames) // 3, 2 * len(frames) // 3, len(frames) - 1})
    plot = rollout_frames(frames, {}, picks, ctx.out_dir / "trajectory.png",
                          title=f"{config.generator}, trajectory {first}")
    return StageResult(outputs={"fields": str(path), "rejects": str(report),
                                "split": _write_split(ctx, config.trajectories
                                                      - config.test_trajectories)},
                       metrics={"trajectories": float(source.valid.sum()),
                                "rejected": float(len(rejects))},
                       artifacts=[plot, report])


class ImportConfig(StageConfig):
    """A user's field array: Zarr (trajectory, time, channel, x, y) or The Well's HDF5."""

    path: InputPath
    test_trajectories: int = Field(default=0, ge=0)


def import_fields(config: ImportConfig, ctx: StageContext) -> StageResult:
    """Check a user's fields (layout, dtype, no NaN) and hand them on."""
    source = open_fields(config.path)
    check_finite(source)
    if config.test_trajectories >= source.shape[0]:
        raise InputDataError(f"stage {ctx.name}: test_trajectories must leave some to train on")
    return StageResult(outputs={"fields": str(config.path),
                                "split": _write_split(ctx, source.shape[0]
                                                      - config.test_trajectories)},
                       metrics={"trajectories": float(source.valid.sum())})


# ---- autoencoder ------------------------------------------------------------------------------
class AutoencoderStageConfig(FieldTrainConfig):
    """Autoencoder sizes (channels come from the data) and its training."""

    width: int = Field(default=32, gt=0)
    levels: int = Field(default=3, gt=0)
    blocks: int = Field(default=2, ge=0)
    latent_channels: int = Field(default=4, gt=0)
    periodic: bool = True
    # bilinear keeps the decoder's spurious high-wavenumber power down (bench/RESULTS.md)
    upsample: Literal["nearest", "bilinear"] = "bilinear"


def train_autoencoder(config: AutoencoderStageConfig, ctx: StageContext) -> StageResult:
    """Fit the normalisation, train on Ray Train, score reconstruction on test frames."""
    fields = _output(ctx, "fields")
    source = open_fields(fields)
    train_ids, test_ids = _split(source, _test_from(ctx))
    _enough(ctx, len(train_ids), config.num_workers, "training trajectories")
    model = build_field_autoencoder(FieldAutoencoderConfig(
        channels=source.shape[2], width=config.width, levels=config.levels,
        blocks=config.blocks, latent_channels=config.latent_channels, periodic=config.periodic,
        upsample=config.upsample))
    try:
        model.latent_shape(tuple(source.shape[3:]))
    except ValueError as exc:
        raise InputDataError(f"stage {ctx.name}: {exc}") from None
    model.fit_scale(sample_frames(source, train_ids, seed=config.seed))
    initial = save_model(ctx.out_dir / "initial", model, {
        "kind": AUTOENCODER_KIND, "codec": AUTOENCODER_CODEC,
        "frame_shape": list(source.shape[2:])})  # the grid its codec encodes
    model_dir = ctx.out_dir / "model"
    history = train_field_model(initial, {"dataset": "frames", "kwargs": {
        "fields_path": fields, "trajectories": train_ids}}, config, ctx.name, ctx.state_dir,
        model_dir, ctx.epoch_logger(config.epochs, ("loss", "examples_per_s")))
    trained, _ = load_model(model_dir)
    grid = tuple(source.shape[3:])
    held_out = test_ids or train_ids
    frames = sample_frames(source, held_out, limit=512, seed=1)
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
    return StageResult(outputs={"autoencoder": str(model_dir)}, metrics=metrics, artifacts=plots)


# ---- encode -----------------------------------------------------------------------------------
class FieldEncodeConfig(StageConfig):
    """Trajectories per Ray task (and per store shard)."""

    per_task: int = Field(default=8, gt=0)


def encode(config: FieldEncodeConfig, ctx: StageContext) -> StageResult:
    """Every frame's latent into a latent store with trajectory, time and parameter columns."""
    fields, model_dir = _output(ctx, "fields"), _output(ctx, "autoencoder")
    store = encode_fields(fields, model_dir, ctx.out_dir / "latents.zarr",
                          _test_from(ctx), config.per_task,
                          ctx.provenance(), ctx.progress)
    return StageResult(outputs={"store": str(store.path)},
                       metrics={"rows": float(len(store)), "dim": float(store.dim)})


# ---- surrogate --------------------------------------------------------------------------------
class SurrogateStageConfig(FieldTrainConfig):
    """Which surrogate (flow matching or deterministic), its network, and its training."""

    objective: Literal["flow", "deterministic"] = "flow"  # `kind` names the stage type
    history: int = Field(default=2, gt=0)
    width: int = Field(default=64, gt=0)
    blocks: int = Field(default=4, ge=0)
    sampler_steps: int = Field(default=16, gt=0)
    sampler: Literal["euler", "heun"] = "euler"


def train_surrogate(config: SurrogateStageConfig, ctx: StageContext) -> StageResult:
    """Learn the next latent from the last `history` ones on the training trajectories."""
    store_path = _output(ctx, "store")
    from latentsci.store import LatentStore

    store = LatentStore.open(store_path)
    trajectories = np.unique(store.table(slice(None))[["trajectory", "split"]]
                             .query("split == 'train'")["trajectory"]).tolist()
    valid = open_fields(store.attrs["fields"]).valid
    trajectories = [t for t in trajectories if valid[t]]  # the same rule as every other stage
    z, params = latent_sequences(store_path, trajectories)
    keep = np.isfinite(z).reshape(len(z), -1).all(axis=1)
    trajectories = [t for t, k in zip(trajectories, keep) if k]
    _enough(ctx, len(trajectories), config.num_workers, "training trajectories")
    if config.history >= z.shape[1]:
        raise InputDataError(f"stage {ctx.name}: history {config.history} leaves no next frame "
                             f"to learn in trajectories of {z.shape[1]} frames")
    shape = store.attrs["latent_shape"]
    surrogate = build_surrogate(SurrogateConfig(
        kind=config.objective, sampler_steps=config.sampler_steps, sampler=config.sampler,
        denoiser=LatentDenoiserConfig(latent_channels=shape[0], history=config.history,
                                      n_params=params.shape[1], width=config.width,
                                      blocks=config.blocks)))
    surrogate.fit_scale(z[keep], params[keep] if params.shape[1] else None)
    meta = {"kind": SURROGATE_KIND, "autoencoder": store.attrs["model_path"],
            "parameters": store.attrs["parameters"]}
    initial = save_model(ctx.out_dir / "initial", surrogate, meta)
    model_dir = ctx.out_dir / "model"
    history = train_field_model(initial, {"dataset": "windows", "kwargs": {
        "store_path": store_path, "trajectories": trajectories, "history": config.history}},
        config, ctx.name, ctx.state_dir, model_dir,
        ctx.epoch_logger(config.epochs, ("loss", "examples_per_s")))
    plot = training_curves(history, ["loss", "examples_per_s"], ctx.out_dir / "curves.png")
    if ctx.tracker is not None:
        ctx.tracker.log_folder(model_dir, "surrogate")
    return StageResult(outputs={"surrogate": str(model_dir)},
                       metrics={"final_loss": history[-1]["loss"],
                                "parameters": float(sum(p.numel() for p in surrogate.parameters()))},
                       artifacts=[plot])


# ---- evaluate ---------------------------------------------------------------------------------
class FieldEvaluateConfig(StageConfig):
    """The protocol: `context` frames given, forecast `horizon` more; ensemble size."""

    context: int = Field(default=10, gt=0)
    horizon: int | None = Field(default=None, gt=0)  # default: to the end of the trajectory
    members: int = Field(default=4, gt=0)
    max_trajectories: int | None = Field(default=None, gt=0)
    seed: int = 0


def _mean_spectrum(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Isotropic spectrum of frames (n, C, X, Y), averaged over frames and channels."""
    k, power = isotropic_spectrum(frames)
    return k, power.mean(axis=(0, 1))


def evaluate(config: FieldEvaluateConfig, ctx: StageContext) -> StageResult:
    """Roll every surrogate out on the test trajectories and score against the solver."""
    from latentsci.store import LatentStore

    store = LatentStore.open(_output(ctx, "store"))
    source = open_fields(store.attrs["fields"])
    test = [t for t in range(store.attrs["test_from"], source.shape[0]) if source.valid[t]]
    test = test[: config.max_trajectories]
    if not test:
        raise InputDataError(f"stage {ctx.name}: no valid test trajectories to evaluate on")
    horizon = config.horizon or source.shape[1] - config.context
    if horizon < 1 or config.context + horizon > source.shape[1]:
        raise InputDataError(f"stage {ctx.name}: context {config.context} + horizon {horizon} "
                             f"exceeds the {source.shape[1]} stored frames")
    truth_all = source.read(np.asarray(test))
    truth = truth_all[:, config.context : config.context + horizon]
    params = np.stack([source.parameters[n][test] for n in store.attrs["parameters"]], axis=1) \
        if store.attrs["parameters"] else None
    autoencoder, _ = load_model(store.attrs["model_path"])
    surrogates = {rec.name: rec.outputs["surrogate"] for rec in ctx.inputs.values()
                  if "surrogate" in rec.outputs}
    results = reconstruction_scores(autoencoder, truth.reshape(-1, *truth.shape[2:]))
    preds: dict[str, np.ndarray] = {}
    lead_curves, curves = {}, {"truth": _mean_spectrum(truth[:, -1])}
    for name, folder in surrogates.items():
        surrogate, _ = load_model(folder)
        members = config.members if surrogate.stochastic else 1
        pred = forecast_fields(autoencoder, surrogate, truth_all[:, : config.context],
                               params, horizon, members, config.seed)
        scores = forecast_metrics(pred, truth)
        lead_curves[name] = scores["vrmse_by_lead"]
        curves[name] = _mean_spectrum(pred[:, 0, -1])
        preds[name] = pred[0, 0]
        results.update({f"{name}/{k}": (v.tolist() if isinstance(v, np.ndarray) else v)
                        for k, v in scores.items()})
        results[f"{name}/vrmse_last"] = float(scores["vrmse_by_lead"][-1])
    (ctx.out_dir / "metrics.json").write_text(json.dumps(results, indent=2))
    picks = sorted({0, horizon // 2, horizon - 1})
    plots = [error_vs_lead(lead_curves, ctx.out_dir / "vrmse_vs_lead.png"),
             rollout_frames(truth[0], preds, picks, ctx.out_dir / "rollout.png",
                            title=f"test trajectory {test[0]}"),
             spectra(curves, ctx.out_dir / "spectra_last_lead.png")]
    scalars = {k.replace("/", "_"): float(v) for k, v in results.items()
               if isinstance(v, float)}
    return StageResult(outputs={"metrics": str(ctx.out_dir / "metrics.json")},
                       metrics=scalars, artifacts=plots + [ctx.out_dir / "metrics.json"])


STAGES = {
    # version 2: NS initial vorticity at the FNO generator's power (was twice it), so old runs regenerate
    "simulate": Stage("simulate", SimulateConfig, simulate, version="2"),
    "import_fields": Stage("import_fields", ImportConfig, import_fields),
    "train_autoencoder": Stage("train_autoencoder", AutoencoderStageConfig, train_autoencoder),
    "encode": Stage("encode", FieldEncodeConfig, encode),
    "train_surrogate": Stage("train_surrogate", SurrogateStageConfig, train_surrogate),
    "evaluate": Stage("evaluate", FieldEvaluateConfig, evaluate),
}

if __name__ == "__main__":
    sys.exit(main(STAGES, prog="python -m workflows.fields"))
