# Per-chunk building blocks shared by the fit pass (_suffstats) and the predict
# kernels (_estep). Each works on one chunk of at most CHUNK_ROWS rows of a
# C-contiguous X and on a thread's own Scratch (_parallel.pxd), so OpenMP
# threads never share writable memory except the accumulators they own.
#
# Five kernel modes (defined in _parallel.pxd, chosen in _models.kernel_mode
# by covariance type and measured crossovers in d and k) share one parameter
# convention: offsets[k] holds
# log(weight_k) + log det U_k - d/2 log(2 pi), U_k the upper-triangular
# precision Cholesky factor, and log p(x, k) = offsets[k] - 0.5 ||(x - mu_k) U_k||^2.
#   FULL_LOOPS (full/tied, d <= FULL_LOOPS_MAX_DIM): prec[k, d*d] = U_k; statistics
#       around shift_k = mu_k; vectorised loops over the rows of a transposed
#       chunk (BLAS calls would cost more than their arithmetic).
#   FULL_GEMM (full/tied, medium d): everything around one centre g (every row
#       of shift); features f = [z, lower(z z^T)] (z = x - g) and coef
#       [width - 1, k], column k = [-2 P m, P (off-diagonal entries doubled)]
#       (P = U U^T, m = mu_k - g, offsets absorbing 0.5 m^T P m): log p =
#       offsets - 0.5 f . coef, ONE GEMM for all components, and the
#       statistics one GEMM resp^T [1, f] on the same features. Both GEMMs do
#       n k d^2 flops, the count of a triangular multiply plus a rank-k update
#       per component.
#       Components too far from g for that (_models.COMMON_CENTER_LIMIT) run
#       as in FULL_BLAS within the same pass: then prec[k, d*d] holds their
#       U_k and shift_k = mu_k, and zero rows for the others (a Cholesky
#       factor has a positive diagonal, so U_k[0, 0] == 0 marks a component
#       around g); prec is empty when no component is far.
#   FULL_BLAS (full/tied, large d): shift_k = mu_k; per component a
#       triangular multiply (trmm) and a rank-k update (syrk).
#   DIAG_GEMM (diag/spherical): around one centre g; coef [2d, k], column k =
#       [-2 p^2 m, p^2] (p = diag U_k, m = mu_k - g, offsets absorbing
#       0.5 sum p^2 m^2): log p = offsets - 0.5 [z, z^2] . coef, one GEMM, and
#       the statistics one GEMM resp^T [1, z, z^2]. Far components as in
#       FULL_GEMM: prec[k, d] holds their diag(U_k) (zero rows for the others),
#       shift_k = mu_k, and loops over the rows instead of the GEMMs.
#   DIAG_LOOPS (diag/spherical, when too many components are far from g, see
#       _models.MAX_FAR_SHARE): prec[k, d] = diag(U_k), shift_k = mu_k;
#       vectorised loops over the rows of a transposed chunk.
# Around one centre, the expanded log-densities lose about eps * R^2
# (absolute) and the scatter about the new mean, W - S S^T / N, about
# eps * R^2 relative, R = |mu_k - g| / sigma_k: 2e-12 at 100 standard
# deviations in double. Statistics are accumulated in double; with float32
# input, FULL_BLAS forms each chunk's scatter in float32 (ssyrk over at most
# CHUNK_ROWS rows, ~1e-7 relative) before adding it, the other modes in double.
#
from cython cimport floating
from libc.math cimport sqrt, INFINITY
from ._blas cimport trmm_right_upper, syrk_lower_ata, gemm_ab
from ._parallel cimport (CHUNK_ROWS, FULL_LOOPS, FULL_LOOPS_MAX_DIM, FULL_GEMM, FULL_BLAS,
                         DIAG_GEMM, DIAG_LOOPS, Scratch, ScratchSizes)

# The GEMM modes' coef: double, or float32 for FULL_GEMM's single-precision
# log-density GEMM (float32 X, _models.kernel_parameters); then ``exact``
# [k, 1 + d + d*d] holds in double, for each component whose log-densities
# that matter refine_log_prob recomputes, [offset, mu_k, U_k] (offset:
# log(weight_k) + log det U_k - d/2 log(2 pi); U_k upper triangular with zeros
# below the diagonal), and zero rows for the others; empty when none is.
ctypedef fused coefficient:
    float
    double


cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    /* MSVC's C has restrict as a keyword only from /std:c11 on; __restrict always */
    #if defined(_MSC_VER) && !defined(restrict) && \
        (!defined(__STDC_VERSION__) || __STDC_VERSION__ < 199901L)
    #define restrict __restrict
    #endif
    static inline double gaussmix_exp_scale(double v, double *r) {
        /* v = k ln2 + r, |r| <= ln2 / 2; returns 2^k */
        const double magic = 6755399441055744.0;  /* 1.5 * 2^52: rounds to integer */
        double t = v * 1.4426950408889634 + magic;
        double kf = t - magic;
        *r = (v - kf * 6.93147180369123816490e-01) - kf * 1.90821492927058770002e-10;
        uint64_t bits;
        memcpy(&bits, &t, sizeof bits);    /* low bits of t hold k */
        bits = (bits + 1023u) << 52;
        double scale;
        memcpy(&scale, &bits, sizeof scale);
        return scale;
    }
    /* sum r^j / j! for |r| <= ln2 / 2 in Estrin's scheme (a chain of 4
       products instead of Horner's 13, so consecutive rows overlap): j <= 13
       for double, j <= 9 for float32 data (truncation below 7e-12 relative;
       float32 rounds at 6e-8). */
    static inline double gaussmix_exp_poly(double r, int single) {
        double r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;
        double a0 = 1.0 + r, a1 = 0.5 + r * (1.0 / 6.0);
        double a2 = 1.0 / 24.0 + r * (1.0 / 120.0), a3 = 1.0 / 720.0 + r * (1.0 / 5040.0);
        double a4 = 1.0 / 40320.0 + r * (1.0 / 362880.0);
        if (single)
            return ((a0 + r2 * a1) + r4 * (a2 + r2 * a3)) + r8 * a4;
        double a5 = 1.0 / 3628800.0 + r * (1.0 / 39916800.0);
        double a6 = 1.0 / 479001600.0 + r * (1.0 / 6227020800.0);
        double b0 = a0 + r2 * a1, b1 = a2 + r2 * a3, b2 = a4 + r2 * a5;
        return (b0 + r4 * b1) + r8 * (b2 + r4 * a6);
    }
    /* x[i] := exp(x[i] - shift[i]); total[i] := x[i] (first) or += x[i]:
       one pass per component of normalize(). single is a constant at each
       call below, so each inlined copy keeps only its own polynomial. */
    static inline void gaussmix_exp_shifted_sum_impl(
            double *restrict x, const double *restrict shift, double *restrict total,
            Py_ssize_t n, int first, int single) {
        if (first)
            for (Py_ssize_t i = 0; i < n; i++) total[i] = 0.0;
        #pragma omp simd
        for (Py_ssize_t i = 0; i < n; i++) {
            double v = x[i] - shift[i];
            double keep = v > -708.0 ? 1.0 : 0.0;
            v = v > -708.0 ? v : -708.0;
            double r;
            double scale = gaussmix_exp_scale(v, &r);
            double e = gaussmix_exp_poly(r, single) * scale * keep;
            x[i] = e;
            total[i] += e;
        }
    }
    static void gaussmix_exp_shifted_sum(double *restrict x, const double *restrict shift,
                                         double *restrict total, Py_ssize_t n, int first) {
        gaussmix_exp_shifted_sum_impl(x, shift, total, n, first, 0);
    }
    static void gaussmix_exp_shifted_sum_single(double *restrict x, const double *restrict shift,
                                                double *restrict total, Py_ssize_t n, int first) {
        gaussmix_exp_shifted_sum_impl(x, shift, total, n, first, 1);
    }

    /* log() of n positive normal doubles in place, vectorisable like the exp
       above: x = 2^e m with m in [sqrt(1/2), sqrt(2)), log m = 2 atanh(s),
       s = (m - 1) / (m + 1), |s| < 0.172, by its odd series to s^23
       (truncation < 1e-18 relative); e ln2 with ln2 split in two. */
    static void gaussmix_log_inplace(double *x, Py_ssize_t n) {
        for (Py_ssize_t i = 0; i < n; i++) {
            uint64_t bits;
            memcpy(&bits, &x[i], sizeof bits);
            uint64_t ebits = (bits >> 52) | 0x4330000000000000ull;
            uint64_t mbits = (bits & 0x000FFFFFFFFFFFFFull) | 0x3FF0000000000000ull;
            double e, m;
            memcpy(&e, &ebits, sizeof e);
            memcpy(&m, &mbits, sizeof m);
            e -= 4503599627371519.0;              /* 2^52 + 1023 */
            double big = m > 1.4142135623730951 ? 1.0 : 0.0;
            m = big > 0.0 ? 0.5 * m : m;
            e += big;
            double s = (m - 1.0) / (m + 1.0), s2 = s * s;
            double p = 1.0 / 23.0;
            p = p * s2 + 1.0 / 21.0;
            p = p * s2 + 1.0 / 19.0;
            p = p * s2 + 1.0 / 17.0;
            p = p * s2 + 1.0 / 15.0;
            p = p * s2 + 1.0 / 13.0;
            p = p * s2 + 1.0 / 11.0;
            p = p * s2 + 1.0 / 9.0;
            p = p * s2 + 1.0 / 7.0;
            p = p * s2 + 1.0 / 5.0;
            p = p * s2 + 1.0 / 3.0;
            p = p * s2 * s;
            x[i] = e * 6.93147180369123816490e-01
                   + (2.0 * s + (2.0 * p + e * 1.90821492927058770002e-10));
        }
    }
    /* sum_i log(total[i]) for total[i] in [1, k] or 0 (then -inf), as the
       logs of 16 products of at most n / 16 totals each: one log per 8 rows
       of a chunk instead of one per row. Sets total[i] := 1 / total[i] where
       total[i] > 0. */
    static double gaussmix_sum_log_totals(double *restrict total, Py_ssize_t n) {
        double prod[16], s = 0.0;
        int zero = 0;
        Py_ssize_t base = 0;
        for (int j = 0; j < 16; j++) prod[j] = 1.0;
        for (; base + 16 <= n; base += 16)
            for (int j = 0; j < 16; j++) prod[j] *= total[base + j];
        for (Py_ssize_t i = base; i < n; i++) prod[i - base] *= total[i];
        for (Py_ssize_t i = 0; i < n; i++) {
            double t = total[i];
            zero |= !(t > 0.0);
            total[i] = t > 0.0 ? 1.0 / t : t;
        }
        if (zero) return -INFINITY;
        gaussmix_log_inplace(prod, 16);
        for (int j = 0; j < 16; j++) s += prod[j];
        return s;
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
    /* sum r (x - cx)(y - cy), in four partial sums: inlined into the
       chunk loop, an omp simd reduction here ran as one scalar chain. */
    static double gaussmix_cross(const double *restrict r, const double *restrict x, double cx,
                                 const double *restrict y, double cy, Py_ssize_t n) {
        double s[4] = {0.0, 0.0, 0.0, 0.0};
        Py_ssize_t i = 0;
        for (; i + 4 <= n; i += 4)
            for (int l = 0; l < 4; l++) s[l] += r[i + l] * (x[i + l] - cx) * (y[i + l] - cy);
        for (; i < n; i++) s[0] += r[i] * (x[i] - cx) * (y[i] - cy);
        return (s[0] + s[1]) + (s[2] + s[3]);
    }
    /* FULL_LOOPS log-densities q = offset - 0.5 |(x - mu) U|^2 (U upper
       triangular row-major), d <= _parallel.FULL_LOOPS_MAX_DIM = 8 (the
       cases of the switch below): one pass over the transposed chunk (row
       stride ``stride``) per component, in a copy of the loops for each d, on
       blocks of 8 rows held in arrays [.][8] that the compiler keeps in vector
       registers once the loops over features are unrolled (a pass per feature
       and per product loaded and stored y d^2 / 2 times). A last, partial
       block runs on a zero-padded copy. The statistics stay in passes per
       feature pair (moments, cross): fused in the same way, their d (d + 3) / 2
       sums per lane spill out of the registers and ran slower. */
    #if defined(_MSC_VER)
    #define GAUSSMIX_FORCE_INLINE static __forceinline
    #define GAUSSMIX_UNROLL
    #else
    #define GAUSSMIX_FORCE_INLINE static inline __attribute__((always_inline))
    #define GAUSSMIX_UNROLL _Pragma("GCC unroll 8")
    #endif
    #define GAUSSMIX_FIXED_DIM(D) \
    GAUSSMIX_FORCE_INLINE void gaussmix_log_prob_block_##D( \
            const double *restrict xt, Py_ssize_t stride, const double *restrict mu, \
            const double *restrict U, double offset, double *restrict q) { \
        enum { L = 8 }; \
        double t[D][L], s[L] = {0.0}; \
        GAUSSMIX_UNROLL for (int a = 0; a < D; a++) \
            for (int l = 0; l < L; l++) t[a][l] = xt[a * stride + l] - mu[a]; \
        GAUSSMIX_UNROLL for (int j = 0; j < D; j++) { \
            double y[L]; \
            for (int l = 0; l < L; l++) y[l] = t[0][l] * U[j]; \
            GAUSSMIX_UNROLL for (int a = 1; a <= j; a++) \
                for (int l = 0; l < L; l++) y[l] += t[a][l] * U[a * D + j]; \
            for (int l = 0; l < L; l++) s[l] += y[l] * y[l]; \
        } \
        for (int l = 0; l < L; l++) q[l] = offset - 0.5 * s[l]; \
    } \
    static void gaussmix_log_prob_##D( \
            const double *restrict xt, Py_ssize_t stride, Py_ssize_t n, \
            const double *restrict mu, const double *restrict U, double offset, \
            double *restrict q) { \
        Py_ssize_t i = 0; \
        for (; i + 8 <= n; i += 8) \
            gaussmix_log_prob_block_##D(xt + i, stride, mu, U, offset, q + i); \
        if (i < n) { \
            double pad[D][8] = {{0.0}}, out[8]; \
            for (int a = 0; a < D; a++) \
                for (Py_ssize_t l = 0; l < n - i; l++) pad[a][l] = xt[a * stride + i + l]; \
            gaussmix_log_prob_block_##D(&pad[0][0], 8, mu, U, offset, out); \
            for (Py_ssize_t l = 0; l < n - i; l++) q[i + l] = out[l]; \
        } \
    }
    GAUSSMIX_FIXED_DIM(1) GAUSSMIX_FIXED_DIM(2) GAUSSMIX_FIXED_DIM(3) GAUSSMIX_FIXED_DIM(4)
    GAUSSMIX_FIXED_DIM(5) GAUSSMIX_FIXED_DIM(6) GAUSSMIX_FIXED_DIM(7) GAUSSMIX_FIXED_DIM(8)
    static void gaussmix_log_prob_fused(const double *xt, Py_ssize_t stride, Py_ssize_t n,
                                        Py_ssize_t d, const double *mu, const double *U,
                                        double offset, double *q) {
        #define GAUSSMIX_CASE(D) \
            case D: gaussmix_log_prob_##D(xt, stride, n, mu, U, offset, q); break;
        switch (d) {
        GAUSSMIX_CASE(1) GAUSSMIX_CASE(2) GAUSSMIX_CASE(3) GAUSSMIX_CASE(4)
        GAUSSMIX_CASE(5) GAUSSMIX_CASE(6) GAUSSMIX_CASE(7) GAUSSMIX_CASE(8)
        }
        #undef GAUSSMIX_CASE
    }
    /* FULL_LOOPS, d == 2: one component's N, S and lower(W) in one pass:
       acc += [sum r, sum r t0, sum r t1, sum r t0^2, sum r t1 t0, sum r t1^2],
       t = x - c. */
    static void gaussmix_accumulate2(const double *r, const double *x0, const double *x1,
                                     double c0, double c1, Py_ssize_t n, double *acc) {
        double n0 = 0.0, s0 = 0.0, s1 = 0.0, w00 = 0.0, w10 = 0.0, w11 = 0.0;
        #pragma omp simd reduction(+:n0,s0,s1,w00,w10,w11)
        for (Py_ssize_t i = 0; i < n; i++) {
            double t0 = x0[i] - c0, t1 = x1[i] - c1;
            double rt0 = r[i] * t0, rt1 = r[i] * t1;
            n0 += r[i];
            s0 += rt0;
            s1 += rt1;
            w00 += rt0 * t0;
            w10 += rt1 * t0;
            w11 += rt1 * t1;
        }
        acc[0] += n0;
        acc[1] += s0;
        acc[2] += s1;
        acc[3] += w00;
        acc[4] += w10;
        acc[5] += w11;
    }
    /* sum of squares, accumulated in double */
    static double gaussmix_sumsq_d(const double *x, Py_ssize_t n) {
        double s = 0.0;
        #pragma omp simd reduction(+:s)
        for (Py_ssize_t i = 0; i < n; i++) s += x[i] * x[i];
        return s;
    }
    /* four partial sums: vectorised in registers, not spilled for the final sum */
    static double gaussmix_dot(const double *x, const double *y, Py_ssize_t n) {
        double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
        Py_ssize_t i = 0;
        for (; i + 4 <= n; i += 4) {
            s0 += x[i] * y[i];
            s1 += x[i + 1] * y[i + 1];
            s2 += x[i + 2] * y[i + 2];
            s3 += x[i + 3] * y[i + 3];
        }
        for (; i < n; i++) s0 += x[i] * y[i];
        return (s0 + s1) + (s2 + s3);
    }
    /* q[i] = ||T[i] U||^2 for rows T[i] (of d) of r <= 4 rows at a time, U
       upper triangular d x d row-major with zeros below the diagonal: eight
       columns of y = t U for r rows stay in registers while the rows of U
       stream past (each U entry read once per r rows, no stores in the loop);
       columns past the last multiple of 8 by dot products. */
    static inline void gaussmix_triangular_norms_impl(
            const double *restrict T, Py_ssize_t d, const double *restrict U,
            double *restrict q, int r) {
        Py_ssize_t jb = 0;
        for (int i = 0; i < r; i++) q[i] = 0.0;
        for (; jb + 8 <= d; jb += 8) {
            double y[4][8] = {{0.0}};
            for (Py_ssize_t a = 0; a < jb + 8; a++) {
                const double *restrict u = U + a * d + jb;
                for (int i = 0; i < r; i++) {
                    const double ta = T[i * d + a];
                    #pragma omp simd
                    for (int j = 0; j < 8; j++) y[i][j] += ta * u[j];
                }
            }
            for (int i = 0; i < r; i++)
                for (int j = 0; j < 8; j++) q[i] += y[i][j] * y[i][j];
        }
        for (Py_ssize_t j = jb; j < d; j++)
            for (int i = 0; i < r; i++) {
                double v = 0.0;
                for (Py_ssize_t a = 0; a <= j; a++) v += T[i * d + a] * U[a * d + j];
                q[i] += v * v;
            }
    }
    static void gaussmix_triangular_norms(const double *T, Py_ssize_t m, Py_ssize_t d,
                                          const double *U, double *q) {
        Py_ssize_t i = 0;
        for (; i + 4 <= m; i += 4)
            gaussmix_triangular_norms_impl(T + i * d, d, U, q + i, 4);
        for (; i < m; i++)
            gaussmix_triangular_norms_impl(T + i * d, d, U, q + i, 1);
    }
    static double gaussmix_sumsq_f(const float *x, Py_ssize_t n) {
        double s = 0.0;
        #pragma omp simd reduction(+:s)
        for (Py_ssize_t i = 0; i < n; i++) s += (double) x[i] * x[i];
        return s;
    }
    """
    void exp_shifted_sum "gaussmix_exp_shifted_sum"(double *x, const double *shift,
                                                    double *total, Py_ssize_t n,
                                                    int first) noexcept nogil
    void exp_shifted_sum_single "gaussmix_exp_shifted_sum_single"(
        double *x, const double *shift, double *total, Py_ssize_t n, int first) noexcept nogil
    void log_inplace "gaussmix_log_inplace"(double *x, Py_ssize_t n) noexcept nogil
    double sum_log_totals "gaussmix_sum_log_totals"(double *total, Py_ssize_t n) noexcept nogil
    double row_sum "gaussmix_sum"(const double *r, Py_ssize_t n) noexcept nogil
    void moments "gaussmix_moments"(const double *r, const double *x, double c,
                                    Py_ssize_t n, double *s1, double *s2) noexcept nogil
    void log_prob_fused "gaussmix_log_prob_fused"(const double *xt, Py_ssize_t stride,
                                                  Py_ssize_t n, Py_ssize_t d,
                                                  const double *mu, const double *U,
                                                  double offset, double *q) noexcept nogil
    double cross "gaussmix_cross"(const double *r, const double *x, double cx,
                                  const double *y, double cy, Py_ssize_t n) noexcept nogil
    void accumulate2 "gaussmix_accumulate2"(const double *r, const double *x0,
                                            const double *x1, double c0, double c1,
                                            Py_ssize_t n, double *acc) noexcept nogil
    double sumsq_d "gaussmix_sumsq_d"(const double *x, Py_ssize_t n) noexcept nogil
    double dot "gaussmix_dot"(const double *x, const double *y, Py_ssize_t n) noexcept nogil
    double sumsq_f "gaussmix_sumsq_f"(const float *x, Py_ssize_t n) noexcept nogil
    void triangular_norms "gaussmix_triangular_norms"(const double *T, Py_ssize_t m,
                                                      Py_ssize_t d, const double *U,
                                                      double *q) noexcept nogil


cdef inline double sum_of_squares(const floating *x, Py_ssize_t n) noexcept nogil:
    if floating is double:
        return sumsq_d(x, n)
    else:
        return sumsq_f(x, n)


cdef inline Py_ssize_t feature_width(Py_ssize_t d, int mode) noexcept nogil:
    """Columns of [1, z, z^2] (DIAG_GEMM) or [1, z, lower(z z^T)] (FULL_GEMM)."""
    if mode == DIAG_GEMM:
        return 1 + 2 * d
    if mode == FULL_GEMM:
        return 1 + d + d * (d + 1) // 2
    return 0


cdef enum:
    # Bytes of one thread's feature buffer (GEMM modes) beyond which a chunk's
    # features are built a few rows at a time: only very wide rows (DIAG_GEMM
    # past 4,096 features) hit it, and then 128 rows would take 2 d x 1 KiB.
    FEATURE_BYTES = 8 << 20


cdef inline Py_ssize_t feature_rows(Py_ssize_t d, int mode) noexcept nogil:
    """Rows of features the buffer holds: a whole chunk, unless rows are so wide
    that it would exceed FEATURE_BYTES. Features of a chunk stay in s.feat from
    chunk_log_prob (or prepare_accumulate) to chunk_accumulate only when they
    all fit; otherwise chunk_accumulate rebuilds them piece by piece."""
    cdef Py_ssize_t width = feature_width(d, mode)
    if width == 0:
        return CHUNK_ROWS
    return max(1, min(<Py_ssize_t> CHUNK_ROWS,
                      <Py_ssize_t> (FEATURE_BYTES // (width * sizeof(double)))))


cdef inline ScratchSizes scratch_sizes(Py_ssize_t d, Py_ssize_t k, int mode,
                                       size_t itemsize, bint single) noexcept nogil:
    """The scratch one thread needs to run chunk_log_prob and chunk_accumulate
    in ``mode`` (``single``: with a float32 coef): only the buffers that mode
    touches (a diagonal mode never gets a d x d one)."""
    cdef ScratchSizes z
    cdef size_t rows = CHUNK_ROWS
    cdef Py_ssize_t width = feature_width(d, mode)
    z.lp = k * rows * sizeof(double)
    z.norm = rows * sizeof(double)
    z.xt = d * rows * sizeof(double) if mode == FULL_LOOPS or mode == DIAG_LOOPS else 0
    z.tmp = (d + 3) * rows * sizeof(double) if mode == FULL_GEMM and single else 0
    z.work = rows * d * itemsize if mode == FULL_BLAS or mode == FULL_GEMM else 0
    z.scatter = d * d * itemsize if mode == FULL_BLAS or mode == FULL_GEMM else 0
    z.feat = feature_rows(d, mode) * width * sizeof(double)
    z.resp = rows * k * sizeof(double) if width > 0 else 0
    z.acc = k * width * sizeof(double)
    z.single = feature_rows(d, mode) * (width - 1 + k) * sizeof(float) if single else 0
    return z


cdef inline void transpose_chunk(const floating *X, Py_ssize_t n_rows, Py_ssize_t d,
                                 double *xt) noexcept nogil:
    cdef Py_ssize_t i, j
    if d == 2:                # fixed stride: the compiler vectorises it
        for i in range(n_rows):
            xt[i] = X[2 * i]
            xt[CHUNK_ROWS + i] = X[2 * i + 1]
        return
    for i in range(n_rows):
        for j in range(d):
            xt[j * CHUNK_ROWS + i] = X[i * d + j]




cdef inline void chunk_features(const floating *X, Py_ssize_t n_rows, Py_ssize_t d,
                                const floating *center, int mode,
                                double *feat) noexcept nogil:
    """feat[i] = [1, z_i, z_i**2] (DIAG_GEMM) or [1, z_i, lower(z_i z_i^T)]
    (FULL_GEMM, row by row), z_i = x_i - center, in double."""
    cdef Py_ssize_t i, a, b, width = feature_width(d, mode)
    cdef double *f
    cdef double *z
    for i in range(n_rows):
        f = feat + i * width
        z = f + 1
        f[0] = 1.0
        for a in range(d):
            z[a] = <double> X[i * d + a] - center[a]
        f = z + d
        if mode == DIAG_GEMM:
            for a in range(d):
                f[a] = z[a] * z[a]
            continue
        for a in range(d):
            for b in range(a + 1):
                f[0] = z[a] * z[b]
                f += 1


cdef inline Py_ssize_t factor_size(Py_ssize_t d, int mode) noexcept nogil:
    """Entries of one component's factor in prec: its d scales (diagonal
    modes) or its d x d Cholesky factor."""
    return d if mode == DIAG_GEMM or mode == DIAG_LOOPS else d * d


cdef inline bint far_component(const floating *prec, Py_ssize_t c, Py_ssize_t d,
                               int mode) noexcept nogil:
    """GEMM modes: component c runs on its own factor prec[c], around its mean."""
    return prec != NULL and prec[c * factor_size(d, mode)] != 0


cdef inline Py_ssize_t first_near(const floating *prec, Py_ssize_t k, Py_ssize_t d,
                                  int mode) noexcept nogil:
    """GEMM modes: the first component around the common centre (its shift
    row is the centre), or k when every one is far."""
    cdef Py_ssize_t c
    for c in range(k):
        if not far_component(prec, c, d, mode):
            return c
    return k


cdef inline void log_prob_small_full(const double *xt, Py_ssize_t n_rows, Py_ssize_t d,
                                     const floating *mu, const floating *U, double offset,
                                     double *q) noexcept nogil:  # OUT [n_rows]
    """FULL_LOOPS: q = offset - 0.5 |(x - mu) U|^2 (d <= FULL_LOOPS_MAX_DIM)."""
    cdef double mu_d[FULL_LOOPS_MAX_DIM]
    cdef double U_d[FULL_LOOPS_MAX_DIM * FULL_LOOPS_MAX_DIM]
    cdef Py_ssize_t a
    if floating is double:
        log_prob_fused(xt, CHUNK_ROWS, n_rows, d, mu, U, offset, q)
        return
    for a in range(d):
        mu_d[a] = mu[a]
    for a in range(d * d):
        U_d[a] = U[a]
    log_prob_fused(xt, CHUNK_ROWS, n_rows, d, mu_d, U_d, offset, q)


cdef inline void log_prob_diag_loops(const double *xt, Py_ssize_t n_rows, Py_ssize_t d,
                                     const floating *mu, const floating *p, double offset,
                                     double *q) noexcept nogil:  # OUT [n_rows]
    cdef Py_ssize_t i, j
    cdef double m, pj, t
    cdef const double *x
    for i in range(n_rows):
        q[i] = 0.0
    for j in range(d):
        m = mu[j]
        pj = p[j]
        x = xt + j * CHUNK_ROWS
        for i in range(n_rows):
            t = (x[i] - m) * pj
            q[i] += t * t
    for i in range(n_rows):
        q[i] = offset - 0.5 * q[i]


cdef inline void log_prob_diag_rows(const floating *X, Py_ssize_t n_rows, Py_ssize_t d,
                                    const floating *mu, const floating *p, double offset,
                                    double *q) noexcept nogil:  # OUT [n_rows]
    """log_prob_diag_loops on the rows as they are (one far component of DIAG_GEMM)."""
    cdef Py_ssize_t i, j
    cdef double t, acc
    for i in range(n_rows):
        acc = 0.0
        for j in range(d):
            t = (<double> X[i * d + j] - mu[j]) * p[j]
            acc += t * t
        q[i] = offset - 0.5 * acc


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


cdef inline void set_coefficients(const double **coef, const float **coef_single,
                                  const double **exact, const coefficient[:, ::1] values,
                                  const double[:, ::1] exact_values) noexcept:
    """Point coef or coef_single (by the dtype of ``values``) at ``values``,
    the other at NULL; both NULL when ``values`` is empty. ``exact`` points at
    ``exact_values`` with coef_single, unless empty (_kernel_checks has
    checked its shape)."""
    coef[0] = NULL
    coef_single[0] = NULL
    exact[0] = NULL
    if values.shape[0] == 0 or values.shape[1] == 0:
        return
    if coefficient is float:
        coef_single[0] = &values[0, 0]
        if exact_values.shape[0] > 0:
            exact[0] = &exact_values[0, 0]
    else:
        coef[0] = &values[0, 0]


cdef inline void single_precision_gemm(const double *feat, Py_ssize_t n_rows,
                                       Py_ssize_t width, const float *coef, Py_ssize_t k,
                                       float *single, double *out) noexcept nogil:
    """out[i, c] = feat[i, 1:] . coef[:, c] (row-major [n_rows, k]) as an SGEMM
    on float32 copies of the features (``single``: [n_rows, width - 1 + k])."""
    cdef Py_ssize_t i, a, m = width - 1
    cdef float *f32 = single
    cdef float *out32 = single + n_rows * m
    for i in range(n_rows):
        for a in range(m):
            f32[i * m + a] = <float> feat[i * width + 1 + a]
    gemm_ab(<int> n_rows, <int> k, <int> m, f32, <int> m, coef, <int> k, out32, <int> k)
    for i in range(n_rows * k):
        out[i] = out32[i]


cdef extern from *:
    """
    /* refine_log_prob recomputes a row's single-precision log-densities down
       to this far below its largest one. A single-precision value is off by
       about eps32 R^2 <= 0.06 (R^2 <= _models.COMMON_CENTER_LIMIT; measured
       up to 0.06 at R^2 = 8e5), so every log-density within 30 nats of the
       row's largest (responsibility above 1e-13) comes out of double
       arithmetic; those left add at most k e^-30 (e^0.06 - 1) = 1e-13 relative
       error to a responsibility, far below float32 rounding (6e-8). */
    #define GAUSSMIX_REFINE_MARGIN 30.0
    """
    const double REFINE_MARGIN "GAUSSMIX_REFINE_MARGIN"


cdef inline bint refined(const double *exact, Py_ssize_t c, Py_ssize_t d) noexcept nogil:
    """Single-precision FULL_GEMM: component c's log-densities are refined
    (its row of ``exact`` holds its U_k, U_k[0, 0] > 0; zero rows mark the others)."""
    return exact != NULL and exact[c * (1 + d + d * d) + 1 + d] != 0


cdef inline void refine_log_prob(const floating *X, Py_ssize_t n_rows, Py_ssize_t d,
                                 Py_ssize_t k, const double *exact,
                                 double *lp,          # INOUT [k, CHUNK_ROWS] rows' log p
                                 double *pending,     # scratch [n_rows, k]
                                 double *work) noexcept nogil:  # scratch [d + 3, CHUNK_ROWS]
    """Single-precision FULL_GEMM: recompute in double, around the mean, the
    log-densities of refined components that can matter, until in every row
    each one left is more than REFINE_MARGIN below the row's largest double or
    unrefined value. Each round takes, per unfinished row, those within the
    margin of its largest remaining or trusted value, so it always includes
    the largest remaining one; the stopping test compares trusted values
    only, whatever the single-precision errors. Component by component: the
    round's rows of a component, centred, times its U_k in one pass over U_k."""
    cdef Py_ssize_t i, c, a, m, size = 1 + d + d * d
    cdef double v, most
    cdef bint unfinished
    cdef const double *row
    cdef double *top = work                         # [n_rows] largest trusted value
    cdef double *threshold = work + CHUNK_ROWS      # this round's, +inf when the row is done
    cdef double *norms = work + 2 * CHUNK_ROWS      # [m] ||(x - mu_k) U_k||^2
    cdef double *centred = work + 3 * CHUNK_ROWS    # [m, d] x - mu_k
    for i in range(n_rows):
        top[i] = -INFINITY
        for c in range(k):
            v = lp[c * CHUNK_ROWS + i]
            if refined(exact, c, d):
                pending[i * k + c] = v
            else:
                pending[i * k + c] = -INFINITY
                top[i] = v if v > top[i] else top[i]
    while True:
        unfinished = False
        for i in range(n_rows):
            most = -INFINITY
            for c in range(k):
                v = pending[i * k + c]
                most = v if v > most else most
            if most == -INFINITY or not (most >= top[i] - REFINE_MARGIN):
                threshold[i] = INFINITY
                continue
            threshold[i] = (most if most > top[i] else top[i]) - REFINE_MARGIN
            unfinished = True
        if not unfinished:
            return
        for c in range(k):
            row = exact + c * size          # [offset, mu_k, U_k]
            m = 0
            for i in range(n_rows):
                if pending[i * k + c] >= threshold[i]:
                    for a in range(d):
                        centred[m * d + a] = <double> X[i * d + a] - row[1 + a]
                    m += 1
            if m == 0:
                continue
            triangular_norms(centred, m, d, row + 1 + d, norms)
            m = 0
            for i in range(n_rows):
                if pending[i * k + c] >= threshold[i]:
                    v = row[0] - 0.5 * norms[m]
                    m += 1
                    lp[c * CHUNK_ROWS + i] = v
                    pending[i * k + c] = -INFINITY
                    top[i] = v if v > top[i] else top[i]


cdef inline void chunk_log_prob(const floating *X, Py_ssize_t n_rows, Py_ssize_t d,
                                Py_ssize_t k, const floating *shift, const floating *prec,
                                const double *coef, const float *coef_single,
                                const double *exact, const double *offsets, int mode,
                                Scratch *s) noexcept nogil:
    """s.lp[c, i] = log p(x_i, c) for the chunk; leaves s.xt (FULL_LOOPS,
    DIAG_LOOPS) or s.feat (FULL_GEMM, DIAG_GEMM, see feature_rows) filled for
    chunk_accumulate. The GEMM modes take ``coef`` in double, or
    ``coef_single`` in float32 with ``exact`` (then coef is NULL): the
    log-densities that matter are then recomputed in double (refine_log_prob)."""
    cdef Py_ssize_t c, i
    cdef double *row
    cdef Py_ssize_t width = feature_width(d, mode)
    cdef Py_ssize_t first, rows, piece = feature_rows(d, mode)
    cdef Py_ssize_t near = (first_near(prec, k, d, mode)
                            if mode == FULL_GEMM or mode == DIAG_GEMM else 0)
    if mode == DIAG_GEMM or mode == FULL_GEMM:
        for c in range(k):
            row = s.lp + c * CHUNK_ROWS
            if far_component(prec, c, d, mode) and mode == FULL_GEMM:
                log_prob_blas_full(X, n_rows, d, shift + c * d, prec + c * d * d, offsets[c],
                                   <floating *> s.work, row)
            elif far_component(prec, c, d, mode):
                log_prob_diag_rows(X, n_rows, d, shift + c * d, prec + c * d, offsets[c], row)
        first = 0
        while first < n_rows and near < k:
            rows = min(piece, n_rows - first)
            chunk_features(X + first * d, rows, d, shift + near * d, mode, s.feat)
            # log p[i, c] row-major from coef^T [width - 1, k]: a GEMM that
            # contracts no two operands along their contiguous axes, which
            # OpenBLAS would run in its slower packed path on these small sizes.
            if coef_single != NULL:
                single_precision_gemm(s.feat, rows, width, coef_single, k, s.single, s.resp)
            else:
                gemm_ab(<int> rows, <int> k, <int> (width - 1), s.feat + 1, <int> width,
                        coef, <int> k, s.resp, <int> k)
            for c in range(k):
                if far_component(prec, c, d, mode):
                    continue
                row = s.lp + c * CHUNK_ROWS + first
                for i in range(rows):
                    row[i] = offsets[c] - 0.5 * s.resp[i * k + c]
            first += rows
        if exact != NULL:
            refine_log_prob(X, n_rows, d, k, exact, s.lp, s.resp, s.tmp)
    elif mode == FULL_LOOPS:
        transpose_chunk(X, n_rows, d, s.xt)
        for c in range(k):
            log_prob_small_full(s.xt, n_rows, d, shift + c * d, prec + c * d * d,
                                offsets[c], s.lp + c * CHUNK_ROWS)
    elif mode == DIAG_LOOPS:
        transpose_chunk(X, n_rows, d, s.xt)
        for c in range(k):
            log_prob_diag_loops(s.xt, n_rows, d, shift + c * d, prec + c * d, offsets[c],
                                s.lp + c * CHUNK_ROWS)
    else:
        for c in range(k):
            log_prob_blas_full(X, n_rows, d, shift + c * d, prec + c * d * d, offsets[c],
                               <floating *> s.work, s.lp + c * CHUNK_ROWS)


cdef inline void shifted_exp(double *lp, Py_ssize_t n_rows, Py_ssize_t k,
                             double *row_max,       # OUT [n_rows]
                             double *total,         # OUT [n_rows]
                             bint single) noexcept nogil:
    """lp[c, i] := exp(lp[c, i] - row_max[i]), row_max[i] = max_c lp[c, i]
    (0 for a row that is -inf everywhere), total[i] = sum_c lp[c, i], in [1, k] or 0;
    to single precision (float32 data) when ``single``."""
    cdef Py_ssize_t i, c
    cdef double v
    cdef double *row
    for i in range(n_rows):
        row_max[i] = lp[i]
    for c in range(1, k):
        row = lp + c * CHUNK_ROWS
        for i in range(n_rows):
            v = row[i]
            row_max[i] = v if v > row_max[i] else row_max[i]
    for i in range(n_rows):
        if row_max[i] == -INFINITY:
            row_max[i] = 0.0
    for c in range(k):
        if single:
            exp_shifted_sum_single(lp + c * CHUNK_ROWS, row_max, total, n_rows, c == 0)
        else:
            exp_shifted_sum(lp + c * CHUNK_ROWS, row_max, total, n_rows, c == 0)


cdef inline void scale_rows(double *lp, Py_ssize_t n_rows, Py_ssize_t k,
                            const double *factor) noexcept nogil:
    cdef Py_ssize_t i, c
    cdef double *row
    for c in range(k):
        row = lp + c * CHUNK_ROWS
        for i in range(n_rows):
            row[i] *= factor[i]


cdef inline void normalize(double *lp, Py_ssize_t n_rows, Py_ssize_t k,
                           double *log_norm,      # OUT [n_rows]
                           bint single) noexcept nogil:
    """lp[c, i] := exp(lp[c, i] - log_norm[i]), log_norm[i] = logsumexp_c lp[c, i].

    Rows are shifted by their maximum and divided by their sum (not by
    exp(log_norm)), so probabilities sum to one even when log_norm is huge.
    A row that is -inf everywhere gets probabilities 0 and log_norm -inf.
    ``single``: exp to single precision (float32 data, see shifted_exp)."""
    cdef double total[CHUNK_ROWS]
    cdef double log_total[CHUNK_ROWS]
    cdef Py_ssize_t i
    shifted_exp(lp, n_rows, k, log_norm, total, single)
    for i in range(n_rows):      # total is in [1, k]: its largest term is exp(0)
        log_total[i] = total[i] if total[i] > 0.0 else 1.0
    log_inplace(log_total, n_rows)
    for i in range(n_rows):
        if total[i] > 0.0:
            log_norm[i] += log_total[i]
            total[i] = 1.0 / total[i]
        else:
            log_norm[i] = -INFINITY
    scale_rows(lp, n_rows, k, total)


cdef inline double log_prob_to_resp(double *lp, Py_ssize_t n_rows, Py_ssize_t k,
                                    double *log_norm,
                                    const floating *sample_weight) noexcept nogil:
    """Turn log p(x_i, c) into w_i * r_ic in place; return sum_i w_i log p(x_i).

    sample_weight is NULL for unit weights; float32 sample weights (float32
    data) take exp to single precision."""
    cdef Py_ssize_t i, c
    cdef double w, total = 0.0
    cdef double row_total[CHUNK_ROWS]
    if sample_weight == NULL:       # only the sum of the log-normalisers is needed
        shifted_exp(lp, n_rows, k, log_norm, row_total, floating is float)
        total = sum_log_totals(row_total, n_rows)
        scale_rows(lp, n_rows, k, row_total)
        return total + row_sum(log_norm, n_rows)
    normalize(lp, n_rows, k, log_norm, floating is float)
    for i in range(n_rows):
        w = sample_weight[i]
        if w != 0.0:                  # a zero-weight row adds nothing, even at -inf
            total += w * log_norm[i]
    for c in range(k):
        for i in range(n_rows):
            lp[c * CHUNK_ROWS + i] *= sample_weight[i]
    return total


cdef inline void accumulate_transposed(const double *xt, Py_ssize_t n_rows, Py_ssize_t d,
                                       const double *r, const floating *shift, bint diagonal,
                                       double *N, double *S, double *W) noexcept nogil:
    """One component's N, S and lower(W) (or its diagonal) from the transposed chunk."""
    cdef Py_ssize_t a, b
    N[0] += row_sum(r, n_rows)
    for a in range(d):
        moments(r, xt + a * CHUNK_ROWS, shift[a], n_rows, &S[a],
                &W[a] if diagonal else &W[a * d + a])
        if diagonal:
            continue
        for b in range(a):
            W[a * d + b] += cross(r, xt + a * CHUNK_ROWS, shift[a],
                                  xt + b * CHUNK_ROWS, shift[b], n_rows)


cdef inline void accumulate_full2(const double *xt, Py_ssize_t n_rows, const double *r,
                                  const floating *shift,
                                  double *N, double *S, double *W) noexcept nogil:
    """accumulate_transposed for d == 2, all sums in one pass."""
    cdef double acc[6]
    acc[:] = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    accumulate2(r, xt, xt + CHUNK_ROWS, shift[0], shift[1], n_rows, acc)
    N[0] += acc[0]
    S[0] += acc[1]
    S[1] += acc[2]
    W[0] += acc[3]
    W[2] += acc[4]
    W[3] += acc[5]


cdef enum:
    # statistics_product loops over the responsibilities that count instead of
    # running a GEMM when at most 1 / SPARSE_SHARE of them do.
    SPARSE_SHARE = 4
    # accumulate_blas adds fewer counted rows than this by their rank-one
    # updates rather than through a syrk call (and its packing).
    FEW_ROWS = 16

cdef extern from *:
    """
    /* Responsibilities (times sample weight) below this add nothing to the
       statistics: n of them, n <= 1e12, change N_k by at most 1e-28, far
       below double rounding of any N_k the M-step can use (it adds 10 eps =
       2e-15 to every N_k). Once EM has sorted the rows most responsibilities
       are below it, on overlapping clusters too. */
    #define GAUSSMIX_NEGLIGIBLE 1e-40
    """
    const double NEGLIGIBLE "GAUSSMIX_NEGLIGIBLE"


cdef inline void accumulate_blas(const floating *X, Py_ssize_t n_rows, Py_ssize_t d,
                                 const double *r, const floating *shift, double least,
                                 floating *work, floating *scatter,
                                 double *N, double *S, double *W) noexcept nogil:
    """One component's statistics via syrk on sqrt(r)-scaled centred rows.
    Rows with r <= ``least`` are left out (0: exactly those that add nothing;
    NEGLIGIBLE: also those that add nothing the M-step can see)."""
    cdef Py_ssize_t i, j, m = 0, a, b
    cdef double sr, t
    cdef floating *z
    for i in range(n_rows):
        if r[i] <= least:
            continue
        N[0] += r[i]
        sr = sqrt(r[i])
        for j in range(d):
            t = <double> X[i * d + j] - shift[j]
            S[j] += r[i] * t
            work[m * d + j] = <floating> (sr * t)
        m += 1
    if m >= FEW_ROWS:
        syrk_lower_ata(<int> d, <int> m, work, <int> d, scatter, <int> d)
        for a in range(d):
            for b in range(a + 1):
                W[a * d + b] += scatter[a * d + b]
        return
    for i in range(m):
        z = work + i * d
        for a in range(d):
            for b in range(a + 1):
                W[a * d + b] += <double> z[a] * z[b]


cdef inline void accumulate_diag_rows(const floating *X, Py_ssize_t n_rows, Py_ssize_t d,
                                      const double *r, const floating *shift, double least,
                                      double *N, double *S, double *W) noexcept nogil:
    """One component's N, S and diag(W) from the rows as they are (a far
    component of DIAG_GEMM). Rows with r <= ``least`` are left out, as in
    accumulate_blas."""
    cdef Py_ssize_t i, j
    cdef double t, rt
    for i in range(n_rows):
        if r[i] <= least:
            continue
        N[0] += r[i]
        for j in range(d):
            t = <double> X[i * d + j] - shift[j]
            rt = r[i] * t
            S[j] += rt
            W[j] += rt * t


cdef inline void prepare_accumulate(const floating *X, Py_ssize_t n_rows, Py_ssize_t d,
                                    Py_ssize_t k, const floating *shift,
                                    const floating *prec, int mode,
                                    Scratch *s) noexcept nogil:
    """Fill what chunk_accumulate reads (when chunk_log_prob has not)."""
    cdef Py_ssize_t near = (first_near(prec, k, d, mode)
                            if mode == FULL_GEMM or mode == DIAG_GEMM else 0)
    if mode == FULL_LOOPS or mode == DIAG_LOOPS:
        transpose_chunk(X, n_rows, d, s.xt)
    elif ((mode == FULL_GEMM or mode == DIAG_GEMM) and n_rows <= feature_rows(d, mode)
          and near < k):
        chunk_features(X, n_rows, d, shift + near * d, mode, s.feat)


cdef inline void statistics_product(const double *r, Py_ssize_t n_rows, Py_ssize_t k,
                                    const double *feat, Py_ssize_t width,
                                    double *acc) noexcept nogil:   # OUT [k, width]
    """acc = r^T feat, r [k, n_rows] (row stride CHUNK_ROWS), feat [n_rows, width]:
    the GEMM modes' per-component sums. When most responsibilities are
    negligible (each row near one or two components) only the others are
    added, a row of features each, at a fraction of the GEMM's cost."""
    cdef Py_ssize_t i, c, a, counted = 0
    cdef double w
    cdef double *out
    cdef const double *f
    for c in range(k):
        for i in range(n_rows):
            counted += r[c * CHUNK_ROWS + i] >= NEGLIGIBLE
    if counted * SPARSE_SHARE > n_rows * k:
        gemm_ab(<int> k, <int> width, <int> n_rows, r, <int> CHUNK_ROWS,
                feat, <int> width, acc, <int> width)
        return
    for c in range(k):
        out = acc + c * width
        for a in range(width):
            out[a] = 0.0
        for i in range(n_rows):
            w = r[c * CHUNK_ROWS + i]
            if w < NEGLIGIBLE:
                continue
            f = feat + i * width
            for a in range(width):
                out[a] += w * f[a]


cdef inline void add_gemm_statistics(const double *acc, Py_ssize_t k, Py_ssize_t d, int mode,
                                     const floating *prec,
                                     double *N, double *S, double *W) noexcept nogil:
    """Add the GEMM modes' per-component sums acc[c] = [N, S, W entries]
    (but not a far component's, see far_component)."""
    cdef Py_ssize_t c, a, b, width = feature_width(d, mode)
    cdef const double *row
    for c in range(k):
        if far_component(prec, c, d, mode):
            continue
        row = acc + c * width
        N[c] += row[0]
        for a in range(d):
            S[c * d + a] += row[1 + a]
        row += 1 + d
        if mode == DIAG_GEMM:
            for a in range(d):
                W[c * d + a] += row[a]
            continue
        for a in range(d):
            for b in range(a + 1):
                W[c * d * d + a * d + b] += row[0]
                row += 1


cdef inline void chunk_accumulate(const floating *X, Py_ssize_t n_rows, Py_ssize_t d,
                                  Py_ssize_t k, const floating *shift,
                                  const floating *prec, int mode,
                                  Scratch *s, double *N, double *S,
                                  double *W) noexcept nogil:   # INOUT
    """N_c += sum_i r_ic, S_c += sum_i r_ic y_ic, W_c += sum_i r_ic y_ic y_ic^T
    (lower triangle of d x d, or the diagonal for DIAG_*), y_ic = x_i - shift_c,
    r in s.lp (component-major), after prepare_accumulate or chunk_log_prob."""
    cdef Py_ssize_t c, width = feature_width(d, mode)
    cdef Py_ssize_t first, rows, piece = feature_rows(d, mode)
    cdef Py_ssize_t near = (first_near(prec, k, d, mode)
                            if mode == FULL_GEMM or mode == DIAG_GEMM else 0)
    if mode == DIAG_GEMM or mode == FULL_GEMM:
        if n_rows <= piece and near < k:
            statistics_product(s.lp, n_rows, k, s.feat, width, s.acc)
            add_gemm_statistics(s.acc, k, d, mode, prec, N, S, W)
        first = 0
        while first < n_rows and n_rows > piece and near < k:
            rows = min(piece, n_rows - first)
            chunk_features(X + first * d, rows, d, shift + near * d, mode, s.feat)
            statistics_product(s.lp + first, rows, k, s.feat, width, s.acc)
            add_gemm_statistics(s.acc, k, d, mode, prec, N, S, W)
            first += rows
        for c in range(k):
            if far_component(prec, c, d, mode) and mode == FULL_GEMM:
                accumulate_blas(X, n_rows, d, s.lp + c * CHUNK_ROWS, shift + c * d, 0.0,
                                <floating *> s.work, <floating *> s.scatter,
                                N + c, S + c * d, W + c * d * d)
            elif far_component(prec, c, d, mode):
                accumulate_diag_rows(X, n_rows, d, s.lp + c * CHUNK_ROWS, shift + c * d, 0.0,
                                     N + c, S + c * d, W + c * d)
        return
    for c in range(k):
        if mode == DIAG_LOOPS:
            accumulate_transposed(s.xt, n_rows, d, s.lp + c * CHUNK_ROWS, shift + c * d,
                                  True, N + c, S + c * d, W + c * d)
        elif mode == FULL_LOOPS and d == 2:
            accumulate_full2(s.xt, n_rows, s.lp + c * CHUNK_ROWS, shift + 2 * c,
                             N + c, S + 2 * c, W + 4 * c)
        elif mode == FULL_LOOPS:
            accumulate_transposed(s.xt, n_rows, d, s.lp + c * CHUNK_ROWS, shift + c * d,
                                  False, N + c, S + c * d, W + c * d * d)
        else:
            accumulate_blas(X, n_rows, d, s.lp + c * CHUNK_ROWS, shift + c * d, 0.0,
                            <floating *> s.work, <floating *> s.scatter,
                            N + c, S + c * d, W + c * d * d)
