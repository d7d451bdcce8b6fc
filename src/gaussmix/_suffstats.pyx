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
"""
from cython cimport floating
from libc.stdlib cimport malloc, free

from ._kernel_checks import check_accumulators, check_parameters, check_rows, expect_shape

from ._chunks cimport (chunk_log_prob, coefficient, factor_size, log_prob_to_resp,
                       prepare_accumulate, chunk_accumulate, scratch_sizes, set_coefficients)
from ._parallel cimport (CHUNK_ROWS, FULL_LOOPS, FULL_GEMM, FULL_BLAS, DIAG_GEMM, DIAG_LOOPS, Scratch,
                         ScratchSizes, chunk_rows, count_chunks, run_tasks)

cdef enum:
    # Bytes of responsibilities buffered per block by the shared-slot scheme.
    BLOCK_BYTES = 8 << 20


cdef struct Pass:
    const void *weights          # floating [n], or NULL for unit weights
    const void *shift            # floating [k, d]
    const void *prec             # floating, or NULL when the mode has none
    const double *coef           # or NULL when the mode has none
    const float *coef_single     # float32 coef instead of coef, or NULL
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
                       p.offsets, p.mode, s)
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
                   <const floating *> p.prec, p.coef, p.coef_single, p.offsets, p.mode, &t)
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
    check_parameters(X, shift, prec, coef, offsets, mode)
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
    set_coefficients(&p.coef, &p.coef_single, coef)
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
        int mode,                              # FULL_LOOPS, FULL_BLAS or DIAG_GEMM
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
    if mode not in (FULL_LOOPS, FULL_BLAS, DIAG_GEMM):
        raise ValueError(f"gaussmix kernel: mode {mode} cannot accumulate given responsibilities")
    if k < 1 or d < 1:
        raise ValueError("gaussmix kernel: need at least one component and one feature")
    expect_shape("resp", resp, (n, k))
    expect_shape("shift", shift, (k, d))
    check_accumulators(N, S, W, k, d, mode)
    threads = thread_count(N.shape[0], n_threads, count_chunks(n))
    if n == 0:
        return
    p.n, p.d, p.k, p.mode = n, d, k, mode
    p.weights, p.prec, p.coef, p.offsets, p.loglik = NULL, NULL, NULL, NULL, NULL
    p.coef_single = NULL
    p.shift, p.given_resp = &shift[0, 0], &resp[0, 0]
    set_accumulators(&p, N, S, W)
    p.n_groups = min(threads, k)
    sizes = scratch_sizes(d, k, mode, sizeof(floating), False)
    with nogil:
        ok = run_pass(&X[0, 0], &p, threads, N.shape[0] < threads, &sizes)
    if not ok:
        raise MemoryError("gaussmix: could not allocate the kernels' scratch memory")


cdef struct PatternPass:
    const void *weights          # floating [n], or NULL for unit weights
    const Py_ssize_t *bounds     # [n_patterns + 1] first row of each pattern
    const void *shift            # floating [n_patterns, k, d]
    const void *prec             # floating [n_patterns, k, prec_size]
    const double *offsets        # [n_patterns, k]
    Py_ssize_t d, k, prec_size, w_size
    int mode
    double *N                    # [n_patterns, k]
    double *S                    # [n_patterns, k, d]
    double *W                    # [n_patterns, k, w_size]
    double *loglik               # [n_patterns]


cdef void pattern_task(const floating *X, void *context, Scratch *s, Py_ssize_t p,
                       int tid) noexcept nogil:
    """Pattern p's rows, chunk by chunk, under its own constants into its own statistics."""
    cdef PatternPass *q = <PatternPass *> context
    cdef Py_ssize_t start = q.bounds[p], rows, d = q.d, k = q.k
    cdef const floating *shift = <const floating *> q.shift + p * k * d
    cdef const floating *prec = <const floating *> q.prec + p * k * q.prec_size
    cdef const floating *weights = <const floating *> q.weights
    cdef const floating *x
    while start < q.bounds[p + 1]:
        rows = min(<Py_ssize_t> CHUNK_ROWS, q.bounds[p + 1] - start)
        x = X + start * d
        chunk_log_prob(x, rows, d, k, shift, prec, NULL, NULL, q.offsets + p * k, q.mode, s)
        q.loglik[p] += log_prob_to_resp(s.lp, rows, k, s.norm,
                                        weights + start if weights != NULL else NULL)
        chunk_accumulate(x, rows, d, k, shift, prec, q.mode, s, q.N + p * k,
                         q.S + p * k * d, q.W + p * k * q.w_size)
        start += rows


def em_pass_patterns(const floating[:, ::1] X,              # IN [n, d]
                     const floating[::1] sample_weight,     # IN [n] or empty for unit weights
                     const Py_ssize_t[::1] bounds,          # IN [P + 1] rows of each pattern
                     const floating[:, :, ::1] shift,       # IN [P, k, d]
                     const floating[:, :, ::1] prec,        # IN [P, k, d*d or d]
                     const double[:, ::1] offsets,          # IN [P, k]
                     int mode,                              # FULL_LOOPS, FULL_BLAS or DIAG_LOOPS
                     double[:, ::1] N,                      # INOUT [P, k]
                     double[:, :, ::1] S,                   # INOUT [P, k, d]
                     double[:, :, ::1] W,                   # INOUT [P, k, d*d or d]
                     double[::1] loglik,                    # INOUT [P]
                     int n_threads=1):
    """Many small EM passes in one call (missing values, ``_missing``): rows
    X[bounds[p]:bounds[p + 1]] of pattern p under its own constants (shift[p],
    prec[p], offsets[p] laid out as ``em_pass``'s for ``mode``) into its own
    N[p], S[p], W[p] and loglik[p]. Patterns are the tasks dealt to the
    threads, so no two threads write the same accumulators."""
    cdef PatternPass q
    cdef ScratchSizes sizes
    cdef Py_ssize_t P = offsets.shape[0], k = offsets.shape[1], d = X.shape[1], p
    cdef Py_ssize_t width = d if mode == DIAG_LOOPS else d * d
    cdef bint ok
    if mode not in (FULL_LOOPS, FULL_BLAS, DIAG_LOOPS):
        raise ValueError(f"gaussmix kernel: mode {mode} has no per-pattern pass")
    if k < 1 or d < 1:
        raise ValueError("gaussmix kernel: need at least one component and one feature")
    expect_shape("bounds", bounds, (P + 1,))
    expect_shape("shift", shift, (P, k, d))
    expect_shape("prec", prec, (P, k, width))
    expect_shape("N", N, (P, k))
    expect_shape("S", S, (P, k, d))
    expect_shape("W", W, (P, k, width))
    expect_shape("loglik", loglik, (P,))
    check_rows("sample_weight", sample_weight, X.shape[0], optional=True)
    if P == 0:
        return
    if bounds[0] < 0 or bounds[P] > X.shape[0]:
        raise ValueError("gaussmix kernel: pattern bounds outside X's rows")
    for p in range(P):
        if bounds[p + 1] < bounds[p]:
            raise ValueError("gaussmix kernel: pattern bounds must not decrease")
    if bounds[P] == bounds[0]:
        return
    q.weights = &sample_weight[0] if sample_weight.shape[0] > 0 else NULL
    q.bounds, q.shift, q.prec, q.offsets = &bounds[0], &shift[0, 0, 0], &prec[0, 0, 0], &offsets[0, 0]
    q.d, q.k, q.prec_size, q.w_size, q.mode = d, k, width, width, mode
    q.N, q.S, q.W, q.loglik = &N[0, 0], &S[0, 0, 0], &W[0, 0, 0], &loglik[0]
    sizes = scratch_sizes(d, k, mode, sizeof(floating), False)
    n_threads = <int> max(1, min(n_threads, P))
    with nogil:
        ok = run_tasks(pattern_task[floating], &X[0, 0], &q, P, n_threads, &sizes)
    if not ok:
        raise MemoryError("gaussmix: could not allocate the kernels' scratch memory")
