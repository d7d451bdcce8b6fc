"""Chunked E-step kernel for predict, predict_proba and score_samples.

One kernel fills whichever outputs are non-empty, chunk by chunk, so no
n_samples x n_components intermediate exists beyond the output asked for.
"""
from cython cimport floating

from ._kernel_checks import check_parameters, check_rows, optional_shape

from ._chunks cimport chunk_log_prob, coefficient, normalize, scratch_sizes, set_coefficients
from ._parallel cimport (CHUNK_ROWS, Scratch, ScratchSizes, chunk_rows, count_chunks,
                         run_tasks)


cdef struct EStep:
    const void *shift          # floating [k, d]
    const void *prec           # floating, or NULL when the mode has none
    const double *coef         # or NULL when the mode has none
    const float *coef_single   # float32 coef instead of coef, or NULL
    const double *exact        # with coef_single: [k, 1 + d + d*d] (_chunks.pxd), else NULL
    const double *offsets      # [k]
    Py_ssize_t n, d, k
    int mode
    void *log_norm             # floating [n], or NULL
    Py_ssize_t *labels         # [n], or NULL
    void *proba                # floating [n, k], or NULL


cdef void e_step_chunk(const floating *X, void *context, Scratch *s, Py_ssize_t chunk,
                       int tid) noexcept nogil:
    cdef EStep *e = <EStep *> context
    cdef Py_ssize_t start, rows, i, c, best, k = e.k
    cdef floating *log_norm = <floating *> e.log_norm
    cdef floating *proba = <floating *> e.proba
    chunk_rows(chunk, e.n, &start, &rows)
    chunk_log_prob(X + start * e.d, rows, e.d, k,
                   <const floating *> e.shift, <const floating *> e.prec, e.coef, e.coef_single,
                   e.exact, e.offsets, e.mode, s)
    if e.labels != NULL:
        for i in range(rows):
            best = 0
            for c in range(1, k):
                if s.lp[c * CHUNK_ROWS + i] > s.lp[best * CHUNK_ROWS + i]:
                    best = c
            e.labels[start + i] = best
    if log_norm == NULL and proba == NULL:
        return
    normalize(s.lp, rows, k, s.norm, floating is float)
    if log_norm != NULL:
        for i in range(rows):
            log_norm[start + i] = <floating> s.norm[i]
    if proba != NULL:
        for i in range(rows):
            for c in range(k):
                proba[(start + i) * k + c] = <floating> s.lp[c * CHUNK_ROWS + i]


def e_step(const floating[:, ::1] X,          # IN [n, d]
           const floating[:, ::1] shift,      # IN [k, d]
           const floating[:, ::1] prec,       # IN see _chunks.pxd; empty for DIAG_GEMM
           const coefficient[:, ::1] coef,    # IN see _chunks.pxd; empty when unused
           const double[:, ::1] exact,        # IN with a float32 coef (_chunks.pxd), else empty
           const double[::1] offsets,         # IN [k]
           int mode,                          # kernel mode (_parallel.pxd)
           floating[::1] log_norm,            # OUT [n] log p(x_i), or empty
           Py_ssize_t[::1] labels,            # OUT [n] argmax_k p(x_i, k), or empty
           floating[:, ::1] proba,            # OUT [n, k] p(k | x_i), or empty
           int n_threads):
    cdef EStep e
    cdef ScratchSizes sizes
    cdef Py_ssize_t n_chunks = count_chunks(X.shape[0])
    cdef bint ok
    check_parameters(X, shift, prec, coef, exact, offsets, mode)
    e.n, e.d, e.k, e.mode = X.shape[0], X.shape[1], offsets.shape[0], mode
    check_rows("log_norm", log_norm, e.n, optional=True)
    check_rows("labels", labels, e.n, optional=True)
    optional_shape("proba", proba, (e.n, e.k))
    if e.n == 0:
        return
    e.shift, e.offsets = &shift[0, 0], &offsets[0]
    e.prec = &prec[0, 0] if prec.shape[0] > 0 and prec.shape[1] > 0 else NULL
    set_coefficients(&e.coef, &e.coef_single, &e.exact, coef, exact)
    e.log_norm = &log_norm[0] if log_norm.shape[0] > 0 else NULL
    e.labels = &labels[0] if labels.shape[0] > 0 else NULL
    e.proba = &proba[0, 0] if proba.shape[0] > 0 else NULL
    sizes = scratch_sizes(e.d, e.k, mode, sizeof(floating), e.coef_single != NULL)
    n_threads = <int> max(1, min(n_threads, n_chunks))
    with nogil:
        ok = run_tasks(e_step_chunk[floating], &X[0, 0], &e, n_chunks, n_threads, &sizes)
    if not ok:
        raise MemoryError("gaussmix: could not allocate the kernels' scratch memory")
