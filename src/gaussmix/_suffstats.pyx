"""The fit pass: chunked E-step fused with accumulation of sufficient statistics.

Each thread owns one slot of the accumulators (first axis of N, S, W, loglik);
chunks are dealt to threads statically, so a run is reproducible for a given
thread count. The caller sums the slots in order.
"""
from cython cimport floating

from ._kernel_checks import check_accumulators, check_parameters, check_rows, expect_shape
from cython.parallel cimport parallel, prange, threadid

from ._chunks cimport (CHUNK_ROWS, Scratch, scratch_new, scratch_ok, scratch_free, chunk_log_prob,
                       log_prob_to_resp, prepare_accumulate, chunk_accumulate,
                       FULL_LOOPS, FULL_BLAS, DIAG_GEMM)


def em_pass(const floating[:, ::1] X,              # IN [n, d]
            const floating[::1] sample_weight,     # IN [n] or empty for unit weights
            const floating[:, ::1] shift,          # IN [k, d]
            const floating[:, ::1] prec,           # IN see _chunks.pxd; empty for DIAG_GEMM
            const double[:, ::1] coef,             # IN see _chunks.pxd; empty when unused
            const double[::1] offsets,             # IN [k]
            int mode,                              # kernel mode (_chunks.pxd)
            double[:, ::1] N,                      # INOUT [threads, k]
            double[:, :, ::1] S,                   # INOUT [threads, k, d]
            double[:, :, ::1] W,                   # INOUT [threads, k, d*d or d]
            double[::1] loglik):                   # INOUT [threads]
    """One EM pass: responsibilities under the given parameters, accumulated
    around ``shift``; adds sum_i w_i log p(x_i) to loglik."""
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1], k = offsets.shape[0]
    cdef Py_ssize_t n_chunks = (n + CHUNK_ROWS - 1) // CHUNK_ROWS
    cdef int n_threads = <int> min(N.shape[0], max(n_chunks, 1))
    cdef bint weighted = sample_weight.shape[0] > 0
    cdef Py_ssize_t ci, start, rows
    cdef int tid
    cdef Scratch s
    cdef int[::1] failed = memoryview(bytearray(4 * n_threads)).cast("i")
    check_parameters(X, shift, prec, coef, offsets, mode)
    check_accumulators(N, S, W, k, d, mode)
    check_rows("sample_weight", sample_weight, n, optional=True)
    expect_shape("loglik", loglik, (N.shape[0],))
    if n == 0:
        return
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
            loglik[tid] += log_prob_to_resp(
                s.lp, rows, k, s.norm, &sample_weight[start] if weighted else NULL)
            chunk_accumulate(&X[start, 0], rows, d, k, &shift[0, 0], mode, &s,
                             &N[tid, 0], &S[tid, 0, 0], &W[tid, 0, 0])
        scratch_free(&s)
    if any(failed):
        raise MemoryError("gaussmix: could not allocate the kernels' scratch memory")


def accumulate_responsibilities(
        const floating[:, ::1] X,              # IN [n, d]
        const double[:, ::1] resp,             # IN [n, k], already times sample weight
        const floating[:, ::1] shift,          # IN [k, d]; diag: every row the same
        int mode,                              # FULL_LOOPS, FULL_BLAS or DIAG_GEMM
        double[:, ::1] N,                      # INOUT [threads, k]
        double[:, :, ::1] S,                   # INOUT [threads, k, d]
        double[:, :, ::1] W):                  # INOUT [threads, k, d*d or d]
    """Accumulate statistics for given responsibilities (initialisation)."""
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1], k = resp.shape[1]
    cdef Py_ssize_t n_chunks = (n + CHUNK_ROWS - 1) // CHUNK_ROWS
    cdef int n_threads = <int> min(N.shape[0], max(n_chunks, 1))
    cdef Py_ssize_t ci, start, rows, i, c
    cdef int tid
    cdef Scratch s
    cdef int[::1] failed = memoryview(bytearray(4 * n_threads)).cast("i")
    if mode not in (FULL_LOOPS, FULL_BLAS, DIAG_GEMM):
        raise ValueError(f"gaussmix kernel: mode {mode} cannot accumulate given responsibilities")
    if k < 1 or d < 1:
        raise ValueError("gaussmix kernel: need at least one component and one feature")
    expect_shape("resp", resp, (n, k))
    expect_shape("shift", shift, (k, d))
    check_accumulators(N, S, W, k, d, mode)
    if n == 0:
        return
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
            for i in range(rows):
                for c in range(k):
                    s.lp[c * CHUNK_ROWS + i] = resp[start + i, c]
            prepare_accumulate(&X[start, 0], rows, d, &shift[0, 0], mode, &s)
            chunk_accumulate(&X[start, 0], rows, d, k, &shift[0, 0], mode, &s,
                             &N[tid, 0], &S[tid, 0, 0], &W[tid, 0, 0])
        scratch_free(&s)
    if any(failed):
        raise MemoryError("gaussmix: could not allocate the kernels' scratch memory")
