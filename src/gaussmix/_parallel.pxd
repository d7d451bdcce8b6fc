# How the compiled kernels cut work and run it on OpenMP threads: the one
# definition of the chunk size and the kernel modes (Python imports them from
# gaussmix._parallel), each thread's scratch, and the one chunk-loop scaffold
# every compiled entry point runs through.
from cython cimport floating
from libc.stdlib cimport malloc, calloc, free
from cython.parallel cimport parallel, prange, threadid

cpdef enum:
    # Rows per chunk: the chunk's scratch stays in L2, each BLAS call still gets
    # a useful amount of work, and the GEMM modes' calls mostly stay in
    # OpenBLAS's unpacked small-matrix path (benchmarks/README.md: 64 / 128 /
    # 256 rows measured).
    CHUNK_ROWS = 128

cpdef enum:
    # Kernel modes; _chunks.pxd documents each one's parameter layout.
    FULL_LOOPS = 0
    FULL_GEMM = 1
    FULL_BLAS = 2
    DIAG_GEMM = 3
    DIAG_LOOPS = 4

cpdef enum:
    # FULL_LOOPS runs up to this many features: _chunks.pxd has a copy of its
    # log-density loop for each d (the cases of gaussmix_log_prob_fused).
    FULL_LOOPS_MAX_DIM = 8


cdef struct Scratch:
    double *lp        # [k, CHUNK_ROWS] log-probabilities, then responsibilities
    double *norm      # [CHUNK_ROWS] per-row log-normalisers
    double *xt        # [d, CHUNK_ROWS] the chunk, transposed, in double
    double *tmp       # [d + 3, CHUNK_ROWS] for _chunks.refine_log_prob (single-precision FULL_GEMM)
    void *work        # [CHUNK_ROWS, d] floating: BLAS operand (k-means: distances)
    void *scatter     # [d, d] floating: BLAS result
    double *feat      # [rows, width] features [1, z, z^2 or z z^T] (_chunks.feature_rows)
    double *resp      # [CHUNK_ROWS, k] log-probabilities, row-major (GEMM modes)
    double *acc       # [k, width] statistics of one chunk
    float *single     # [rows, width - 1 + k] float32 features and log-densities
                      # (single-precision GEMM, _chunks.single_precision_gemm)


cdef struct ScratchSizes:
    # Bytes of each Scratch buffer a kernel needs; 0 leaves it NULL.
    size_t lp, norm, xt, tmp, work, scatter, feat, resp, acc, single


cdef inline ScratchSizes no_scratch() noexcept nogil:
    """All sizes zero: set the buffers a kernel needs on it."""
    cdef ScratchSizes z
    z.lp = z.norm = z.xt = z.tmp = z.work = z.scatter = z.feat = z.resp = z.acc = 0
    z.single = 0
    return z


cdef inline void *_alloc(size_t size) noexcept nogil:
    return malloc(size) if size > 0 else NULL


cdef inline Scratch scratch_new(const ScratchSizes *z) noexcept nogil:
    """A thread's scratch, returned by value so that OpenMP makes the variable
    holding it private to each thread. Check it with scratch_ok."""
    cdef Scratch s
    s.lp = <double *> _alloc(z.lp)
    s.norm = <double *> _alloc(z.norm)
    s.xt = <double *> _alloc(z.xt)
    s.tmp = <double *> _alloc(z.tmp)
    s.work = _alloc(z.work)
    s.scatter = _alloc(z.scatter)
    s.feat = <double *> _alloc(z.feat)
    s.resp = <double *> _alloc(z.resp)
    s.acc = <double *> _alloc(z.acc)
    s.single = <float *> _alloc(z.single)
    return s


cdef inline bint scratch_ok(const Scratch *s, const ScratchSizes *z) noexcept nogil:
    """Every buffer of a nonzero size was allocated."""
    return ((s.lp != NULL or z.lp == 0) and (s.norm != NULL or z.norm == 0)
            and (s.xt != NULL or z.xt == 0) and (s.tmp != NULL or z.tmp == 0)
            and (s.work != NULL or z.work == 0) and (s.scatter != NULL or z.scatter == 0)
            and (s.feat != NULL or z.feat == 0) and (s.resp != NULL or z.resp == 0)
            and (s.acc != NULL or z.acc == 0) and (s.single != NULL or z.single == 0))


cdef inline void scratch_free(Scratch *s) noexcept nogil:
    free(s.lp)
    free(s.norm)
    free(s.xt)
    free(s.tmp)
    free(s.work)
    free(s.scatter)
    free(s.feat)
    free(s.resp)
    free(s.acc)
    free(s.single)


cdef inline bint run_tasks(
        void (*task)(const floating *X, void *ctx, Scratch *s, Py_ssize_t t,
                     int tid) noexcept nogil,
        const floating *X, void *ctx, Py_ssize_t n_tasks, int n_threads,
        const ScratchSizes *sizes) noexcept nogil:
    """Run task(X, ctx, scratch, t, tid) for t in range(n_tasks) on n_threads
    threads: the entry point's one unit of work (a chunk of rows, or a group of
    components) on rows X, its context struct ctx, the calling thread's
    scratch and number tid (its accumulator slot). Tasks are dealt
    statically: thread tid always gets the same tasks for a given n_tasks and
    n_threads, so runs are reproducible. One thread runs the tasks in order on
    the calling thread without entering an OpenMP region. Returns False when some scratch could
    not be allocated; that thread's tasks are then skipped, and the caller must
    raise MemoryError (with the GIL, after this returns)."""
    cdef Py_ssize_t t
    cdef int tid
    cdef Scratch s
    cdef int *failed = <int *> calloc(n_threads, sizeof(int))
    cdef bint all_ok = failed != NULL
    if not all_ok or n_tasks == 0:
        free(failed)
        return all_ok
    if n_threads == 1:
        # On the calling thread, outside any OpenMP region: no team to wake,
        # and safe in a forked child whose parent's team no longer exists.
        s = scratch_new(sizes)
        all_ok = scratch_ok(&s, sizes)
        if all_ok:
            for t in range(n_tasks):
                task(X, ctx, &s, t, 0)
        scratch_free(&s)
        free(failed)
        return all_ok
    with parallel(num_threads=n_threads):
        tid = threadid()
        s = scratch_new(sizes)
        if not scratch_ok(&s, sizes):
            failed[tid] = 1
        for t in prange(n_tasks, schedule='static'):
            if not failed[tid]:
                task(X, ctx, &s, t, tid)
        scratch_free(&s)
    for t in range(n_threads):
        if failed[t]:
            all_ok = False
    free(failed)
    return all_ok


cdef inline void chunk_rows(Py_ssize_t chunk, Py_ssize_t n, Py_ssize_t *start,
                            Py_ssize_t *rows) noexcept nogil:
    """First row and row count of a chunk of n rows."""
    start[0] = chunk * CHUNK_ROWS
    rows[0] = min(<Py_ssize_t> CHUNK_ROWS, n - start[0])


cdef inline Py_ssize_t count_chunks(Py_ssize_t n) noexcept nogil:
    return (n + CHUNK_ROWS - 1) // CHUNK_ROWS
