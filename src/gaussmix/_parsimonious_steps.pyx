"""The covariance M-steps of gaussmix._parsimonious in C, for compiled EM loops.

``covariance_step`` computes what ``_parsimonious.covariances`` computes, step
for step: the same closed forms, coordinate ascents, Jacobi sweeps, stopping
rules and singularity checks, on raw arrays and without the GIL, so that the
two agree to rounding for any max_iter.  Eigendecompositions and the log
determinants of the units are numpy's own LAPACK calls on the same matrices:
for badly scaled S_k their rounding errors are large and, unlike those of
plain loops, do not change smoothly with the input.

The arrays are row-major; the k regularised S_k (and the previous and returned
covariances) are (k, d) diagonals for the diagonal models and (k, d, d)
matrices for the others, one per component even where the model makes them
equal.

``covariances`` is its Python face, with the arguments of
``_parsimonious.covariances``.
"""
from libc.float cimport DBL_EPSILON
from libc.math cimport INFINITY, atan2, cos, exp, fabs, hypot, log, sin, sqrt
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy
from scipy.linalg.cython_lapack cimport dgetrf, dsyevd

import numpy as np

from ._parsimonious import _UNRESOLVED, MODELS, checked_inputs

MODEL_CODES = {name: code for code, name in enumerate(MODELS)}

_SINGULAR = {
    ZERO_TRACE: "singular (zero trace)",
    ZERO_VARIANCE: "singular (a zero variance)",
    NOT_POSITIVE_DEFINITE: "singular (not positive definite)",
    UNRESOLVED: _UNRESOLVED,
}


def step_error(model, int code):
    """The exception for a nonzero return `code` of covariance_step on `model` (a name)."""
    if code == -1:
        return MemoryError(f"{model} M-step: out of memory")
    if code in _SINGULAR:
        return ValueError(f"{model} M-step: the regularised scatter is {_SINGULAR[code]}: "
                          "no maximum likelihood covariance can be computed; increase "
                          "reg_covar")
    if code == PREVIOUS_NOT_POSITIVE_DEFINITE:
        return ValueError("previous covariances must be positive definite")
    if code == EIGH_FAILED:
        return ValueError(f"{model} M-step: the eigendecomposition did not converge")
    return ValueError(f"{model} M-step: bad argument (max_iter >= 1 and tol >= 0 needed)")


def covariances(model, nk, scatter, reg_covar, previous=None, max_iter=100, tol=1e-8):
    """``_parsimonious.covariances`` computed by covariance_step.

    Same parameters, result and ValueErrors (whose messages do not name the
    failing components).
    """
    model, w, S, previous = checked_inputs(model, nk, scatter, reg_covar, previous)
    S = np.ascontiguousarray(S)
    out = np.empty_like(S)
    cdef const double[::1] w_view = w
    cdef const double[::1] S_view = S.reshape(-1)
    cdef double[::1] out_view = out.reshape(-1)
    cdef const double[::1] previous_view
    cdef const double *previous_ptr = NULL
    if previous is not None:
        previous_view = previous.reshape(-1)
        previous_ptr = &previous_view[0]
    cdef int code, model_code = MODEL_CODES[model], iterations = int(max_iter)
    cdef double tolerance = tol
    cdef Py_ssize_t k = S.shape[0], d = S.shape[1]
    with nogil:
        code = covariance_step(model_code, k, d, &w_view[0], &S_view[0], previous_ptr,
                               &out_view[0], iterations, tolerance)
    if code != 0:
        raise step_error(model, code)
    return out


# --------------------------------------------------------------------------- entry point


cdef struct Workspace:
    double *matrices      # [k, d, d] S_k / unit, or LU factors
    double *vectors       # [k, d, d] S_k / unit, eigenvectors (one per row), or D^T S_k D
    double *values        # [k, d] eigenvalues, or diagonals
    double *shapes        # [k, d] optimal diagonals
    double *square        # [d, d]
    double *inverse       # [d, d] an inverse, or LU / Cholesky factors
    double *vector        # [d]
    double *angles        # [3 d] theta, cos, sin of the pairs of a round
    double *lapack        # [lwork]
    int *ilapack          # [liwork]
    int *pivots           # [d] of LU factorisations
    int *pairs            # [2 (m - 1) (m / 2)] round-robin pairs, m = d + d % 2
    int *pair_counts      # [m - 1]
    int *order            # [m]
    int lwork, liwork


cdef bint allocate(Workspace *work, Py_ssize_t k, Py_ssize_t d) noexcept nogil:
    """Carve the workspace out of two mallocs; False when out of memory."""
    cdef Py_ssize_t m = d + d % 2
    work.lwork = <int> (1 + 6 * d + 2 * d * d)   # dsyevd with eigenvectors
    work.liwork = <int> (3 + 5 * d)
    cdef Py_ssize_t n_doubles = 2 * k * d * d + 2 * k * d + 2 * d * d + 4 * d + work.lwork
    cdef Py_ssize_t n_ints = work.liwork + d + 2 * (m - 1) * (m // 2) + (m - 1) + m
    work.matrices = <double *> malloc(n_doubles * sizeof(double))
    work.ilapack = <int *> malloc(n_ints * sizeof(int))
    if work.matrices == NULL or work.ilapack == NULL:
        release(work)
        return False
    work.vectors = work.matrices + k * d * d
    work.values = work.vectors + k * d * d
    work.shapes = work.values + k * d
    work.square = work.shapes + k * d
    work.inverse = work.square + d * d
    work.vector = work.inverse + d * d
    work.angles = work.vector + d
    work.lapack = work.angles + 3 * d
    work.pivots = work.ilapack + work.liwork
    work.pairs = work.pivots + d
    work.pair_counts = work.pairs + 2 * (m - 1) * (m // 2)
    work.order = work.pair_counts + (m - 1)
    return True


cdef void release(Workspace *work) noexcept nogil:
    free(work.matrices)
    free(work.ilapack)
    work.matrices = NULL
    work.ilapack = NULL


cdef int covariance_step(int model, Py_ssize_t k, Py_ssize_t d, const double *w,
                         const double *S, const double *previous, double *out,
                         int max_iter, double tol) noexcept nogil:
    """Sigma_k of `model` (a model code) into `out`: _parsimonious.covariances.

    w holds the k mass fractions n_k / n, S the regularised S_k = W_k / n_k +
    reg_covar I, previous (or NULL) the previous covariances, out the result,
    all in the layout of the model (module docstring); max_iter and tol bound
    the iterative models' inner iterations.  Returns 0, an error code of
    _parsimonious_steps.pxd where the reference raises ValueError, or -1 when
    out of memory.
    """
    if k < 1 or d < 1 or model < EII or model > VVV:
        return BAD_ARGUMENT
    if model == EII:
        return eii(k, d, w, S, out)
    if model == VII:
        return vii(k, d, w, S, out)
    if model == EEI:
        return eei(k, d, w, S, out)
    if model == EVI:
        return evi(k, d, w, S, out)
    if model == VVI:
        return vvi(k, d, w, S, out)
    if model in (VEI, VEE, EVE, VVE, VEV) and (max_iter < 1 or not tol >= 0):
        return BAD_ARGUMENT
    cdef Workspace work
    if not allocate(&work, k, d):
        return -1
    cdef int code
    if model == VEI:
        code = vei(k, d, w, S, previous, out, max_iter, tol, &work)
    elif model == EEE:
        code = eee(k, d, w, S, out, &work)
    elif model == EEV:
        code = eev(k, d, w, S, out, &work)
    elif model == EVV:
        code = evv(k, d, w, S, out, &work)
    elif model == VVV:
        code = vvv(k, d, S, out, &work)
    elif model == VEE:
        code = vee(k, d, w, S, previous, out, max_iter, tol, &work)
    elif model == VEV:
        code = vev(k, d, w, S, previous, out, max_iter, tol, &work)
    else:
        code = common_orientation(model, k, d, w, S, previous, out, max_iter, tol, &work)
    release(&work)
    return code


# --------------------------------------------------------------------------- helpers


cdef inline double geomean(const double *x, Py_ssize_t d) noexcept nogil:
    cdef double total = 0.0
    cdef Py_ssize_t j
    for j in range(d):
        total += log(x[j])
    return exp(total / d)


cdef inline bint resolved(const double *eigenvalues, Py_ssize_t d) noexcept nogil:
    """_parsimonious._resolved of ascending eigenvalues."""
    return eigenvalues[0] > DBL_EPSILON * d * eigenvalues[d - 1]


cdef inline double mean_volume(Py_ssize_t k, Py_ssize_t d, const double *w,
                               const double *log_dets) noexcept nogil:
    """_parsimonious._mean_volume from the log det S_k."""
    cdef double total = 0.0, volume
    cdef Py_ssize_t c
    for c in range(k):
        total += w[c] * log_dets[c]
    volume = exp(total / d)
    return volume if 0 < volume < INFINITY else 1.0


cdef double log_abs_det(Py_ssize_t d, const double *A, double *LU,
                       int *pivots) noexcept nogil:
    """numpy.linalg.slogdet(A)[1] of a symmetric A (its LAPACK LU, its sum):
    log |det A|, -inf when singular; LU holds the factors."""
    # Column-major, A's memory is A^T = A, which numpy factors.
    cdef int n = <int> d, info = 0
    cdef Py_ssize_t j
    cdef double total = 0.0
    memcpy(LU, A, d * d * sizeof(double))
    dgetrf(&n, &n, LU, &n, pivots, &info)
    if info != 0:
        return -INFINITY
    for j in range(d):
        total += log(fabs(LU[j * d + j]))
    return total


cdef double full_mean_volume(Py_ssize_t k, Py_ssize_t d, const double *w, const double *S,
                             Workspace *work) noexcept nogil:
    """_parsimonious._mean_volume of the (k, d, d) S_k."""
    cdef Py_ssize_t c
    for c in range(k):
        work.values[c] = log_abs_det(d, S + c * d * d, work.inverse, work.pivots)
    return mean_volume(k, d, w, work.values)


cdef bint cholesky(Py_ssize_t d, const double *A, double *L) noexcept nogil:
    """Row-major lower L with L L^T = A (lower triangle read); False where
    LAPACK's dpotrf would fail (a pivot not > 0)."""
    cdef Py_ssize_t i, j, m
    cdef double pivot, entry
    for j in range(d):
        pivot = A[j * d + j]
        for m in range(j):
            pivot -= L[j * d + m] * L[j * d + m]
        if not pivot > 0:
            return False
        L[j * d + j] = sqrt(pivot)
        for i in range(j + 1, d):
            entry = A[i * d + j]
            for m in range(j):
                entry -= L[i * d + m] * L[j * d + m]
            L[i * d + j] = entry / L[j * d + j]
    return True


cdef bint nonsingular(Py_ssize_t d, const double *A, double *L) noexcept nogil:
    """_parsimonious._nonsingular of A; L is scratch [d, d]."""
    if not cholesky(d, A, L):
        return False
    cdef Py_ssize_t j
    for j in range(d):
        if not L[j * d + j] * L[j * d + j] > d * DBL_EPSILON * A[j * d + j]:
            return False
    return True


cdef bint all_nonsingular(Py_ssize_t k, Py_ssize_t d, const double *S,
                          Workspace *work) noexcept nogil:
    cdef Py_ssize_t c
    for c in range(k):
        if not nonsingular(d, S + c * d * d, work.inverse):
            return False
    return True


cdef int eigh(Py_ssize_t d, double *A, double *eigenvalues, bint vectors,
              Workspace *work) noexcept nogil:
    """numpy's eigh (vectors) or eigvalsh of the symmetric row-major A:
    eigenvalues ascending; with vectors A's row j becomes the
    eigenvector of eigenvalue j (A is overwritten either way). Returns
    dsyevd's info."""
    # Column-major, A's memory is A^T = A: numpy's call on its Fortran copy of A,
    # whose eigenvector columns are rows in row-major.
    cdef char jobz = b'V' if vectors else b'N'
    cdef char uplo = b'L'
    cdef int n = <int> d, info = 0
    dsyevd(&jobz, &uplo, &n, A, &n, eigenvalues, work.lapack, &work.lwork,
           work.ilapack, &work.liwork, &info)
    return info


cdef void sandwich(Py_ssize_t d, const double *Dt, const double *b, double scale,
                   double *out) noexcept nogil:
    """out = scale * _sandwich(D, b): D diag(b) D^T symmetrised, given Dt = D^T."""
    cdef Py_ssize_t i, j, m
    cdef double total
    for i in range(d):
        for j in range(d):
            total = 0.0
            for m in range(d):
                total += Dt[m * d + i] * b[m] * Dt[m * d + j]
            out[i * d + j] = total
    for i in range(d):
        for j in range(i + 1):
            total = (out[i * d + j] + out[j * d + i]) / 2.0
            out[i * d + j] = out[j * d + i] = scale * total


cdef int previous_volumes(Py_ssize_t k, Py_ssize_t d, bint diagonal, const double *previous,
                          double unit, double *lam, Workspace *work) noexcept nogil:
    """lam_k = _volumes(previous / unit), or ones without a previous."""
    cdef Py_ssize_t c, j, size = d if diagonal else d * d
    cdef double *scaled = work.square
    cdef double log_det
    for c in range(k):
        if previous == NULL:
            lam[c] = 1.0
            continue
        for j in range(size):
            scaled[j] = previous[c * size + j] / unit
        if diagonal:
            for j in range(d):
                if not scaled[j] > 0:
                    return PREVIOUS_NOT_POSITIVE_DEFINITE
            lam[c] = geomean(scaled, d)
            continue
        if not cholesky(d, scaled, work.inverse):
            return PREVIOUS_NOT_POSITIVE_DEFINITE
        log_det = 0.0
        for j in range(d):
            log_det += log(work.inverse[j * d + j])
        lam[c] = exp(2.0 * log_det / d)
    return 0


# --------------------------------------------------------------------------- closed forms


cdef inline double mean(const double *x, Py_ssize_t d) noexcept nogil:
    cdef double total = 0.0
    cdef Py_ssize_t j
    for j in range(d):
        total += x[j]
    return total / d


cdef int eii(Py_ssize_t k, Py_ssize_t d, const double *w, const double *s,
             double *out) noexcept nogil:
    cdef Py_ssize_t c, j
    cdef double lam = 0.0
    for c in range(k):
        lam += w[c] * mean(s + c * d, d)
    if not lam > 0:
        return ZERO_TRACE
    for j in range(k * d):
        out[j] = lam
    return 0


cdef int vii(Py_ssize_t k, Py_ssize_t d, const double *w, const double *s,
             double *out) noexcept nogil:
    cdef Py_ssize_t c, j
    cdef double lam
    for c in range(k):
        lam = mean(s + c * d, d)
        if not lam > 0:
            return ZERO_TRACE
        for j in range(d):
            out[c * d + j] = lam
    return 0


cdef int eei(Py_ssize_t k, Py_ssize_t d, const double *w, const double *s,
             double *out) noexcept nogil:
    cdef Py_ssize_t c, j
    cdef double pooled
    for j in range(d):
        pooled = 0.0
        for c in range(k):
            pooled += w[c] * s[c * d + j]
        if not pooled > 0:
            return ZERO_VARIANCE
        for c in range(k):
            out[c * d + j] = pooled
    return 0


cdef bint all_positive(const double *x, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(n):
        if not x[j] > 0:
            return False
    return True


cdef int evi(Py_ssize_t k, Py_ssize_t d, const double *w, const double *s,
             double *out) noexcept nogil:
    # Sigma_k = lambda B_k / |B_k|^(1/d), lambda = sum_k w_k |B_k|^(1/d).
    if not all_positive(s, k * d):
        return ZERO_VARIANCE
    cdef Py_ssize_t c, j
    cdef double lam = 0.0, ratio
    for c in range(k):
        lam += w[c] * geomean(s + c * d, d)
    for c in range(k):
        ratio = lam / geomean(s + c * d, d)
        for j in range(d):
            out[c * d + j] = ratio * s[c * d + j]
    return 0


cdef int vvi(Py_ssize_t k, Py_ssize_t d, const double *w, const double *s,
             double *out) noexcept nogil:
    if not all_positive(s, k * d):
        return ZERO_VARIANCE
    memcpy(out, s, k * d * sizeof(double))
    return 0


cdef int eee(Py_ssize_t k, Py_ssize_t d, const double *w, const double *S, double *out,
             Workspace *work) noexcept nogil:
    cdef Py_ssize_t c, j
    cdef double *pooled = work.square
    for j in range(d * d):
        pooled[j] = 0.0
        for c in range(k):
            pooled[j] += w[c] * S[c * d * d + j]
    if not nonsingular(d, pooled, work.inverse):
        return NOT_POSITIVE_DEFINITE
    for c in range(k):
        memcpy(out + c * d * d, pooled, d * d * sizeof(double))
    return 0


cdef int eev(Py_ssize_t k, Py_ssize_t d, const double *w, const double *S, double *out,
             Workspace *work) noexcept nogil:
    # S_k = L_k diag(omega_k) L_k^T with eigenvalues sorted alike: D_k = L_k, and
    # lambda A = sum_k w_k diag(omega_k) (Celeux & Govaert 1995, section 3.2).
    cdef Py_ssize_t c, j
    cdef double *pooled = work.vector
    memcpy(work.vectors, S, k * d * d * sizeof(double))
    for c in range(k):
        if eigh(d, work.vectors + c * d * d, work.values + c * d, True, work) != 0:
            return EIGH_FAILED
    for j in range(d):
        pooled[j] = 0.0
        for c in range(k):
            pooled[j] += w[c] * work.values[c * d + j]
    if not resolved(pooled, d):
        return UNRESOLVED
    for c in range(k):
        sandwich(d, work.vectors + c * d * d, pooled, 1.0, out + c * d * d)
    return 0


cdef int evv(Py_ssize_t k, Py_ssize_t d, const double *w, const double *S, double *out,
             Workspace *work) noexcept nogil:
    # Sigma_k = lambda S_k / |S_k|^(1/d), lambda = sum_k w_k |S_k|^(1/d).
    cdef Py_ssize_t c, j
    cdef double lam = 0.0, ratio
    cdef double *g = work.values
    if not all_nonsingular(k, d, S, work):
        return NOT_POSITIVE_DEFINITE
    for c in range(k):
        g[c] = exp(log_abs_det(d, S + c * d * d, work.inverse, work.pivots) / d)
        lam += w[c] * g[c]
    for c in range(k):
        ratio = lam / g[c]
        for j in range(d * d):
            out[c * d * d + j] = ratio * S[c * d * d + j]
    return 0


cdef int vvv(Py_ssize_t k, Py_ssize_t d, const double *S, double *out,
             Workspace *work) noexcept nogil:
    if not all_nonsingular(k, d, S, work):
        return NOT_POSITIVE_DEFINITE
    memcpy(out, S, k * d * d * sizeof(double))
    return 0


# --------------------------------------------------------------------------- iterative
# Each works, as _parsimonious.covariances does, on S_k / unit and previous / unit
# with unit the weighted mean volume of the S_k, and returns unit * Sigma_k.


cdef inline bint converged(double q, double q_old, double tol) noexcept nogil:
    return q - q_old <= tol * (1.0 + fabs(q))


cdef inline double q_at_volumes(Py_ssize_t k, Py_ssize_t d, const double *w,
                                const double *lam) noexcept nogil:
    """Q / n where every trace term equals d."""
    cdef double total = 0.0
    cdef Py_ssize_t c
    for c in range(k):
        total += w[c] * (log(lam[c]) + 1.0)
    return -0.5 * d * total


cdef void common_shape(Py_ssize_t k, Py_ssize_t d, const double *w, const double *b,
                       double *lam, double *a, int max_iter, double tol) noexcept nogil:
    """_parsimonious._common_shape: lam (k) from the starting volumes to the
    final ones, and the shape a (d)."""
    cdef Py_ssize_t c, j, iteration
    cdef double q, q_old = -INFINITY, g, total
    for iteration in range(max_iter):
        for j in range(d):
            a[j] = 0.0
            for c in range(k):
                a[j] += (w[c] / lam[c]) * b[c * d + j]
        g = geomean(a, d)
        for j in range(d):
            a[j] /= g
        for c in range(k):
            total = 0.0
            for j in range(d):
                total += b[c * d + j] / a[j]
            lam[c] = total / d
        q = q_at_volumes(k, d, w, lam)
        if converged(q, q_old, tol):
            break
        q_old = q


cdef int vei(Py_ssize_t k, Py_ssize_t d, const double *w, const double *s,
             const double *previous, double *out, int max_iter, double tol,
             Workspace *work) noexcept nogil:
    # Unlike for EEI, the likelihood can be unbounded if one component is singular.
    if not all_positive(s, k * d):
        return ZERO_VARIANCE
    cdef Py_ssize_t c, j
    cdef double *b = work.values
    cdef double *lam = work.shapes
    cdef double *a = work.vector
    for c in range(k):
        lam[c] = 0.0
        for j in range(d):
            lam[c] += log(s[c * d + j])
    cdef double unit = mean_volume(k, d, w, lam)
    for j in range(k * d):
        b[j] = s[j] / unit
    cdef int code = previous_volumes(k, d, True, previous, unit, lam, work)
    if code != 0:
        return code
    common_shape(k, d, w, b, lam, a, max_iter, tol)
    for c in range(k):
        for j in range(d):
            out[c * d + j] = unit * (lam[c] * a[j])
    return 0


cdef int vev(Py_ssize_t k, Py_ssize_t d, const double *w, const double *S,
             const double *previous, double *out, int max_iter, double tol,
             Workspace *work) noexcept nogil:
    # The eigenvectors of S_k are the optimal D_k for any shape A whose entries
    # are sorted like the eigenvalues, which the shape update preserves; this
    # leaves the VEI problem on the eigenvalues (Celeux & Govaert 1995, 3.2).
    cdef Py_ssize_t c, j
    cdef double *omega = work.values
    cdef double *lam = work.shapes
    cdef double *a = work.vector
    cdef double unit = full_mean_volume(k, d, w, S, work)
    for j in range(k * d * d):
        work.vectors[j] = S[j] / unit
    for c in range(k):
        if eigh(d, work.vectors + c * d * d, omega + c * d, True, work) != 0:
            return EIGH_FAILED
        if not resolved(omega + c * d, d):
            return UNRESOLVED
    cdef int code = previous_volumes(k, d, False, previous, unit, lam, work)
    if code != 0:
        return code
    common_shape(k, d, w, omega, lam, a, max_iter, tol)
    for c in range(k):
        for j in range(d):
            omega[c * d + j] = lam[c] * a[j]
        sandwich(d, work.vectors + c * d * d, omega + c * d, unit, out + c * d * d)
    return 0


cdef int vee(Py_ssize_t k, Py_ssize_t d, const double *w, const double *S,
             const double *previous, double *out, int max_iter, double tol,
             Workspace *work) noexcept nogil:
    """Sigma_k = lam_k C, det C = 1: coordinate ascent (Celeux & Govaert 1995, 3.1).

    C proportional to sum_k w_k S_k / lam_k, then lam_k = tr(C^{-1} S_k) / d.
    """
    cdef Py_ssize_t c, i, j, iteration, dd = d * d
    cdef double *scaled = work.vectors
    cdef double *lam = work.shapes
    cdef double *C = work.square
    cdef double *inverse = work.inverse
    cdef double scale, total, q, q_old = -INFINITY
    cdef double unit = full_mean_volume(k, d, w, S, work)
    for j in range(k * dd):
        scaled[j] = S[j] / unit
    if not all_nonsingular(k, d, scaled, work):
        return NOT_POSITIVE_DEFINITE
    cdef int code = previous_volumes(k, d, False, previous, unit, lam, work)
    if code != 0:
        return code
    for iteration in range(max_iter):
        for j in range(dd):
            C[j] = 0.0
            for c in range(k):
                C[j] += (w[c] / lam[c]) * scaled[c * dd + j]
        # Cholesky for numpy's LU-based slogdet and inv: as accurate, and VEE
        # takes 2.4 instead of 17 us for k = 5, d = 5 (LAPACK's getrf + getrs).
        if not cholesky(d, C, work.matrices):
            return NOT_POSITIVE_DEFINITE
        scale = 0.0
        for j in range(d):
            scale += log(work.matrices[j * d + j])
        scale = exp(2.0 * scale / d)
        for j in range(dd):
            C[j] /= scale
        cholesky_inverse(d, work.matrices, scale, inverse)
        for c in range(k):
            total = 0.0
            for i in range(d):
                for j in range(d):
                    total += inverse[i * d + j] * scaled[c * dd + j * d + i]
            lam[c] = total / d
        q = q_at_volumes(k, d, w, lam)
        if converged(q, q_old, tol):
            break
        q_old = q
    for c in range(k):
        for j in range(dd):
            out[c * dd + j] = unit * (lam[c] * C[j])
    return 0


cdef void invert_lower(Py_ssize_t d, double *L) noexcept nogil:
    """L := L^{-1} in place, L row-major lower triangular (cholesky()'s)."""
    cdef Py_ssize_t i, j, m
    cdef double total
    for j in range(d):
        L[j * d + j] = 1.0 / L[j * d + j]
        for i in range(j + 1, d):
            total = 0.0
            for m in range(j, i):
                total -= L[i * d + m] * L[m * d + j]
            L[i * d + j] = total / L[i * d + i]


cdef void cholesky_inverse(Py_ssize_t d, double *L, double scale,
                           double *inverse) noexcept nogil:
    """inverse = (L L^T / scale)^{-1} = scale L^{-T} L^{-1} for the Cholesky
    factor L of cholesky(), which becomes L^{-1}."""
    cdef Py_ssize_t i, j, m
    cdef double total
    invert_lower(d, L)
    for i in range(d):
        for j in range(i + 1):
            total = 0.0
            for m in range(i, d):
                total += L[m * d + i] * L[m * d + j]
            inverse[i * d + j] = inverse[j * d + i] = scale * total


cdef double optimal_diagonals(int model, Py_ssize_t k, Py_ssize_t d, const double *w,
                              const double *b, double *B) noexcept nogil:
    """The optimal B_k given b_k = diag(D^T S_k D) (VVI or EVI on them), and
    Q / n there."""
    cdef Py_ssize_t c, j
    cdef double total = 0.0, lam = 0.0, g
    if model == VVE:
        memcpy(B, b, k * d * sizeof(double))
        for c in range(k):
            g = 0.0
            for j in range(d):
                g += log(b[c * d + j])
            total += w[c] * (g + d)
        return -0.5 * total
    for c in range(k):
        lam += w[c] * geomean(b + c * d, d)
    for c in range(k):
        g = lam / geomean(b + c * d, d)
        for j in range(d):
            B[c * d + j] = g * b[c * d + j]
    return -0.5 * d * (log(lam) + 1.0)


cdef void round_robin(Py_ssize_t d, int *pairs, int *pair_counts, int *order) noexcept nogil:
    """_parsimonious._round_robin(d): round r's pair_counts[r] pairs (i, j) at
    pairs[2 (m / 2) r + 2 p], m = d + d % 2."""
    cdef Py_ssize_t m = d + d % 2, r, t
    cdef int i, j, last
    for t in range(m):
        order[t] = <int> t
    for r in range(m - 1):
        pair_counts[r] = 0
        for t in range(m // 2):
            i, j = order[t], order[m - 1 - t]
            if i < d and j < d:
                pairs[2 * (m // 2) * r + 2 * pair_counts[r]] = i
                pairs[2 * (m // 2) * r + 2 * pair_counts[r] + 1] = j
                pair_counts[r] += 1
        last = order[m - 1]
        for t in range(m - 1, 1, -1):
            order[t] = order[t - 1]
        order[1] = last


cdef int common_orientation(int model, Py_ssize_t k, Py_ssize_t d, const double *w,
                            const double *S, const double *previous, double *out,
                            int max_iter, double tol, Workspace *work) noexcept nogil:
    """_parsimonious._common_orientation: Sigma_k = D diag(B_k) D^T (EVE, VVE),
    by Jacobi sweeps over the columns of D with _pair_angles' angles."""
    cdef Py_ssize_t c, i, j, m, r, p, iteration, dd = d * d
    cdef Py_ssize_t n_pairs = (d + d % 2) // 2
    cdef double *scaled = work.matrices
    cdef double *M = work.vectors
    cdef double *Dt = work.square           # D^T: the columns of D are its rows
    cdef double *diagonal = work.values
    cdef double *B = work.shapes
    cdef double *theta = work.angles
    cdef double *cosine = work.angles + d
    cdef double *sine = work.angles + 2 * d
    cdef double q, q_old, total, coefficient
    cdef double unit = full_mean_volume(k, d, w, S, work)
    for j in range(k * dd):
        scaled[j] = S[j] / unit
    for c in range(k):
        memcpy(Dt, scaled + c * dd, dd * sizeof(double))
        if eigh(d, Dt, diagonal + c * d, False, work) != 0:
            return EIGH_FAILED
        if not resolved(diagonal + c * d, d):
            return UNRESOLVED
    # Without a previous, D from the pooled S_k; with one, from a generic positive
    # combination of the previous D B_k D^T, which has the eigenvectors D.
    for j in range(dd):
        Dt[j] = 0.0
    for c in range(k):
        coefficient = w[c] if previous == NULL else 1.0 / (c + sqrt(2.0))
        for j in range(dd):
            Dt[j] += coefficient * (scaled[c * dd + j] if previous == NULL
                                    else previous[c * dd + j] / unit)
    if eigh(d, Dt, work.vector, True, work) != 0:
        return EIGH_FAILED
    # M_k = D^T S_k D, through (D^T S_k) in work.inverse.
    for c in range(k):
        for i in range(d):
            for j in range(d):
                total = 0.0
                for m in range(d):
                    total += Dt[i * d + m] * scaled[c * dd + m * d + j]
                work.inverse[i * d + j] = total
        for i in range(d):
            for j in range(d):
                total = 0.0
                for m in range(d):
                    total += work.inverse[i * d + m] * Dt[j * d + m]
                M[c * dd + i * d + j] = total
    copy_diagonals(k, d, M, diagonal)
    q_old = optimal_diagonals(model, k, d, w, diagonal, B)
    round_robin(d, work.pairs, work.pair_counts, work.order)
    for iteration in range(max_iter):
        for r in range(d + d % 2 - 1):
            pair_angles(model, k, d, w, M, work.pairs + 2 * n_pairs * r, work.pair_counts[r],
                        diagonal, B, theta)
            rotate(k, d, M, Dt, work.pairs + 2 * n_pairs * r, work.pair_counts[r],
                   theta, cosine, sine)
        copy_diagonals(k, d, M, diagonal)
        q = optimal_diagonals(model, k, d, w, diagonal, B)
        if converged(q, q_old, tol):
            break
        q_old = q
    for c in range(k):
        sandwich(d, Dt, B + c * d, unit, out + c * dd)
    return 0


cdef inline void copy_diagonals(Py_ssize_t k, Py_ssize_t d, const double *M,
                                double *diagonal) noexcept nogil:
    cdef Py_ssize_t c, j
    for c in range(k):
        for j in range(d):
            diagonal[c * d + j] = M[c * d * d + j * d + j]


cdef void pair_angles(int model, Py_ssize_t k, Py_ssize_t d, const double *w, const double *M,
                      const int *pairs, int n_pairs, double *diagonal, double *B,
                      double *theta) noexcept nogil:
    """_parsimonious._pair_angles: theta[p] for the disjoint column pairs of D,
    M_k = D^T S_k D; diagonal and B are scratch [k, d].

    Rotating columns i, j by theta only changes the 2 x 2 blocks
    [[a, x], [x, b]] of the M_k.  Given the diagonals B_k, Q / n is
    const - 1/2 sum_k (w_k / B_k) . diag(M_k), and a further rotation by phi
    of the block as rotated so far changes that sum by
    P (cos 2 phi - 1) + R sin 2 phi, which 2 phi = atan2(-R, -P) minimises.
    """
    cdef Py_ssize_t c, dd = d * d
    cdef int p, i, j, alternation
    cdef double a, b, x, cs, sn, off, dw, P, R
    copy_diagonals(k, d, M, diagonal)
    for p in range(n_pairs):
        theta[p] = 0.0
    for alternation in range(2):  # a third costs more time than it saves sweeps
        for p in range(n_pairs):
            i, j = pairs[2 * p], pairs[2 * p + 1]
            cs, sn = cos(theta[p]), sin(theta[p])
            for c in range(k):
                a, b, x = M[c * dd + i * d + i], M[c * dd + j * d + j], M[c * dd + i * d + j]
                diagonal[c * d + i] = cs * cs * a + sn * sn * b + 2.0 * cs * sn * x
                diagonal[c * d + j] = sn * sn * a + cs * cs * b - 2.0 * cs * sn * x
        optimal_diagonals(model, k, d, w, diagonal, B)
        for p in range(n_pairs):
            i, j = pairs[2 * p], pairs[2 * p + 1]
            cs, sn = cos(theta[p]), sin(theta[p])
            P = 0.0
            R = 0.0
            for c in range(k):
                a, b, x = M[c * dd + i * d + i], M[c * dd + j * d + j], M[c * dd + i * d + j]
                off = (cs * cs - sn * sn) * x + cs * sn * (b - a)
                dw = w[c] / B[c * d + i] - w[c] / B[c * d + j]
                P += dw * (diagonal[c * d + i] - diagonal[c * d + j])
                R += dw * off
            P /= 2.0
            if hypot(P, R) > 0:
                theta[p] += atan2(-R, -P) / 2.0


cdef void rotate(Py_ssize_t k, Py_ssize_t d, double *M, double *Dt, const int *pairs,
                 int n_pairs, const double *theta, double *cosine,
                 double *sine) noexcept nogil:
    """D := D R and M_k := R^T M_k R for the Givens rotations R of the pairs
    (R[i, i] = R[j, j] = cos, R[j, i] = sin = -R[i, j]), rows before columns."""
    cdef Py_ssize_t c, m, dd = d * d
    cdef int p, i, j
    cdef double x, y
    for p in range(n_pairs):
        cosine[p], sine[p] = cos(theta[p]), sin(theta[p])
    for p in range(n_pairs):
        i, j = pairs[2 * p], pairs[2 * p + 1]
        for m in range(d):
            x, y = Dt[i * d + m], Dt[j * d + m]
            Dt[i * d + m] = cosine[p] * x + sine[p] * y
            Dt[j * d + m] = -sine[p] * x + cosine[p] * y
    for c in range(k):
        for p in range(n_pairs):
            i, j = pairs[2 * p], pairs[2 * p + 1]
            for m in range(d):
                x, y = M[c * dd + i * d + m], M[c * dd + j * d + m]
                M[c * dd + i * d + m] = cosine[p] * x + sine[p] * y
                M[c * dd + j * d + m] = -sine[p] * x + cosine[p] * y
        for p in range(n_pairs):
            i, j = pairs[2 * p], pairs[2 * p + 1]
            for m in range(d):
                x, y = M[c * dd + m * d + i], M[c * dd + m * d + j]
                M[c * dd + m * d + i] = cosine[p] * x + sine[p] * y
                M[c * dd + m * d + j] = -sine[p] * x + cosine[p] * y
