# Per-chunk building blocks shared by the fit pass (_suffstats) and the predict
# kernels (_estep). Each works on one chunk of at most CHUNK_ROWS rows of a
# C-contiguous X and on a thread's own Scratch, so OpenMP threads never share
# writable memory except their own accumulator slots.
#
# Two parameter layouts cover the four covariance types:
#   "full":  prec[k, d*d], the row-major upper-triangular precision Cholesky
#            factor U_k of each component (tied repeats its single factor);
#            offsets[k] = log(weight_k) + log det U_k - d/2 log(2 pi), so that
#            log p(x, k) = offsets[k] - 0.5 * ||(x - mu_k) U_k||^2, and the
#            statistics are accumulated around shift_k = mu_k;
#   "diag":  everything is relative to one centre g (shift, every row = g):
#            with z = x - g, log p(x, k) = offsets[k] - 0.5 coef[k] . [z, z^2]
#            (one GEMM per chunk), and the statistics come from one GEMM,
#            resp^T [1, z, z^2]. See _models.kernel_parameters.
#
# Per-row quantities are stored component-major, lp[c * CHUNK_ROWS + i], so the
# loops over rows are unit-stride and vectorise. Full covariance with
# d <= SMALL_DIM runs on the chunk transposed to feature-major doubles
# (xt[j * CHUNK_ROWS + i]); with larger d it calls BLAS (trmm for the E-step,
# syrk for the scatter) per component.
from cython cimport floating
from libc.math cimport log, sqrt, INFINITY
from libc.stdlib cimport malloc, free
from ._blas cimport trmm_right_upper, syrk_lower_ata, gemm_ab, gemm_abt

cdef enum:
    # Rows per chunk: the chunk's scratch (k + 2d rows of CHUNK_ROWS doubles)
    # stays in L2 while each BLAS call still gets a useful amount of work.
    CHUNK_ROWS = 256
    # Up to this many features, full covariance runs vectorised loops over rows
    # instead of two BLAS calls per chunk and component (measured crossover,
    # see benchmarks/README.md).
    SMALL_DIM = 8


cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
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

    /* Reductions over the rows of a chunk. The simd pragma lets the compiler
       reassociate the sums (vectorise them); the order is fixed per build, so
       results stay reproducible. */
    static double gaussmix_sum(const double *r, Py_ssize_t n) {
        double s = 0.0;
        #pragma omp simd reduction(+:s)
        for (Py_ssize_t i = 0; i < n; i++) s += r[i];
        return s;
    }
    /* s1 += sum r (x - c), s2 += sum r (x - c)^2 */
    static void gaussmix_moments(const double *r, const double *x, double c,
                                 Py_ssize_t n, double *s1, double *s2) {
        double a = 0.0, b = 0.0;
        #pragma omp simd reduction(+:a,b)
        for (Py_ssize_t i = 0; i < n; i++) {
            double t = x[i] - c, rt = r[i] * t;
            a += rt;
            b += rt * t;
        }
        *s1 += a;
        *s2 += b;
    }
    /* sum r (x - cx)(y - cy) */
    static double gaussmix_cross(const double *r, const double *x, double cx,
                                 const double *y, double cy, Py_ssize_t n) {
        double s = 0.0;
        #pragma omp simd reduction(+:s)
        for (Py_ssize_t i = 0; i < n; i++) s += r[i] * (x[i] - cx) * (y[i] - cy);
        return s;
    }
    /* sum of squares, accumulated in double */
    static double gaussmix_sumsq_d(const double *x, Py_ssize_t n) {
        double s = 0.0;
        #pragma omp simd reduction(+:s)
        for (Py_ssize_t i = 0; i < n; i++) s += x[i] * x[i];
        return s;
    }
    static double gaussmix_sumsq_f(const float *x, Py_ssize_t n) {
        double s = 0.0;
        #pragma omp simd reduction(+:s)
        for (Py_ssize_t i = 0; i < n; i++) s += (double) x[i] * x[i];
        return s;
    }
    """
    void exp_inplace "gaussmix_exp_inplace"(double *x, Py_ssize_t n) noexcept nogil
    double row_sum "gaussmix_sum"(const double *r, Py_ssize_t n) noexcept nogil
    void moments "gaussmix_moments"(const double *r, const double *x, double c,
                                    Py_ssize_t n, double *s1, double *s2) noexcept nogil
    double cross "gaussmix_cross"(const double *r, const double *x, double cx,
                                  const double *y, double cy, Py_ssize_t n) noexcept nogil
    double sumsq_d "gaussmix_sumsq_d"(const double *x, Py_ssize_t n) noexcept nogil
    double sumsq_f "gaussmix_sumsq_f"(const float *x, Py_ssize_t n) noexcept nogil


cdef inline double sum_of_squares(const floating *x, Py_ssize_t n) noexcept nogil:
    if floating is double:
        return sumsq_d(x, n)
    else:
        return sumsq_f(x, n)


cdef struct Scratch:
    double *lp        # [k, CHUNK_ROWS] log-probabilities, then responsibilities
    double *norm      # [CHUNK_ROWS] per-row log-normalisers
    double *xt        # [d, CHUNK_ROWS] the chunk, transposed, in double
    double *tmp       # [d + 1, CHUNK_ROWS] centred features and one product row
    void *work        # [CHUNK_ROWS, d] floating: BLAS operand
    void *scatter     # [d, d] floating: BLAS result
    double *feat      # [CHUNK_ROWS, 1 + 2d] diag features [1, z, z^2]
    double *acc       # [k, 1 + 2d] diag statistics of one chunk


cdef inline Scratch scratch_new(Py_ssize_t d, Py_ssize_t k, size_t itemsize) noexcept nogil:
    """A thread's scratch, returned by value so that OpenMP makes the variable
    holding it private to each thread. Check it with scratch_ok."""
    cdef Scratch s
    s.lp = <double *> malloc(k * CHUNK_ROWS * sizeof(double))
    s.norm = <double *> malloc(CHUNK_ROWS * sizeof(double))
    s.xt = <double *> malloc(d * CHUNK_ROWS * sizeof(double))
    s.tmp = <double *> malloc((d + 1) * CHUNK_ROWS * sizeof(double))
    s.work = malloc(CHUNK_ROWS * d * itemsize)
    s.scatter = malloc(d * d * itemsize)
    s.feat = <double *> malloc(CHUNK_ROWS * (1 + 2 * d) * sizeof(double))
    s.acc = <double *> malloc(k * (1 + 2 * d) * sizeof(double))
    return s


cdef inline bint scratch_ok(Scratch *s) noexcept nogil:
    return (s.lp != NULL and s.norm != NULL and s.xt != NULL and s.tmp != NULL
            and s.work != NULL and s.scatter != NULL and s.feat != NULL
            and s.acc != NULL)


cdef inline void scratch_free(Scratch *s) noexcept nogil:
    free(s.lp)
    free(s.norm)
    free(s.xt)
    free(s.tmp)
    free(s.work)
    free(s.scatter)
    free(s.feat)
    free(s.acc)


cdef inline void transpose_chunk(const floating *X, Py_ssize_t n_rows, Py_ssize_t d,
                                 double *xt) noexcept nogil:
    cdef Py_ssize_t i, j
    for i in range(n_rows):
        for j in range(d):
            xt[j * CHUNK_ROWS + i] = X[i * d + j]


cdef inline bint uses_transposed(Py_ssize_t d, bint full) noexcept nogil:
    return full and d <= SMALL_DIM


cdef inline void diag_features(const floating *X, Py_ssize_t n_rows, Py_ssize_t d,
                               const floating *center, double *feat) noexcept nogil:
    """feat[i] = [1, z_i, z_i**2] with z_i = x_i - center, in double."""
    cdef Py_ssize_t i, j, width = 1 + 2 * d
    cdef double z
    for i in range(n_rows):
        feat[i * width] = 1.0
        for j in range(d):
            z = <double> X[i * d + j] - center[j]
            feat[i * width + 1 + j] = z
            feat[i * width + 1 + d + j] = z * z


cdef inline void log_prob_small_full(const double *xt, Py_ssize_t n_rows, Py_ssize_t d,
                                     const floating *mu, const floating *U, double offset,
                                     double *tmp,     # scratch [d + 1, CHUNK_ROWS]
                                     double *q) noexcept nogil:  # OUT [n_rows]
    cdef Py_ssize_t i, j, a
    cdef double m, u
    cdef double *y = tmp + d * CHUNK_ROWS
    cdef double *t
    for a in range(d):
        t = tmp + a * CHUNK_ROWS
        m = mu[a]
        for i in range(n_rows):
            t[i] = xt[a * CHUNK_ROWS + i] - m
    for i in range(n_rows):
        q[i] = 0.0
    for j in range(d):                       # y = column j of (x - mu) U
        u = U[j]
        for i in range(n_rows):
            y[i] = tmp[i] * u
        for a in range(1, j + 1):
            u = U[a * d + j]
            t = tmp + a * CHUNK_ROWS
            for i in range(n_rows):
                y[i] += t[i] * u
        for i in range(n_rows):
            q[i] += y[i] * y[i]
    for i in range(n_rows):
        q[i] = offset - 0.5 * q[i]


cdef inline void log_prob_blas_full(const floating *X, Py_ssize_t n_rows, Py_ssize_t d,
                                    const floating *mu, const floating *U, double offset,
                                    floating *work,   # scratch [n_rows, d]
                                    double *q) noexcept nogil:   # OUT [n_rows]
    cdef Py_ssize_t i, j
    for i in range(n_rows):
        for j in range(d):
            work[i * d + j] = X[i * d + j] - mu[j]
    trmm_right_upper(<int> n_rows, <int> d, U, <int> d, work, <int> d)
    for i in range(n_rows):
        q[i] = offset - 0.5 * sum_of_squares(work + i * d, d)


cdef inline void chunk_log_prob(const floating *X, Py_ssize_t n_rows, Py_ssize_t d,
                                Py_ssize_t k, const floating *shift, const floating *prec,
                                const double *coef, const double *offsets, bint full,
                                Scratch *s) noexcept nogil:
    """s.lp[c, i] = log p(x_i, c) for the chunk (s.xt or s.feat filled as used)."""
    cdef Py_ssize_t c, i
    cdef double *row
    if not full:
        diag_features(X, n_rows, d, shift, s.feat)
        gemm_abt(<int> k, <int> n_rows, <int> (2 * d), coef, <int> (2 * d),
                 s.feat + 1, <int> (1 + 2 * d), s.lp, <int> CHUNK_ROWS)
        for c in range(k):
            row = s.lp + c * CHUNK_ROWS
            for i in range(n_rows):
                row[i] = offsets[c] - 0.5 * row[i]
        return
    if d <= SMALL_DIM:
        transpose_chunk(X, n_rows, d, s.xt)
    for c in range(k):
        if d <= SMALL_DIM:
            log_prob_small_full(s.xt, n_rows, d, shift + c * d, prec + c * d * d,
                                offsets[c], s.tmp, s.lp + c * CHUNK_ROWS)
        else:
            log_prob_blas_full(X, n_rows, d, shift + c * d, prec + c * d * d, offsets[c],
                               <floating *> s.work, s.lp + c * CHUNK_ROWS)


cdef inline void normalize(double *lp, Py_ssize_t n_rows, Py_ssize_t k,
                           double *log_norm) noexcept nogil:      # OUT [n_rows]
    """lp[c, i] := exp(lp[c, i] - log_norm[i]), log_norm[i] = logsumexp_c lp[c, i].

    Rows are shifted by their maximum and divided by their sum (not by
    exp(log_norm)), so probabilities sum to one even when log_norm is huge.
    A row that is -inf everywhere gets probabilities 0 and log_norm -inf."""
    cdef Py_ssize_t i, c
    cdef double v
    cdef double *row
    for i in range(n_rows):
        log_norm[i] = lp[i]
    for c in range(1, k):
        row = lp + c * CHUNK_ROWS
        for i in range(n_rows):
            v = row[i]
            log_norm[i] = v if v > log_norm[i] else log_norm[i]
    for i in range(n_rows):
        if log_norm[i] == -INFINITY:
            log_norm[i] = 0.0
    for c in range(k):
        row = lp + c * CHUNK_ROWS
        for i in range(n_rows):
            row[i] = row[i] - log_norm[i]
        exp_inplace(row, n_rows)
    for i in range(n_rows):          # lp[0] becomes the row sums' home below
        v = lp[i]
        for c in range(1, k):
            v = v + lp[c * CHUNK_ROWS + i]
        if v == 0.0:
            log_norm[i] = -INFINITY
            continue
        log_norm[i] += log(v)
        v = 1.0 / v
        for c in range(k):
            lp[c * CHUNK_ROWS + i] *= v


cdef inline double log_prob_to_resp(double *lp, Py_ssize_t n_rows, Py_ssize_t k,
                                    double *log_norm,
                                    const floating *sample_weight) noexcept nogil:
    """Turn log p(x_i, c) into w_i * r_ic in place; return sum_i w_i log p(x_i).

    sample_weight is NULL for unit weights."""
    cdef Py_ssize_t i, c
    cdef double w, total = 0.0
    normalize(lp, n_rows, k, log_norm)
    if sample_weight == NULL:
        for i in range(n_rows):
            total += log_norm[i]
        return total
    for i in range(n_rows):
        w = sample_weight[i]
        if w != 0.0:                  # a zero-weight row adds nothing, even at -inf
            total += w * log_norm[i]
    for c in range(k):
        for i in range(n_rows):
            lp[c * CHUNK_ROWS + i] *= sample_weight[i]
    return total


cdef inline void accumulate_transposed(const double *xt, Py_ssize_t n_rows, Py_ssize_t d,
                                       const double *r, const floating *shift,
                                       double *N, double *S, double *W) noexcept nogil:
    """One component's N, S and lower(W) from the transposed chunk xt."""
    cdef Py_ssize_t a, b
    N[0] += row_sum(r, n_rows)
    for a in range(d):
        moments(r, xt + a * CHUNK_ROWS, shift[a], n_rows, &S[a], &W[a * d + a])
        for b in range(a):
            W[a * d + b] += cross(r, xt + a * CHUNK_ROWS, shift[a],
                                  xt + b * CHUNK_ROWS, shift[b], n_rows)


cdef inline void accumulate_blas(const floating *X, Py_ssize_t n_rows, Py_ssize_t d,
                                 const double *r, const floating *shift,
                                 floating *work, floating *scatter,
                                 double *N, double *S, double *W) noexcept nogil:
    """One component's statistics via syrk on sqrt(r)-scaled centred rows.
    Rows with r == 0 are left out (exactly: they add nothing)."""
    cdef Py_ssize_t i, j, m = 0, a, b
    cdef double sr, t
    for i in range(n_rows):
        if r[i] == 0.0:
            continue
        N[0] += r[i]
        sr = sqrt(r[i])
        for j in range(d):
            t = <double> X[i * d + j] - shift[j]
            S[j] += r[i] * t
            work[m * d + j] = <floating> (sr * t)
        m += 1
    if m == 0:
        return
    syrk_lower_ata(<int> d, <int> m, work, <int> d, scatter, <int> d)
    for a in range(d):
        for b in range(a + 1):
            W[a * d + b] += scatter[a * d + b]


cdef inline void chunk_accumulate(const floating *X, Py_ssize_t n_rows, Py_ssize_t d,
                                  Py_ssize_t k, const floating *shift, bint full,
                                  Scratch *s, double *N, double *S,
                                  double *W) noexcept nogil:   # INOUT
    """N_c += sum_i r_ic, S_c += sum_i r_ic y_ic, W_c += sum_i r_ic y_ic y_ic^T
    (lower triangle for full, diagonal otherwise), y_ic = x_i - shift_c, with
    r in s.lp (component-major) and s.xt / s.feat filled by the caller."""
    cdef Py_ssize_t c, j, width = 1 + 2 * d
    cdef double *acc
    if not full:
        gemm_ab(<int> k, <int> width, <int> n_rows, s.lp, <int> CHUNK_ROWS,
                s.feat, <int> width, s.acc, <int> width)
        for c in range(k):
            acc = s.acc + c * width
            N[c] += acc[0]
            for j in range(d):
                S[c * d + j] += acc[1 + j]
                W[c * d + j] += acc[1 + d + j]
        return
    for c in range(k):
        if d <= SMALL_DIM:
            accumulate_transposed(s.xt, n_rows, d, s.lp + c * CHUNK_ROWS, shift + c * d,
                                  N + c, S + c * d, W + c * d * d)
        else:
            accumulate_blas(X, n_rows, d, s.lp + c * CHUNK_ROWS, shift + c * d,
                            <floating *> s.work, <floating *> s.scatter,
                            N + c, S + c * d, W + c * d * d)
