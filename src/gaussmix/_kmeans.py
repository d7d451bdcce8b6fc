"""k-means for initialisation: k-means++ seeding and Lloyd iterations.

The driving code; the passes over X are compiled (``_kmeans_kernels``, loaded
for this CPU as ``_kernels.kmeans``). Lloyd runs on data centred on the
(weighted) mean of its sample, as scikit-learn's KMeans does: the GEMM
distances ||x||^2 - 2 x.c + ||c||^2 lose everything to cancellation when
|mean| is large against the spread.
"""
import numpy as np

from ._blocks import row_ranges, take_rows
from ._kernels import kmeans as _kernels
from ._threading import team_size


def _distance_flops(n_centers, n_features):
    """Flops per row of a pass taking distances to ``n_centers`` centres."""
    return n_centers * (2 * n_features + 10)


def kmeans_plusplus(X, n_clusters, random_state, sample_weight, n_threads):
    """Greedy k-means++ seeding (2 + log k trials per centre) on all rows of X.

    Draws from ``random_state`` in the same order as scikit-learn's
    ``kmeans_plusplus``, so both pick the same rows for the same seed. Each
    step is one pass over X: a GEMM per chunk gives the distances to all
    candidates, and the chosen candidate's become the new closest distances.
    Needs n_samples x (2 + log k) doubles; both initialisations call it on
    ``sample_rows(X, ...)``, at most ``max(SAMPLE_ROWS, 50 k)`` rows, so on a
    larger X they seed on a random subsample and no longer pick
    scikit-learn's rows.

    Returns
    -------
    indices : ndarray of shape (n_clusters,)
        Rows of X chosen as centres.
    """
    n = X.shape[0]
    weights = np.ones(n) if sample_weight is None else np.asarray(sample_weight, np.float64)
    n_trials = 2 + int(np.log(n_clusters))
    x_sq = np.empty(n)
    for start, stop in row_ranges(X):
        x_sq[start:stop] = np.einsum("ij,ij->i", X[start:stop], X[start:stop], dtype=np.float64)
    indices = np.empty(n_clusters, dtype=np.intp)
    indices[0] = random_state.choice(n, p=weights / weights.sum())
    closest = np.full(n, np.inf)
    dist_buffer = np.empty(n * n_trials)
    cumulative = np.empty(n)

    threads = team_size(n_threads, n, _distance_flops(n_trials, X.shape[1]))

    def choose(rows):
        """The candidate of least potential; closest := its distances."""
        pots = np.zeros((threads, len(rows)))
        dist = dist_buffer[:n * len(rows)].reshape(n, len(rows))
        candidates = take_rows(X, rows)
        for start, stop in row_ranges(X):
            _kernels._seeding_pass(X[start:stop], x_sq[start:stop], weights[start:stop], candidates,
                          closest[start:stop], dist[start:stop], pots)
        pots = pots.sum(axis=0)
        best = int(np.argmin(pots))
        closest[:] = dist[:, best]
        return best, pots[best]

    _, pot = choose([indices[0]])
    for c in range(1, n_clusters):
        targets = random_state.uniform(size=n_trials) * pot
        _kernels._cumsum(np.multiply(weights, closest, out=cumulative))
        candidates = np.searchsorted(cumulative, targets)
        np.clip(candidates, None, n - 1, out=candidates)
        best, pot = choose(candidates)
        indices[c] = candidates[best]
    return indices


def _feature_variance(X, sample_weight):
    """(Weighted) variance of each feature, block by block (no n x d temporary)."""
    w = np.ones(X.shape[0]) if sample_weight is None else np.asarray(sample_weight, np.float64)
    block_rows = _block_rows(X)
    mean = np.zeros(X.shape[1])
    for start, stop in row_ranges(X, block_rows):
        mean += w[start:stop] @ X[start:stop]
    mean /= w.sum()
    total = np.zeros(X.shape[1])
    for start, stop in row_ranges(X, block_rows):
        block = np.subtract(X[start:stop], mean)
        total += w[start:stop] @ np.square(block, out=block)
    return total / w.sum()


# Rows k-means and k-means++ initialisation run on (beyond it, a random
# subsample of this many rows, at least 50 per cluster): initialisation must
# cost no more than a few EM iterations (benchmarks/README.md), and centres
# from 32k rows are as good a starting point as centres from all of them.
SAMPLE_ROWS = 1 << 15


LABEL_BLOCK_ROWS = 1 << 18
# Bytes of a float64 temporary over a block of rows (centring, variances).
BLOCK_BYTES = 16 << 20


def _labels(X, weights_arg, centers, n_threads, center=None):
    """Nearest centre of every row of X. With ``center`` (float64, shape
    (n_features,)), ``centers`` are relative to it and blocks of X are centred
    on it before taking distances."""
    n_clusters, d = centers.shape
    labels = np.empty(X.shape[0], dtype=np.intp)
    weighted = weights_arg.shape[0] > 0
    threads = team_size(n_threads, X.shape[0], _distance_flops(n_clusters, d))
    sums, counts = np.zeros((threads, n_clusters, d)), np.zeros((threads, n_clusters))
    block_rows = LABEL_BLOCK_ROWS
    if center is not None:
        block_rows = min(block_rows, _block_rows(X))
    # the squared distances are not needed: one block-sized buffer, not n doubles
    sq_dist = np.empty(min(X.shape[0], block_rows))
    for start, stop in row_ranges(X, block_rows):
        block = X[start:stop] if center is None else _centred(X[start:stop], center)
        _kernels._lloyd_step(block, weights_arg[start:stop] if weighted else weights_arg,
                             centers, labels[start:stop], sq_dist[:stop - start], sums, counts)
    return labels


def _block_rows(X):
    """Rows of X whose float64 copy takes at most BLOCK_BYTES."""
    return max(1, BLOCK_BYTES // (8 * X.shape[1]))


def _centred(X, center):
    """X - center, computed in float64 block by block, in X's dtype."""
    out = np.empty(X.shape, dtype=X.dtype)
    for start, stop in row_ranges(X, _block_rows(X)):
        out[start:stop] = np.subtract(X[start:stop], center, dtype=np.float64)
    return out


def _weights_arg(X, sample_weight):
    if sample_weight is None:
        return np.empty(0, dtype=X.dtype)
    return np.ascontiguousarray(sample_weight, dtype=X.dtype)


def sample_rows(X, n_clusters, random_state, sample_weight):
    """The rows k-means and k-means++ initialisation run on.

    All of X when it has at most ``max(SAMPLE_ROWS, 50 * n_clusters)`` rows
    (no draw from ``random_state``), else a uniform random subsample of about
    that many.

    Returns
    -------
    rows : ndarray of shape (n_rows,), sorted, or None for all rows
    sample : ndarray of shape (n_rows, n_features)
    sample_weight : ndarray of shape (n_rows,) or None
    """
    size = max(SAMPLE_ROWS, 50 * n_clusters)
    if X.shape[0] <= size:
        return None, X, sample_weight
    # Draws with replacement, duplicates dropped (np.unique's result, by a
    # sort, 3x faster on these sizes): O(sample), where choice without
    # replacement would shuffle all n rows.
    rows = np.sort(random_state.randint(0, X.shape[0], size))
    rows = rows[np.concatenate(([True], rows[1:] != rows[:-1]))]
    return rows, take_rows(X, rows), None if sample_weight is None else sample_weight[rows]


def kmeans(X, n_clusters, random_state, sample_weight, n_threads, max_iter=30, tol=1e-4):
    """Lloyd's k-means from a k-means++ seeding, for initialisation.

    Runs on ``sample_rows(X, ...)`` (a random subsample when X is large),
    centred on its weighted mean, then labels every row by its nearest centre.
    Stops when the labels no longer change or the squared centre shift falls
    below ``tol`` times the mean feature variance. Empty clusters are moved to the rows farthest from their
    centres.

    Returns
    -------
    labels : ndarray of shape (n_samples,)
    centers : ndarray of shape (n_clusters, n_features), X's dtype
    """
    _, sample, sample_w = sample_rows(X, n_clusters, random_state, sample_weight)
    w = np.ones(len(sample)) if sample_w is None else np.asarray(sample_w, np.float64)
    center = np.zeros(sample.shape[1])
    for start, stop in row_ranges(sample, _block_rows(sample)):
        center += w[start:stop] @ sample[start:stop].astype(np.float64)
    center /= w.sum()
    centers = _lloyd(_centred(sample, center), n_clusters, random_state, sample_w, n_threads,
                     max_iter, tol)
    labels = _labels(X, _weights_arg(X, sample_weight), centers, n_threads, center)
    return labels, (centers + center).astype(X.dtype)


def _lloyd(X, n_clusters, random_state, sample_weight, n_threads, max_iter, tol):
    n, d = X.shape
    weights_arg = _weights_arg(X, sample_weight)
    centers = X[kmeans_plusplus(X, n_clusters, random_state, sample_weight, n_threads)]
    tol = tol * float(np.mean(_feature_variance(X, sample_weight)))
    labels = np.full(n, -1, dtype=np.intp)
    new_labels = np.empty(n, dtype=np.intp)
    sq_dist = np.empty(n)
    threads = team_size(n_threads, n, _distance_flops(n_clusters, d))
    for _ in range(max_iter):
        sums = np.zeros((threads, n_clusters, d))
        counts = np.zeros((threads, n_clusters))
        _kernels._lloyd_step(X, weights_arg, centers, new_labels, sq_dist, sums, counts)
        labels, new_labels = new_labels, labels
        sums, counts = sums.sum(axis=0), counts.sum(axis=0)
        empty = np.flatnonzero(counts == 0)
        new_centers = sums / np.maximum(counts, np.finfo(np.float64).tiny)[:, None]
        if empty.size:
            far = np.argsort(sq_dist)[::-1][:empty.size]
            new_centers[empty] = X[far]
        new_centers = new_centers.astype(X.dtype)
        shift = float(np.sum((new_centers - centers) ** 2))
        centers = new_centers
        if np.array_equal(labels, new_labels) or (shift <= tol and not empty.size):
            break
    return centers
