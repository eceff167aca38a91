"""Clustering and disentanglement scores on latents whose structure is known by construction."""

import numpy as np
import pytest

from latentsci.latent.structure import cluster_scores, dci, mig


@pytest.fixture(scope="module")
def factors():
    """Three independent factors, and latents holding one factor per dimension (plus noise
    dimensions), or the same latents rotated so that every dimension mixes every factor."""
    rng = np.random.default_rng(0)
    v = rng.uniform(-1, 1, size=(1500, 3))
    aligned = np.concatenate([v + 0.02 * rng.normal(size=v.shape),
                              0.3 * rng.normal(size=(1500, 3))], axis=1)
    rotation, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    return v, aligned, aligned @ rotation


def test_mig_and_dci_prefer_axis_aligned_factors(factors):
    v, aligned, mixed = factors
    a, m = {**mig(aligned, v), **dci(aligned, v)}, {**mig(mixed, v), **dci(mixed, v)}
    assert a["mig"] > 0.5 > m["mig"]
    assert a["dci_disentanglement"] > 0.8 and a["dci_disentanglement"] > m["dci_disentanglement"]
    assert a["dci_completeness"] > m["dci_completeness"]
    # both hold the factors: the regressors read them off either way
    assert a["dci_informativeness"] > 0.9 and m["dci_informativeness"] > 0.6


def test_kmeans_finds_separated_classes_and_not_random_labels():
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(4), 100)
    x = rng.normal(size=(400, 5)) + 6 * np.eye(5)[labels]
    found = cluster_scores(x, labels)
    assert found["ari"] > 0.95 and found["silhouette_classes"] > 0.5 and found["classes"] == 4
    shuffled = cluster_scores(x, rng.permutation(labels))
    assert shuffled["ari"] < 0.05 and shuffled["silhouette_classes"] < 0.05
    with pytest.raises(ValueError, match="at least two known classes"):
        cluster_scores(x, np.zeros(400))


def test_dci_split_by_groups_does_not_credit_memorised_groups():
    # each group's factor is arbitrary and its rows are near copies of one random latent:
    # a row split lets the regressor look the group up, a group split cannot
    rng = np.random.default_rng(2)
    groups = np.repeat(np.arange(40), 10)
    factor = rng.uniform(size=(40, 2))[groups]
    z = rng.normal(size=(40, 4))[groups] + 0.01 * rng.normal(size=(400, 4))
    by_rows = dci(z, factor)["dci_informativeness"]
    by_groups = dci(z, factor, groups=groups)["dci_informativeness"]
    assert by_rows > 0.8 and by_groups < 0.3
    with pytest.raises(ValueError, match="at least two groups"):
        dci(z, factor, groups=np.zeros(400))
