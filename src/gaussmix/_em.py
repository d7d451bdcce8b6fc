"""Passes over X that produce sufficient statistics, and the maximum-likelihood M-step.

A pass cuts X into row chunks, lets each OpenMP thread accumulate its own
statistics (compiled core), then sums the per-thread slots in thread order.
"""
from dataclasses import dataclass

import numpy as np

from . import _covariance, _models
from ._blocks import row_ranges, take_rows
from ._kernels import suffstats
from ._threading import team_size

# Rows handed to the compiled core per call when responsibilities are made in
# Python (initialisation), bounding that temporary to BLOCK_ROWS x k.
BLOCK_ROWS = 1 << 14
# Bytes of the float64 copies of X that ``InMemoryData.moments`` makes per block.
MOMENT_BLOCK_BYTES = 1 << 20


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


def parameters_from_statistics(stats, covariance_type, reg_covar, dtype, previous=None):
    """M-step: Parameters in ``dtype`` from reduced statistics (``previous``
    covariances warm-start the iterative mclust models)."""
    model = _covariance.model(covariance_type)
    weights, means, covariances = model.m_step(
        stats.N, stats.S, stats.W, stats.shift.astype(np.float64), reg_covar, previous)
    prec_chol = model.layout.precision_cholesky(covariances)
    params = Parameters(weights.astype(dtype), means.astype(dtype),
                        covariances.astype(dtype), prec_chol.astype(dtype))
    model.layout.check_representable(params)
    return params


def pass_statistics(X, sample_weight, kernel_params, n_threads, rows=None):
    """One fused E-step + accumulation pass under the per-component constants
    ``kernel_params`` (``_models.KernelParameters`` in X's dtype).

    ``sample_weight`` is empty for unweighted rows. ``rows``: only these rows
    of X (and of the weights), copied a block at a time; None: all of X.

    Returns
    -------
    stats : Statistics
        Reduced, around the kernels' shift (the means, or one centre).
    log_likelihood : float
        sum_i w_i log p(x_i) (unnormalised).
    """
    kp = kernel_params
    n = X.shape[0] if rows is None else rows.size
    threads = team_size(n_threads, n, _models.flops_per_row(kp.mode, *kp.shift.shape))
    stats = Statistics.zeros(kp.shift, kp.mode, threads)
    loglik = np.zeros(len(stats.N))
    weighted = sample_weight.shape[0] > 0
    for block, index in row_blocks(X, rows):
        suffstats.em_pass(block, sample_weight[index] if weighted else sample_weight,
                          kp.shift, kp.prec, kp.coef, kp.exact, kp.offsets, kp.mode,
                          stats.N, stats.S, stats.W, loglik, threads)
    return stats.reduced(), float(loglik.sum())


def row_blocks(X, rows=None):
    """(block of X, its index into X's rows): X's rows in order (views), or
    the given ``rows``, copied BLOCK_ROWS at a time."""
    if rows is None:
        for start, stop in row_ranges(X):
            yield X[start:stop], slice(start, stop)
        return
    for start in range(0, rows.size, BLOCK_ROWS):
        index = rows[start:start + BLOCK_ROWS]
        yield take_rows(X, index), index


def rescaled_weights(sample_weight, dtype):
    """Checked sample weights scaled to mean 1, and the scale (the original
    weight of one unit, float64).

    Weights act only relative to each other in maximum likelihood, and mean 1
    keeps tiny or huge weights clear of the M-step's absolute 10 eps guard on
    N_k and of overflow; a Bayesian update multiplies its statistics by the
    unit again, as its priors weigh against the weights' true sum.
    """
    largest = float(sample_weight.max())  # a sum of huge weights overflows
    scaled = sample_weight / largest
    mean = float(scaled.mean(dtype=np.float64))
    return (scaled / mean).astype(dtype), largest * mean


class InMemoryData:
    """Validated X (in memory or memory-mapped) and its weights, as EM sees them.

    ``_dask.DaskData`` offers the same members for a Dask array.

    Attributes
    ----------
    X, sample_weight, dtype
        ``sample_weight`` rescaled to mean 1 (``rescaled_weights``), or None.
    total_weight : float
        Sum of the rescaled weights (the number of rows when unweighted).
    weight_unit : float
        Original sample weight of one rescaled unit (1 when unweighted).
    """

    has_missing = False

    def __init__(self, X, sample_weight):
        self.weight_unit = 1.0
        if sample_weight is not None:
            sample_weight, self.weight_unit = rescaled_weights(sample_weight, X.dtype)
        self.X, self.sample_weight, self.dtype = X, sample_weight, X.dtype
        self.total_weight = X.shape[0] if sample_weight is None else float(sample_weight.sum())
        self._weights_arg = np.empty(0, X.dtype) if sample_weight is None else sample_weight

    def moments(self):
        """Weighted mean (d,) and covariance (d, d) of X, float64, the
        covariance with the unbiased divisor (sum of original weights - 1),
        computed block by block (no copy of X)."""
        d = self.X.shape[1]
        weights = self.sample_weight
        rows = max(1, MOMENT_BLOCK_BYTES // (8 * d))
        total, mean = 0.0, np.zeros(d)
        for start, stop in row_ranges(self.X, rows):
            block = self.X[start:stop].astype(np.float64)
            w = np.ones(stop - start) if weights is None else weights[start:stop].astype(
                np.float64)
            total += w.sum()
            mean += w @ block
        mean /= total
        scatter = np.zeros((d, d))
        for start, stop in row_ranges(self.X, rows):
            centred = self.X[start:stop].astype(np.float64) - mean
            weighted = centred if weights is None else centred * weights[start:stop, None]
            scatter += weighted.T @ centred
        return mean, scatter * self.weight_unit / (total * self.weight_unit - 1.0)

    def statistics(self, kernel_params, n_threads):
        """One E-step + accumulation pass under ``kernel_params``:
        (reduced Statistics, sum_i w_i log p(x_i))."""
        return pass_statistics(self.X, self._weights_arg, kernel_params, n_threads)

    def initialisation_data(self, random_state):
        """Rows to initialise from: all of them, with their weights and total weight."""
        return self.X, self.sample_weight, self.total_weight


def responsibility_statistics(X_blocks_and_resp, shift, dtype, covariance_type, n_threads,
                              n_rows):
    """Statistics for responsibilities given block by block.

    Parameters
    ----------
    X_blocks_and_resp : iterable of (X_block, resp)
        C-contiguous rows of X and their responsibilities (float64, shape
        (len(X_block), k)); rows never given have zero responsibility.
    shift : ndarray of shape (k, d)
    n_threads : int or None
        Thread budget.
    n_rows : int
        Rows in all the blocks (with ``n_threads``, sets the thread count).
    """
    # Per-component shifts (exact), except the diagonal models' GEMM mode,
    # which takes the shifts' mean as its one centre and is far cheaper.
    full = not _covariance.model(covariance_type).layout.diagonal
    mode = _models.kernel_mode(covariance_type, *np.shape(shift), common_shift=not full)
    if mode == _models.DIAG_GEMM:
        shift = np.broadcast_to(np.mean(shift, axis=0), np.shape(shift))
    threads = team_size(n_threads, n_rows, _models.flops_per_row(mode, *np.shape(shift)))
    stats = Statistics.zeros(np.ascontiguousarray(shift, dtype=dtype), mode, threads)
    for X_block, resp in X_blocks_and_resp:
        suffstats.accumulate_responsibilities(X_block, resp, stats.shift, mode,
                                              stats.N, stats.S, stats.W, threads)
    return stats.reduced()
