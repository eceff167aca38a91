"""The fields' `evaluate` stage: every surrogate rolled out on the test trajectories and scored
against the solver (VRMSE by lead time, spectra, ensemble spread)."""

from __future__ import annotations

import json

import numpy as np
from pydantic import Field

from latentsci.errors import InputDataError
from latentsci.fields.data.sources import open_fields
from latentsci.fields.forecast.forecasts import (
    forecast_fields,
    forecast_metrics,
    reconstruction_scores,
)
from latentsci.fields.metrics import isotropic_spectrum
from latentsci.fields.networks.registry import load_model
from latentsci.fields.plots import error_vs_lead, rollout_frames, spectra
from latentsci.pipeline.stage import ONE, ONE_OR_MORE
from latentsci.pipeline.stage import Stage, StageConfig, StageContext, StageResult
from latentsci.store import LatentStore


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
    store = LatentStore.open(ctx.output("store"))
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
    surrogates = {rec.name: rec.outputs["surrogate"] for rec in ctx.givers("surrogate")}
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


EVALUATE = Stage("evaluate", FieldEvaluateConfig, evaluate,
                 reads={"store": ONE, "surrogate": ONE_OR_MORE}, gives=("metrics",))
