"""Lean EM for the cells of a model-selection grid.

``select_model`` runs tens of thousands of short fits. Through
``GaussianMixture.fit`` each EM iteration pays for input validation, kernel
constants built for the GEMM modes, float32 checks and bookkeeping that only
a public estimator needs; on a few hundred rows that costs ten times the
arithmetic. Here a fit runs on float64 data validated once and returns
parameters and log-likelihood only: on up to ``SMALL_ROWS`` rows as one
compiled, GIL-free call (``suffstats.cell_em``: the fit pass and the mclust
M-step of ``_parsimonious_steps``), beyond as a loop of the threaded pass and
the numpy M-step. Its iterations are those of ``GaussianMixture.fit`` (same
pass, same M-step; its stopping rule and mclust's must both hold), so it
reaches the same optimum.
"""
from typing import NamedTuple

import numpy as np

from . import _covariance, _models, _parsimonious_steps
from ._em import Parameters, pass_statistics
from ._kernels import estep, suffstats
from ._parallel import FULL_LOOPS_MAX_DIM
from ._threading import team_size

# A pass is one single-threaded call of the compiled core in a per-component
# kernel mode, whose constants cost next to nothing to build, up to SMALL_ROWS
# rows, and for full covariances in more than two dimensions up to
# SMALL_ROWS_X_COMPONENTS rows times components; beyond, the GEMM modes and
# the threaded, chunked pass pay (benchmarks/README.md).
SMALL_ROWS = 4096
SMALL_ROWS_X_COMPONENTS = 10000
# The compiled EM of a cell (suffstats.cell_em) runs on up to SMALL_ROWS rows;
# for full covariances its passes loop over the rows up to
# _parallel.FULL_LOOPS_MAX_DIM features and call BLAS per component beyond
# (2000 rows, k = 3 / 9, per iteration: loops 0.061 / 0.165 ms at d = 8, BLAS
# 0.095 / 0.277). On more rows it runs the diagonal models, and full ones in
# row loops up to CELL_LOOPS_MAX_COMPONENTS components; beyond, the numpy
# loop's GEMM pass wins (20000 x 8, VVV: loops 1.65 / 2.87 ms at k = 9 / 16,
# GEMM 1.90 / 2.48; at d = 5 they tie only at k = 25).
CELL_LOOPS_MAX_COMPONENTS = 12
_EMPTY = np.empty((0, 0))
INNER_ITERATIONS = 1


class Fit(NamedTuple):
    """One EM run: the final parameters (float64) and its lower bounds."""

    params: Parameters
    lower_bound: float   # mean log-likelihood per unit of weight
    lower_bounds: list
    n_iter: int
    converged: bool


class GridData:
    """float64 rows and weights as every fit of the grid sees them.

    Weights are scaled to mean 1, as ``GaussianMixture.fit`` does, so a
    lower bound here equals that estimator's; ``total_weight`` is the sum of
    the weights as given.
    """

    def __init__(self, X, sample_weight=None):
        self.X = np.ascontiguousarray(X, dtype=np.float64)
        self.n_samples, self.n_features = self.X.shape
        if sample_weight is None:
            self.sample_weight, self.weights_arg = None, np.empty(0)
            self.total_weight = float(self.n_samples)
        else:
            self.total_weight = float(sample_weight.sum())
            scaled = sample_weight / sample_weight.max()
            self.sample_weight = self.weights_arg = scaled / scaled.mean()

    def runs_per_component(self, covariance_type, k):
        """Whether a pass of ``k`` components of ``covariance_type`` runs per component."""
        layout = _covariance.model(covariance_type).layout
        return self.n_samples <= SMALL_ROWS and (
            layout.diagonal or self.n_features <= _models.SMALL_DIM
            or self.n_samples * k <= SMALL_ROWS_X_COMPONENTS)

    def cell_mode(self, covariance_type, k):
        """The kernel mode ``suffstats.cell_em`` runs ``k`` components of
        ``covariance_type`` in on these rows, or None where the numpy loop
        and its GEMM passes are faster."""
        diagonal = _covariance.model(covariance_type).layout.diagonal
        loops = diagonal or self.n_features <= FULL_LOOPS_MAX_DIM
        if self.n_samples > SMALL_ROWS and not (
                diagonal or (loops and k <= CELL_LOOPS_MAX_COMPONENTS)):
            return None
        if diagonal:
            return _models.DIAG_LOOPS
        return _models.FULL_LOOPS if loops else _models.FULL_BLAS

    def kernel_parameters(self, covariance_type, params):
        """Kernel constants of ``params``: around the component means on small data."""
        layout = _covariance.model(covariance_type).layout
        k, d = params.means.shape
        if not self.runs_per_component(covariance_type, k):
            with np.errstate(divide="ignore"):
                log_weights = np.log(np.asarray(params.weights, dtype=np.float64))
            return _models.kernel_parameters(log_weights, params.means,
                                             params.precisions_cholesky, covariance_type,
                                             np.float64)
        U = layout.per_component(params.precisions_cholesky, k, d)
        if layout.diagonal:
            log_det = np.log(U).sum(axis=1)
        else:
            log_det = np.log(np.diagonal(U, axis1=1, axis2=2)).sum(axis=1)
            U = U.reshape(k, d * d)
        with np.errstate(divide="ignore"):
            offsets = np.log(params.weights) + log_det - 0.5 * d * np.log(2 * np.pi)
        mode = _models.kernel_mode(covariance_type, k, d, common_shift=False)
        return _models.KernelParameters(mode, params.means, np.ascontiguousarray(U), _EMPTY,
                                        _EMPTY, offsets)

    def statistics(self, covariance_type, params, n_threads):
        """(N, S, W, shift) and the total log-likelihood under ``params``."""
        kp = self.kernel_parameters(covariance_type, params)
        if self.n_samples > SMALL_ROWS:
            stats, log_likelihood = pass_statistics(self.X, self.weights_arg, kp, n_threads)
            return (stats.N, stats.S, stats.W, stats.shift), log_likelihood
        k, d = params.means.shape
        full = kp.mode not in _models.DIAGONAL_MODES
        N, S = np.zeros((1, k)), np.zeros((1, k, d))
        W, log_likelihood = np.zeros((1, k, d * d if full else d)), np.zeros(1)
        suffstats.em_pass(self.X, self.weights_arg, kp.shift, kp.prec, kp.coef, kp.exact, kp.offsets,
                          kp.mode, N, S, W, log_likelihood, 1)
        return (N[0], S[0], W[0].reshape(k, d, d) if full else W[0], kp.shift), log_likelihood[0]

    def labels(self, covariance_type, params, n_threads=1):
        """The most probable component of every row."""
        kp = self.kernel_parameters(covariance_type, params)
        labels = np.empty(self.n_samples, dtype=np.intp)
        estep.e_step(self.X, kp.shift, kp.prec, kp.coef, kp.exact, kp.offsets, kp.mode,
                     np.empty(0), labels, np.empty((0, params.means.shape[0])), n_threads)
        return labels


def m_step(covariance_type, N, S, W, shift, reg_covar, previous=None):
    """Parameters (float64) from summed statistics; ValueError when they are unusable.

    Warm-started from ``previous``, the iterative mclust models take
    ``INNER_ITERATIONS`` steps of their M-step's own ascent (a generalised EM:
    no step lowers the likelihood, and the next E-step follows sooner).
    """
    entry = _covariance.model(covariance_type)
    weights, means, covariances = entry.m_step(
        N, S, W, shift, reg_covar, previous,
        inner_max_iter=100 if previous is None else INNER_ITERATIONS)
    return Parameters(weights, means, covariances, entry.layout.precision_cholesky(covariances))


def em(data, covariance_type, params, *, tol, reg_covar, max_iter, n_threads=1):
    """EM from ``params`` as ``GaussianMixture.fit`` runs it (one start).

    It stops when both ``GaussianMixture.fit``'s rule (the mean
    log-likelihood changes by less than ``tol``) and mclust's (the total
    changes by less than ``tol`` (1 + |total|)) hold, so that it goes at
    least as far as either: where |total| < n_samples mclust's rule is the
    stricter (iris: a cell of slow ascent stopped 0.001 short of mclust).

    Where ``GridData.cell_mode`` says so the whole run is one compiled call
    (``suffstats.cell_em``); should it fail, the numpy loop takes over from
    the last good parameters, to raise its error with the model's own
    message (or, should rounding let it pass, to carry on).

    Raises ValueError (or LinAlgError) when an M-step fails.
    """
    head, mode = None, data.cell_mode(covariance_type, params.means.shape[0])
    if mode is not None:
        head, failed = _compiled_em(data, covariance_type, mode, params, tol, reg_covar,
                                    max_iter, n_threads)
        if not failed:
            return head
        params, max_iter = head.params, max_iter - head.n_iter
    fit = _numpy_em(data, covariance_type, params, tol, reg_covar, max_iter, n_threads)
    return fit if head is None else joined(head, fit)


def _compiled_em(data, covariance_type, mode, params, tol, reg_covar, max_iter, n_threads=1):
    """(Fit, failed) of ``suffstats.cell_em`` in kernel ``mode`` from ``params``."""
    entry = _covariance.model(covariance_type)
    layout = entry.layout
    k, d = params.means.shape
    covariances = np.array(layout.per_component(params.covariances, k, d), dtype=np.float64,
                           order="C").reshape(k, -1)
    weights = np.array(params.weights, dtype=np.float64, order="C")
    means = np.array(params.means, dtype=np.float64, order="C")
    lower_bounds, factors = np.empty(max(max_iter, 1)), np.empty_like(covariances)
    # threads only where the rows pay for them (and none in a forked child)
    n_threads = team_size(n_threads, data.n_samples, _models.flops_per_row(mode, k, d))
    n_iter, converged, status, factored = suffstats.cell_em(
        data.X, data.weights_arg, _parsimonious_steps.MODEL_CODES[entry.mclust], mode, weights,
        means, covariances, reg_covar, tol, max_iter, data.total_weight, lower_bounds, factors,
        n_threads)
    if n_iter == 0:
        return Fit(params, -np.inf, [], 0, False), status != 0
    # unfactored, the numpy factorisation raises the numpy loop's error
    params = _parameters(layout, weights, means, covariances, factors if factored else None)
    bounds = lower_bounds[:n_iter].tolist()
    return Fit(params, bounds[-1], bounds, n_iter, bool(converged)), status != 0


def _numpy_em(data, covariance_type, params, tol, reg_covar, max_iter, n_threads):
    """``em``'s iterations on the threaded pass and the numpy M-step."""
    lower_bound, lower_bounds, converged, n_iter = -np.inf, [], False, 0
    for n_iter in range(1, max_iter + 1):
        previous = lower_bound
        stats, log_likelihood = data.statistics(covariance_type, params, n_threads)
        params = m_step(covariance_type, *stats, reg_covar, params.covariances)
        lower_bound = log_likelihood / data.n_samples
        if not np.isfinite(lower_bound):
            raise ValueError("the log-likelihood is not finite")
        lower_bounds.append(lower_bound)
        change = abs(lower_bound - previous)
        if change < tol and change * data.total_weight < tol * (1 + abs(lower_bound)
                                                                 * data.total_weight):
            converged = True
            break
    return Fit(params, lower_bound, lower_bounds, n_iter, converged)


def joined(first, then):
    """The Fit of ``first`` continued by ``then``."""
    if then.n_iter == 0:
        return first
    return Fit(then.params, then.lower_bound, first.lower_bounds + then.lower_bounds,
               first.n_iter + then.n_iter, then.converged)


def resume(data, covariance_type, fit, *, max_iter, **settings):
    """``em`` continued from a ``Fit`` (its iterations count against ``max_iter``)."""
    return joined(fit, em(data, covariance_type, fit.params,
                          max_iter=max(max_iter - fit.n_iter, 0), **settings))


def partition_parameters(data, labels, k, covariance_type, reg_covar):
    """Parameters from a hard partition of the rows into k non-empty clusters.

    Compiled (``suffstats.cell_start``); should its M-step fail, the numpy
    one runs to raise the model's own error.
    """
    N = np.bincount(labels, weights=data.sample_weight, minlength=k)
    if N.size != k or np.any(N <= 0):
        raise ValueError("a starting partition has an empty cluster")
    entry = _covariance.model(covariance_type)
    d = data.n_features
    weights, means = np.empty(k), np.empty((k, d))
    covariances = np.empty((k, d if entry.layout.diagonal else d * d))
    factors = np.empty_like(covariances)
    status = suffstats.cell_start(data.X, data.weights_arg, np.asarray(labels, dtype=np.intp),
                                  _parsimonious_steps.MODEL_CODES[entry.mclust], reg_covar, weights,
                                  means, covariances, factors)
    if status != 0:
        return _numpy_partition_parameters(data, labels, k, covariance_type, reg_covar)
    return _parameters(entry.layout, weights, means, covariances, factors)


def _numpy_partition_parameters(data, labels, k, covariance_type, reg_covar):
    """``partition_parameters`` by numpy and ``_parsimonious``."""
    resp = np.zeros((data.n_samples, k))
    resp[np.arange(data.n_samples), labels] = (1.0 if data.sample_weight is None
                                               else data.sample_weight)
    N = resp.sum(axis=0)
    means = resp.T @ data.X / N[:, None]
    W = np.empty((k, data.n_features, data.n_features))
    for j in range(k):
        centred = data.X - means[j]
        W[j] = (centred * resp[:, j, None]).T @ centred
    return m_step(covariance_type, N, np.zeros_like(means), W, means, reg_covar)


def _parameters(layout, weights, means, covariances, factors=None):
    """Parameters from the compiled code's per-component (k, d*d) or (k, d)
    covariances and, unless None, their precision Cholesky factors, in ``layout``."""
    k, d = means.shape

    def in_layout(array):
        if layout is _covariance.SPHERICAL:
            return array[:, 0].copy()
        if layout is _covariance.TIED:
            return array[0].reshape(d, d)
        return array if layout.diagonal else array.reshape(k, d, d)

    covariances = in_layout(covariances)
    factors = layout.precision_cholesky(covariances) if factors is None else in_layout(factors)
    return Parameters(weights, means, covariances, factors)


def degenerate(covariance_type, params, reg_covar):
    """True when a covariance is singular but for reg_covar.

    Such spurious maxima (a component on a few tied rows) have an unbounded
    likelihood as reg_covar -> 0; mclust reports them as missing, so do we.
    """
    covariances = params.covariances
    if not _covariance.model(covariance_type).layout.diagonal:
        covariances = np.linalg.eigvalsh(covariances)
    return bool(np.min(covariances) <= 2 * reg_covar)
