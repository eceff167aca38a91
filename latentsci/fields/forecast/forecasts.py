"""Field forecasts through the latent space: encode the last frames, roll the surrogate, decode.

Used by the evaluation stage (test trajectories against the solver) and by `latentsci rollout`
(a user's initial frames, no truth).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from latentsci.fields.metrics import error_by_lead_time, relative_l2, spectrum_band_errors, vrmse
from latentsci.inference import in_chunks
from latentsci.fields.forecast.rollout import rollout, spread_skill


def forecast_fields(autoencoder, surrogate, frames: np.ndarray, params: np.ndarray | None,
                    steps: int, members: int = 1, seed: int = 0,
                    batch: int = 64) -> np.ndarray:
    """Fields (B, members, steps, C, X, Y) following the last `history` frames (B, H, C, X, Y)."""
    from latentsci.errors import InputDataError

    history = surrogate.network.config.history
    if frames.shape[1] < history:
        raise InputDataError(f"the surrogate needs {history} initial frames per trajectory, "
                             f"got {frames.shape[1]}")
    if steps < 1 or members < 1:
        raise InputDataError(f"steps and members must be at least 1 (got {steps}, {members})")
    generator = torch.Generator().manual_seed(seed)
    out = []
    with torch.no_grad():
        for s in range(0, len(frames), batch):
            part = torch.from_numpy(np.ascontiguousarray(frames[s : s + batch, -history:]))
            z = in_chunks(autoencoder.encode, part.flatten(0, 1)).unflatten(0, part.shape[:2])
            p = None if params is None or params.shape[1] == 0 else \
                torch.from_numpy(params[s : s + batch]).float()
            latents = rollout(surrogate, z, p, steps, members, generator)
            decoded = in_chunks(autoencoder.decode, latents.flatten(0, 2))
            out.append(decoded.unflatten(0, latents.shape[:3]).numpy())
    return np.concatenate(out)


def forecast_metrics(pred: np.ndarray, truth: np.ndarray) -> dict[str, np.ndarray | float]:
    """Scores of forecasts (B, M, T, C, X, Y) against truth (B, T, C, X, Y).

    vrmse and relative L2 per lead time average over members (each member is one forecast);
    `rel_l2` is the FNO paper's score of the whole rollout (all steps flattened per trajectory);
    spectral band errors are at the last lead; spread/skill compare the ensemble to its error."""
    b, m, t = pred.shape[:3]
    members = pred.reshape(b * m, *pred.shape[2:])  # each member is one forecast
    truths = np.repeat(truth, m, axis=0)
    whole = (b * m, t * pred.shape[3], *pred.shape[4:])  # time folded into channels
    scores: dict[str, np.ndarray | float] = {
        "vrmse_by_lead": error_by_lead_time(members, truths, vrmse),
        "rel_l2_by_lead": error_by_lead_time(members, truths, relative_l2),
        "rel_l2": float(relative_l2(members.reshape(whole), truths.reshape(whole)).mean()),
    }
    bands = spectrum_band_errors(pred[:, :, -1], truth[:, None, -1])
    scores.update({f"spectrum_{name}": float(np.nanmean(v)) for name, v in bands.items()})
    if pred.shape[1] > 1:
        calibration = spread_skill(pred, truth)
        scores.update({"skill_by_lead": calibration["skill"],
                       "spread_by_lead": calibration["spread"],
                       "spread_skill_ratio": float(np.nanmean(calibration["ratio"]))})
    return scores


def reconstruction_scores(autoencoder, frames: np.ndarray, batch: int = 256) -> dict[str, float]:
    """The autoencoder alone on frames (n, C, X, Y): mean VRMSE of decode(encode(frame)) and its
    spectral band errors (what the surrogate's scores cannot go below)."""
    with torch.no_grad():
        recon = in_chunks(autoencoder.reconstruct, torch.from_numpy(
            np.ascontiguousarray(frames)), batch).numpy()
    bands = spectrum_band_errors(recon, frames)
    return {"recon_vrmse": float(vrmse(recon, frames).mean()),
            **{f"recon_spectrum_{name}": float(np.nanmean(v)) for name, v in bands.items()}}


def _initial_frames(initial: str, history: int, start: int | None,
                    names: list[str]) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Initial frames (B, H, C, X, Y), their parameters (B, P) and trajectory ids, from a field
    array (Zarr/HDF5) or from an encoded latent store (decoded back to frames)."""
    from latentsci.errors import InputDataError
    from latentsci.fields.data.sources import open_fields

    if (Path(initial) / "z").exists():  # an encoded latent store: its source fields hold params
        from latentsci.store import LatentStore

        store = LatentStore.open(initial)
        initial = store.attrs["fields"]
    source = open_fields(initial)
    stop = start if start is not None else history
    if not history <= stop <= source.shape[1]:
        raise InputDataError(f"{initial}: cannot take {history} frames ending at {stop} "
                             f"(it has {source.shape[1]} per trajectory)")
    ids = np.flatnonzero(source.valid)
    missing = [n for n in names if n not in source.parameters]
    if missing:
        raise InputDataError(f"{initial}: the surrogate needs parameter {missing[0]!r}, "
                             f"which the fields do not carry (have: {list(source.parameters)})")
    params = np.stack([source.parameters[n][ids] for n in names], 1).astype(np.float32) \
        if names else None
    return source.read(ids, slice(stop - history, stop)), params, ids


def rollout_to_zarr(surrogate_dir: str, initial: str, steps: int, out: Path, members: int = 1,
                    start: int | None = None, seed: int = 0) -> Path:
    """`latentsci rollout`: forecast every valid trajectory of `initial` and write a field store
    (trajectory = source trajectory x member, with `source_trajectory` and `member` columns)."""
    from latentsci.fields.data.writer import create_field_store, write_block
    from latentsci.fields.networks.registry import load_model

    surrogate, meta = load_model(surrogate_dir)
    autoencoder, _ = load_model(meta["autoencoder"])
    history = surrogate.network.config.history
    names = list(meta.get("parameters", []))
    frames, params, ids = _initial_frames(initial, history, start, names)
    members = members if surrogate.stochastic else 1
    pred = forecast_fields(autoencoder, surrogate, frames, params, steps, members, seed)
    flat = pred.reshape(-1, *pred.shape[2:])
    columns = {"source_trajectory": np.repeat(ids, members).astype(float),
               "member": np.tile(np.arange(members), len(ids)).astype(float),
               **{n: np.repeat(params[:, i], members) for i, n in enumerate(names)}}
    create_field_store(out, len(flat), np.arange(1, steps + 1, dtype=float),
                       [f"channel_{c}" for c in range(flat.shape[2])], tuple(flat.shape[3:]),
                       list(columns), len(flat), {"surrogate": str(surrogate_dir),
                                                  "initial": str(initial), "time_unit": "steps"})
    write_block(out, 0, flat, np.ones(len(flat), dtype=bool), columns)
    return out
