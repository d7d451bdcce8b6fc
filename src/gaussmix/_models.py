"""Covariance models: the M-step from sufficient statistics, the precision
Cholesky parameterisation, the kernels' parameter layout and parameter counts.

A covariance type is one of scikit-learn's four names or one of mclust's 14
model names (``_parsimonious``). Each is stored in one of the four
scikit-learn layouts (``layout``): VVV=full, EEE=tied, VVI=diag and VII=
spherical are those types exactly; EII is stored as spherical, EEI/VEI/EVI
as diag, the other six as full. Everything about storage and kernels goes by
the layout; only the M-step and the parameter count go by the model.

Statistics are accumulated around a shift c_k (see ``_em``):
N_k = sum r_ik, S_k = sum r_ik (x_i - c_k), W_k = sum r_ik (x_i - c_k)(x_i - c_k)^T
(full and tied: d x d per component; diag and spherical: its diagonal).
"""
from collections import namedtuple

import numpy as np
from scipy import linalg

from . import _parsimonious

SKLEARN_TYPES = ("full", "tied", "diag", "spherical")
MCLUST_ALIASES = {"full": "VVV", "tied": "EEE", "diag": "VVI", "spherical": "VII"}
COVARIANCE_TYPES = SKLEARN_TYPES + _parsimonious.MODELS
_STORED_AS = {**{model: kind for kind, model in MCLUST_ALIASES.items()},
              "EII": "spherical", "EEI": "diag", "VEI": "diag", "EVI": "diag"}


def mclust_model(covariance_type):
    """mclust's name for a covariance type ('full' -> 'VVV')."""
    return MCLUST_ALIASES.get(covariance_type, covariance_type)


def layout(covariance_type):
    """The scikit-learn covariance type whose array shapes store this model."""
    return _STORED_AS.get(mclust_model(covariance_type), "full")

_FIT_FAILED = (
    "Fitting the mixture model failed because some components have ill-defined "
    "empirical covariance (for instance caused by singleton or collapsed samples). "
    "Try to decrease the number of components, increase reg_covar, or scale the "
    "input data."
)


def uses_full_kernel(covariance_type):
    """True when the kernels need a d x d precision factor per component."""
    return layout(covariance_type) in ("full", "tied")


def m_step(N, S, W, shift, covariance_type, reg_covar, previous=None):
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
    previous : ndarray, optional
        The covariances being replaced: a warm start for the iterative
        mclust models.

    Returns
    -------
    weights, means, covariances : ndarrays
        ``weights`` is N_k normalised to sum to one; covariances in the
        model's layout.
    """
    nk = N + 10 * np.finfo(np.float64).eps
    mean_offset = S / nk[:, None]
    means = shift + mean_offset
    d = S.shape[1]
    model, covariance_type = mclust_model(covariance_type), layout(covariance_type)
    if model not in MCLUST_ALIASES.values():
        covariances = _constrained_covariances(model, nk, W, S, mean_offset, reg_covar,
                                               covariance_type, previous)
    elif uses_full_kernel(covariance_type):
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


def _constrained_covariances(model, nk, W, S, mean_offset, reg_covar, stored_as, previous):
    """An mclust model's M-step (``_parsimonious``) on the scatter about the new means."""
    d = S.shape[1]
    if model in _parsimonious.DIAGONAL_MODELS:
        if W.ndim == 3:
            W = np.diagonal(W, axis1=1, axis2=2)
        scatter = W - S * mean_offset
        if previous is not None and stored_as == "spherical":
            previous = np.repeat(np.asarray(previous, np.float64)[:, None], d, axis=1)
    else:
        scatter = np.tril(W) + np.swapaxes(np.tril(W, -1), 1, 2)
        scatter -= S[:, :, None] * mean_offset[:, None, :]
    if previous is not None:
        previous = np.asarray(previous, dtype=np.float64)
    try:
        covariances = _parsimonious.covariances(model, nk, scatter, reg_covar,
                                                previous=previous)
    except ValueError as exc:  # say what to do, as the core models do
        raise ValueError(f"{_FIT_FAILED} ({model}: {exc})") from None
    return covariances[:, 0] if stored_as == "spherical" else covariances


def check_representable(params, covariance_type):
    """Raise the fit-failed ValueError unless the parameters, in their final
    dtype, are finite with positive variances and factor diagonals (a float32
    model whose float64 M-step over- or underflows float32 fails here)."""
    factors, covariances = params.precisions_cholesky, params.covariances
    if uses_full_kernel(covariance_type):
        factors = np.diagonal(factors, axis1=-2, axis2=-1)
        covariances = np.diagonal(covariances, axis1=-2, axis2=-1)
    with np.errstate(over="ignore"):
        precisions = precisions_from_cholesky(params.precisions_cholesky, covariance_type)
    finite = all(np.all(np.isfinite(a)) for a in (params.weights, params.means,
                                                   params.covariances,
                                                   params.precisions_cholesky, precisions))
    if not (finite and np.all(factors > 0) and np.all(covariances > 0)):
        raise ValueError(_FIT_FAILED)


def precision_cholesky(covariances, covariance_type):
    """Upper-triangular U with U U^T = inv(covariance), as scikit-learn stores it."""
    covariance_type = layout(covariance_type)
    if covariance_type in ("diag", "spherical"):
        if not (np.all(covariances > 0) and np.all(np.isfinite(covariances))):
            raise ValueError(_FIT_FAILED)
        return 1.0 / np.sqrt(covariances)
    stack = covariances[None] if covariance_type == "tied" else covariances
    if not np.all(np.isfinite(stack)):
        raise ValueError(_FIT_FAILED)
    try:
        lower = np.linalg.cholesky(stack)
    except np.linalg.LinAlgError:
        raise ValueError(_FIT_FAILED) from None
    # inv(L)^T by LAPACK's triangular inverse, called directly: the scipy
    # wrappers' input checks cost more than the work at small d
    trtri = linalg.get_lapack_funcs("trtri", (lower,))
    factors = np.empty_like(lower)
    for k, factor in enumerate(lower):
        inverse, info = trtri(factor, lower=1)
        if info != 0:
            raise ValueError(_FIT_FAILED)
        factors[k] = inverse.T
    return factors[0] if covariance_type == "tied" else factors


def precision_cholesky_from_precisions(precisions, covariance_type):
    """Upper-triangular U with U U^T = precision (Cholesky of the reversed matrix)."""
    covariance_type = layout(covariance_type)
    if covariance_type in ("diag", "spherical"):
        return np.sqrt(precisions)
    stack = precisions[None] if covariance_type == "tied" else precisions
    factors = np.stack([
        linalg.cholesky(p[::-1, ::-1], lower=True)[::-1, ::-1] for p in stack
    ])
    return factors[0] if covariance_type == "tied" else factors


def precisions_from_cholesky(prec_chol, covariance_type):
    """U U^T for full/tied, U**2 for diag/spherical."""
    covariance_type = layout(covariance_type)
    if covariance_type == "full":
        return np.einsum("kij,klj->kil", prec_chol, prec_chol)
    if covariance_type == "tied":
        return prec_chol @ prec_chol.T
    return prec_chol ** 2


def covariances_from_cholesky(prec_chol, covariance_type):
    """inv(U U^T) = U^{-T} U^{-1}, used when parameters start from precisions."""
    covariance_type = layout(covariance_type)
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
# Crossovers for full/tied, measured per fused pass (benchmarks/README.md):
# up to SMALL_DIM features loops over rows beat BLAS calls; the quadratic-feature
# GEMM (d^2 / 2 features per row, built once per chunk) beats a trmm + syrk per
# component up to GEMM_MAX_DIM features, and up to GEMM_MAX_DIM_MANY for at
# least MANY_COMPONENTS components, which amortise building the features.
SMALL_DIM = 2
GEMM_MAX_DIM = 48
GEMM_MAX_DIM_MANY = 96
MANY_COMPONENTS = 16


# The GEMM modes expand (x - mu_k)^T P_k (x - mu_k) around one centre g, so
# their log-densities lose about eps * R_k^2 (absolute) and their scatter
# eps * R_k^2 (relative), R_k the distance from g to component k in units of
# its narrowest spread: |mu_k - g| * |U_k|_F for full/tied (a bound on the
# Mahalanobis distance), the Mahalanobis distance for diagonal factors. Their
# features and statistics are double for float32 X too. Past R^2 = 1e6 (2e-10)
# a pass falls back to the per-component modes.
COMMON_CENTER_LIMIT = 1e6


def kernel_mode(covariance_type, n_components, n_features, common_shift=True):
    """Which kernel runs; ``common_shift=False`` when the statistics must be
    taken around per-component shifts (initialisation, or a common centre
    too far from some component)."""
    if not uses_full_kernel(covariance_type):
        return DIAG_GEMM if common_shift else DIAG_LOOPS
    if n_features <= SMALL_DIM:
        return FULL_LOOPS
    gemm_max_dim = GEMM_MAX_DIM_MANY if n_components >= MANY_COMPONENTS else GEMM_MAX_DIM
    if n_features <= gemm_max_dim and common_shift:
        return FULL_GEMM
    return FULL_BLAS


def kernel_parameters(weights, means, prec_chol, covariance_type, dtype):
    """Mixture parameters in the layout of their kernel mode (see _chunks.pxd).

    FULL_GEMM and DIAG_GEMM work around one centre g = sum_k weight_k mu_k
    (every row of ``shift``), which keeps their expansions accurate when the
    data sit far from the origin; the other modes around the means, and so
    does any pass where g is too far from a component (COMMON_CENTER_LIMIT).
    """
    covariance_type = layout(covariance_type)
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
    mode = kernel_mode(covariance_type, k, d, common_shift=not far)
    log_det = np.log(np.diagonal(U, axis1=1, axis2=2)).sum(axis=1)
    offsets = log_weights + log_det - 0.5 * d * np.log(2 * np.pi)
    common_shift = np.ascontiguousarray(np.broadcast_to(center, (k, d)))
    empty = np.empty((0, 0))
    if mode == DIAG_GEMM:
        p2 = p ** 2
        return KernelParameters(mode, common_shift, empty.astype(dtype),
                                np.ascontiguousarray(np.hstack([-2 * p2 * m, p2]).T),
                                offsets - 0.5 * (p2 * m ** 2).sum(axis=1))
    if mode == FULL_GEMM:
        P = U @ np.swapaxes(U, 1, 2)              # precision matrices
        Pm = np.einsum("kde,ke->kd", P, m)
        rows, cols = np.tril_indices(d)
        quad = P[:, rows, cols] * np.where(rows == cols, 1.0, 2.0)
        return KernelParameters(mode, common_shift, empty.astype(dtype),
                                np.ascontiguousarray(np.hstack([-2 * Pm, quad]).T),
                                offsets - 0.5 * np.einsum("kd,kd->k", Pm, m))
    factors = p if mode == DIAG_LOOPS else U.reshape(k, d * d)
    return KernelParameters(mode, np.ascontiguousarray(means, dtype=dtype),
                            np.ascontiguousarray(factors, dtype=dtype), empty, offsets)


def n_parameters(covariance_type, n_components, n_features):
    """Free parameters of the model (for BIC/AIC), counted as mclust does."""
    k, d = n_components, n_features
    cov_params = _parsimonious.n_covariance_parameters(mclust_model(covariance_type), k, d)
    return int(cov_params + k * d + k - 1)


def precisions_shape(covariance_type, n_components, n_features):
    covariance_type = layout(covariance_type)
    k, d = n_components, n_features
    return {"full": (k, d, d), "tied": (d, d), "diag": (k, d), "spherical": (k,)}[covariance_type]
