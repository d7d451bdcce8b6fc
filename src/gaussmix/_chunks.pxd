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
from libc.math cimport log, sqrt, INFINITY
from ._blas cimport trmm_right_upper, syrk_lower_ata

# Rows per chunk: small enough that a chunk's scratch (rows x d and rows x k)
# stays in L2 cache, large enough to amortise a BLAS call (see benchmarks/README.md).
cdef enum:
    CHUNK_ROWS = 256
    # Up to this many features the full-covariance kernels use plain loops:
    # a BLAS call per (chunk, component) costs more than the arithmetic.
    SMALL_DIM = 8


cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    /* exp() of n doubles in place, written so that the compiler vectorises the
       loop (libm's exp is a scalar call per element). Range reduction
       x = k ln2 + r, |r| <= ln2/2, with ln2 split in two (Cody-Waite); exp(r)
       by its degree-13 Taylor polynomial (truncation < 1e-17 relative); 2^k
       written straight into the exponent bits. Within 2 ulp of libm for
       -708 < x < 709; x <= -708 (and -inf, NaN) gives 0, which is exact for
       responsibilities at double precision. */
    static void gaussmix_exp_inplace(double *x, Py_ssize_t n) {
        const double magic = 6755399441055744.0;  /* 1.5 * 2^52: rounds to integer */
        for (Py_ssize_t i = 0; i < n; i++) {
            double v = x[i];
            double keep = v > -708.0 ? 1.0 : 0.0;
            v = v > -708.0 ? v : -708.0;
            double t = v * 1.4426950408889634 + magic;
            double kf = t - magic;
            double r = v - kf * 6.93147180369123816490e-01;
            r = r - kf * 1.90821492927058770002e-10;
            double p = 1.0 / 6227020800.0;
            p = p * r + 1.0 / 479001600.0;
            p = p * r + 1.0 / 39916800.0;
            p = p * r + 1.0 / 3628800.0;
            p = p * r + 1.0 / 362880.0;
            p = p * r + 1.0 / 40320.0;
            p = p * r + 1.0 / 5040.0;
            p = p * r + 1.0 / 720.0;
            p = p * r + 1.0 / 120.0;
            p = p * r + 1.0 / 24.0;
            p = p * r + 1.0 / 6.0;
            p = p * r + 0.5;
            p = p * r + 1.0;
            p = p * r + 1.0;
            uint64_t bits;
            memcpy(&bits, &t, sizeof bits);    /* low bits of t hold k */
            bits = (bits + 1023u) << 52;
            double scale;
            memcpy(&scale, &bits, sizeof scale);
            x[i] = p * scale * keep;
        }
    }
    """
    void exp_inplace "gaussmix_exp_inplace"(double *x, Py_ssize_t n) noexcept nogil


cdef inline void log_prob_full(const floating *X, Py_ssize_t n_rows, Py_ssize_t d,
                               Py_ssize_t k, const floating *means, const floating *prec,
                               const double *offsets, floating *work,   # scratch [n_rows, d]
                               double *logp) noexcept nogil:         # OUT [n_rows, k]
    cdef Py_ssize_t c, i, j, a
    cdef const floating *mu
    cdef const floating *U
    cdef floating *row
    cdef double q, y
    cdef double t[SMALL_DIM]
    for c in range(k):
        mu = means + c * d
        U = prec + c * d * d
        if d <= SMALL_DIM:
            for i in range(n_rows):
                for j in range(d):
                    t[j] = <double> X[i * d + j] - mu[j]
                q = 0.0
                for j in range(d):
                    y = 0.0
                    for a in range(j + 1):
                        y = y + t[a] * U[a * d + j]
                    q = q + y * y
                logp[i * k + c] = offsets[c] - 0.5 * q
            continue
        for i in range(n_rows):
            for j in range(d):
                work[i * d + j] = X[i * d + j] - mu[j]
        trmm_right_upper(<int> n_rows, <int> d, U, <int> d, work, <int> d)
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


cdef inline void normalize_rows(double *logp, Py_ssize_t n_rows, Py_ssize_t k,
                                double *log_norm) noexcept nogil:      # OUT [n_rows]
    """logp[i] := exp(logp[i] - log_norm[i]) with log_norm[i] = logsumexp(logp[i]).

    Rows are shifted by their maximum and divided by their sum (not by
    exp(log_norm)), so probabilities sum to one even when log_norm is huge.
    A row that is -inf everywhere gets probabilities 0 and log_norm -inf."""
    cdef Py_ssize_t i, c
    cdef double amax, total
    cdef double *row
    for i in range(n_rows):
        row = logp + i * k
        amax = row[0]
        for c in range(1, k):
            if row[c] > amax:
                amax = row[c]
        if amax == -INFINITY:
            amax = 0.0
        log_norm[i] = amax
        for c in range(k):
            row[c] = row[c] - amax
    exp_inplace(logp, n_rows * k)     # one vectorised call for the whole chunk
    for i in range(n_rows):
        row = logp + i * k
        total = 0.0
        for c in range(k):
            total += row[c]
        if total == 0.0:
            log_norm[i] = -INFINITY
            continue
        log_norm[i] += log(total)
        total = 1.0 / total
        for c in range(k):
            row[c] *= total


cdef inline double log_prob_to_resp(double *logp, Py_ssize_t n_rows, Py_ssize_t k,
                                    const floating *sample_weight) noexcept nogil:
    """Turn log p(x_i, k) into w_i * r_ik in place; return sum_i w_i log p(x_i).

    sample_weight is NULL for unit weights."""
    cdef double log_norm[CHUNK_ROWS]
    cdef Py_ssize_t i, c
    cdef double w, total = 0.0
    normalize_rows(logp, n_rows, k, log_norm)
    if sample_weight == NULL:
        for i in range(n_rows):
            total += log_norm[i]
        return total
    for i in range(n_rows):
        w = sample_weight[i]
        if w != 0.0:                  # a zero-weight row adds nothing, even at -inf
            total += w * log_norm[i]
        for c in range(k):
            logp[i * k + c] *= w
    return total


cdef inline void accumulate_full(const floating *X, Py_ssize_t n_rows, Py_ssize_t d,
                                 Py_ssize_t k, const double *resp, const floating *shift,
                                 floating *work,       # scratch [n_rows, d]
                                 floating *scatter,    # scratch [d, d]
                                 double *N, double *S, double *W) noexcept nogil:  # INOUT
    """N_k += sum r_ik, S_k += sum r_ik y_ik, lower(W_k) += sum r_ik y_ik y_ik^T,
    y_ik = x_i - shift_k. Rows with r_ik == 0 are skipped (exactly: they add 0)."""
    cdef Py_ssize_t c, i, j, m, a, b
    cdef double r, rt, sr
    cdef double t[SMALL_DIM]
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
            if d <= SMALL_DIM:
                for a in range(d):
                    t[a] = <double> X[i * d + a] - sh[a]
                    rt = r * t[a]
                    Sc[a] += rt
                    for b in range(a + 1):
                        Wc[a * d + b] += rt * t[b]
                continue
            sr = sqrt(r)
            for j in range(d):
                rt = <double> X[i * d + j] - sh[j]
                Sc[j] += r * rt
                work[m * d + j] = <floating> (sr * rt)
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
