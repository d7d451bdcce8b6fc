"""k-means for initialisation: k-means++ seeding and Lloyd iterations.

Distances to all centres come from one GEMM per chunk of rows
(||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2); per-thread centre sums are reduced
in thread order, so results are reproducible for a given thread count.
"""
import numpy as np

from ._blocks import row_ranges, take_rows
from ._kernel_checks import check_rows, expect_shape

from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from libc.stdlib cimport malloc, free

from ._blas cimport gemm_abt
from ._chunks cimport CHUNK_ROWS


def _lloyd_step(const floating[:, ::1] X,            # IN [n, d]
                const floating[::1] sample_weight,   # IN [n] or empty for unit weights
                const floating[:, ::1] centers,      # IN [k, d]
                Py_ssize_t[::1] labels,              # OUT [n] nearest centre
                double[::1] sq_dist,                 # OUT [n] squared distance to it
                double[:, :, ::1] sums,              # INOUT [threads, k, d] sum w x
                double[:, ::1] counts):              # INOUT [threads, k] sum w
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1], k = centers.shape[0]
    cdef Py_ssize_t n_chunks = (n + CHUNK_ROWS - 1) // CHUNK_ROWS
    cdef int n_threads = <int> min(sums.shape[0], max(n_chunks, 1))
    cdef bint weighted = sample_weight.shape[0] > 0
    cdef Py_ssize_t ci, start, rows, i, j, c, best
    cdef int tid
    cdef double w, x_sq, score, best_score
    cdef floating *dots
    cdef int[::1] failed = memoryview(bytearray(4 * n_threads)).cast("i")
    cdef double[::1] c_sq
    if k < 1 or d < 1 or sums.shape[0] < 1:
        raise ValueError("gaussmix kernel: need a centre, a feature and a thread slot")
    expect_shape("centers", centers, (k, d))
    check_rows("sample_weight", sample_weight, n, optional=True)
    check_rows("labels", labels, n)
    check_rows("sq_dist", sq_dist, n)
    expect_shape("sums", sums, (sums.shape[0], k, d))
    expect_shape("counts", counts, (sums.shape[0], k))
    c_sq = np.einsum("ij,ij->i", np.asarray(centers, dtype=np.float64),
                     np.asarray(centers, dtype=np.float64))
    if n == 0:
        return
    with nogil, parallel(num_threads=n_threads):
        tid = threadid()
        dots = <floating *> malloc(CHUNK_ROWS * k * sizeof(floating))
        if dots == NULL:
            failed[tid] = 1
        for ci in prange(n_chunks, schedule='static'):
            if failed[tid]:
                continue
            start = ci * CHUNK_ROWS
            rows = min(CHUNK_ROWS, n - start)
            gemm_abt(<int> rows, <int> k, <int> d, &X[start, 0], <int> d,
                     &centers[0, 0], <int> d, dots, <int> k)
            for i in range(rows):
                best = 0
                best_score = c_sq[0] - 2.0 * dots[i * k]
                for c in range(1, k):
                    score = c_sq[c] - 2.0 * dots[i * k + c]
                    if score < best_score:
                        best, best_score = c, score
                x_sq = 0.0
                for j in range(d):
                    x_sq = x_sq + <double> X[start + i, j] * X[start + i, j]
                labels[start + i] = best
                sq_dist[start + i] = max(x_sq + best_score, 0.0)
                w = sample_weight[start + i] if weighted else 1.0
                counts[tid, best] += w
                for j in range(d):
                    sums[tid, best, j] += w * X[start + i, j]
        free(dots)
    if any(failed):
        raise MemoryError("gaussmix: could not allocate k-means scratch memory")


def _seeding_pass(const floating[:, ::1] X,          # IN [n, d]
                  const double[::1] x_sq,            # IN [n] squared row norms
                  const double[::1] weights,         # IN [n]
                  const floating[:, ::1] candidates, # IN [t, d]
                  const double[::1] closest,         # IN [n]
                  double[:, ::1] dist,               # OUT [n, t]
                  double[:, ::1] pots):              # INOUT [threads, t]
    """dist[i, c] = min(closest_i, ||x_i - cand_c||^2); pots[:, c] += w_i dist[i, c]."""
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1], t = candidates.shape[0]
    cdef Py_ssize_t n_chunks = (n + CHUNK_ROWS - 1) // CHUNK_ROWS
    cdef int n_threads = <int> min(pots.shape[0], max(n_chunks, 1))
    cdef Py_ssize_t ci, start, rows, i, c
    cdef int tid
    cdef double di
    cdef floating *dots
    cdef int[::1] failed = memoryview(bytearray(4 * n_threads)).cast("i")
    cdef double[::1] c_sq
    if t < 1 or d < 1 or pots.shape[0] < 1:
        raise ValueError("gaussmix kernel: need a candidate, a feature and a thread slot")
    expect_shape("candidates", candidates, (t, d))
    check_rows("x_sq", x_sq, n)
    check_rows("weights", weights, n)
    check_rows("closest", closest, n)
    expect_shape("dist", dist, (n, t))
    expect_shape("pots", pots, (pots.shape[0], t))
    c_sq = np.einsum("ij,ij->i", np.asarray(candidates, dtype=np.float64),
                     np.asarray(candidates, dtype=np.float64))
    if n == 0:
        return
    with nogil, parallel(num_threads=n_threads):
        tid = threadid()
        dots = <floating *> malloc(CHUNK_ROWS * t * sizeof(floating))
        if dots == NULL:
            failed[tid] = 1
        for ci in prange(n_chunks, schedule='static'):
            if failed[tid]:
                continue
            start = ci * CHUNK_ROWS
            rows = min(CHUNK_ROWS, n - start)
            gemm_abt(<int> rows, <int> t, <int> d, &X[start, 0], <int> d,
                     &candidates[0, 0], <int> d, dots, <int> t)
            for i in range(rows):
                for c in range(t):
                    di = max(x_sq[start + i] - 2.0 * dots[i * t + c] + c_sq[c], 0.0)
                    di = min(di, closest[start + i])
                    dist[start + i, c] = di
                    pots[tid, c] += weights[start + i] * di
        free(dots)
    if any(failed):
        raise MemoryError("gaussmix: could not allocate k-means scratch memory")


def _cumsum(double[::1] a):
    """a := cumsum(a), summed in order like np.cumsum (same bits, ~4x faster)."""
    cdef Py_ssize_t i
    cdef double total = 0.0
    with nogil:
        for i in range(a.shape[0]):
            total = total + a[i]
            a[i] = total


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

    def choose(rows):
        """The candidate of least potential; closest := its distances."""
        pots = np.zeros((n_threads, len(rows)))
        dist = dist_buffer[:n * len(rows)].reshape(n, len(rows))
        candidates = take_rows(X, rows)
        for start, stop in row_ranges(X):
            _seeding_pass(X[start:stop], x_sq[start:stop], weights[start:stop], candidates,
                          closest[start:stop], dist[start:stop], pots)
        pots = pots.sum(axis=0)
        best = int(np.argmin(pots))
        closest[:] = dist[:, best]
        return best, pots[best]

    _, pot = choose([indices[0]])
    for c in range(1, n_clusters):
        targets = random_state.uniform(size=n_trials) * pot
        _cumsum(np.multiply(weights, closest, out=cumulative))
        candidates = np.searchsorted(cumulative, targets)
        np.clip(candidates, None, n - 1, out=candidates)
        best, pot = choose(candidates)
        indices[c] = candidates[best]
    return indices


def _feature_variance(X, sample_weight, block_rows=1 << 14):
    """(Weighted) variance of each feature, block by block (no n x d temporary)."""
    w = np.ones(X.shape[0]) if sample_weight is None else np.asarray(sample_weight, np.float64)
    mean = np.zeros(X.shape[1])
    for start, stop in row_ranges(X, block_rows):
        mean += w[start:stop] @ X[start:stop]
    mean /= w.sum()
    total = np.zeros(X.shape[1])
    for start, stop in row_ranges(X, block_rows):
        total += w[start:stop] @ (X[start:stop] - mean) ** 2
    return total / w.sum()


# Rows k-means and k-means++ initialisation run on (beyond it, a random
# subsample of this many rows, at least 50 per cluster): initialisation must
# cost no more than a few EM iterations (benchmarks/README.md), and centres
# from 32k rows are as good a starting point as centres from all of them.
SAMPLE_ROWS = 1 << 15


LABEL_BLOCK_ROWS = 1 << 18


def _labels(X, weights_arg, centers, n_threads):
    """Nearest centre of every row of X."""
    n_clusters, d = centers.shape
    labels = np.empty(X.shape[0], dtype=np.intp)
    weighted = weights_arg.shape[0] > 0
    sums, counts = np.zeros((n_threads, n_clusters, d)), np.zeros((n_threads, n_clusters))
    # the squared distances are not needed: one block-sized buffer, not n doubles
    sq_dist = np.empty(min(X.shape[0], LABEL_BLOCK_ROWS))
    for start, stop in row_ranges(X, LABEL_BLOCK_ROWS):
        _lloyd_step(X[start:stop], weights_arg[start:stop] if weighted else weights_arg,
                    centers, labels[start:stop], sq_dist[:stop - start], sums, counts)
    return labels


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

    Runs on ``sample_rows(X, ...)`` (a random subsample when X is large), then
    labels every row by its nearest centre. Stops when the labels no longer
    change or the squared centre shift falls below ``tol`` times the mean
    feature variance. Empty clusters are moved to the rows farthest from their
    centres.

    Returns
    -------
    labels : ndarray of shape (n_samples,)
    centers : ndarray of shape (n_clusters, n_features), X's dtype
    """
    _, sample, sample_w = sample_rows(X, n_clusters, random_state, sample_weight)
    centers = _lloyd(sample, n_clusters, random_state, sample_w, n_threads, max_iter, tol)
    return _labels(X, _weights_arg(X, sample_weight), centers, n_threads), centers


def _lloyd(X, n_clusters, random_state, sample_weight, n_threads, max_iter, tol):
    n, d = X.shape
    weights_arg = _weights_arg(X, sample_weight)
    centers = X[kmeans_plusplus(X, n_clusters, random_state, sample_weight, n_threads)]
    tol = tol * float(np.mean(_feature_variance(X, sample_weight)))
    labels = np.full(n, -1, dtype=np.intp)
    new_labels = np.empty(n, dtype=np.intp)
    sq_dist = np.empty(n)
    for _ in range(max_iter):
        sums = np.zeros((n_threads, n_clusters, d))
        counts = np.zeros((n_threads, n_clusters))
        _lloyd_step(X, weights_arg, centers, new_labels, sq_dist, sums, counts)
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
