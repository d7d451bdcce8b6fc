"""Chunked E-step kernels for predict, predict_proba and score_samples.

One kernel fills whichever outputs are non-empty, chunk by chunk, so no
n_samples x n_components intermediate exists beyond the output asked for.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.stdlib cimport malloc, free

from ._chunks cimport CHUNK_ROWS, log_prob_full, log_prob_diag, normalize_rows


def e_step(const floating[:, ::1] X,          # IN [n, d]
           const floating[:, ::1] means,      # IN [k, d]
           const floating[:, ::1] prec,       # IN [k, d*d] (full) or [k, d] (diag)
           const double[::1] offsets,         # IN [k]
           bint full,
           floating[::1] log_norm,            # OUT [n] log p(x_i), or empty
           Py_ssize_t[::1] labels,            # OUT [n] argmax_k p(x_i, k), or empty
           floating[:, ::1] proba,            # OUT [n, k] p(k | x_i), or empty
           double[:, ::1] log_prob,           # OUT [n, k] log p(x_i, k), or empty
           int n_threads):
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1], k = means.shape[0]
    cdef Py_ssize_t n_chunks = (n + CHUNK_ROWS - 1) // CHUNK_ROWS
    cdef bint want_norm = log_norm.shape[0] > 0, want_labels = labels.shape[0] > 0
    cdef bint want_proba = proba.shape[0] > 0, want_log_prob = log_prob.shape[0] > 0
    cdef Py_ssize_t ci, start, rows, i, c, best
    cdef double *logp
    cdef double *norms
    cdef double *row
    cdef floating *work
    if n == 0:
        return
    n_threads = <int> min(n_threads, n_chunks)
    with nogil, parallel(num_threads=n_threads):
        logp = <double *> malloc(CHUNK_ROWS * k * sizeof(double))
        norms = <double *> malloc(CHUNK_ROWS * sizeof(double))
        work = <floating *> malloc(CHUNK_ROWS * d * sizeof(floating))
        for ci in prange(n_chunks, schedule='static'):
            start = ci * CHUNK_ROWS
            rows = min(CHUNK_ROWS, n - start)
            if full:
                log_prob_full(&X[start, 0], rows, d, k, &means[0, 0], &prec[0, 0],
                              &offsets[0], work, logp)
            else:
                log_prob_diag(&X[start, 0], rows, d, k, &means[0, 0], &prec[0, 0],
                              &offsets[0], logp)
            for i in range(rows):
                row = logp + i * k
                if want_log_prob:
                    for c in range(k):
                        log_prob[start + i, c] = row[c]
                if want_labels:
                    best = 0
                    for c in range(1, k):
                        if row[c] > row[best]:
                            best = c
                    labels[start + i] = best
            if want_norm or want_proba:
                normalize_rows(logp, rows, k, norms)
                for i in range(rows):
                    if want_norm:
                        log_norm[start + i] = <floating> norms[i]
                    if want_proba:
                        for c in range(k):
                            proba[start + i, c] = <floating> logp[i * k + c]
        free(logp)
        free(norms)
        free(work)
