"""Initial parameters: responsibilities from one of four strategies, then an
M-step over their statistics; user-given weights/means/precisions override.

The random draws follow scikit-learn's order for 'random', 'random_from_data'
and 'k-means++', so both libraries start from the same point for one seed;
except that 'k-means++' seeds on a random subsample of a large X, chosen as
'kmeans' chooses its own (``_kmeans.sample_rows``).
"""
import numpy as np

from . import _covariance, _kmeans
from ._blocks import row_ranges, take_rows
from ._em import BLOCK_ROWS, Parameters, responsibility_statistics

INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")


def _one_hot_blocks(X, labels, k, sample_weight):
    # One buffer for every block (each is consumed before the next is made):
    # a fresh n x k array per block cost more in page faults than the pass.
    buffer = np.empty((min(BLOCK_ROWS, X.shape[0]), k))
    for start, stop in row_ranges(X, BLOCK_ROWS):
        resp = buffer[:stop - start]
        resp.fill(0.0)
        w = 1.0 if sample_weight is None else sample_weight[start:stop]
        resp[np.arange(stop - start), labels[start:stop]] = w
        yield X[start:stop], resp


def _uniform_blocks(X, k, random_state, sample_weight):
    # uniform(size=(a, k)) then (b, k) draws the same numbers as one (a + b, k).
    for start, stop in row_ranges(X, BLOCK_ROWS):
        resp = random_state.uniform(size=(stop - start, k))
        resp /= resp.sum(axis=1)[:, None]
        if sample_weight is not None:
            resp *= sample_weight[start:stop, None]
        yield X[start:stop], resp


def _weighted_mean(X, sample_weight):
    total, weight = np.zeros(X.shape[1]), 0.0
    for start, stop in row_ranges(X, BLOCK_ROWS):
        w = np.ones(stop - start) if sample_weight is None else sample_weight[start:stop]
        total += w.astype(np.float64) @ X[start:stop]
        weight += float(w.sum(dtype=np.float64))
    return total / weight


def kmeans_plusplus_indices(X, k, random_state, sample_weight, n_threads):
    """Rows of X chosen by k-means++ seeding on ``_kmeans.sample_rows(X, ...)``:
    scikit-learn's rows for the same seed when that is all of X."""
    rows, sample, sample_w = _kmeans.sample_rows(X, k, random_state, sample_weight)
    indices = _kmeans.kmeans_plusplus(sample, k, random_state, sample_w, n_threads)
    return indices if rows is None else rows[indices]


def initial_statistics(X, sample_weight, k, init_params, covariance_type,
                       random_state, n_threads):
    """Statistics of the initial responsibilities chosen by ``init_params``."""
    n, d = X.shape
    if init_params in ("random_from_data", "k-means++"):
        if init_params == "random_from_data":
            indices = random_state.choice(n, size=k, replace=False)
        else:
            indices = kmeans_plusplus_indices(X, k, random_state, sample_weight, n_threads)
        rows = take_rows(X, indices)
        return responsibility_statistics([(rows, np.eye(k))], rows, X.dtype,
                                         covariance_type, n_threads, n_rows=k)
    if init_params == "kmeans":
        labels, centers = _kmeans.kmeans(X, k, random_state, sample_weight, n_threads)
        blocks, shift = _one_hot_blocks(X, labels, k, sample_weight), centers
    else:
        center = _weighted_mean(X, sample_weight)
        blocks = _uniform_blocks(X, k, random_state, sample_weight)
        shift = np.broadcast_to(center, (k, d))
    return responsibility_statistics(blocks, shift, X.dtype, covariance_type, n_threads,
                                     n_rows=n)


def _unassigned_second_moment(X, sample_weight, chosen_rows):
    """sum_i w_i x_i x_i^T over the rows not chosen by an index initialisation.

    scikit-learn's tied M-step assumes every row's responsibilities sum to one,
    so after 'random_from_data' / 'k-means++' its initial tied covariance also
    counts each unchosen row as an uncentred outer product. gaussmix follows
    that convention so both libraries start from the same tied covariance.
    """
    second_moment = np.zeros((X.shape[1], X.shape[1]))
    for start, stop in row_ranges(X, BLOCK_ROWS):
        block = X[start:stop].astype(np.float64)
        weighted = block if sample_weight is None else block * sample_weight[start:stop, None]
        second_moment += weighted.T @ block
    chosen = chosen_rows.astype(np.float64)
    return second_moment - chosen.T @ chosen


def initial_estimates(X, sample_weight, estimator, random_state, n_threads):
    """Mass, means and regularised covariances (float64) of the initial
    responsibilities chosen by the estimator's ``init_params`` (scikit-learn's
    ``_estimate_gaussian_parameters``): N_k + 10 eps, the weighted means, and
    the scatters about them over N_k plus ``reg_covar``."""
    k, cov_type = estimator.n_components, estimator.covariance_type
    entry = _covariance.model(cov_type)
    stats = initial_statistics(X, sample_weight, k, estimator.init_params, cov_type,
                               random_state, n_threads)
    _, means, covariances = entry.m_step(
        stats.N, stats.S, stats.W, stats.shift.astype(np.float64), estimator.reg_covar)
    nk = stats.N + 10 * np.finfo(np.float64).eps
    if entry.layout is _covariance.TIED and estimator.init_params in ("random_from_data",
                                                                      "k-means++"):
        covariances += _unassigned_second_moment(X, sample_weight, stats.shift) / nk.sum()
    return nk, means, covariances


def initial_parameters(X, sample_weight, total_weight, estimator, random_state, n_threads):
    """Parameters to start EM from, in X's dtype (scikit-learn's ``_initialize``)."""
    est = estimator
    entry = _covariance.model(est.covariance_type)
    given = (est.weights_init, est.means_init, est.precisions_init)
    if any(p is None for p in given):
        nk, means, covariances = initial_estimates(X, sample_weight, est, random_state,
                                                   n_threads)
        # Like scikit-learn: N_k / n, not renormalised (matters only for index inits).
        weights = nk / total_weight
    if est.weights_init is not None:
        weights = np.asarray(est.weights_init, dtype=np.float64)
    if est.means_init is not None:
        means = np.asarray(est.means_init, dtype=np.float64)
    if est.precisions_init is None:
        prec_chol = entry.layout.precision_cholesky(covariances)
    else:
        prec_chol = entry.layout.precision_cholesky_from_precisions(
            np.asarray(est.precisions_init, dtype=np.float64))
        covariances = entry.layout.covariances_from_cholesky(prec_chol)
    dtype = X.dtype
    params = Parameters(weights.astype(dtype), means.astype(dtype),
                        covariances.astype(dtype), prec_chol.astype(dtype))
    entry.layout.check_representable(params)
    return params
