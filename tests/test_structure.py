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
