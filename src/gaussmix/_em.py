"""Passes over X that produce sufficient statistics, and the EM iteration.

A pass cuts X into row chunks, lets each OpenMP thread accumulate its own
statistics (compiled core), then sums the per-thread slots in thread order.
"""
from dataclasses import dataclass

import numpy as np

from . import _models
from ._blocks import row_ranges
from ._kernels import suffstats

# Rows handed to the compiled core per call when responsibilities are made in
# Python (initialisation), bounding that temporary to BLOCK_ROWS x k.
BLOCK_ROWS = 1 << 14


@dataclass
class Parameters:
    """Mixture parameters, every array in the model's dtype."""

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    precisions_cholesky: np.ndarray


# Bytes the per-thread accumulator slots of one pass may take. Beyond it the
# threads share one slot (components owned by one thread each, see
# _suffstats.pyx), so fit memory does not grow with the thread count.
ACCUMULATOR_BUDGET = 64 << 20


@dataclass
class Statistics:
    """Summed sufficient statistics around ``shift`` (see ``_models``).

    As made by ``zeros`` for a pass, N, S and W have a leading axis of slots:
    one per thread, or a single slot shared by all threads when per-thread
    slots would exceed ``ACCUMULATOR_BUDGET``; ``reduced`` sums them.
    """

    N: np.ndarray
    S: np.ndarray
    W: np.ndarray
    shift: np.ndarray
    full: bool  # W holds d x d blocks (lower triangles) rather than diagonals

    @classmethod
    def zeros(cls, shift, mode, n_threads):
        k, d = shift.shape
        full = mode not in _models.DIAGONAL_MODES
        width = d * d if full else d
        slot_bytes = 8 * k * (1 + d + width)
        slots = n_threads if n_threads * slot_bytes <= ACCUMULATOR_BUDGET else 1
        return cls(np.zeros((slots, k)), np.zeros((slots, k, d)), np.zeros((slots, k, width)),
                   shift, full)

    def reduced(self):
        """Sum the per-thread slots, in thread order (a shared slot as it is)."""
        if len(self.N) == 1:
            N, S, W = self.N[0], self.S[0], self.W[0]
        else:
            N, S, W = self.N.sum(axis=0), self.S.sum(axis=0), self.W.sum(axis=0)
        k, d = self.shift.shape
        W = W.reshape(k, d, d) if self.full else W
        return Statistics(N, S, W, self.shift, self.full)


@dataclass
class RunningStatistics:
    """Statistics per unit of sample weight, as ``partial_fit`` carries them.

    ``mass`` (k,) sums to one; ``means`` (k, d); ``scatter`` is each
    component's weighted covariance about its mean, without ``reg_covar``:
    (k, d, d) for full/tied, its diagonal (k, d) for diag/spherical.
    Keeping central moments (not raw sums) makes blending exact and stable
    however far the data sit from the origin.
    """

    mass: np.ndarray
    means: np.ndarray
    scatter: np.ndarray

    @classmethod
    def from_statistics(cls, stats, total_weight):
        """Central form of reduced ``Statistics`` of data of ``total_weight``."""
        present = stats.N > 0
        N = np.where(present, stats.N, 1.0)
        offset = stats.S / N[:, None]
        if stats.full:
            W = np.tril(stats.W) + np.swapaxes(np.tril(stats.W, -1), 1, 2)
            scatter = W / N[:, None, None] - offset[:, :, None] * offset[:, None, :]
        else:
            scatter = stats.W / N[:, None] - offset * offset
        scatter[~present] = 0.0
        return cls(stats.N / total_weight, stats.shift + offset, scatter)

    @classmethod
    def from_parameters(cls, params, covariance_type, reg_covar):
        """Statistics that reproduce ``params`` through the M-step."""
        k, d = params.means.shape
        cov = np.asarray(params.covariances, dtype=np.float64)
        stored_as = _models.layout(covariance_type)
        if stored_as == "tied":
            cov = np.broadcast_to(cov, (k, d, d))
        elif stored_as == "spherical":
            cov = np.broadcast_to(cov[:, None], (k, d))
        scatter = cov.copy()
        if _models.uses_full_kernel(covariance_type):
            scatter[:, np.arange(d), np.arange(d)] -= reg_covar
        else:
            scatter -= reg_covar
        return cls(np.asarray(params.weights, dtype=np.float64),
                   np.asarray(params.means, dtype=np.float64), scatter)

    def blend(self, batch, step):
        """``(1 - step) * self + step * batch``, as pooled central moments."""
        a, b = (1.0 - step) * self.mass, step * batch.mass
        mass = a + b
        total = np.where(mass > 0, mass, 1.0)
        fa, fb = a / total, b / total
        delta = batch.means - self.means
        if self.scatter.ndim == 3:
            spread = delta[:, :, None] * delta[:, None, :]
            fa, fb, f = fa[:, None, None], fb[:, None, None], (fa * fb)[:, None, None]
        else:
            spread = delta * delta
            fa, fb, f = fa[:, None], fb[:, None], (fa * fb)[:, None]
        means = self.means + (b / total)[:, None] * delta
        return RunningStatistics(mass, means, fa * self.scatter + fb * batch.scatter
                                 + f * spread)

    def parameters(self, covariance_type, reg_covar, dtype, previous=None):
        """M-step from the running statistics (``previous``: see ``_models.m_step``)."""
        full = self.scatter.ndim == 3
        W = self.scatter * self.mass[:, None, None] if full else self.scatter * self.mass[:, None]
        stats = Statistics(self.mass, np.zeros_like(self.means), W, self.means, full)
        return parameters_from_statistics(stats, covariance_type, reg_covar, dtype, previous)


def parameters_from_statistics(stats, covariance_type, reg_covar, dtype, previous=None):
    """M-step: Parameters in ``dtype`` from reduced statistics (``previous``
    covariances warm-start the iterative mclust models)."""
    weights, means, covariances = _models.m_step(
        stats.N, stats.S, stats.W, stats.shift.astype(np.float64), covariance_type, reg_covar,
        previous)
    prec_chol = _models.precision_cholesky(covariances, covariance_type)
    params = Parameters(weights.astype(dtype), means.astype(dtype),
                        covariances.astype(dtype), prec_chol.astype(dtype))
    _models.check_representable(params, covariance_type)
    return params


def e_step_statistics(X, sample_weight, params, covariance_type, n_threads):
    """One fused E-step + accumulation pass under ``params``.

    Returns
    -------
    stats : Statistics
        Reduced, around the kernels' shift (the means, or one centre).
    log_likelihood : float
        sum_i w_i log p(x_i) (unnormalised).
    """
    kp = _models.kernel_parameters(params.weights, params.means,
                                   params.precisions_cholesky, covariance_type, X.dtype)
    stats = Statistics.zeros(kp.shift, kp.mode, n_threads)
    loglik = np.zeros(len(stats.N))
    weighted = sample_weight.shape[0] > 0
    for start, stop in row_ranges(X):
        suffstats.em_pass(X[start:stop], sample_weight[start:stop] if weighted else sample_weight,
                          kp.shift, kp.prec, kp.coef, kp.offsets, kp.mode,
                          stats.N, stats.S, stats.W, loglik, n_threads)
    return stats.reduced(), float(loglik.sum())


class InMemoryData:
    """Validated X (in memory or memory-mapped) and its weights, as EM sees them.

    ``_dask.DaskData`` offers the same three members for a Dask array.
    """

    def __init__(self, X, sample_weight):
        self.X, self.sample_weight, self.dtype = X, sample_weight, X.dtype
        self.total_weight = X.shape[0] if sample_weight is None else float(sample_weight.sum())
        self._weights_arg = np.empty(0, X.dtype) if sample_weight is None else sample_weight

    def statistics(self, params, covariance_type, n_threads):
        """One E-step + accumulation pass: (reduced Statistics, sum_i w_i log p(x_i))."""
        return e_step_statistics(self.X, self._weights_arg, params, covariance_type, n_threads)

    def initialisation_data(self, random_state):
        """Rows to initialise from: all of them, with their weights and total weight."""
        return self.X, self.sample_weight, self.total_weight


def responsibility_statistics(X_blocks_and_resp, shift, dtype, covariance_type, n_threads):
    """Statistics for responsibilities given block by block.

    Parameters
    ----------
    X_blocks_and_resp : iterable of (X_block, resp)
        C-contiguous rows of X and their responsibilities (float64, shape
        (len(X_block), k)); rows never given have zero responsibility.
    shift : ndarray of shape (k, d)
    """
    # Per-component shifts (exact), except the diagonal models' GEMM mode,
    # which takes the shifts' mean as its one centre and is far cheaper.
    full = _models.uses_full_kernel(covariance_type)
    mode = _models.kernel_mode(covariance_type, *np.shape(shift), common_shift=not full)
    if mode == _models.DIAG_GEMM:
        shift = np.broadcast_to(np.mean(shift, axis=0), np.shape(shift))
    stats = Statistics.zeros(np.ascontiguousarray(shift, dtype=dtype), mode, n_threads)
    for X_block, resp in X_blocks_and_resp:
        suffstats.accumulate_responsibilities(X_block, resp, stats.shift, mode,
                                              stats.N, stats.S, stats.W, n_threads)
    return stats.reduced()
