"""The fit pass: chunked E-step fused with accumulation of sufficient statistics.

Each thread owns one slot of the accumulators (first axis of N, S, W, loglik);
chunks are dealt to threads statically, so a run is reproducible for a given
thread count. The caller sums the slots in order.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from libc.stdlib cimport malloc, free

from ._chunks cimport (CHUNK_ROWS, log_prob_full, log_prob_diag, log_prob_to_resp,
                       accumulate_full, accumulate_diag)


def em_pass(const floating[:, ::1] X,              # IN [n, d]
            const floating[::1] sample_weight,     # IN [n] or empty for unit weights
            const floating[:, ::1] means,          # IN [k, d]
            const floating[:, ::1] prec,           # IN [k, d*d] (full) or [k, d] (diag)
            const double[::1] offsets,             # IN [k]
            bint full,
            double[:, ::1] N,                      # INOUT [threads, k]
            double[:, :, ::1] S,                   # INOUT [threads, k, d]
            double[:, :, ::1] W,                   # INOUT [threads, k, d*d or d]
            double[::1] loglik):                   # INOUT [threads]
    """One EM pass: responsibilities under the given parameters, accumulated
    around shift = means; adds sum_i w_i log p(x_i) to loglik."""
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1], k = means.shape[0]
    cdef Py_ssize_t n_chunks = (n + CHUNK_ROWS - 1) // CHUNK_ROWS
    cdef int n_threads = <int> min(N.shape[0], max(n_chunks, 1))
    cdef bint weighted = sample_weight.shape[0] > 0
    cdef Py_ssize_t ci, start, rows
    cdef int tid
    cdef double *logp
    cdef floating *work
    cdef floating *scatter
    if n == 0:
        return
    with nogil, parallel(num_threads=n_threads):
        tid = threadid()
        logp = <double *> malloc(CHUNK_ROWS * k * sizeof(double))
        work = <floating *> malloc(CHUNK_ROWS * d * sizeof(floating))
        scatter = <floating *> malloc(d * d * sizeof(floating))
        for ci in prange(n_chunks, schedule='static'):
            start = ci * CHUNK_ROWS
            rows = min(CHUNK_ROWS, n - start)
            if full:
                log_prob_full(&X[start, 0], rows, d, k, &means[0, 0], &prec[0, 0],
                              &offsets[0], work, logp)
            else:
                log_prob_diag(&X[start, 0], rows, d, k, &means[0, 0], &prec[0, 0],
                              &offsets[0], logp)
            loglik[tid] += log_prob_to_resp(
                logp, rows, k, &sample_weight[start] if weighted else NULL)
            if full:
                accumulate_full(&X[start, 0], rows, d, k, logp, &means[0, 0], work,
                                scatter, &N[tid, 0], &S[tid, 0, 0], &W[tid, 0, 0])
            else:
                accumulate_diag(&X[start, 0], rows, d, k, logp, &means[0, 0],
                                &N[tid, 0], &S[tid, 0, 0], &W[tid, 0, 0])
        free(logp)
        free(work)
        free(scatter)


def accumulate_responsibilities(
        const floating[:, ::1] X,              # IN [n, d]
        const double[:, ::1] resp,             # IN [n, k], already times sample weight
        const floating[:, ::1] shift,          # IN [k, d]
        bint full,
        double[:, ::1] N,                      # INOUT [threads, k]
        double[:, :, ::1] S,                   # INOUT [threads, k, d]
        double[:, :, ::1] W):                  # INOUT [threads, k, d*d or d]
    """Accumulate statistics for given responsibilities (initialisation)."""
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1], k = resp.shape[1]
    cdef Py_ssize_t n_chunks = (n + CHUNK_ROWS - 1) // CHUNK_ROWS
    cdef int n_threads = <int> min(N.shape[0], max(n_chunks, 1))
    cdef Py_ssize_t ci, start, rows
    cdef int tid
    cdef floating *work
    cdef floating *scatter
    if n == 0:
        return
    with nogil, parallel(num_threads=n_threads):
        tid = threadid()
        work = <floating *> malloc(CHUNK_ROWS * d * sizeof(floating))
        scatter = <floating *> malloc(d * d * sizeof(floating))
        for ci in prange(n_chunks, schedule='static'):
            start = ci * CHUNK_ROWS
            rows = min(CHUNK_ROWS, n - start)
            if full:
                accumulate_full(&X[start, 0], rows, d, k, &resp[start, 0], &shift[0, 0],
                                work, scatter, &N[tid, 0], &S[tid, 0, 0], &W[tid, 0, 0])
            else:
                accumulate_diag(&X[start, 0], rows, d, k, &resp[start, 0], &shift[0, 0],
                                &N[tid, 0], &S[tid, 0, 0], &W[tid, 0, 0])
        free(work)
        free(scatter)
