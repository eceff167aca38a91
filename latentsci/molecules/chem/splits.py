"""Seeded train/valid/test splits: random, and Bemis-Murcko scaffold (no scaffold in two splits)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np


def _targets(n: int, fractions: dict[str, float]) -> dict[str, int]:
    """Rows each split should receive; rounding leftovers go to the first split."""
    sizes = {name: int(np.floor(frac * n)) for name, frac in fractions.items()}
    first = next(iter(fractions))
    sizes[first] += n - sum(sizes.values())
    return sizes


def random_split(n: int, fractions: dict[str, float], seed: int) -> np.ndarray:
    """Split labels for n rows drawn uniformly at random with a fixed seed."""
    order = np.random.default_rng(seed).permutation(n)
    labels = np.empty(n, dtype=object)
    start = 0
    for name, size in _targets(n, fractions).items():
        labels[order[start : start + size]] = name
        start += size
    return labels


def scaffold_split(scaffolds: list[str], fractions: dict[str, float], seed: int) -> np.ndarray:
    """Split labels keeping each scaffold in one split, as in chemprop's balanced scaffold split.

    Scaffold groups larger than half the smallest split go first (so they land in the first
    split, usually train); the rest are shuffled with the seed and dealt out greedily.
    Acyclic molecules (empty scaffold) are treated as singletons, not one giant group.
    """
    groups: dict[str, list[int]] = defaultdict(list)
    for i, scaffold in enumerate(scaffolds):
        groups[scaffold or f"__acyclic_{i}"].append(i)
    targets = _targets(len(scaffolds), fractions)
    big_limit = min(targets.values()) / 2
    rng = np.random.default_rng(seed)
    big = [g for g in groups.values() if len(g) > big_limit]
    small = [g for g in groups.values() if len(g) <= big_limit]
    rng.shuffle(big)
    rng.shuffle(small)
    labels = np.empty(len(scaffolds), dtype=object)
    names = list(targets)
    filled = dict.fromkeys(names, 0)
    for group in big + small:
        name = next((s for s in names if filled[s] + len(group) <= targets[s]), None)
        if name is None:  # nothing fits exactly: give it to the split furthest below its target
            name = max(names, key=lambda s: targets[s] - filled[s])
        labels[group] = name
        filled[name] += len(group)
    return labels
