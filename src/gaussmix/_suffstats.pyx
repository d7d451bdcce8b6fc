"""The fit pass: chunked E-step fused with accumulation of sufficient statistics.

The accumulators (N, S, W, loglik) have a first axis of slots, and the number
of slots picks one of two schemes (``_em.Statistics`` chooses):

* one slot per thread: chunks are dealt to threads statically and each thread
  adds its chunks into its own slot; the caller sums the slots in order.
* one slot shared by all threads, when per-thread slots would not fit the
  memory budget: X goes in blocks of chunks. The responsibilities of a block
  are computed in parallel over its chunks into a buffer; then the components
  are cut into one contiguous group per thread, and each group's statistics are
  added by its one thread, chunk after chunk in row order.

Both are reproducible for a given thread count.

``em_pass_filled`` is the same fused pass for rows with missing values
(``_missing``), one slot per thread.
"""
from cython cimport floating
from libc.stdlib cimport malloc, free

from ._kernel_checks import (check_accumulators, check_mode_dim, check_parameters, check_rows,
                             expect_shape)

from libc.math cimport sqrt, log

import numpy as np

from ._blas cimport trmm_right_upper
from ._chunks cimport (NEGLIGIBLE, accumulate_blas, accumulate_diag_rows, chunk_accumulate,
                       chunk_log_prob, coefficient, dot, factor_size, log_prob_to_resp,
                       normalize, prepare_accumulate, scratch_sizes, set_coefficients,
                       sum_of_squares)
from ._parallel cimport (CHUNK_ROWS, FULL_LOOPS, FULL_GEMM, FULL_BLAS, DIAG_GEMM, DIAG_LOOPS, Scratch,
                         ScratchSizes, chunk_rows, count_chunks, no_scratch, run_tasks)

cdef double LOG_2PI = 1.8378770664093453

cdef extern from *:
    """
    /* rows[0..n) of X (d columns) into out [n, d] in double, NaN as 0; the
       rows are scattered in X, so each is prefetched a few rows ahead. */
    #define GAUSSMIX_GATHER(NAME, T)                                              \
    static void NAME(const T *X, const Py_ssize_t *rows, Py_ssize_t n,            \
                     Py_ssize_t d, double *out) {                                 \
        for (Py_ssize_t i = 0; i < n; i++) {                                      \
            if (i + 4 < n) __builtin_prefetch(X + rows[i + 4] * d);               \
            const T *x = X + rows[i] * d;                                         \
            for (Py_ssize_t j = 0; j < d; j++) {                                  \
                double v = (double) x[j];                                         \
                out[i * d + j] = v == v ? v : 0.0;                                \
            }                                                                     \
        }                                                                         \
    }
    GAUSSMIX_GATHER(gaussmix_gather_d, double)
    GAUSSMIX_GATHER(gaussmix_gather_f, float)
    """
    void gather_d "gaussmix_gather_d"(const double *X, const Py_ssize_t *rows, Py_ssize_t n,
                                      Py_ssize_t d, double *out) noexcept nogil
    void gather_f "gaussmix_gather_f"(const float *X, const Py_ssize_t *rows, Py_ssize_t n,
                                      Py_ssize_t d, double *out) noexcept nogil

cdef enum:
    # Bytes of responsibilities buffered per block by the shared-slot scheme.
    BLOCK_BYTES = 8 << 20
    # Bytes of one thread's filled rows kept between the E-step and the
    # statistics of the missing-value pass (the components past it are filled
    # twice); 2 MiB keeps 128 components of 16 features.
    FILL_BYTES = 2 << 20


cdef struct Pass:
    const void *weights          # floating [n], or NULL for unit weights
    const void *shift            # floating [k, d]
    const void *prec             # floating, or NULL when the mode has none
    const double *coef           # or NULL when the mode has none
    const float *coef_single     # float32 coef instead of coef, or NULL
    const double *exact          # with coef_single: [k, 1 + d + d*d] (_chunks.pxd), else NULL
    const double *offsets        # [k]
    const double *given_resp     # [n, k] responsibilities given by the caller, or NULL
    Py_ssize_t n, d, k, w_size   # w_size: entries of W per component
    int mode
    double *N                    # [slots, k]
    double *S                    # [slots, k, d]
    double *W                    # [slots, k, w_size]
    double *loglik               # [slots]
    # shared slot: the block of chunks in work and its buffered results
    Py_ssize_t first_chunk, block_chunks, n_groups
    double *block_resp           # [block_chunks, k, CHUNK_ROWS]
    double *block_loglik         # [block_chunks]


cdef inline void copy_given_resp(const Pass *p, Py_ssize_t start, Py_ssize_t rows,
                                 Py_ssize_t c0, Py_ssize_t c1, double *lp) noexcept nogil:
    """lp[c - c0, i] = given_resp[start + i, c] (component-major, as chunk_accumulate reads)."""
    cdef Py_ssize_t i, c
    for i in range(rows):
        for c in range(c0, c1):
            lp[(c - c0) * CHUNK_ROWS + i] = p.given_resp[(start + i) * p.k + c]


cdef void slot_chunk(const floating *X, void *context, Scratch *s, Py_ssize_t chunk,
                     int tid) noexcept nogil:
    """One chunk into the thread's own slot: responsibilities (given, or from
    the E-step), then statistics."""
    cdef Pass *p = <Pass *> context
    cdef Py_ssize_t start, rows, d = p.d, k = p.k
    cdef const floating *x
    cdef const floating *shift = <const floating *> p.shift
    cdef const floating *weights = <const floating *> p.weights
    chunk_rows(chunk, p.n, &start, &rows)
    x = X + start * d
    if p.given_resp != NULL:
        copy_given_resp(p, start, rows, 0, k, s.lp)
        prepare_accumulate(x, rows, d, k, shift, <const floating *> p.prec, p.mode, s)
    else:
        chunk_log_prob(x, rows, d, k, shift, <const floating *> p.prec, p.coef, p.coef_single,
                       p.exact, p.offsets, p.mode, s)
        p.loglik[tid] += log_prob_to_resp(s.lp, rows, k, s.norm,
                                          weights + start if weights != NULL else NULL)
    chunk_accumulate(x, rows, d, k, shift, <const floating *> p.prec, p.mode, s, p.N + tid * k,
                     p.S + tid * k * d,
                     p.W + tid * k * p.w_size)


cdef void block_resp_chunk(const floating *X, void *context, Scratch *s, Py_ssize_t j,
                           int tid) noexcept nogil:
    """Shared slot, first phase: the j-th chunk of the block's responsibilities
    and log-likelihood into the block buffers."""
    cdef Pass *p = <Pass *> context
    cdef Py_ssize_t start, rows
    cdef const floating *weights = <const floating *> p.weights
    cdef Scratch t = s[0]
    t.lp = p.block_resp + j * p.k * CHUNK_ROWS
    chunk_rows(p.first_chunk + j, p.n, &start, &rows)
    chunk_log_prob(X + start * p.d, rows, p.d, p.k, <const floating *> p.shift,
                   <const floating *> p.prec, p.coef, p.coef_single, p.exact, p.offsets,
                   p.mode, &t)
    p.block_loglik[j] = log_prob_to_resp(t.lp, rows, p.k, t.norm,
                                         weights + start if weights != NULL else NULL)


cdef void group_statistics(const floating *X, void *context, Scratch *s, Py_ssize_t group,
                           int tid) noexcept nogil:
    """Shared slot, second phase: one group of components' statistics over the
    block's chunks, in row order."""
    cdef Pass *p = <Pass *> context
    cdef Py_ssize_t j, start, rows, d = p.d
    cdef Py_ssize_t c0 = group * p.k // p.n_groups, c1 = (group + 1) * p.k // p.n_groups
    cdef const floating *shift = <const floating *> p.shift + c0 * d
    cdef const floating *prec = (<const floating *> p.prec + c0 * factor_size(d, p.mode)
                                 if (p.mode == FULL_GEMM or p.mode == DIAG_GEMM)
                                 and p.prec != NULL else NULL)
    cdef Scratch t = s[0]
    for j in range(p.block_chunks):
        chunk_rows(p.first_chunk + j, p.n, &start, &rows)
        if p.given_resp != NULL:
            copy_given_resp(p, start, rows, c0, c1, t.lp)
        else:
            t.lp = p.block_resp + (j * p.k + c0) * CHUNK_ROWS
        prepare_accumulate(X + start * d, rows, d, c1 - c0, shift, prec, p.mode, &t)
        chunk_accumulate(X + start * d, rows, d, c1 - c0, shift, prec, p.mode, &t, p.N + c0,
                         p.S + c0 * d, p.W + c0 * p.w_size)


cdef int thread_count(Py_ssize_t slots, int n_threads, Py_ssize_t n_chunks) except -1:
    """Threads to run: one per slot, or n_threads on one shared slot."""
    if n_threads == 0 or n_threads == slots:
        return <int> min(slots, max(n_chunks, 1))
    if slots != 1 or n_threads < 1:
        raise ValueError(f"gaussmix kernel: {slots} accumulator slots for {n_threads} threads; "
                         "expected one per thread or one shared")
    return n_threads


cdef bint run_pass(const floating *X, Pass *p, int n_threads, bint shared,
                   const ScratchSizes *sizes) noexcept nogil:
    """Accumulate every chunk of X, per-thread slots or one shared slot; False
    when memory ran out."""
    cdef Py_ssize_t n_chunks = count_chunks(p.n), block, j
    cdef bint ok = True
    if not shared:
        ok = run_tasks(slot_chunk[floating], X, p, n_chunks, n_threads, sizes)
    elif p.given_resp != NULL:
        p.first_chunk, p.block_chunks = 0, n_chunks
        ok = run_tasks(group_statistics[floating], X, p, p.n_groups, n_threads, sizes)
    else:
        block = max(<Py_ssize_t> n_threads,
                    <Py_ssize_t> (BLOCK_BYTES // (p.k * CHUNK_ROWS * sizeof(double))))
        block = min(block, n_chunks)
        p.block_resp = <double *> malloc(block * p.k * CHUNK_ROWS * sizeof(double))
        p.block_loglik = <double *> malloc(block * sizeof(double))
        ok = p.block_resp != NULL and p.block_loglik != NULL
        p.first_chunk = 0
        while ok and p.first_chunk < n_chunks:
            p.block_chunks = min(block, n_chunks - p.first_chunk)
            ok = run_tasks(block_resp_chunk[floating], X, p, p.block_chunks, n_threads, sizes)
            for j in range(p.block_chunks):
                p.loglik[0] += p.block_loglik[j]
            ok = ok and run_tasks(group_statistics[floating], X, p, p.n_groups, n_threads,
                                  sizes)
            p.first_chunk += p.block_chunks
        free(p.block_resp)
        free(p.block_loglik)
    return ok


cdef void set_accumulators(Pass *p, double[:, ::1] N, double[:, :, ::1] S,
                           double[:, :, ::1] W) noexcept:
    p.N, p.S, p.W, p.w_size = &N[0, 0], &S[0, 0, 0], &W[0, 0, 0], W.shape[2]


def em_pass(const floating[:, ::1] X,              # IN [n, d]
            const floating[::1] sample_weight,     # IN [n] or empty for unit weights
            const floating[:, ::1] shift,          # IN [k, d]
            const floating[:, ::1] prec,           # IN see _chunks.pxd; empty for DIAG_GEMM
            const coefficient[:, ::1] coef,        # IN see _chunks.pxd; empty when unused
            const double[:, ::1] exact,            # IN with a float32 coef (_chunks.pxd), else empty
            const double[::1] offsets,             # IN [k]
            int mode,                              # kernel mode (_parallel.pxd)
            double[:, ::1] N,                      # INOUT [slots, k]
            double[:, :, ::1] S,                   # INOUT [slots, k, d]
            double[:, :, ::1] W,                   # INOUT [slots, k, d*d or d]
            double[::1] loglik,                    # INOUT [slots]
            int n_threads=0):                      # 0: one per slot
    """One EM pass: responsibilities under the given parameters, accumulated
    around ``shift``; adds sum_i w_i log p(x_i) to loglik. Runs one thread per
    accumulator slot, or ``n_threads`` threads sharing a single slot."""
    cdef Pass p
    cdef ScratchSizes sizes
    cdef int threads
    cdef bint ok
    check_parameters(X, shift, prec, coef, exact, offsets, mode)
    check_accumulators(N, S, W, offsets.shape[0], X.shape[1], mode)
    check_rows("sample_weight", sample_weight, X.shape[0], optional=True)
    expect_shape("loglik", loglik, (N.shape[0],))
    threads = thread_count(N.shape[0], n_threads, count_chunks(X.shape[0]))
    if X.shape[0] == 0:
        return
    p.n, p.d, p.k, p.mode = X.shape[0], X.shape[1], offsets.shape[0], mode
    p.weights = &sample_weight[0] if sample_weight.shape[0] > 0 else NULL
    p.shift, p.offsets, p.given_resp = &shift[0, 0], &offsets[0], NULL
    p.prec = &prec[0, 0] if prec.shape[0] > 0 and prec.shape[1] > 0 else NULL
    set_coefficients(&p.coef, &p.coef_single, &p.exact, coef, exact)
    p.loglik = &loglik[0]
    set_accumulators(&p, N, S, W)
    p.n_groups = min(threads, p.k)
    sizes = scratch_sizes(p.d, p.k, mode, sizeof(floating), p.coef_single != NULL)
    with nogil:
        ok = run_pass(&X[0, 0], &p, threads, N.shape[0] < threads, &sizes)
    if not ok:
        raise MemoryError("gaussmix: could not allocate the kernels' scratch memory")


def accumulate_responsibilities(
        const floating[:, ::1] X,              # IN [n, d]
        const double[:, ::1] resp,             # IN [n, k], already times sample weight
        const floating[:, ::1] shift,          # IN [k, d]; diag: every row the same
        int mode,                              # any but FULL_GEMM
        double[:, ::1] N,                      # INOUT [slots, k]
        double[:, :, ::1] S,                   # INOUT [slots, k, d]
        double[:, :, ::1] W,                   # INOUT [slots, k, d*d or d]
        int n_threads=0):                      # 0: one per slot
    """Accumulate statistics for given responsibilities (initialisation), with
    the threads and slots of ``em_pass``."""
    cdef Pass p
    cdef ScratchSizes sizes
    cdef int threads
    cdef bint ok
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1], k = resp.shape[1]
    if mode not in (FULL_LOOPS, FULL_BLAS, DIAG_GEMM, DIAG_LOOPS):
        raise ValueError(f"gaussmix kernel: mode {mode} cannot accumulate given responsibilities")
    if k < 1 or d < 1:
        raise ValueError("gaussmix kernel: need at least one component and one feature")
    check_mode_dim(mode, d)
    expect_shape("resp", resp, (n, k))
    expect_shape("shift", shift, (k, d))
    check_accumulators(N, S, W, k, d, mode)
    threads = thread_count(N.shape[0], n_threads, count_chunks(n))
    if n == 0:
        return
    p.n, p.d, p.k, p.mode = n, d, k, mode
    p.weights, p.prec, p.coef, p.offsets, p.loglik = NULL, NULL, NULL, NULL, NULL
    p.coef_single, p.exact = NULL, NULL
    p.shift, p.given_resp = &shift[0, 0], &resp[0, 0]
    set_accumulators(&p, N, S, W)
    p.n_groups = min(threads, k)
    sizes = scratch_sizes(d, k, mode, sizeof(floating), False)
    with nogil:
        ok = run_pass(&X[0, 0], &p, threads, N.shape[0] < threads, &sizes)
    if not ok:
        raise MemoryError("gaussmix: could not allocate the kernels' scratch memory")


cdef struct FilledPass:
    const void *weights          # floating [n_pos] in position order, or NULL for unit weights
    const Py_ssize_t *rows       # [n_pos] the row of X at each position
    const Py_ssize_t *pattern    # [n_pos] the pattern of each position
    const Py_ssize_t *obs_ptr    # [P + 1] pattern q observes obs_idx[obs_ptr[q]:obs_ptr[q + 1]]
    const Py_ssize_t *obs_idx
    const Py_ssize_t *miss_ptr   # [P + 1] and misses miss_idx[miss_ptr[q]:miss_ptr[q + 1]]
    const Py_ssize_t *miss_idx
    const double *base_offsets   # [k] log w_c + log det(U_c)
    const double *means          # [k, d]
    const double *precisions     # [k, d * d] P_c, or [k, d] diagonals
    const double *factors        # [k, d * d] upper U_c with P_c = U_c U_c^T, or [k, d]
    Py_ssize_t n_pos, d, k
    bint diagonal
    double *N                    # [slots, k]
    double *S                    # [slots, k, d]
    double *W                    # [slots, k, d * d or d]
    double *loglik               # [slots]
    double *out_norm             # [n_pos] log p(x_obs), or NULL (then accumulate)
    double *out_resp             # [n_pos, k] responsibilities, with out_norm
    int *failed                  # [slots] set when some P_MM is not positive definite
    # Tasks are dealt to threads in contiguous runs; a thread's run takes every
    # threads-th chunk, so each thread gets patterns of every size (the rows are
    # ordered by how many values they miss, and more missing values cost more).
    Py_ssize_t threads, chunks_per_thread
    Py_ssize_t kept              # components whose filled rows scratch keeps (FILL_BYTES)
    const double *zeros          # [d]: the filled rows are already centred


cdef inline bint missing_block_factor(const double *P, const Py_ssize_t *miss, Py_ssize_t m,
                                      Py_ssize_t d, double *L) noexcept nogil:
    """Lower Cholesky factor L [m, m] of P_MM (P [d, d]); False if not positive definite."""
    cdef Py_ssize_t a, b, j
    cdef double t
    for a in range(m):
        for b in range(a + 1):
            t = P[miss[a] * d + miss[b]]
            for j in range(b):
                t -= L[a * m + j] * L[b * m + j]
            if a == b:
                if not t > 0.0:
                    return False
                L[a * m + a] = sqrt(t)
            else:
                L[a * m + b] = t / L[b * m + b]
    return True


cdef inline double log_det_factor(const double *L, Py_ssize_t m) noexcept nogil:
    cdef Py_ssize_t a
    cdef double t = 0.0
    for a in range(m):
        t += log(L[a * m + a])
    return 2.0 * t


cdef inline void missing_regression(const double *P, const Py_ssize_t *miss, Py_ssize_t m,
                                    Py_ssize_t d, const double *L, double *B) noexcept nogil:
    """B [m, d] = -inv(P_MM) P_M. with the M columns zeroed: the regression of the
    missing coordinates on the observed ones (B (x - mu), x - mu zero on M)."""
    cdef Py_ssize_t a, b, j
    for a in range(m):
        for j in range(d):
            B[a * d + j] = -P[miss[a] * d + j]
        for b in range(m):
            B[a * d + miss[b]] = 0.0
    for a in range(m):                   # forward: L Y = B
        for b in range(a):
            for j in range(d):
                B[a * d + j] -= L[a * m + b] * B[b * d + j]
        for j in range(d):
            B[a * d + j] /= L[a * m + a]
    for a in range(m - 1, -1, -1):      # backward: L^T B = Y
        for b in range(a + 1, m):
            for j in range(d):
                B[a * d + j] -= L[b * m + a] * B[b * d + j]
        for j in range(d):
            B[a * d + j] /= L[a * m + a]


cdef inline void add_conditional_covariance(const double *L, const Py_ssize_t *miss,
                                            Py_ssize_t m, Py_ssize_t d, double mass,
                                            double *T, double *W) noexcept nogil:
    """lower(W)[M, M] += mass * inv(P_MM) = mass * inv(L)^T inv(L); T [m, m] scratch."""
    cdef Py_ssize_t a, b, j
    cdef double t
    for a in range(m):                   # T = inv(L), lower
        T[a * m + a] = 1.0 / L[a * m + a]
        for b in range(a):
            t = 0.0
            for j in range(b, a):
                t -= L[a * m + j] * T[j * m + b]
            T[a * m + b] = t / L[a * m + a]
    for a in range(m):                   # (T^T T)[a, b] = sum_j T[j, a] T[j, b], b <= a
        for b in range(a + 1):
            t = 0.0
            for j in range(a, m):
                t += T[j * m + a] * T[j * m + b]
            W[miss[a] * d + miss[b]] += mass * t


cdef inline Py_ssize_t run_end(const FilledPass *f, Py_ssize_t start, Py_ssize_t i0,
                               Py_ssize_t rows) noexcept nogil:
    """End of the run of one pattern's rows that starts at the chunk's row i0."""
    cdef Py_ssize_t i1 = i0 + 1
    while i1 < rows and f.pattern[start + i1] == f.pattern[start + i0]:
        i1 += 1
    return i1


cdef inline void fill_segment(const double *xg, const FilledPass *f, Py_ssize_t start,
                              Py_ssize_t i0, Py_ssize_t i1, Py_ssize_t c, const double *B,
                              double *fill, double *Z) noexcept nogil:
    """Z[i] = x_hat - mu_c for the chunk's rows i0 <= i < i1 (one pattern, xg
    the chunk gathered): missing coordinates at their conditional mean,
    B (x - mu) (B NULL: mu); fill [m] scratch."""
    cdef Py_ssize_t i, a, j, d = f.d, q = f.pattern[start + i0]
    cdef const Py_ssize_t *miss = f.miss_idx + f.miss_ptr[q]
    cdef Py_ssize_t m = f.miss_ptr[q + 1] - f.miss_ptr[q]
    cdef const double *mu = f.means + c * d
    cdef const double *x
    cdef double *z
    cdef double t
    for i in range(i0, i1):
        x = xg + i * d
        z = Z + i * d
        for j in range(d):
            z[j] = x[j] - mu[j]
        if B == NULL:
            for a in range(m):
                z[miss[a]] = 0.0
            continue
        for a in range(m):          # B's M columns are zero: z_M's value does not matter
            fill[a] = dot(B + a * d, z, d)
        for a in range(m):
            z[miss[a]] = fill[a]


cdef void fill_component(const FilledPass *f, const double *xg, Py_ssize_t start,
                         Py_ssize_t rows, Py_ssize_t c, double *factors, double *Z,
                         double *offset, int *failed) noexcept nogil:
    """Z = the chunk's filled rows under component c, centred at mu_c (xg the
    chunk gathered); offset[i] = row i's log-density constant under c, when
    not NULL. factors: [3 d^2] scratch for P_MM's factor, the regression and
    the fill values."""
    cdef Py_ssize_t i, i0, i1, a, q, m, d = f.d
    cdef double *L = factors
    cdef double *B = factors + d * d
    cdef double *T = factors + 2 * d * d
    cdef const double *P = f.precisions + c * (d if f.diagonal else d * d)
    cdef const Py_ssize_t *miss
    cdef double log_det, t
    i0 = 0
    while i0 < rows:                       # the chunk's runs of one pattern
        q = f.pattern[start + i0]
        i1 = run_end(f, start, i0, rows)
        miss, m = f.miss_idx + f.miss_ptr[q], f.miss_ptr[q + 1] - f.miss_ptr[q]
        log_det = 0.0
        if f.diagonal:
            for a in range(m):
                log_det += log(P[miss[a]])
            fill_segment(xg, f, start, i0, i1, c, NULL, T, Z)
        elif missing_block_factor(P, miss, m, d, L):
            log_det = log_det_factor(L, m)
            missing_regression(P, miss, m, d, L, B)
            fill_segment(xg, f, start, i0, i1, c, B, T, Z)
        else:
            failed[0] = 1
            fill_segment(xg, f, start, i0, i1, c, NULL, T, Z)
        if offset != NULL:
            t = f.base_offsets[c] - 0.5 * log_det - 0.5 * (d - m) * LOG_2PI
            for i in range(i0, i1):
                offset[i] = t
        i0 = i1


cdef void filled_task(const floating *X, void *context, Scratch *s, Py_ssize_t chunk,
                      int tid) noexcept nogil:
    """One chunk of positions: log p(x_obs, c) from the filled rows (the
    marginal's Mahalanobis distance is the full one of the conditionally
    filled row), then either the outputs or the expected statistics. The
    filled rows of the first ``f.kept`` components stay in scratch between
    the two phases; the others are filled again."""
    cdef FilledPass *f = <FilledPass *> context
    cdef Py_ssize_t start, rows, i, i0, i1, j, c, a, q, m, d = f.d, k = f.k
    cdef const floating *weights = <const floating *> f.weights
    cdef double *Z
    cdef double *work = <double *> s.work
    cdef double *scatter = <double *> s.scatter
    cdef double *offset = s.tmp               # [CHUNK_ROWS]
    cdef double *spare = s.feat + f.kept * CHUNK_ROWS * d
    cdef double *lp
    cdef const double *u
    cdef const double *P
    cdef const Py_ssize_t *miss
    cdef double r, t, mass
    cdef double *N = f.N + tid * k
    cdef double *S = f.S + tid * k * d
    cdef double *W = f.W + tid * k * (d if f.diagonal else d * d)
    chunk = (chunk % f.chunks_per_thread) * f.threads + chunk // f.chunks_per_thread
    if chunk >= count_chunks(f.n_pos):
        return
    chunk_rows(chunk, f.n_pos, &start, &rows)
    if floating is double:     # the chunk's rows, NaN as 0 (finite for the fill)
        gather_d(X, f.rows + start, rows, d, s.xt)
    else:
        gather_f(X, f.rows + start, rows, d, s.xt)
    for c in range(k):
        Z = s.feat + c * CHUNK_ROWS * d if c < f.kept else spare
        lp = s.lp + c * CHUNK_ROWS
        fill_component(f, s.xt, start, rows, c, s.acc, Z, offset, f.failed + tid)
        if f.diagonal:
            u = f.factors + c * d
            for i in range(rows):
                t = 0.0
                for j in range(d):
                    r = Z[i * d + j] * u[j]
                    t += r * r
                lp[i] = offset[i] - 0.5 * t
            continue
        for i in range(rows * d):
            work[i] = Z[i]
        trmm_right_upper(<int> rows, <int> d, f.factors + c * d * d, <int> d, work, <int> d)
        for i in range(rows):
            lp[i] = offset[i] - 0.5 * sum_of_squares(work + i * d, d)
    if f.out_norm != NULL:
        normalize(s.lp, rows, k, f.out_norm + start, floating is float)
        for i in range(rows):
            for c in range(k):
                f.out_resp[(start + i) * k + c] = s.lp[c * CHUNK_ROWS + i]
        return
    f.loglik[tid] += log_prob_to_resp(s.lp, rows, k, s.norm,
                                      weights + start if weights != NULL else NULL)
    for c in range(k):
        lp = s.lp + c * CHUNK_ROWS
        P = f.precisions + c * (d if f.diagonal else d * d)
        if c < f.kept:
            Z = s.feat + c * CHUNK_ROWS * d
        else:
            Z = spare
            fill_component(f, s.xt, start, rows, c, s.acc, Z, NULL, f.failed + tid)
        if f.diagonal:      # the filled rows' statistics, around the mean (no shift)
            accumulate_diag_rows(Z, rows, d, lp, f.zeros, NEGLIGIBLE, N + c, S + c * d,
                                 W + c * d)
        else:
            accumulate_blas(Z, rows, d, lp, f.zeros, NEGLIGIBLE, work, scatter, N + c,
                            S + c * d, W + c * d * d)
        i0 = 0
        while i0 < rows:      # the conditional covariance inv(P_MM), once per run
            q = f.pattern[start + i0]
            i1 = run_end(f, start, i0, rows)
            mass = 0.0
            for i in range(i0, i1):
                if lp[i] > NEGLIGIBLE:   # the rows the statistics counted
                    mass += lp[i]
            miss, m = f.miss_idx + f.miss_ptr[q], f.miss_ptr[q + 1] - f.miss_ptr[q]
            if mass > 0.0:
                if f.diagonal:
                    for a in range(m):
                        W[c * d + miss[a]] += mass / P[miss[a]]
                elif missing_block_factor(P, miss, m, d, s.acc):
                    add_conditional_covariance(s.acc, miss, m, d, mass, s.acc + 2 * d * d,
                                               W + c * d * d)
            i0 = i1


def _check_pattern_table(const Py_ssize_t[::1] ptr, const Py_ssize_t[::1] idx, Py_ssize_t P,
                         Py_ssize_t d, str name):
    cdef Py_ssize_t q, a
    expect_shape(name + "_ptr", ptr, (P + 1,))
    if ptr[0] != 0 or ptr[P] != idx.shape[0]:
        raise ValueError(f"gaussmix kernel: {name}_ptr does not cover {name}_idx")
    for q in range(P):
        if ptr[q + 1] < ptr[q]:
            raise ValueError(f"gaussmix kernel: {name}_ptr must not decrease")
    for a in range(idx.shape[0]):
        if idx[a] < 0 or idx[a] >= d:
            raise ValueError(f"gaussmix kernel: {name}_idx outside the features")


def em_pass_filled(const floating[:, ::1] X,             # IN [n, d], NaN where missing
                   const floating[::1] sample_weight,    # IN [n_pos] by position, or empty
                   const Py_ssize_t[::1] rows,           # IN [n_pos] row of X at each position
                   const Py_ssize_t[::1] pattern,        # IN [n_pos] pattern of each position
                   const Py_ssize_t[::1] obs_ptr,        # IN [P + 1]
                   const Py_ssize_t[::1] obs_idx,        # IN observed coordinates, ascending
                   const Py_ssize_t[::1] miss_ptr,       # IN [P + 1]
                   const Py_ssize_t[::1] miss_idx,       # IN missing coordinates, ascending
                   const double[::1] base_offsets,       # IN [k] log w_c + log det(U_c)
                   const double[:, ::1] means,           # IN [k, d]
                   const double[:, ::1] precisions,      # IN [k, d*d] or [k, d] (diagonal)
                   const double[:, ::1] factors,         # IN [k, d*d] upper U_c, or [k, d]
                   bint diagonal,
                   double[:, ::1] N,                     # INOUT [slots, k]
                   double[:, :, ::1] S,                  # INOUT [slots, k, d]
                   double[:, :, ::1] W,                  # INOUT [slots, k, d*d or d]
                   double[::1] loglik,                   # INOUT [slots]
                   double[::1] out_norm,                 # OUT [n_pos], or empty: accumulate
                   double[:, ::1] out_resp,              # OUT [n_pos, k] with out_norm
                   size_t fill_bytes=FILL_BYTES):        # per thread, see FILL_BYTES
    """The marginal E-step of rows with missing values (``_missing``), one
    thread per accumulator slot.

    Under component c, a row observing O (missing M) has
    x_M | x_O ~ N(mu_M + B (x_O - mu_O), inv(P_MM)), B = -inv(P_MM) P_MO, and
    the filled row x_hat = (x_O, that mean) has (x_hat - mu)^T P (x_hat - mu)
    = (x_O - mu_O)^T inv(Sigma_OO) (x_O - mu_O), while
    log det inv(Sigma_OO) = log det P - log det P_MM: a full-dimensional pass
    on filled rows under the components' own factors. Adds the expected
    statistics around ``means`` (the filled rows' N, S and lower(W), plus
    r inv(P_MM) on W's M block), or writes log p(x_O) and the responsibilities
    when ``out_norm`` is given. P_MM's factor and B are computed once per
    run of a pattern's rows in a chunk. Returns True when some P_MM was not
    positive definite (numerically): then the results are not to be used."""
    cdef FilledPass f
    cdef ScratchSizes sizes = no_scratch()
    cdef Py_ssize_t n_pos = rows.shape[0], P = obs_ptr.shape[0] - 1, k = base_offsets.shape[0]
    cdef Py_ssize_t d = X.shape[1], width = d if diagonal else d * d, i, q
    cdef int slots = <int> N.shape[0], threads
    cdef int[::1] failed
    cdef double[::1] zeros
    cdef bint ok
    if k < 1 or d < 1 or P < 0:
        raise ValueError("gaussmix kernel: need at least one component, feature and pattern")
    expect_shape("means", means, (k, d))
    expect_shape("precisions", precisions, (k, width))
    expect_shape("factors", factors, (k, width))
    check_accumulators(N, S, W, k, d, DIAG_LOOPS if diagonal else FULL_BLAS)
    expect_shape("loglik", loglik, (slots,))
    expect_shape("pattern", pattern, (n_pos,))
    check_rows("sample_weight", sample_weight, n_pos, optional=True)
    if out_norm.shape[0] > 0:
        expect_shape("out_norm", out_norm, (n_pos,))
        expect_shape("out_resp", out_resp, (n_pos, k))
    _check_pattern_table(obs_ptr, obs_idx, P, d, "obs")
    _check_pattern_table(miss_ptr, miss_idx, P, d, "miss")
    for q in range(P):
        if obs_ptr[q + 1] - obs_ptr[q] + miss_ptr[q + 1] - miss_ptr[q] != d:
            raise ValueError("gaussmix kernel: a pattern's observed and missing coordinates "
                             "do not add up to the features")
    for i in range(n_pos):
        if rows[i] < 0 or rows[i] >= X.shape[0] or pattern[i] < 0 or pattern[i] >= P:
            raise ValueError("gaussmix kernel: a position's row or pattern is out of range")
    if n_pos == 0:
        return False
    failed = np.zeros(slots, dtype=np.intc)
    f.weights = &sample_weight[0] if sample_weight.shape[0] > 0 else NULL
    f.rows, f.pattern = &rows[0], &pattern[0]
    f.obs_ptr, f.obs_idx = &obs_ptr[0], &obs_idx[0] if obs_idx.shape[0] > 0 else NULL
    f.miss_ptr, f.miss_idx = &miss_ptr[0], &miss_idx[0] if miss_idx.shape[0] > 0 else NULL
    f.base_offsets, f.means = &base_offsets[0], &means[0, 0]
    f.precisions, f.factors = &precisions[0, 0], &factors[0, 0]
    f.n_pos, f.d, f.k, f.diagonal = n_pos, d, k, diagonal
    f.N, f.S, f.W, f.loglik = &N[0, 0], &S[0, 0, 0], &W[0, 0, 0], &loglik[0]
    f.out_norm = &out_norm[0] if out_norm.shape[0] > 0 else NULL
    f.out_resp = &out_resp[0, 0] if out_norm.shape[0] > 0 else NULL
    f.failed = &failed[0]
    zeros = np.zeros(d)
    f.zeros = &zeros[0]
    sizes.lp = k * CHUNK_ROWS * sizeof(double)
    sizes.norm = CHUNK_ROWS * sizeof(double)
    sizes.tmp = CHUNK_ROWS * sizeof(double)
    sizes.xt = CHUNK_ROWS * d * sizeof(double)
    f.kept = min(k, max(<Py_ssize_t> 1, fill_bytes // (CHUNK_ROWS * d * sizeof(double))))
    sizes.feat = (f.kept + 1) * CHUNK_ROWS * d * sizeof(double)
    sizes.work = CHUNK_ROWS * d * sizeof(double)
    sizes.scatter = d * d * sizeof(double)
    sizes.acc = 3 * d * d * sizeof(double)
    threads = <int> min(slots, count_chunks(n_pos))
    f.threads = threads
    f.chunks_per_thread = (count_chunks(n_pos) + threads - 1) // threads
    with nogil:
        ok = run_tasks(filled_task[floating], &X[0, 0], &f, f.chunks_per_thread * threads,
                       threads, &sizes)
    if not ok:
        raise MemoryError("gaussmix: could not allocate the kernels' scratch memory")
    return any(failed)


include "_cell_em.pxi"
