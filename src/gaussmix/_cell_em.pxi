# Included by _suffstats.pyx (and so compiled into its AVX2 twin too): a whole
# EM run of one model-selection cell on small data, nogil.
#
# select_model runs tens of thousands of EM iterations on a few hundred rows;
# the arithmetic of one is a few microseconds, the Python around it (kernel
# constants, numpy M-step, bookkeeping) ten times that. Here an iteration is
# the fit pass of a per-component kernel mode (run_pass, one thread) and the
# mclust model's M-step (_parsimonious_steps), with the parameters kept
# expanded per component: (k, d, d) covariances, or (k, d) diagonals.
from libc.math cimport fabs, INFINITY
from libc.string cimport memcpy, memset
from ._parsimonious_steps cimport (VVV, cholesky, covariance_step, diagonal_layout,
                                  invert_lower)

cdef enum:
    CELL_OK = 0
    CELL_FACTOR_FAILED = 1      # a covariance is not numerically positive definite
    CELL_NOT_FINITE = 2         # the log-likelihood is not finite
    CELL_M_STEP_FAILED = 3      # the mclust M-step rejected the statistics
    CELL_NO_MEMORY = 4

# The M-step's mass floor, as _covariance.CovarianceModel.m_step's.
cdef double MASS_FLOOR = 10 * 2.220446049250313e-16


cdef bint factor_covariances(const double *cov, Py_ssize_t k, Py_ssize_t d, bint diagonal,
                             double *U, double *log_det, double *L) noexcept nogil:
    """The kernels' precision factors U_k (U_k U_k^T = inv(Sigma_k), upper
    triangular, or the (k, d) scales) and log det U_k, with L [d, d] scratch;
    False when a Cholesky pivot or a variance is not positive."""
    cdef Py_ssize_t c, i, j
    cdef double *u
    cdef double s
    for c in range(k):
        log_det[c] = 0.0
        if diagonal:
            for j in range(d):
                s = cov[c * d + j]
                if not s > 0.0:
                    return False
                U[c * d + j] = 1.0 / sqrt(s)
                log_det[c] -= 0.5 * log(s)
            continue
        u = U + c * d * d
        if not cholesky(d, cov + c * d * d, L):     # Sigma = L L^T
            return False
        for j in range(d):
            log_det[c] -= log(L[j * d + j])
        invert_lower(d, L)                          # U = inv(L)^T
        for i in range(d):
            for j in range(d):
                u[i * d + j] = L[j * d + i] if j >= i else 0.0
    return True


cdef int cell_m_step(int model, Py_ssize_t k, Py_ssize_t d, bint diagonal,
                     const double *N, const double *S, const double *W,
                     const double *means, const double *previous, int max_iter,
                     double reg_covar, double *weights_out, double *means_out,
                     double *cov_out, double *reg_scatter, double *offset) noexcept nogil:
    """_covariance.CovarianceModel.m_step on summed statistics (around
    ``means``): weights, means and covariances of the mclust model, warm-started
    from ``previous`` (or NULL) with ``max_iter`` inner iterations; ``offset``
    is [d] scratch. Returns CELL_OK, CELL_M_STEP_FAILED or CELL_NO_MEMORY."""
    cdef Py_ssize_t c, a, b
    cdef double total = 0.0, nk, w_ab
    cdef const double *s
    cdef const double *w
    cdef double *r
    for c in range(k):
        total += N[c] + MASS_FLOOR
    for c in range(k):
        nk = N[c] + MASS_FLOOR
        weights_out[c] = nk / total
        s = S + c * d
        for a in range(d):
            offset[a] = s[a] / nk
            means_out[c * d + a] = means[c * d + a] + offset[a]
        if diagonal:
            w, r = W + c * d, reg_scatter + c * d
            for a in range(d):
                r[a] = (w[a] - s[a] * offset[a]) / nk + reg_covar
            continue
        w, r = W + c * d * d, reg_scatter + c * d * d
        for a in range(d):
            for b in range(a + 1):
                # the symmetrised scatter about the new mean, over n_k
                w_ab = (2.0 * w[a * d + b] - s[a] * offset[b] - s[b] * offset[a]) / (2.0 * nk)
                r[a * d + b] = r[b * d + a] = w_ab
            r[a * d + a] += reg_covar
    cdef int status = covariance_step(model, k, d, weights_out, reg_scatter, previous, cov_out,
                                      max_iter, 1e-8)
    if status == 0:
        return CELL_OK
    return CELL_NO_MEMORY if status < 0 else CELL_M_STEP_FAILED


cdef bint model_layout(int model) except -1:
    """Whether the mclust model code stores diagonals; ValueError for an unknown code."""
    if not 0 <= model <= VVV:
        raise ValueError(f"unknown mclust model code {model}")
    return diagonal_layout(model)


def cell_em(const double[:, ::1] X,              # IN [n, d]
            const double[::1] sample_weight,     # IN [n] (mean 1) or empty
            int model,                           # _parsimonious.MODELS index
            int mode,                            # DIAG_LOOPS, FULL_LOOPS or FULL_BLAS
            double[::1] weights,                 # INOUT [k]
            double[:, ::1] means,                # INOUT [k, d]
            double[:, ::1] covariances,          # INOUT [k, d*d] or [k, d]
            double reg_covar, double tol, int max_iter, double total_weight,
            double[::1] lower_bounds,            # OUT [max_iter]
            double[:, ::1] precisions_cholesky,  # OUT like covariances
            int n_threads=1):
    """EM iterations of one mclust model from the given parameters, as
    ``_selection_em.em`` runs them; the passes on ``n_threads`` threads, one
    accumulator slot each, summed in order.

    Stops when the mean log-likelihood changes by less than ``tol`` and the
    total by less than ``tol (1 + |total|)``. On a failure the parameters are
    those before the failing iteration.

    Returns
    -------
    (n_iter, converged, status, factored) : (int, bool, int, bool)
        ``lower_bounds[:n_iter]`` are the mean log-likelihoods; status 0, or a
        CELL_* code; ``factored``: ``precisions_cholesky`` holds the final
        covariances' upper-triangular factors (or scales), False where one is
        not positive definite.
    """
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1], k = weights.shape[0]
    cdef bint diagonal = mode == DIAG_LOOPS
    cdef Py_ssize_t size = d if diagonal else d * d
    cdef Py_ssize_t c, j, t, it, n_iter = 0
    cdef int status = CELL_OK, threads
    cdef bint converged = False, factored
    cdef double lower_bound = -INFINITY, previous, change
    cdef double log_2pi_d = 0.5 * d * LOG_2PI
    cdef Pass p
    cdef ScratchSizes sizes
    if not (mode == DIAG_LOOPS or mode == FULL_LOOPS or mode == FULL_BLAS):
        raise ValueError(f"cell_em runs the per-component modes, not mode {mode}")
    check_mode_dim(mode, d)
    if model_layout(model) != diagonal:
        stores = {True: "diagonals", False: "matrices"}
        raise ValueError(f"model {model} stores {stores[not diagonal]}, "
                         f"the kernel mode {stores[diagonal]}")
    expect_shape("means", means, (k, d))
    expect_shape("covariances", covariances, (k, size))
    expect_shape("precisions_cholesky", precisions_cholesky, (k, size))
    check_rows("sample_weight", sample_weight, n, optional=True)
    if lower_bounds.shape[0] < max_iter or n == 0 or k == 0:
        raise ValueError("cell_em needs rows, components and max_iter lower-bound slots")
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    threads = <int> min(<Py_ssize_t> n_threads, count_chunks(n))
    buffer = np.empty(k * (3 + d + 3 * size) + d * d + d
                      + threads * (1 + k * (1 + d + size)))
    cdef double[::1] work = buffer
    cdef double *U = &work[0]
    cdef double *offsets = U + k * size
    cdef double *new_weights = offsets + k
    cdef double *new_means = new_weights + k
    cdef double *new_cov = new_means + k * d
    cdef double *reg_scatter = new_cov + k * size
    cdef double *log_det = reg_scatter + k * size
    cdef double *L = log_det + k
    cdef double *offset = L + d * d
    # one accumulator slot per thread (run_pass adds thread t's rows to slot t),
    # N, S, W and loglik each a block of slots; slot 0 ends with their sum
    cdef double *N = offset + d
    cdef double *S = N + threads * k
    cdef double *W = S + threads * k * d
    cdef double *loglik = W + threads * k * size
    cdef Py_ssize_t accumulated = threads * (1 + k * (1 + d + size))
    p.n, p.d, p.k, p.mode, p.w_size = n, d, k, mode, size
    p.weights = &sample_weight[0] if sample_weight.shape[0] > 0 else NULL
    p.shift, p.prec, p.offsets = &means[0, 0], U, offsets
    p.coef, p.coef_single, p.exact, p.given_resp = NULL, NULL, NULL, NULL
    p.N, p.S, p.W, p.loglik, p.n_groups = N, S, W, loglik, 1
    sizes = scratch_sizes(d, k, mode, sizeof(double), False)
    with nogil:
        for it in range(max_iter):
            if not factor_covariances(&covariances[0, 0], k, d, diagonal, U, log_det, L):
                status = CELL_FACTOR_FAILED
                break
            for c in range(k):
                offsets[c] = log(weights[c]) + log_det[c] - log_2pi_d
            memset(N, 0, accumulated * sizeof(double))
            if not run_pass(&X[0, 0], &p, threads, False, &sizes):
                status = CELL_NO_MEMORY
                break
            for t in range(1, threads):
                loglik[0] += loglik[t]
                for j in range(k):
                    N[j] += N[t * k + j]
                for j in range(k * d):
                    S[j] += S[t * k * d + j]
                for j in range(k * size):
                    W[j] += W[t * k * size + j]
            status = cell_m_step(model, k, d, diagonal, N, S, W, &means[0, 0],
                                 &covariances[0, 0], 1, reg_covar, new_weights, new_means,
                                 new_cov, reg_scatter, offset)
            if status != CELL_OK:
                break
            previous, lower_bound = lower_bound, loglik[0] / n
            if not fabs(lower_bound) < INFINITY:
                status = CELL_NOT_FINITE
                break
            memcpy(&weights[0], new_weights, k * sizeof(double))
            memcpy(&means[0, 0], new_means, k * d * sizeof(double))
            memcpy(&covariances[0, 0], new_cov, k * size * sizeof(double))
            lower_bounds[it] = lower_bound
            n_iter = it + 1
            change = fabs(lower_bound - previous)
            if change < tol and change * total_weight < tol * (1.0 + fabs(lower_bound)
                                                                * total_weight):
                converged = True
                break
        factored = factor_covariances(&covariances[0, 0], k, d, diagonal,
                                      &precisions_cholesky[0, 0], log_det, L)
    return n_iter, converged, status, factored


def cell_start(const double[:, ::1] X,              # IN [n, d]
               const double[::1] sample_weight,     # IN [n] or empty
               const Py_ssize_t[::1] labels,        # IN [n], in 0..k-1, none empty
               int model, double reg_covar,
               double[::1] weights,                 # OUT [k]
               double[:, ::1] means,                # OUT [k, d]
               double[:, ::1] covariances,          # OUT [k, d*d] or [k, d]
               double[:, ::1] precisions_cholesky): # OUT like covariances
    """Parameters of the mclust model from a hard partition of the rows: the
    M-step of ``_selection_em.partition_parameters`` (100 inner iterations,
    no warm start). Returns 0, or a CELL_* code (CELL_FACTOR_FAILED: a
    covariance is not positive definite)."""
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1], k = weights.shape[0]
    cdef bint diagonal = model_layout(model)
    cdef Py_ssize_t size = d if diagonal else d * d
    cdef Py_ssize_t i, c, a, b
    cdef double w
    cdef int status
    expect_shape("means", means, (k, d))
    expect_shape("covariances", covariances, (k, size))
    expect_shape("precisions_cholesky", precisions_cholesky, (k, size))
    check_rows("sample_weight", sample_weight, n, optional=True)
    check_rows("labels", labels, n)
    given = np.asarray(labels)
    if k == 0 or n == 0 or not 0 <= given.min() <= given.max() < k or (
            np.bincount(given, minlength=k).min() == 0):
        raise ValueError(f"labels must cover 0..{k - 1}, each at least once")
    means[:, :] = 0.0
    buffer = np.zeros(k * (2 + 2 * d + 2 * size) + d * d + d)
    cdef double[::1] work = buffer
    cdef double *N = &work[0]
    cdef double *S = N + k
    cdef double *W = S + k * d
    cdef double *reg_scatter = W + k * size
    cdef double *offset = reg_scatter + k * size
    cdef double *log_det = offset + d
    cdef double *L = log_det + k
    cdef double *mu
    cdef const double *x
    with nogil:
        for i in range(n):
            w = sample_weight[i] if sample_weight.shape[0] > 0 else 1.0
            N[labels[i]] += w
            for a in range(d):
                means[labels[i], a] += w * X[i, a]
        for c in range(k):
            for a in range(d):
                means[c, a] /= N[c]
        for i in range(n):              # the scatter about the means, lower triangle
            w = sample_weight[i] if sample_weight.shape[0] > 0 else 1.0
            c, x, mu = labels[i], &X[i, 0], &means[labels[i], 0]
            for a in range(d):
                if diagonal:
                    W[c * d + a] += w * (x[a] - mu[a]) * (x[a] - mu[a])
                    continue
                for b in range(a + 1):
                    W[c * size + a * d + b] += w * (x[a] - mu[a]) * (x[b] - mu[b])
        status = cell_m_step(model, k, d, diagonal, N, S, W, &means[0, 0], NULL, 100,
                             reg_covar, &weights[0], &means[0, 0], &covariances[0, 0],
                             reg_scatter, offset)
        if status == CELL_OK and not factor_covariances(&covariances[0, 0], k, d, diagonal,
                                                        &precisions_cholesky[0, 0], log_det, L):
            status = CELL_FACTOR_FAILED
    return status
