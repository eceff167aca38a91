"""Paths between latents: linear, spherical, and norm-aware interpolation, for pairs and chains.

    lerp(t)  = (1 - t) z0 + t z1
    slerp(t) = sin((1 - t) w) / sin(w) z0 + sin(t w) / sin(w) z1,  w = angle(z0, z1)
    norm(t)  = ((1 - t) |z0| + t |z1|) * slerp of the unit directions z0/|z0|, z1/|z1|

Slerp (White 2016) keeps the norm near a Gaussian prior's shell of radius sqrt(d) when both ends
sit on it; the norm-aware path interpolates direction and radius separately, for latents (such as
posterior means) that do not. Everything works on batches of pairs: ends (n, d), positions (k,),
paths (n, k, d).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Method = Literal["lerp", "slerp", "norm"]
METHODS: tuple[str, ...] = ("lerp", "slerp", "norm")
_PARALLEL = 1e-6  # below this angle (radians) slerp is lerp to float precision


def positions(steps: int) -> np.ndarray:
    """`steps` evenly spaced positions from 0 to 1, both ends included."""
    if steps < 2:
        raise ValueError(f"an interpolation needs at least 2 steps (its two ends), got {steps}")
    return np.linspace(0.0, 1.0, steps)


def _angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle (n,) between rows of a and b (0 where either is the zero vector)."""
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    cos = np.einsum("nd,nd->n", a, b) / np.where(na * nb > 0, na * nb, 1.0)
    return np.arccos(np.clip(cos, -1.0, 1.0))


def _slerp_weights(omega: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weights (n, k) of the start and end under slerp; lerp's where the ends are parallel."""
    omega, t = omega[:, None], t[None, :]
    small = omega < _PARALLEL
    sin = np.where(small, 1.0, np.sin(omega))
    start = np.where(small, 1.0 - t, np.sin((1.0 - t) * omega) / sin)
    end = np.where(small, t, np.sin(t * omega) / sin)
    return start, end


def lerp(z0: np.ndarray, z1: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Straight lines (n, k, d) from z0 to z1."""
    return z0[:, None, :] * (1.0 - t)[None, :, None] + z1[:, None, :] * t[None, :, None]


def slerp(z0: np.ndarray, z1: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Great-circle arcs (n, k, d) from z0 to z1 (antipodal ends: the arc is not unique, and
    the formula's division by sin(pi) is avoided by falling back to lerp's weights)."""
    omega = _angle(z0, z1)
    omega = np.where(np.pi - omega < _PARALLEL, 0.0, omega)
    start, end = _slerp_weights(omega, t)
    return z0[:, None, :] * start[..., None] + z1[:, None, :] * end[..., None]


def norm_aware(z0: np.ndarray, z1: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Direction along the great circle of the unit vectors, radius linear between the ends'."""
    r0, r1 = np.linalg.norm(z0, axis=1), np.linalg.norm(z1, axis=1)
    u0 = z0 / np.where(r0 > 0, r0, 1.0)[:, None]
    u1 = z1 / np.where(r1 > 0, r1, 1.0)[:, None]
    direction = slerp(u0, u1, t)
    direction /= np.maximum(np.linalg.norm(direction, axis=2, keepdims=True), 1e-12)
    radius = r0[:, None] * (1.0 - t)[None, :] + r1[:, None] * t[None, :]
    return direction * radius[..., None]


_PATHS = {"lerp": lerp, "slerp": slerp, "norm": norm_aware}


def interpolate(z0: np.ndarray, z1: np.ndarray, steps: int, method: Method = "slerp") -> np.ndarray:
    """Paths (n, steps, d) between rows of z0 and z1, both (n, d), ends included exactly."""
    if method not in _PATHS:
        raise ValueError(f"unknown interpolation method {method!r} (methods: {', '.join(METHODS)})")
    z0, z1 = np.asarray(z0, dtype=np.float64), np.asarray(z1, dtype=np.float64)
    if z0.ndim != 2 or z0.shape != z1.shape:
        raise ValueError(f"path ends must be two (n, d) arrays of one shape, got {z0.shape} and "
                         f"{z1.shape}")
    paths = _PATHS[method](z0, z1, positions(steps))
    paths[:, 0], paths[:, -1] = z0, z1  # exact ends, whatever the rounding
    return paths.astype(np.float32)


def chain(anchors: np.ndarray, steps: int, method: Method = "slerp") -> np.ndarray:
    """One path (points, d) through anchors (m, d) in order, `steps` points per leg, each inner
    anchor once."""
    anchors = np.asarray(anchors, dtype=np.float64)
    if anchors.ndim != 2 or len(anchors) < 2:
        raise ValueError(f"a chain needs at least 2 anchors as (m, d), got shape {anchors.shape}")
    legs = interpolate(anchors[:-1], anchors[1:], steps, method)
    return np.concatenate([legs[0], *[leg[1:] for leg in legs[1:]]])


def norm_report(z: np.ndarray) -> dict[str, float]:
    """Encoded latents' norms next to sqrt(d), where a standard Gaussian prior's mass sits."""
    norms = np.linalg.norm(np.asarray(z, dtype=np.float64), axis=1)
    return {"norm_mean": float(norms.mean()), "norm_std": float(norms.std()),
            "prior_radius": float(np.sqrt(z.shape[1]))}
