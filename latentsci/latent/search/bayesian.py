"""Latent Bayesian optimisation with BoTorch: a GP on the latents scored so far (capped at the
best plus the most recent points), batches chosen by qLogNoisyExpectedImprovement inside a
TuRBO-1 trust region, decoded, repeats dropped before any oracle call.

The GP sees whitened latents mapped from the box [-box, box]^d into the unit cube; candidates are
mapped back and held inside the norm bound. When a batch's decodes bring too few new items it is
topped up with uniform draws in the trust region. Runs on `device` (CPU by default).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from latentsci.latent.search.latent_random import LatentDraws, draw
from latentsci.latent.search.latent_space import LatentSpace, restored_rng, rng_state
from latentsci.latent.search.trust_region import TrustRegion


@dataclass(frozen=True)
class BOConfig:
    """Initial draws, GP cap, batch and acquisition-optimiser sizes (CPU-friendly defaults)."""

    initial: int = 100  # labels from random draws before the first GP
    batch: int = 20  # q of the acquisition
    best_points: int = 200  # the GP keeps the best ...
    max_points: int = 2000  # ... and the most recent, this many in all
    fit_points: int = 1000  # hyperparameters are fitted on this many of them (the best and the
    # most recent); the GP then conditions on all with those hyperparameters: the fit's cost grows
    # with n^3 per L-BFGS step, conditioning is one Cholesky
    box: float = 4.0  # whitened half-width mapped onto the unit cube
    num_restarts: int = 4
    raw_samples: int = 256
    acquisition_iterations: int = 60  # L-BFGS iterations optimising the batch (flat qLogNEI
    # landscapes otherwise take thousands of evaluations for little gain)
    fit_iterations: int = 100  # L-BFGS iterations of the GP's first fit ...
    refit_iterations: int = 20  # ... and of each later one, from the last fit's hyperparameters
    max_cholesky: int = 4000  # exact Cholesky up to this many points (gpytorch's CG is slower)
    mc_samples: int = 128
    baseline: int = 50  # best observed points the noisy improvement is measured against
    device: str = "cpu"
    draws: LatentDraws = field(default_factory=LatentDraws)


def gp_rows(y: np.ndarray, best: int, most: int) -> np.ndarray:
    """Indices the GP keeps: the `best` highest scores and the most recent rest, at most `most`."""
    if len(y) <= most:
        return np.arange(len(y))
    top = np.argsort(-y, kind="stable")[:best]
    rest = np.setdiff1d(np.arange(len(y)), top)  # ascending: the most recent last
    return np.sort(np.concatenate([top, rest[len(rest) - (most - len(top)):]]))


def fit_gp(x: np.ndarray, y: np.ndarray, config: BOConfig, warm: dict | None):
    """A GP on unit-cube rows (outcomes standardised), its hyperparameters fitted from `warm`'s
    (the last fit's) when given."""
    import torch
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from botorch.models.transforms.outcome import Standardize
    from gpytorch.mlls import ExactMarginalLogLikelihood

    options = {"dtype": torch.float64, "device": torch.device(config.device)}
    gp = SingleTaskGP(torch.tensor(x, **options), torch.tensor(y[:, None], **options),
                      outcome_transform=Standardize(m=1))
    if warm is not None:
        gp.load_state_dict(warm, strict=False)
    iterations = config.fit_iterations if warm is None else config.refit_iterations
    fit_gpytorch_mll(ExactMarginalLogLikelihood(gp.likelihood, gp),
                     optimizer_kwargs={"options": {"maxiter": iterations}})
    return gp


def conditioned_gp(x: np.ndarray, y: np.ndarray, config: BOConfig, fitted: dict):
    """A GP on all rows with hyperparameters fitted elsewhere (no optimisation of its own)."""
    import torch
    from botorch.models import SingleTaskGP
    from botorch.models.transforms.outcome import Standardize

    options = {"dtype": torch.float64, "device": torch.device(config.device)}
    gp = SingleTaskGP(torch.tensor(x, **options), torch.tensor(y[:, None], **options),
                      outcome_transform=Standardize(m=1))
    gp.load_state_dict(fitted, strict=False)
    gp.eval()
    return gp


def hyperparameters(gp) -> dict:
    """What a later fit starts from (not the data, nor the outcome scaling)."""
    return {k: v.detach().clone() for k, v in gp.state_dict().items()
            if not k.startswith(("outcome_transform", "train_"))}


def acquire(gp, region: TrustRegion, config: BOConfig,
            seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """q candidates in the unit cube from qLogNEI in the trust region, and the region's box."""
    import torch
    from botorch.acquisition.logei import qLogNoisyExpectedImprovement
    from botorch.optim import optimize_acqf
    from botorch.sampling import SobolQMCNormalSampler

    train_x = gp.train_inputs[0]
    observed = gp.outcome_transform.untransform(gp.train_targets[:, None])[0]
    kernel = getattr(gp.covar_module, "base_kernel", gp.covar_module)
    lengthscales = kernel.lengthscale.detach().cpu().numpy().reshape(-1)
    centre = train_x[int(torch.argmax(observed))].detach().cpu().numpy()
    lower, upper = region.box(centre, lengthscales)
    # the incumbent set: the best observed rows, not all (a joint posterior over every point
    # scored is what makes the acquisition slow as labels accumulate)
    baseline = train_x[torch.argsort(observed.reshape(-1), descending=True)[: config.baseline]]
    acquisition = qLogNoisyExpectedImprovement(
        gp, baseline, sampler=SobolQMCNormalSampler(torch.Size([config.mc_samples]), seed=seed),
        prune_baseline=True)
    bounds = torch.tensor(np.stack([lower, upper]), dtype=train_x.dtype, device=train_x.device)
    candidates, _ = optimize_acqf(acquisition, bounds, q=config.batch,
                                  num_restarts=config.num_restarts,
                                  raw_samples=config.raw_samples,
                                  options={"maxiter": config.acquisition_iterations})
    return candidates.detach().cpu().numpy(), lower, upper


class LatentBO:
    """Batch Bayesian optimisation over latents in a TuRBO trust region."""

    name = "bo"

    def __init__(self, space: LatentSpace, seed: int = 0, origin: np.ndarray | None = None,
                 config: BOConfig | None = None):
        self.space, self.origin, self.config = space, origin, config or BOConfig()
        self.seed, self.rng, self.rounds = seed, np.random.default_rng(seed), 0
        self.region = TrustRegion(space.gaussian.dim, self.config.batch)
        self._warm: dict | None = None  # the last GP fit's hyperparameters
        self.timings = {"gp_fit": 0.0, "acquisition": 0.0, "decode": 0.0}  # seconds, this process

    def _cube(self, u: np.ndarray) -> np.ndarray:
        """Whitened rows into the unit cube."""
        return np.clip((u / self.config.box + 1.0) / 2.0, 0.0, 1.0)

    def _whitened(self, x: np.ndarray) -> np.ndarray:
        """Unit-cube rows back to whitened latents inside the norm bound."""
        return self.space.gaussian.bound((2.0 * x - 1.0) * self.config.box)

    def ask(self, n: int) -> list[str]:
        """Random draws until `initial` labels, then one acquisition batch decoded (topped up
        with uniform draws in the trust region)."""
        u, y = self.space.labelled()
        if len(y) < self.config.initial:
            return draw(self.space, self.rng, min(n, self.config.initial - len(y)),
                        self.origin, self.config.draws)
        keep = gp_rows(y, self.config.best_points, self.config.max_points)
        self.rounds += 1
        candidates, lower, upper = self._batch(self._cube(u[keep]), y[keep])
        started = time.perf_counter()
        wanted = min(n, self.config.batch)
        items = self.space.decode(self._whitened(candidates), wanted)
        for _ in range(3):
            if len(items) >= wanted:
                break
            uniform = lower + (upper - lower) * self.rng.random((2 * wanted, len(lower)))
            items += self.space.decode(self._whitened(uniform), wanted - len(items))
        if len(items) < wanted:  # the region decodes only to items already seen: it is spent
            self.region.restart()
            items += draw(self.space, self.rng, wanted - len(items), self.origin,
                          self.config.draws)  # the budget is spent, never the search ended
        self.timings["decode"] += time.perf_counter() - started
        return items

    def _batch(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fit the GP (from the last fit's hyperparameters) and acquire one batch, timed."""
        import gpytorch
        import torch

        torch.manual_seed(self.seed * 100003 + self.rounds)
        with gpytorch.settings.max_cholesky_size(self.config.max_cholesky):
            started = time.perf_counter()
            fit = gp_rows(y, min(self.config.best_points, self.config.fit_points),
                          self.config.fit_points)
            gp = fit_gp(x[fit], y[fit], self.config, self._warm)
            self._warm = hyperparameters(gp)
            if len(fit) < len(y):
                gp = conditioned_gp(x, y, self.config, self._warm)
            self.timings["gp_fit"] += time.perf_counter() - started
            started = time.perf_counter()
            out = acquire(gp, self.region, self.config, self.seed * 100003 + self.rounds)
            self.timings["acquisition"] += time.perf_counter() - started
        return out

    def tell(self, items: list[str], scores: np.ndarray) -> None:
        """Labels for the GP; the trust region grows or shrinks on the batch's best."""
        self.space.record(items, scores)
        scores = np.asarray(scores, float)
        if self.rounds:
            self.region.update(scores)
        elif np.isfinite(scores).any():
            self.region.best = max(self.region.best, float(np.nanmax(scores)))

    def state(self) -> dict[str, Any]:
        """Random state, trust region and labels (the GP is refitted from them)."""
        region = self.region.state()
        region["best"] = region["best"] if math.isfinite(region["best"]) else None
        return {"rng": rng_state(self.rng), "rounds": self.rounds, "region": region,
                "space": self.space.state(), "config": asdict(self.config)}

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a saved state."""
        self.rng = restored_rng(state["rng"])
        self.rounds = int(state["rounds"])
        region = dict(state["region"])
        region["best"] = -math.inf if region["best"] is None else region["best"]
        self.region = TrustRegion(**region)
        self.space.restore(state["space"])
