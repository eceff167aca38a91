"""Autoregressive rollout of a latent surrogate, ensemble statistics and the spread-skill check.

A rollout feeds each prediction back as the newest history entry,

    z_{t+k+1} = predict(z_{t+k-H+1..t+k}, p),    k = 0..steps-1,

for every member of an ensemble at once. For a stochastic surrogate the members are independent
draws and their scatter is the forecast's own uncertainty; `spread_skill` asks whether that
scatter matches the error the ensemble mean actually makes.
"""

from __future__ import annotations

import numpy as np
import torch

from latentsci.fields.networks.surrogate import LatentSurrogate
from latentsci.inference import evaluating


def rollout(surrogate: LatentSurrogate, history: torch.Tensor, params: torch.Tensor | None,
            steps: int, members: int = 1,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """Forecasts (B, members, steps, C, h, w) from histories (B, H, C, h, w) and params (B, P).

    All B * members trajectories advance together in one batch. A deterministic surrogate's
    members would all be equal, so it is run once per history and the result repeated.
    A `generator` (for reproducible ensembles) must live on the surrogate's device.
    """
    batch = history.shape[0]
    run_members = members if surrogate.stochastic else 1
    window = history.repeat_interleave(run_members, dim=0)
    p = None if params is None else params.repeat_interleave(run_members, dim=0)
    forecast = []
    with evaluating(surrogate):
        for _ in range(steps):
            latent = surrogate.predict(window, p, generator)
            forecast.append(latent)
            window = torch.cat([window[:, 1:], latent[:, None]], dim=1)
    stacked = torch.stack(forecast, dim=1).unflatten(0, (batch, run_members))
    return stacked.expand(batch, members, *stacked.shape[2:]).contiguous()


def ensemble_stats(members: np.ndarray | torch.Tensor,
                   axis: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Ensemble mean and spread over the members `axis` (M >= 2 members).

        mean   = (1/M) sum_m x_m
        spread = sqrt( 1/(M-1) sum_m (x_m - mean)^2 ) = sqrt( M/(M-1) * (1/M) sum_m (x_m - mean)^2 )

    i.e. the ensemble standard deviation with the M/(M-1) (Bessel) correction, pointwise.
    """
    x = _as_array(members)
    if x.shape[axis] < 2:
        raise ValueError("ensemble spread needs at least two members")
    return x.mean(axis=axis), x.std(axis=axis, ddof=1)


def spread_skill(ensemble: np.ndarray | torch.Tensor,
                 truth: np.ndarray | torch.Tensor) -> dict[str, np.ndarray | int]:
    """Per-lead-time skill, spread and their calibration ratio of an ensemble forecast.

    ensemble is (B, M, T, ...), truth (B, T, ...); averages run over the batch and all trailing
    (channel, grid) axes, separately for each lead time T:

        skill_T  = sqrt( mean (xbar - truth)^2 )                         RMSE of the ensemble mean
        spread_T = sqrt( mean 1/(M-1) sum_m (x_m - xbar)^2 )             mean unbiased variance
        ratio_T  = sqrt((M+1)/M) * spread_T / skill_T

    If truth is statistically one more member, E[(xbar - truth)^2] = (1 + 1/M) E[var], so a
    well-calibrated ensemble has ratio ~ 1 (Fortin et al. 2014); ratio < 1 is over-confident
    (too little spread), ratio > 1 under-confident.
    """
    x, y = _as_array(ensemble), _as_array(truth)
    if x.shape[:1] + x.shape[2:] != y.shape:
        raise ValueError(f"ensemble {x.shape} and truth {y.shape} do not match as (B, M, T, ...)")
    n_members = x.shape[1]
    mean, spread = ensemble_stats(x, axis=1)
    pooled = (0,) + tuple(range(2, y.ndim))  # everything except the lead time
    skill = np.sqrt(np.mean((mean - y) ** 2, axis=pooled))
    spread_t = np.sqrt(np.mean(spread ** 2, axis=pooled))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.sqrt((n_members + 1) / n_members) * spread_t / skill
    return {"skill": skill, "spread": spread_t, "ratio": ratio, "members": n_members}


def _as_array(values: np.ndarray | torch.Tensor) -> np.ndarray:
    """A float64 numpy copy of an array or (possibly on-device) tensor."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=np.float64)
