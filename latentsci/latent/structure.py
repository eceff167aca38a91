"""Two more ways to judge a latent space besides probes: does it cluster by known classes
(k-means scored by adjusted Rand index, silhouettes), and is it disentangled with respect to known
generative factors (MIG, Chen et al. 2018; DCI, Eastwood & Williams 2018).

MIG: latent dimensions and factors are binned (20 equal-width bins); per factor, the gap between
the two largest mutual informations with single dimensions over the factor's entropy, averaged.
DCI: an importance matrix R (dims x factors) from one gradient-boosted regressor per factor;
disentanglement = sum_j rho_j (1 - H_K(R_j. / sum_k R_jk)), rho_j the share of dimension j's
importance; completeness = mean_k (1 - H_D(R_.k / sum_j R_jk)); informativeness = each factor's
test R^2 (entropies in bases K factors and D dims, so both scores lie in [0, 1]).
"""

from __future__ import annotations

import numpy as np

BINS = 20


def _binned(values: np.ndarray, bins: int = BINS) -> np.ndarray:
    """Equal-width bin numbers of each column (a column with few values keeps them as codes)."""
    out = np.zeros(values.shape, dtype=np.int64)
    for j in range(values.shape[1]):
        column = values[:, j]
        distinct = np.unique(column)
        if len(distinct) <= bins:
            out[:, j] = np.searchsorted(distinct, column)
        else:
            edges = np.histogram_bin_edges(column, bins=bins)[1:-1]
            out[:, j] = np.digitize(column, edges)
    return out


def mig(z: np.ndarray, factors: np.ndarray,
        names: list[str] | None = None) -> dict[str, float]:
    """Mutual information gap, overall and per factor (`mig_<name>`, default the factor's
    column number; factors with one value are skipped)."""
    from sklearn.metrics import mutual_info_score

    codes, truth = _binned(z), _binned(factors)
    gaps = []
    for k in range(truth.shape[1]):
        entropy = mutual_info_score(truth[:, k], truth[:, k])
        if entropy <= 0:
            gaps.append(np.nan)
            continue
        info = np.sort([mutual_info_score(truth[:, k], codes[:, j]) for j in range(z.shape[1])])
        gaps.append((info[-1] - (info[-2] if len(info) > 1 else 0.0)) / entropy)
    names = names if names is not None else [str(k) for k in range(len(gaps))]
    return {"mig": float(np.nanmean(gaps)), **{f"mig_{n}": float(g) for n, g in zip(names, gaps)}}


def _entropy(p: np.ndarray, base: int) -> np.ndarray:
    """Entropy of each row's distribution, in the given base."""
    p = np.clip(p, 1e-12, 1.0)
    return -(p * np.log(p)).sum(axis=-1) / np.log(base)


def _dci_split(n: int, seed: int, test_share: float,
               groups: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Train and test rows; with groups, each group whole on one side (frames of one trajectory
    are near copies: split by rows, informativeness would be an upper bound)."""
    from sklearn.model_selection import GroupShuffleSplit, train_test_split

    if groups is None:
        return train_test_split(np.arange(n), test_size=test_share, random_state=seed)
    if len(np.unique(groups)) < 2:
        raise ValueError("a DCI split by groups needs at least two groups")
    split = GroupShuffleSplit(n_splits=1, test_size=test_share, random_state=seed)
    return next(split.split(np.zeros(n), groups=np.asarray(groups).astype(str)))


def dci(z: np.ndarray, factors: np.ndarray, seed: int = 0, test_share: float = 0.25,
        groups: np.ndarray | None = None) -> dict[str, float]:
    """Disentanglement, completeness and informativeness (test R^2, mean over factors; rows of
    one group kept on one side of the split when groups are given)."""
    from sklearn.ensemble import GradientBoostingRegressor

    train, test = _dci_split(len(z), seed, test_share, groups)
    importance = np.zeros((z.shape[1], factors.shape[1]))
    r2 = []
    for k in range(factors.shape[1]):
        model = GradientBoostingRegressor(n_estimators=60, max_depth=3, random_state=seed)
        model.fit(z[train], factors[train, k])
        importance[:, k] = np.abs(model.feature_importances_)
        r2.append(model.score(z[test], factors[test, k]))
    total = importance.sum()
    if total <= 0 or factors.shape[1] < 2:
        d = float("nan")
    else:
        rows = importance.sum(axis=1)
        used = rows > 0
        per_dim = 1 - _entropy(importance[used] / rows[used, None], factors.shape[1])
        d = float((per_dim * rows[used] / total).sum())
    cols = importance.sum(axis=0)
    completeness = 1 - _entropy((importance / np.where(cols > 0, cols, 1)).T, z.shape[1])
    return {"dci_disentanglement": d, "dci_completeness": float(completeness.mean()),
            "dci_informativeness": float(np.mean(r2))}


def cluster_scores(x: np.ndarray, labels: np.ndarray, seed: int = 0,
                   sample: int = 5000) -> dict[str, float]:
    """k-means (k = number of classes) on standardised features against the known classes:
    adjusted Rand index, and silhouettes of the known classes and of the k-means clusters."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score, silhouette_score
    from sklearn.preprocessing import StandardScaler

    x = StandardScaler().fit_transform(np.asarray(x, dtype=np.float64))
    _, labels = np.unique(np.asarray(labels), return_inverse=True)
    k = int(labels.max()) + 1
    if k < 2:
        raise ValueError("clustering needs at least two known classes")
    found = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(x)
    size = min(sample, len(x))
    return {"ari": float(adjusted_rand_score(labels, found)),
            "silhouette_classes": float(silhouette_score(x, labels, sample_size=size,
                                                         random_state=seed)),
            "silhouette_kmeans": float(silhouette_score(x, found, sample_size=size,
                                                        random_state=seed)),
            "classes": float(k)}
