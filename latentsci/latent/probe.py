"""Probing a latent space: how much of a property simple models read off frozen latents, next to
a domain's baseline features (molecules: ECFP4), over group-aware random splits (molecules:
Murcko scaffolds, so no scaffold is on both sides; fields: trajectories).

Regression targets: ridge (alpha chosen by leave-one-out CV) and a one-hidden-layer MLP, on
standardised targets, scored by RMSE on the test side. Classification: logistic regression and an MLP classifier, by ROC-AUC for
two classes and balanced accuracy for more (Gray-Scott presets); any values name the classes.
Features are standardised on the training side, except bit vectors. Every split also scores a
constant model (features "none": the training mean, or the class shares), the floor to read
the others against. Rows whose features or target are not finite
(items the codec could not encode) are left out and counted.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

Task = Literal["regression", "classification"]
MODELS = {"regression": ("ridge", "mlp"), "classification": ("logistic", "mlp")}


def _model(task: Task, name: str, seed: int, scale: bool = True):
    """A fresh scikit-learn pipeline: standardise (not bit vectors: a rare bit would become a
    huge value), then the named model."""
    from sklearn.linear_model import LogisticRegression, RidgeCV
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from sklearn.compose import TransformedTargetRegressor

    mlp = {"hidden_layer_sizes": (256,), "alpha": 1e-3, "early_stopping": True,
           "max_iter": 400, "random_state": seed}
    head = {("regression", "ridge"): lambda: RidgeCV(alphas=np.logspace(-3, 4, 15)),
            ("regression", "mlp"): lambda: MLPRegressor(**mlp),
            ("classification", "logistic"): lambda: LogisticRegression(C=0.1, max_iter=3000),
            ("classification", "mlp"): lambda: MLPClassifier(**mlp)}[(task, name)]()
    model = make_pipeline(StandardScaler(), head) if scale else make_pipeline(head)
    if task == "regression":  # targets standardised too: an MLP cannot fit k ~ 0.06 or nu ~ 1e-3
        return TransformedTargetRegressor(regressor=model, transformer=StandardScaler())
    return model


def _binary(x: np.ndarray) -> bool:
    """Whether every value is 0 or 1 (fingerprint bits)."""
    return bool(np.isin(x, (0.0, 1.0)).all())


def _metric(task: Task, classes: int) -> str:
    """What a task is scored by: RMSE, ROC-AUC for two classes, balanced accuracy for more."""
    if task == "regression":
        return "rmse"
    return "roc_auc" if classes <= 2 else "balanced_accuracy"


def _score(metric: str, model, x: np.ndarray, y: np.ndarray) -> float:
    """The test score (ROC-AUC is NaN with one class on the test side)."""
    from sklearn.metrics import balanced_accuracy_score, roc_auc_score

    if metric == "rmse":
        return float(np.sqrt(np.mean((model.predict(x) - y) ** 2)))
    if metric == "balanced_accuracy":
        return float(balanced_accuracy_score(y, model.predict(x)))
    if len(np.unique(y)) < 2:
        return float("nan")
    return float(roc_auc_score(y, model.predict_proba(x)[:, 1]))


def group_splits(groups: np.ndarray, n_splits: int, test_share: float,
                 seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """n (train, test) row splits, each a seeded random assignment of whole groups."""
    from sklearn.model_selection import GroupShuffleSplit

    splitter = GroupShuffleSplit(n_splits=n_splits, test_size=test_share, random_state=seed)
    return list(splitter.split(np.zeros(len(groups)), groups=groups))


def usable_rows(features: dict[str, np.ndarray], y: np.ndarray) -> np.ndarray:
    """Rows with a finite target and finite values in every feature set."""
    ok = np.isfinite(np.asarray(y, dtype=float))
    for x in features.values():
        ok &= np.isfinite(x).all(axis=1)
    return ok


def run_probe(features: dict[str, np.ndarray], y: np.ndarray, task: Task, groups: np.ndarray,
              n_splits: int = 5, test_share: float = 0.2, seed: int = 0) -> pd.DataFrame:
    """One row per (features, model, split): the test score, on the same rows for every feature
    set (those usable in all of them)."""
    if task not in MODELS:
        raise ValueError(f"task must be regression or classification, got {task!r}")
    ok = usable_rows(features, y)
    y = np.asarray(y, dtype=float)[ok]
    if task == "classification":  # class indices, whatever values name them (F of a preset)
        y = np.unique(y, return_inverse=True)[1]
    metric = _metric(task, len(np.unique(y)))
    groups = np.asarray(groups)[ok]
    rows = []
    for split, (train, test) in enumerate(group_splits(groups, n_splits, test_share, seed)):
        rows.append(_constant_row(task, metric, y, train, test, split, int((~ok).sum())))
        for name, x in features.items():
            x = x[ok]
            scale = not _binary(x)
            for model_name in MODELS[task]:
                model = _model(task, model_name, seed + split, scale).fit(x[train], y[train])
                rows.append({"features": name, "model": model_name, "split": split,
                             "metric": metric, "value": _score(metric, model, x[test], y[test]),
                             "train": len(train), "test": len(test),
                             "left_out": int((~ok).sum())})
    return pd.DataFrame(rows)


def _constant_row(task: Task, metric: str, y: np.ndarray, train: np.ndarray, test: np.ndarray,
                  split: int, left_out: int) -> dict:
    """What no features give: the training mean (regression) or class shares (classification),
    the row every probe score is read against."""
    from sklearn.dummy import DummyClassifier, DummyRegressor

    model = DummyRegressor() if task == "regression" else DummyClassifier(strategy="prior")
    zeros = np.zeros((len(y), 1))
    model.fit(zeros[train], y[train])
    return {"features": "none", "model": "mean" if task == "regression" else "prior",
            "split": split, "metric": metric,
            "value": _score(metric, model, zeros[test], y[test]),
            "train": len(train), "test": len(test), "left_out": left_out}


def probe_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over splits per (set, features, model)."""
    keys = [k for k in ("set", "features", "model", "metric") if k in frame]
    out = frame.groupby(keys)["value"].agg(["mean", "std", "count"]).reset_index()
    return out.rename(columns={"count": "splits"})
