"""k-means++ seeding: scikit-learn's rows up to the subsampling threshold, a
seeding of a uniform random subsample beyond it."""

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.cluster import kmeans_plusplus as sk_kmeans_plusplus

from gaussmix._initialization import kmeans_plusplus_indices
from gaussmix import _kmeans as kmeans

K = 8


def blobs(n, seed):
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-10, 10, size=(K, 4))
    return centers[rng.integers(0, K, n)] + rng.normal(size=(n, 4))


def weights_for(X, weighted):
    return np.random.default_rng(1).uniform(0.1, 3.0, len(X)) if weighted else None


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("n", [500, kmeans.SAMPLE_ROWS])
def test_indices_equal_sklearn_up_to_threshold(n, weighted):
    X = blobs(n, seed=n)
    w = weights_for(X, weighted)
    for seed in range(3):
        _, expected = sk_kmeans_plusplus(X, K, sample_weight=w, random_state=seed)
        assert_array_equal(kmeans.kmeans_plusplus(X, K, np.random.RandomState(seed), w, 2),
                           expected)
        assert_array_equal(kmeans_plusplus_indices(X, K, np.random.RandomState(seed), w, 2),
                           expected)


@pytest.mark.parametrize("weighted", [False, True])
def test_above_threshold_seeds_the_kmeans_subsample(weighted):
    X = blobs(kmeans.SAMPLE_ROWS + 5_000, seed=3)
    w = weights_for(X, weighted)
    for seed in range(2):
        indices = kmeans_plusplus_indices(X, K, np.random.RandomState(seed), w, 2)
        assert len(np.unique(indices)) == K
        assert indices.min() >= 0 and indices.max() < len(X)
        assert_array_equal(kmeans_plusplus_indices(X, K, np.random.RandomState(seed), w, 2),
                           indices)
        random_state = np.random.RandomState(seed)
        rows, sample, sample_w = kmeans.sample_rows(X, K, random_state, w)
        assert rows is not None and len(rows) < len(X)
        assert_array_equal(sample, X[rows])
        if weighted:
            assert_array_equal(sample_w, w[rows])
        expected = rows[kmeans.kmeans_plusplus(sample, K, random_state, sample_w, 2)]
        assert_array_equal(indices, expected)


@pytest.mark.parametrize("n, k, subsampled", [
    (kmeans.SAMPLE_ROWS, 8, False),
    (kmeans.SAMPLE_ROWS + 1, 8, True),
    (kmeans.SAMPLE_ROWS + 1_000, 700, False),   # 50 rows per cluster: 35000
    (35_001, 700, True),
])
def test_sample_rows_threshold(n, k, subsampled):
    X = np.zeros((n, 1))
    random_state = np.random.RandomState(0)
    rows, sample, _ = kmeans.sample_rows(X, k, random_state, None)
    if subsampled:
        assert rows is not None and len(sample) == len(rows) < n
        assert np.all(np.diff(rows) > 0)
    else:
        assert rows is None and sample is X
        # no draw: the random stream is the one scikit-learn's seeding sees
        assert random_state.randint(1 << 30) == np.random.RandomState(0).randint(1 << 30)
