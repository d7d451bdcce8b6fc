"""Kernel parameters: which compiled kernel mode runs and the mixture
parameters laid out for it (see _chunks.pxd).

Everything about a covariance model itself (storage, M-step, precision
Cholesky, sampling, parameter count) is its entry in ``_covariance``.
"""
from collections import namedtuple

import numpy as np

from . import _covariance
from ._parallel import DIAG_GEMM, DIAG_LOOPS, FULL_BLAS, FULL_GEMM, FULL_LOOPS, FULL_LOOPS_MAX_DIM



KernelParameters = namedtuple("KernelParameters", "mode shift prec coef exact offsets")

# Kernel modes: defined once in _parallel.pxd (_chunks.pxd documents each layout).
DIAGONAL_MODES = (DIAG_GEMM, DIAG_LOOPS)
# Crossovers for full/tied, measured per fused pass (benchmarks/README.md):
# up to SMALL_DIM features loops over rows beat BLAS calls, and up to
# FULL_LOOPS_MAX_DIM while d^2 k <= LOOPS_MAX_WORK they beat the GEMM too
# (2e5 rows, 2 threads, 10 iterations: d = 3, k = 30 1.6x; d = 5, k = 5 1.75x;
# d = 8, k = 9 1.05x; d = 7, k = 12 0.95x; d = 8, k = 16 0.8x); the quadratic-feature
# GEMM (d^2 / 2 features per row, built once per chunk) beats a trmm + syrk per
# component up to GEMM_MAX_DIM features, and up to GEMM_MAX_DIM_MANY for at
# least MANY_COMPONENTS components, which amortise building the features.
SMALL_DIM = 2
LOOPS_MAX_WORK = 500
# diag/spherical: loops over the rows beat the [z, z^2] GEMM up to
# DIAG_LOOPS_MAX_DIM features (1e5 rows, 2 threads, 10 iterations: d = 3,
# k = 30 2.0x; d = 5, k = 5 1.9x; d = 8, k = 8 1.25-1.4x; d = 16, k = 16 0.9-1.0x;
# d = 32, k = 8 0.93x; d = 64, k = 32 0.41x).
DIAG_LOOPS_MAX_DIM = 8
GEMM_MAX_DIM = 48
GEMM_MAX_DIM_MANY = 96
MANY_COMPONENTS = 16


# The GEMM modes expand (x - mu_k)^T P_k (x - mu_k) around one centre g, so
# their log-densities lose about eps * R_k^2 (absolute) and their scatter
# eps * R_k^2 (relative, in the component's own metric), R_k^2 a bound on the
# squared Mahalanobis distance from g to component k: |m|^T |P_k| |m| for
# full/tied (m = mu_k - g, P_k = U_k U_k^T, absolute values entrywise: the sum
# of the magnitudes of the expansion's terms), the Mahalanobis distance for
# diagonal factors. Their
# features and statistics are double for float32 X too. Past R^2 = 1e6 (2e-10)
# a pass runs the components beyond it on their own, around their means in
# the same pass (FULL_GEMM: a trmm and a syrk; DIAG_GEMM: loops over the
# rows); when more than MAX_FAR_SHARE of them are beyond it, it falls back to
# the per-component modes.
COMMON_CENTER_LIMIT = 1e6
MAX_FAR_SHARE = 0.5

# With float32 X, FULL_GEMM's log-density GEMM runs in single precision
# (features and coef rounded to float32, an SGEMM at about twice DGEMM's rate;
# DIAG_GEMM, 2d features, is cheap enough in double). A log-density then loses
# about eps32 * R^2 times a factor that grows with d. Up to R^2 =
# SINGLE_PRECISION_REACH that is about 6e-4 (absolute; measured 1e-6 to 1e-5
# at d = 16, up to 2e-3 at d = 64), the order of what rounding X and the
# parameters to float32 already costs (eps32 |x| |x - mu| in the component's
# metric). Beyond it (up to 0.06 at COMMON_CENTER_LIMIT) the kernel
# recomputes in double every log-density of such a component that can matter,
# those within a margin of their row's largest (_chunks.refine_log_prob: about
# one per row once EM has sorted the rows); the others carry responsibilities
# below 1e-13, where that error is invisible. The statistics GEMM stays
# double, so the M-step keeps its accuracy (benchmarks/README.md: float32 fits
# against float64 fits).
# Refining costs a few operations per row and component besides the
# recomputations, which the SGEMM's savings (d^2 / 4 per row and component)
# repay only for wide rows: below SINGLE_REFINED_MIN_DIM features, a pass
# with components to refine runs the double GEMM instead (2e5 x 16, k = 16,
# separated clusters: refined single precision at 0.82-0.85x its speed;
# 1e5 x 64, k = 32, anisotropic: 1.25-1.35x, benchmarks/README.md).
SINGLE_PRECISION_REACH = 1e4
SINGLE_REFINED_MIN_DIM = 32


def kernel_mode(covariance_type, n_components, n_features, common_shift=True):
    """Which kernel runs; ``common_shift=False`` when the statistics must be
    taken around per-component shifts (initialisation, or a common centre
    too far from some component)."""
    if _covariance.model(covariance_type).layout.diagonal:
        return DIAG_GEMM if common_shift and n_features > DIAG_LOOPS_MAX_DIM else DIAG_LOOPS
    if n_features <= SMALL_DIM or (n_features <= FULL_LOOPS_MAX_DIM and
                                   n_features ** 2 * n_components <= LOOPS_MAX_WORK):
        return FULL_LOOPS
    gemm_max_dim = GEMM_MAX_DIM_MANY if n_components >= MANY_COMPONENTS else GEMM_MAX_DIM
    if n_features <= gemm_max_dim and common_shift:
        return FULL_GEMM
    return FULL_BLAS


# Per-component work per row besides the products: exp, log and the
# bookkeeping of a responsibility, in flop-equivalents (for thread counts).
_PER_COMPONENT_OVERHEAD = 30


def flops_per_row(mode, n_components, n_features):
    """Estimated floating-point operations per row of a fused E-step +
    accumulation pass in ``mode``: a d x d product for the log-density and
    another for the scatter per component (full), a few per feature
    (diagonal). Sets how many threads a call's work pays for."""
    d = n_features
    per_component = 4 * d if mode in DIAGONAL_MODES else 2 * d * d
    return n_components * (per_component + _PER_COMPONENT_OVERHEAD)


def kernel_parameters(log_weights, means, prec_chol, covariance_type, dtype):
    """Mixture parameters in the layout of their kernel mode (see _chunks.pxd).

    ``log_weights`` (k,) is each component's additive log-constant besides its
    Gaussian normaliser: log pi_k for maximum likelihood, the expected log
    weight and precision terms for variational Bayes.

    FULL_GEMM and DIAG_GEMM work around one centre g = sum_k pi_k mu_k with
    pi = softmax(log_weights) (every row of ``shift``), which keeps their expansions accurate when the
    data sit far from the origin, except for components too far from g
    (COMMON_CENTER_LIMIT), which run around their means inside the pass; the
    other modes work around the means, as does a pass with too many far
    components (MAX_FAR_SHARE).
    Diagonal layouts stay O(k d): their factors are the (k, d) scales.
    """
    layout = _covariance.model(covariance_type).layout
    k, d = means.shape
    means64 = np.asarray(means, dtype=np.float64)
    prec_chol = np.asarray(prec_chol, dtype=np.float64)
    log_weights = np.asarray(log_weights, dtype=np.float64)
    w = np.exp(log_weights - log_weights.max())
    center = (w @ means64 / w.sum()).astype(dtype)
    m = means64 - center.astype(np.float64)
    U = layout.per_component(prec_chol, k, d)     # (k, d) scales or (k, d, d) factors
    if layout.diagonal:
        coef = m * U                              # (mu_k - g) U_k
        reach = np.einsum("ke,ke->k", coef, coef)   # no cross terms
        log_det = np.log(U).sum(axis=1)
    else:
        # |m|^T |P| |m| bounds the sum of the magnitudes the GEMM's terms add
        # up for a row near mu_k (it is at most |m|^2 |U|_F^2, up to d times less)
        P_abs = np.abs(U @ np.swapaxes(U, 1, 2))
        reach = np.einsum("kd,kde,ke->k", np.abs(m), P_abs, np.abs(m))
        log_det = np.log(np.diagonal(U, axis1=1, axis2=2)).sum(axis=1)
    far = ~(reach <= COMMON_CENTER_LIMIT)
    # A few far components run on their own inside the common-centre pass.
    around_center = far.mean() <= MAX_FAR_SHARE
    mode = kernel_mode(covariance_type, k, d, common_shift=around_center)
    offsets = log_weights + log_det - 0.5 * d * np.log(2 * np.pi)
    common_shift = np.ascontiguousarray(np.broadcast_to(center, (k, d)))
    empty = np.empty((0, 0))
    # far components: their own mean as shift and their factor in prec (zero
    # rows mark the components around g, _chunks.pxd); prec empty when none
    shift = np.where(far[:, None], np.asarray(means, dtype=dtype), common_shift)
    far_factors = (np.where(far[:, None], U.reshape(k, -1), 0.0).astype(dtype)
                   if far.any() else empty.astype(dtype))
    if mode == DIAG_GEMM:
        p2 = U ** 2
        return KernelParameters(mode, shift, far_factors,
                                np.ascontiguousarray(np.hstack([-2 * p2 * m, p2]).T), empty,
                                np.where(far, offsets, offsets - 0.5 * (p2 * m ** 2).sum(axis=1)))
    if mode == FULL_GEMM:
        P = U @ np.swapaxes(U, 1, 2)              # precision matrices
        Pm = np.einsum("kde,ke->kd", P, m)
        rows, cols = np.tril_indices(d)
        quad = P[:, rows, cols] * np.where(rows == cols, 1.0, 2.0)
        coef = np.hstack([-2 * Pm, quad])         # (k, width - 1)
        # the log-density GEMM's coef in float32, with what refines its
        # components beyond SINGLE_PRECISION_REACH (zero rows for the others),
        # or in double (_chunks.pxd: coefficient)
        refined = ~far & (reach > SINGLE_PRECISION_REACH)
        single = np.dtype(dtype) == np.float32 and (d >= SINGLE_REFINED_MIN_DIM
                                                    or not refined.any())
        refined &= single
        exact = (np.where(refined[:, None],
                          np.hstack([offsets[:, None], means64, np.triu(U).reshape(k, d * d)]),
                          0.0)
                 if refined.any() else empty)
        return KernelParameters(mode, shift, far_factors,
                                np.ascontiguousarray(coef.T,
                                                     dtype=np.float32 if single else np.float64),
                                exact,
                                np.where(far, offsets,
                                         offsets - 0.5 * np.einsum("kd,kd->k", Pm, m)))
    factors = U if mode == DIAG_LOOPS else U.reshape(k, d * d)
    return KernelParameters(mode, np.ascontiguousarray(means, dtype=dtype),
                            np.ascontiguousarray(factors, dtype=dtype), empty, empty, offsets)
