"""A user's own multi-property objective written as a file: terms that are any objective by name,
each through a desirability modifier, joined by a weighted arithmetic or geometric mean (how
GuacaMol and PMO build their MPO tasks), named on the command line as `combine:FILE.toml`.

    mean = "geometric"                       # or "arithmetic" (default)
    [[terms]]
    objective = "similarity:ecfp4:CC(=O)Oc1ccccc1C(=O)O"
    modifier = { kind = "clipped", upper = 0.7 }
    [[terms]]
    objective = "qed"
    weight = 2.0
    [[terms]]
    objective = "mymodule:logd"              # a user's module:function
    modifier = { kind = "gaussian", mu = 2.0, sigma = 0.5 }
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from latentsci.latent.search import modifiers as m
from latentsci.latent.search.objective import (Objective, OracleError, get_objective,
                                               register_family)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClippedSpec(_Strict):
    """Linear ramp from `lower` (0) to `upper` (1)."""

    kind: Literal["clipped"]
    upper: float
    lower: float = 0.0


class GaussianSpec(_Strict):
    """A bell around mu (`gaussian`), or its half that allows smaller (`min_gaussian`) or
    larger (`max_gaussian`) values."""

    kind: Literal["gaussian", "min_gaussian", "max_gaussian"]
    mu: float
    sigma: float = Field(gt=0)


class ThresholdedSpec(_Strict):
    """min(x, threshold) / threshold."""

    kind: Literal["thresholded"]
    threshold: float = Field(gt=0)


Modifier = Annotated[ClippedSpec | GaussianSpec | ThresholdedSpec, Field(discriminator="kind")]


class TermSpec(_Strict):
    """One objective, its modifier (none: the raw score) and its weight."""

    objective: str
    modifier: Modifier | None = None
    weight: float = Field(default=1.0, gt=0)


class CombinationSpec(_Strict):
    """The terms and how they are joined."""

    mean: Literal["arithmetic", "geometric"] = "arithmetic"
    terms: list[TermSpec] = Field(min_length=1)


def build_modifier(spec: Modifier | None):
    """The modifier a spec names (None: the identity)."""
    if spec is None:
        return None
    if isinstance(spec, ClippedSpec):
        return m.Clipped(spec.upper, spec.lower)
    if isinstance(spec, ThresholdedSpec):
        return m.Thresholded(spec.threshold)
    shape = {"gaussian": m.Gaussian, "min_gaussian": m.MinGaussian,
             "max_gaussian": m.MaxGaussian}[spec.kind]
    return shape(spec.mu, spec.sigma)


@dataclass(frozen=True)
class Combination:
    """The joined score of a batch: every term scores the batch once, is modified per item and
    the terms are averaged with their weights (picklable, so scoring actors get it by value)."""

    terms: tuple[Objective, ...]
    modifiers: tuple
    weights: tuple[float, ...]
    geometric: bool

    def __call__(self, items: list[str]) -> list[float]:
        """One joined score per item (a term that raises on an item raises for the batch, and
        the oracle layer then scores items one by one to find it)."""
        columns = []
        for objective, modify in zip(self.terms, self.modifiers):
            raw = np.asarray(objective.score(items), dtype=float).reshape(-1)
            columns.append(raw if modify is None else np.array([modify(x) for x in raw]))
        scores = np.stack(columns, axis=1)
        join = m.geometric_mean if self.geometric else m.arithmetic_mean
        return [join(row, self.weights) for row in scores]


def read_combination(path: Path) -> CombinationSpec:
    """The spec of a combination file, or one line naming what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no such combination file: {path}")
    try:
        return CombinationSpec(**tomllib.loads(path.read_text()))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not TOML ({exc})") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"{path}: {where}: {first['msg']}") from None


def combination_objective(argument: str) -> Objective:
    """combine:FILE.toml as an objective, every term found (and user terms checked) first."""
    spec = read_combination(Path(argument))
    terms = []
    for n, term in enumerate(spec.terms):
        if term.objective.startswith("combine:"):
            raise ValueError(f"{argument}: terms.{n}: a combination cannot hold another")
        try:
            terms.append(get_objective(term.objective))
        except OracleError as exc:
            raise ValueError(f"{argument}: terms.{n}: {exc}") from None
    if len({t.item_kind for t in terms}) > 1:
        raise ValueError(f"{argument}: terms score different kinds of items")
    join = Combination(tuple(terms), tuple(build_modifier(t.modifier) for t in spec.terms),
                       tuple(t.weight for t in spec.terms), spec.mean == "geometric")
    text = f"{spec.mean} mean of " + ", ".join(t.objective for t in spec.terms)
    return Objective(f"combine:{argument}", text, join, terms[0].canonical, terms[0].item_kind)


register_family("combine", combination_objective, "a weighted arithmetic or geometric mean of "
                "objectives through desirability modifiers, written in a TOML file: "
                "combine:FILE.toml")
