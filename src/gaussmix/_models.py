"""Covariance models: the M-step from sufficient statistics, the precision
Cholesky parameterisation, the kernels' parameter layout and parameter counts.

Statistics are accumulated around a shift c_k (see ``_em``):
N_k = sum r_ik, S_k = sum r_ik (x_i - c_k), W_k = sum r_ik (x_i - c_k)(x_i - c_k)^T
(full and tied: d x d per component; diag and spherical: its diagonal).
"""
from collections import namedtuple

import numpy as np
from scipy import linalg

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")

_FIT_FAILED = (
    "Fitting the mixture model failed because some components have ill-defined "
    "empirical covariance (for instance caused by singleton or collapsed samples). "
    "Try to decrease the number of components, increase reg_covar, or scale the "
    "input data."
)


def uses_full_kernel(covariance_type):
    """True when the kernels need a d x d precision factor per component."""
    return covariance_type in ("full", "tied")


def m_step(N, S, W, shift, covariance_type, reg_covar):
    """Weights, means and covariances (float64) from summed statistics.

    Parameters
    ----------
    N : ndarray of shape (k,)
    S : ndarray of shape (k, d)
    W : ndarray of shape (k, d, d) or, for diag/spherical, (k, d)
        Only the lower triangle of each d x d block is read (its diagonal
        for diag/spherical).
    shift : ndarray of shape (k, d)
    covariance_type : str
    reg_covar : float

    Returns
    -------
    weights, means, covariances : ndarrays
        ``weights`` is N_k normalised to sum to one.
    """
    nk = N + 10 * np.finfo(np.float64).eps
    mean_offset = S / nk[:, None]
    means = shift + mean_offset
    d = S.shape[1]
    if uses_full_kernel(covariance_type):
        lower = np.tril(W)
        scatter = lower + np.swapaxes(np.tril(W, -1), 1, 2)
        # Scatter around the new mean: W - S S^T / N_k (S is small: c_k is near it).
        scatter -= S[:, :, None] * mean_offset[:, None, :]
        if covariance_type == "full":
            covariances = scatter / nk[:, None, None]
            covariances[:, np.arange(d), np.arange(d)] += reg_covar
        else:
            covariances = scatter.sum(axis=0) / nk.sum()
            covariances.flat[:: d + 1] += reg_covar
    else:
        if W.ndim == 3:
            W = np.diagonal(W, axis1=1, axis2=2)
        variances = (W - S * mean_offset) / nk[:, None] + reg_covar
        covariances = variances if covariance_type == "diag" else variances.mean(axis=1)
    return nk / nk.sum(), means, covariances


def precision_cholesky(covariances, covariance_type):
    """Upper-triangular U with U U^T = inv(covariance), as scikit-learn stores it."""
    if covariance_type in ("diag", "spherical"):
        if not np.all(covariances > 0):
            raise ValueError(_FIT_FAILED)
        return 1.0 / np.sqrt(covariances)
    stack = covariances[None] if covariance_type == "tied" else covariances
    factors = np.empty_like(stack)
    d = stack.shape[-1]
    for k, cov in enumerate(stack):
        try:
            lower = linalg.cholesky(cov, lower=True, check_finite=False)
        except linalg.LinAlgError:
            raise ValueError(_FIT_FAILED) from None
        factors[k] = linalg.solve_triangular(lower, np.eye(d), lower=True,
                                             check_finite=False).T
    return factors[0] if covariance_type == "tied" else factors


def precision_cholesky_from_precisions(precisions, covariance_type):
    """Upper-triangular U with U U^T = precision (Cholesky of the reversed matrix)."""
    if covariance_type in ("diag", "spherical"):
        return np.sqrt(precisions)
    stack = precisions[None] if covariance_type == "tied" else precisions
    factors = np.stack([
        linalg.cholesky(p[::-1, ::-1], lower=True)[::-1, ::-1] for p in stack
    ])
    return factors[0] if covariance_type == "tied" else factors


def precisions_from_cholesky(prec_chol, covariance_type):
    """U U^T for full/tied, U**2 for diag/spherical."""
    if covariance_type == "full":
        return np.einsum("kij,klj->kil", prec_chol, prec_chol)
    if covariance_type == "tied":
        return prec_chol @ prec_chol.T
    return prec_chol ** 2


def covariances_from_cholesky(prec_chol, covariance_type):
    """inv(U U^T) = U^{-T} U^{-1}, used when parameters start from precisions."""
    if covariance_type in ("diag", "spherical"):
        return 1.0 / prec_chol ** 2
    stack = prec_chol[None] if covariance_type == "tied" else prec_chol
    d = stack.shape[-1]
    inv = np.stack([linalg.solve_triangular(u, np.eye(d), lower=False) for u in stack])
    cov = inv @ np.swapaxes(inv, 1, 2)
    return cov[0] if covariance_type == "tied" else cov


KernelParameters = namedtuple("KernelParameters", "mode shift prec coef offsets")

# Kernel modes, as in _chunks.pxd (which documents each layout).
FULL_LOOPS, FULL_GEMM, FULL_BLAS, DIAG_GEMM, DIAG_LOOPS = 0, 1, 2, 3, 4
DIAGONAL_MODES = (DIAG_GEMM, DIAG_LOOPS)
# Crossovers in n_features for full/tied, measured with benchmarks/bench_em.py:
# below SMALL_DIM a BLAS call costs more than its arithmetic; up to
# GEMM_MAX_DIM one GEMM over all components beats a trmm + syrk per component.
SMALL_DIM = 3
GEMM_MAX_DIM = 32


# The GEMM modes work around one centre g. Their Mahalanobis terms lose about
# eps * R_k and their scatter eps * R_k^2 (relative), R_k the distance from g
# to component k in units of its narrowest spread: |mu_k - g| * |U_k|_F for
# full/tied (cross terms), the Mahalanobis distance for diagonal factors.
# Past R^2 = 1e6 (1e-10 in the double statistics; float32 E-steps stay within
# 1e-5) a pass falls back to the per-component modes.
COMMON_CENTER_LIMIT = 1e6


def kernel_mode(covariance_type, n_features, common_shift=True):
    """Which kernel runs; ``common_shift=False`` when the statistics must be
    taken around per-component shifts (initialisation, or a common centre
    too far from some component)."""
    if not uses_full_kernel(covariance_type):
        return DIAG_GEMM if common_shift else DIAG_LOOPS
    if n_features <= SMALL_DIM:
        return FULL_LOOPS
    if n_features <= GEMM_MAX_DIM and common_shift:
        return FULL_GEMM
    return FULL_BLAS


def kernel_parameters(weights, means, prec_chol, covariance_type, dtype):
    """Mixture parameters in the layout of their kernel mode (see _chunks.pxd).

    FULL_GEMM and DIAG_GEMM work around one centre g = sum_k weight_k mu_k
    (every row of ``shift``), which keeps their expansions accurate when the
    data sit far from the origin; the other modes around the means, and so
    does any pass where g is too far from a component (COMMON_CENTER_LIMIT).
    """
    k, d = means.shape
    means64 = np.asarray(means, dtype=np.float64)
    prec_chol = np.asarray(prec_chol, dtype=np.float64)
    with np.errstate(divide="ignore"):
        log_weights = np.log(np.asarray(weights, dtype=np.float64))
    w = np.asarray(weights, dtype=np.float64)
    center = (w @ means64 / w.sum()).astype(dtype)
    m = means64 - center.astype(np.float64)
    if covariance_type in ("diag", "spherical"):
        p = prec_chol if covariance_type == "diag" else np.repeat(prec_chol[:, None], d, axis=1)
        U = np.stack([np.diag(row) for row in p])
    else:
        U = np.broadcast_to(prec_chol, (k, d, d)) if covariance_type == "tied" else prec_chol
    coef = np.einsum("kd,kde->ke", m, U)          # (mu_k - g) U_k
    if covariance_type in ("diag", "spherical"):
        reach = np.einsum("ke,ke->k", coef, coef)   # no cross terms
    else:
        reach = np.einsum("kd,kd->k", m, m) * np.einsum("kde,kde->k", U, U)
    far = not np.all(reach <= COMMON_CENTER_LIMIT)
    mode = kernel_mode(covariance_type, d, common_shift=not far)
    log_det = np.log(np.diagonal(U, axis1=1, axis2=2)).sum(axis=1)
    offsets = log_weights + log_det - 0.5 * d * np.log(2 * np.pi)
    common_shift = np.ascontiguousarray(np.broadcast_to(center, (k, d)))
    empty = np.empty((0, 0))
    if mode == DIAG_GEMM:
        p2 = p ** 2
        return KernelParameters(mode, common_shift, empty.astype(dtype),
                                np.ascontiguousarray(np.hstack([-2 * p2 * m, p2])),
                                offsets - 0.5 * (p2 * m ** 2).sum(axis=1))
    if mode == FULL_GEMM:
        U_all = np.ascontiguousarray(np.transpose(U, (1, 0, 2)).reshape(d, k * d), dtype=dtype)
        return KernelParameters(mode, common_shift, U_all, np.ascontiguousarray(coef), offsets)
    factors = p if mode == DIAG_LOOPS else U.reshape(k, d * d)
    return KernelParameters(mode, np.ascontiguousarray(means, dtype=dtype),
                            np.ascontiguousarray(factors, dtype=dtype), empty, offsets)


def n_parameters(covariance_type, n_components, n_features):
    """Free parameters of the model (for BIC/AIC)."""
    k, d = n_components, n_features
    cov_params = {
        "full": k * d * (d + 1) / 2.0,
        "tied": d * (d + 1) / 2.0,
        "diag": k * d,
        "spherical": k,
    }[covariance_type]
    return int(cov_params + k * d + k - 1)


def precisions_shape(covariance_type, n_components, n_features):
    k, d = n_components, n_features
    return {"full": (k, d, d), "tied": (d, d), "diag": (k, d), "spherical": (k,)}[covariance_type]
