"""Chunked E-step kernel for predict, predict_proba and score_samples.

One kernel fills whichever outputs are non-empty, chunk by chunk, so no
n_samples x n_components intermediate exists beyond the output asked for.
"""
from cython cimport floating

from ._kernel_checks import check_parameters, check_rows, optional_shape
from cython.parallel cimport parallel, prange, threadid

from ._chunks cimport (CHUNK_ROWS, Scratch, scratch_new, scratch_ok, scratch_free, chunk_log_prob,
                       normalize)


def e_step(const floating[:, ::1] X,          # IN [n, d]
           const floating[:, ::1] shift,      # IN [k, d]
           const floating[:, ::1] prec,       # IN see _chunks.pxd; empty for DIAG_GEMM
           const double[:, ::1] coef,         # IN see _chunks.pxd; empty when unused
           const double[::1] offsets,         # IN [k]
           int mode,                          # kernel mode (_chunks.pxd)
           floating[::1] log_norm,            # OUT [n] log p(x_i), or empty
           Py_ssize_t[::1] labels,            # OUT [n] argmax_k p(x_i, k), or empty
           floating[:, ::1] proba,            # OUT [n, k] p(k | x_i), or empty
           int n_threads):
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1], k = offsets.shape[0]
    cdef Py_ssize_t n_chunks = (n + CHUNK_ROWS - 1) // CHUNK_ROWS
    cdef bint want_norm = log_norm.shape[0] > 0, want_labels = labels.shape[0] > 0
    cdef bint want_proba = proba.shape[0] > 0
    cdef Py_ssize_t ci, start, rows, i, c, best
    cdef int tid
    cdef Scratch s
    cdef int[::1] failed
    check_parameters(X, shift, prec, coef, offsets, mode)
    check_rows("log_norm", log_norm, n, optional=True)
    check_rows("labels", labels, n, optional=True)
    optional_shape("proba", proba, (n, k))
    if n == 0:
        return
    n_threads = <int> max(1, min(n_threads, n_chunks))
    failed = memoryview(bytearray(4 * n_threads)).cast("i")
    with nogil, parallel(num_threads=n_threads):
        tid = threadid()
        s = scratch_new(d, k, mode, sizeof(floating))
        if not scratch_ok(&s):
            failed[tid] = 1
        for ci in prange(n_chunks, schedule='static'):
            if failed[tid]:
                continue
            start = ci * CHUNK_ROWS
            rows = min(CHUNK_ROWS, n - start)
            chunk_log_prob(&X[start, 0], rows, d, k, &shift[0, 0],
                           &prec[0, 0] if prec.shape[0] > 0 and prec.shape[1] > 0 else NULL,
                           &coef[0, 0] if coef.shape[0] > 0 and coef.shape[1] > 0 else NULL, &offsets[0], mode, &s)
            if want_labels:
                for i in range(rows):
                    best = 0
                    for c in range(1, k):
                        if s.lp[c * CHUNK_ROWS + i] > s.lp[best * CHUNK_ROWS + i]:
                            best = c
                    labels[start + i] = best
            if want_norm or want_proba:
                normalize(s.lp, rows, k, s.norm)
                for i in range(rows):
                    if want_norm:
                        log_norm[start + i] = <floating> s.norm[i]
                    if want_proba:
                        for c in range(k):
                            proba[start + i, c] = <floating> s.lp[c * CHUNK_ROWS + i]
        scratch_free(&s)
    if any(failed):
        raise MemoryError("gaussmix: could not allocate the kernels' scratch memory")
