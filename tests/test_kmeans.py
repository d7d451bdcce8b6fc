"""The k-means initialisation clusters data far from the origin as well as
data around it (Lloyd runs on the centred sample)."""
import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.metrics import adjusted_rand_score

from gaussmix import GaussianMixture, _kmeans


def offset_blobs(offset, dtype, seed=0, n_per=400, d=3, k=3):
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-6, 6, size=(k, d))
    truth = np.repeat(np.arange(k), n_per)
    X = centers[truth] + rng.standard_normal((k * n_per, d)) * 0.5
    return (X + offset).astype(dtype), truth


@pytest.mark.parametrize("offset, dtype", [(1e9, np.float64), (1e5, np.float32)])
def test_kmeans_init_finds_offset_blobs(offset, dtype):
    X, truth = offset_blobs(offset, dtype)
    gm = GaussianMixture(3, init_params="kmeans", max_iter=1, random_state=0).fit(X)
    assert adjusted_rand_score(truth, gm.predict(X)) > 0.98


@pytest.mark.parametrize("offset, dtype", [(1e9, np.float64), (1e5, np.float32)])
@pytest.mark.parametrize("weighted", [False, True])
def test_kmeans_driver_is_translation_invariant(offset, dtype, weighted):
    """Labels of offset data equal those of the same data near the origin, and
    centres move with the data (to the data's precision)."""
    X, truth = offset_blobs(0.0, np.float64, seed=1)
    w = np.random.default_rng(2).uniform(0.5, 2.0, len(X)) if weighted else None
    near = _kmeans.kmeans(X.astype(dtype), 3, np.random.RandomState(0), w, 2)
    far = _kmeans.kmeans((X + offset).astype(dtype), 3, np.random.RandomState(0), w, 2)
    assert adjusted_rand_score(near[0], far[0]) > 0.98
    assert adjusted_rand_score(truth, far[0]) > 0.98
    assert far[1].dtype == dtype
    assert_allclose(np.sort(far[1].astype(np.float64) - offset, axis=0),
                    np.sort(near[1].astype(np.float64), axis=0),
                    atol=offset * np.finfo(dtype).eps * 4 + 0.1)


def test_kmeans_driver_labels_large_data_around_the_sample_mean(monkeypatch):
    """Beyond SAMPLE_ROWS, rows outside the sample are labelled around the
    sample's mean too (in blocks)."""
    monkeypatch.setattr(_kmeans, "SAMPLE_ROWS", 500)
    monkeypatch.setattr(_kmeans, "BLOCK_BYTES", 8 * 3 * 100)
    X, truth = offset_blobs(1e9, np.float64, n_per=1000)
    labels, _ = _kmeans.kmeans(X, 3, np.random.RandomState(0), None, 2)
    assert adjusted_rand_score(truth, labels) > 0.98
