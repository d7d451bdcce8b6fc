"""Compiled passes of the k-means initialisation (driven by ``_kmeans``).

Distances to all centres come from one GEMM per chunk of rows
(||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2); per-thread sums are reduced by the
caller in thread order, so results are reproducible for a given thread count.
"""
import numpy as np

from ._kernel_checks import check_rows, expect_shape

from cython cimport floating

from ._blas cimport gemm_abt
from ._parallel cimport (CHUNK_ROWS, Scratch, ScratchSizes, chunk_rows, count_chunks,
                         no_scratch, run_tasks)


cdef struct Lloyd:
    const void *weights       # floating [n], or NULL for unit weights
    const void *centers       # floating [k, d]
    const double *c_sq        # [k] squared centre norms
    Py_ssize_t n, d, k
    Py_ssize_t *labels        # [n]
    double *sq_dist           # [n]
    double *sums              # [threads, k, d]
    double *counts            # [threads, k]


cdef void lloyd_chunk(const floating *X, void *context, Scratch *s, Py_ssize_t chunk,
                      int tid) noexcept nogil:
    cdef Lloyd *p = <Lloyd *> context
    cdef Py_ssize_t start, rows, i, j, c, best, k = p.k, d = p.d
    cdef double w, x_sq, score, best_score
    cdef const floating *x
    cdef const floating *weights = <const floating *> p.weights
    cdef floating *dots = <floating *> s.work
    cdef double *sums = p.sums + tid * k * d
    chunk_rows(chunk, p.n, &start, &rows)
    gemm_abt(<int> rows, <int> k, <int> d, X + start * d, <int> d,
             <const floating *> p.centers, <int> d, dots, <int> k)
    for i in range(rows):
        best = 0
        best_score = p.c_sq[0] - 2.0 * dots[i * k]
        for c in range(1, k):
            score = p.c_sq[c] - 2.0 * dots[i * k + c]
            if score < best_score:
                best, best_score = c, score
        x = X + (start + i) * d
        x_sq = 0.0
        for j in range(d):
            x_sq = x_sq + <double> x[j] * x[j]
        p.labels[start + i] = best
        p.sq_dist[start + i] = max(x_sq + best_score, 0.0)
        w = weights[start + i] if weights != NULL else 1.0
        p.counts[tid * k + best] += w
        for j in range(d):
            sums[best * d + j] += w * x[j]


def _lloyd_step(const floating[:, ::1] X,            # IN [n, d]
                const floating[::1] sample_weight,   # IN [n] or empty for unit weights
                const floating[:, ::1] centers,      # IN [k, d]
                Py_ssize_t[::1] labels,              # OUT [n] nearest centre
                double[::1] sq_dist,                 # OUT [n] squared distance to it
                double[:, :, ::1] sums,              # INOUT [threads, k, d] sum w x
                double[:, ::1] counts):              # INOUT [threads, k] sum w
    cdef Lloyd p
    cdef ScratchSizes sizes
    cdef double[::1] c_sq
    cdef Py_ssize_t n_chunks = count_chunks(X.shape[0])
    cdef int n_threads = <int> min(sums.shape[0], max(n_chunks, 1))
    cdef bint ok
    p.n, p.d, p.k = X.shape[0], X.shape[1], centers.shape[0]
    if p.k < 1 or p.d < 1 or sums.shape[0] < 1:
        raise ValueError("gaussmix kernel: need a centre, a feature and a thread slot")
    expect_shape("centers", centers, (p.k, p.d))
    check_rows("sample_weight", sample_weight, p.n, optional=True)
    check_rows("labels", labels, p.n)
    check_rows("sq_dist", sq_dist, p.n)
    expect_shape("sums", sums, (sums.shape[0], p.k, p.d))
    expect_shape("counts", counts, (sums.shape[0], p.k))
    if p.n == 0:
        return
    c_sq = np.einsum("ij,ij->i", np.asarray(centers, dtype=np.float64),
                     np.asarray(centers, dtype=np.float64))
    p.weights = &sample_weight[0] if sample_weight.shape[0] > 0 else NULL
    p.centers, p.c_sq = &centers[0, 0], &c_sq[0]
    p.labels, p.sq_dist, p.sums, p.counts = &labels[0], &sq_dist[0], &sums[0, 0, 0], &counts[0, 0]
    sizes = no_scratch()
    sizes.work = CHUNK_ROWS * p.k * sizeof(floating)
    with nogil:
        ok = run_tasks(lloyd_chunk[floating], &X[0, 0], &p, n_chunks, n_threads, &sizes)
    if not ok:
        raise MemoryError("gaussmix: could not allocate k-means scratch memory")


cdef struct Seeding:
    const double *x_sq        # [n] squared row norms
    const double *weights     # [n]
    const void *candidates    # floating [t, d]
    const double *c_sq        # [t] squared candidate norms
    const double *closest     # [n]
    Py_ssize_t n, d, t
    double *dist              # [n, t]
    double *pots              # [threads, t]


cdef void seeding_chunk(const floating *X, void *context, Scratch *s, Py_ssize_t chunk,
                        int tid) noexcept nogil:
    cdef Seeding *p = <Seeding *> context
    cdef Py_ssize_t start, rows, i, c, r, t = p.t
    cdef double di
    cdef floating *dots = <floating *> s.work
    chunk_rows(chunk, p.n, &start, &rows)
    gemm_abt(<int> rows, <int> t, <int> p.d, X + start * p.d, <int> p.d,
             <const floating *> p.candidates, <int> p.d, dots, <int> t)
    for i in range(rows):
        r = start + i
        for c in range(t):
            di = max(p.x_sq[r] - 2.0 * dots[i * t + c] + p.c_sq[c], 0.0)
            di = min(di, p.closest[r])
            p.dist[r * t + c] = di
            p.pots[tid * t + c] += p.weights[r] * di


def _seeding_pass(const floating[:, ::1] X,          # IN [n, d]
                  const double[::1] x_sq,            # IN [n] squared row norms
                  const double[::1] weights,         # IN [n]
                  const floating[:, ::1] candidates, # IN [t, d]
                  const double[::1] closest,         # IN [n]
                  double[:, ::1] dist,               # OUT [n, t]
                  double[:, ::1] pots):              # INOUT [threads, t]
    """dist[i, c] = min(closest_i, ||x_i - cand_c||^2); pots[:, c] += w_i dist[i, c]."""
    cdef Seeding p
    cdef ScratchSizes sizes
    cdef double[::1] c_sq
    cdef Py_ssize_t n_chunks = count_chunks(X.shape[0])
    cdef int n_threads = <int> min(pots.shape[0], max(n_chunks, 1))
    cdef bint ok
    p.n, p.d, p.t = X.shape[0], X.shape[1], candidates.shape[0]
    if p.t < 1 or p.d < 1 or pots.shape[0] < 1:
        raise ValueError("gaussmix kernel: need a candidate, a feature and a thread slot")
    expect_shape("candidates", candidates, (p.t, p.d))
    check_rows("x_sq", x_sq, p.n)
    check_rows("weights", weights, p.n)
    check_rows("closest", closest, p.n)
    expect_shape("dist", dist, (p.n, p.t))
    expect_shape("pots", pots, (pots.shape[0], p.t))
    if p.n == 0:
        return
    c_sq = np.einsum("ij,ij->i", np.asarray(candidates, dtype=np.float64),
                     np.asarray(candidates, dtype=np.float64))
    p.x_sq, p.weights, p.closest = &x_sq[0], &weights[0], &closest[0]
    p.candidates, p.c_sq = &candidates[0, 0], &c_sq[0]
    p.dist, p.pots = &dist[0, 0], &pots[0, 0]
    sizes = no_scratch()
    sizes.work = CHUNK_ROWS * p.t * sizeof(floating)
    with nogil:
        ok = run_tasks(seeding_chunk[floating], &X[0, 0], &p, n_chunks, n_threads, &sizes)
    if not ok:
        raise MemoryError("gaussmix: could not allocate k-means scratch memory")


def _cumsum(double[::1] a):
    """a := cumsum(a), summed in order like np.cumsum (same bits, ~4x faster)."""
    cdef Py_ssize_t i
    cdef double total = 0.0
    with nogil:
        for i in range(a.shape[0]):
            total = total + a[i]
            a[i] = total
