# Per-chunk building blocks shared by the fit pass (_suffstats) and the predict
# kernels (_estep). All work on one block of rows of a C-contiguous X and on
# caller-owned scratch, so each OpenMP thread runs them on its own buffers.
#
# Two parameter layouts cover the four covariance types:
#   "full":  prec[k, d*d], the row-major upper-triangular precision Cholesky
#            factor U_k of each component (tied repeats its single factor);
#   "diag":  prec[k, d], the diagonal of U_k (spherical repeats its scalar).
# offsets[k] = log(weight_k) + log det U_k - d/2 log(2 pi), so that
#   log p(x, k) = offsets[k] - 0.5 * ||(x - mu_k) U_k||^2.
from cython cimport floating
from libc.math cimport exp, log, sqrt, INFINITY
from ._blas cimport trmm_right_upper, syrk_lower_ata

# Rows per chunk: small enough that a chunk's scratch (rows x d and rows x k)
# stays in L2 cache, large enough to amortise a BLAS call (see benchmarks/README.md).
cdef enum:
    CHUNK_ROWS = 256


cdef inline void log_prob_full(const floating *X, Py_ssize_t n_rows, Py_ssize_t d,
                               Py_ssize_t k, const floating *means, const floating *prec,
                               const double *offsets, floating *work,   # scratch [n_rows, d]
                               double *logp) noexcept nogil:         # OUT [n_rows, k]
    cdef Py_ssize_t c, i, j
    cdef const floating *mu
    cdef floating *row
    cdef double q
    for c in range(k):
        mu = means + c * d
        for i in range(n_rows):
            for j in range(d):
                work[i * d + j] = X[i * d + j] - mu[j]
        trmm_right_upper(<int> n_rows, <int> d, prec + c * d * d, <int> d, work, <int> d)
        for i in range(n_rows):
            row = work + i * d
            q = 0.0
            for j in range(d):
                q += <double> row[j] * row[j]
            logp[i * k + c] = offsets[c] - 0.5 * q


cdef inline void log_prob_diag(const floating *X, Py_ssize_t n_rows, Py_ssize_t d,
                               Py_ssize_t k, const floating *means, const floating *prec,
                               const double *offsets,
                               double *logp) noexcept nogil:         # OUT [n_rows, k]
    cdef Py_ssize_t c, i, j
    cdef const floating *x
    cdef const floating *mu
    cdef const floating *p
    cdef double q, t
    for i in range(n_rows):
        x = X + i * d
        for c in range(k):
            mu = means + c * d
            p = prec + c * d
            q = 0.0
            for j in range(d):
                t = (<double> x[j] - mu[j]) * p[j]
                q += t * t
            logp[i * k + c] = offsets[c] - 0.5 * q


cdef inline double log_sum_exp(const double *a, Py_ssize_t k) noexcept nogil:
    cdef Py_ssize_t c
    cdef double amax = a[0], s = 0.0
    for c in range(1, k):
        if a[c] > amax:
            amax = a[c]
    if amax == -INFINITY:
        return -INFINITY
    for c in range(k):
        s += exp(a[c] - amax)
    return amax + log(s)


cdef inline double log_prob_to_resp(double *logp, Py_ssize_t n_rows, Py_ssize_t k,
                                    const floating *sample_weight) noexcept nogil:
    """Turn log p(x_i, k) into w_i * r_ik in place; return sum_i w_i log p(x_i).

    sample_weight is NULL for unit weights."""
    cdef Py_ssize_t i, c
    cdef double norm, w, total = 0.0
    cdef double *row
    for i in range(n_rows):
        row = logp + i * k
        norm = log_sum_exp(row, k)
        w = 1.0 if sample_weight == NULL else sample_weight[i]
        if norm == -INFINITY:        # underflow everywhere: the row carries no mass
            for c in range(k):
                row[c] = 0.0
            continue
        for c in range(k):
            row[c] = w * exp(row[c] - norm)
        if w != 0.0:
            total += w * norm
    return total


cdef inline void accumulate_full(const floating *X, Py_ssize_t n_rows, Py_ssize_t d,
                                 Py_ssize_t k, const double *resp, const floating *shift,
                                 floating *work,       # scratch [n_rows, d]
                                 floating *scatter,    # scratch [d, d]
                                 double *N, double *S, double *W) noexcept nogil:  # INOUT
    """N_k += sum r_ik, S_k += sum r_ik y_ik, lower(W_k) += sum r_ik y_ik y_ik^T,
    y_ik = x_i - shift_k. Rows with r_ik == 0 are skipped (exactly: they add 0)."""
    cdef Py_ssize_t c, i, j, m, a, b
    cdef double r, t, sr
    cdef const floating *sh
    cdef double *Sc
    cdef double *Wc
    for c in range(k):
        sh = shift + c * d
        Sc = S + c * d
        Wc = W + c * d * d
        m = 0
        for i in range(n_rows):
            r = resp[i * k + c]
            if r == 0.0:
                continue
            N[c] += r
            sr = sqrt(r)
            for j in range(d):
                t = <double> X[i * d + j] - sh[j]
                Sc[j] += r * t
                work[m * d + j] = <floating> (sr * t)
            m += 1
        if m == 0:
            continue
        syrk_lower_ata(<int> d, <int> m, work, <int> d, scatter, <int> d)
        for a in range(d):
            for b in range(a + 1):
                Wc[a * d + b] += scatter[a * d + b]


cdef inline void accumulate_diag(const floating *X, Py_ssize_t n_rows, Py_ssize_t d,
                                 Py_ssize_t k, const double *resp, const floating *shift,
                                 double *N, double *S, double *W) noexcept nogil:  # INOUT
    """N_k += sum r_ik, S_k += sum r_ik y_ik, W_k += sum r_ik y_ik**2 (elementwise)."""
    cdef Py_ssize_t c, i, j
    cdef double r, t
    cdef const floating *x
    cdef const floating *sh
    for i in range(n_rows):
        x = X + i * d
        for c in range(k):
            r = resp[i * k + c]
            if r == 0.0:
                continue
            N[c] += r
            sh = shift + c * d
            for j in range(d):
                t = <double> x[j] - sh[j]
                S[c * d + j] += r * t
                W[c * d + j] += r * t * t
