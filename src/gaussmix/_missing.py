"""Missing values (NaN) marginalised out: ``nan_policy="marginalize"``.

Rows are grouped by missingness pattern. Under component k, a row observing
the coordinates O (missing M) has x_M | x_O ~ N(mu_M + B_k (x_O - mu_O), C_k)
with C_k = inv(P_MM) and B_k = -C_k P_MO (P the precision). The row filled
with that conditional mean, x_hat, has the full-dimensional Mahalanobis
distance (x_hat - mu)^T P (x_hat - mu) of the marginal over O, and
log det inv(Sigma_OO) = log det P - log det P_MM. So one compiled pass
(``_suffstats.em_pass_filled``) runs every incomplete row, pattern after
pattern, under the components' own factors: it gives each row's marginal
log-density (the E-step) and the expected full statistics the M-step needs
(Ghahramani & Jordan 1994): the filled rows' N, S, W plus r C_k on W's M
block. It factors P_MM once per run of a pattern's rows in a chunk; no
per-row Python, no n x k array, and the M-step is unchanged for every
covariance model.

Rows without NaN go through the complete-data kernels as one pattern; data
without any NaN never reach this module (bit-for-bit the complete-data fit).
Rows with every value missing carry no information: fit ignores them, and
prediction gives them log-density 0 (the empty marginal) and the mixture
weights as posterior.
"""
import numpy as np

from . import _covariance, _models
from ._blocks import take_rows
from ._em import BLOCK_ROWS, InMemoryData, Statistics, pass_statistics, row_blocks
from ._far_rows import redo_far_rows
from ._kernels import estep, suffstats
from ._threading import kernel_team, team_size

NAN_POLICIES = ("raise", "marginalize")
NOTHING_OBSERVED = "Every value of X is missing (NaN): nothing to fit."
_LOG_2PI = np.log(2 * np.pi)


def marginalizes(estimator):
    """True when ``estimator`` takes NaN as missing values."""
    return getattr(estimator, "nan_policy", "raise") == "marginalize"


def has_nan(X):
    """True when X (finite apart from NaN) holds a NaN, checked block by block."""
    step = max(1, (1 << 20) // max(1, X.shape[1]))
    return any(np.isnan(X[start:start + step].sum(dtype=np.float64))
               for start in range(0, X.shape[0], step))


class Patterns:
    """The rows of X grouped by which coordinates they observe.

    Attributes
    ----------
    observed : ndarray of bool, shape (n_patterns, n_features)
    order : ndarray of intp, shape (n_samples,)
        Row indices, pattern after pattern (rows in their order within one).
    bounds : ndarray of intp, shape (n_patterns + 1,)
        Pattern p's rows are ``order[bounds[p]:bounds[p + 1]]``.
    """

    def __init__(self, X):
        n, d = X.shape
        width = (d + 7) // 8
        packed = np.empty((n, width), dtype=np.uint8)
        step = max(1, (1 << 20) // d)
        for start in range(0, n, step):
            packed[start:start + step] = np.packbits(np.isnan(X[start:start + step]), axis=1)
        keys = packed.view(np.dtype((np.void, width))).ravel()
        self.order = np.argsort(keys, kind="stable")      # rows, pattern after pattern
        del keys
        packed = packed[self.order]
        starts = np.flatnonzero(np.concatenate([[True], (packed[1:] != packed[:-1]).any(axis=1)]))
        self.observed = ~np.unpackbits(packed[starts], axis=1, count=d).astype(bool)
        self.bounds = np.append(starts, n).astype(np.intp)

    def __len__(self):
        return len(self.observed)

    def rows(self, p):
        return self.order[self.bounds[p]:self.bounds[p + 1]]

    def complete(self):
        """Index of the pattern that observes everything, or None."""
        found = np.flatnonzero(self.observed.all(axis=1))
        return int(found[0]) if found.size else None

    def empty(self):
        """Index of the pattern that observes nothing, or None."""
        found = np.flatnonzero(~self.observed.any(axis=1))
        return int(found[0]) if found.size else None


class Mixture:
    """A mixture's parameters as the marginals need them (float64): the upper
    precision factors U (k, d, d), P = U U^T, or the diagonals (k, d) of a
    diagonal layout."""

    def __init__(self, log_weights, means, precisions_cholesky, covariance_type):
        layout = _covariance.model(covariance_type).layout
        self.log_weights = np.asarray(log_weights, dtype=np.float64)
        self.means = np.ascontiguousarray(means, dtype=np.float64)
        k, d = self.means.shape
        self.diagonal = layout.diagonal
        U = np.asarray(layout.per_component(
            np.asarray(precisions_cholesky, dtype=np.float64), k, d))
        self.factors = np.ascontiguousarray(U.reshape(k, -1))
        self.precisions = np.ascontiguousarray(U ** 2 if self.diagonal
                                               else U @ np.swapaxes(U, 1, 2))
        diagonals = U if self.diagonal else np.diagonal(U, axis1=1, axis2=2)
        self.log_det_factors = np.log(diagonals).sum(axis=1)      # log det(P) / 2

    def conditionals(self, obs, mis):
        """The law of the missing coordinates given the observed ones, for G
        patterns missing equally many (m) coordinates, under each component:
        x_M | x_O ~ N(mu_M + B (x_O - mu_O), C), C = inv(P_MM), B = -C P_MO.

        Parameters
        ----------
        obs, mis : ndarray of intp, shapes (G, o) and (G, m)

        Returns
        -------
        B : ndarray (G, k, m, o), or None for a diagonal layout (B = 0)
        C : ndarray (G, k, m, m), or its diagonals (G, k, m)
        """
        if self.diagonal:
            return None, 1.0 / np.moveaxis(self.precisions[:, mis], 0, 1)

        def block(rows, cols):
            return np.moveaxis(self.precisions[:, rows[:, :, None], cols[:, None, :]], 0, 1)
        C = np.linalg.inv(block(mis, mis))
        return -C @ block(mis, obs), C


class PartialRows:
    """The rows of X that miss some but not all values, laid out for
    ``_suffstats.em_pass_filled``: positions (their rows pattern after pattern,
    the patterns ordered by how many values they miss), each position's
    pattern, and the patterns' observed and missing coordinates."""

    def __init__(self, patterns, ids):
        d = patterns.observed.shape[1]
        ids = np.asarray(ids, dtype=np.intp)
        ids = ids[np.argsort((~patterns.observed[ids]).sum(axis=1), kind="stable")]
        observed = patterns.observed[ids]
        missing = (~observed).sum(axis=1)
        self.n_patterns = ids.size
        counts = patterns.bounds[ids + 1] - patterns.bounds[ids]
        self.rows = (np.concatenate([patterns.rows(p) for p in ids]) if ids.size
                     else np.empty(0, dtype=np.intp))
        self.pattern = np.repeat(np.arange(ids.size, dtype=np.intp), counts)
        self.bounds = np.concatenate([[0], np.cumsum(counts)]).astype(np.intp)
        self.obs_idx = (np.flatnonzero(observed.ravel()) % d).astype(np.intp)
        self.miss_idx = (np.flatnonzero(~observed.ravel()) % d).astype(np.intp)
        self.obs_ptr = np.concatenate([[0], np.cumsum(d - missing)]).astype(np.intp)
        self.miss_ptr = np.concatenate([[0], np.cumsum(missing)]).astype(np.intp)

    def groups(self):
        """The patterns in groups that miss equally many (m) values, as
        (slice of patterns, obs (G, o), mis (G, m)) (``Mixture.conditionals``)."""
        d = self.obs_ptr[1] - self.obs_ptr[0] + self.miss_ptr[1] - self.miss_ptr[0]
        missing = np.diff(self.miss_ptr)
        for m in np.unique(missing):
            where = np.flatnonzero(missing == m)
            group = slice(where[0], where[-1] + 1)
            yield (group,
                   self.obs_idx[self.obs_ptr[group.start]:self.obs_ptr[group.stop]].reshape(
                       -1, d - m),
                   self.miss_idx[self.miss_ptr[group.start]:self.miss_ptr[group.stop]].reshape(
                       -1, m))

    def __len__(self):
        return self.rows.size

    def rows_of(self, q):
        """The rows of X of pattern q (in this table's order)."""
        return self.rows[self.bounds[q]:self.bounds[q + 1]]

    def run(self, X, weights, mixture, threads, outputs=None, positions=slice(None)):
        """``em_pass_filled`` over the ``positions``: the expected statistics
        (N, S, W, W full for a full layout, around the means) and the
        log-likelihood, or, with ``outputs`` = (norm, resp (positions, k)),
        those filled."""
        k, d = mixture.means.shape
        width = d if mixture.diagonal else d * d
        N, S, W = np.zeros((threads, k)), np.zeros((threads, k, d)), np.zeros((threads, k, width))
        loglik = np.zeros(threads)
        norm, resp = outputs if outputs is not None else (np.empty(0), np.empty((0, k)))
        precisions = mixture.precisions.reshape(k, width)
        if suffstats.em_pass_filled(X, weights, self.rows[positions], self.pattern[positions],
                                    self.obs_ptr, self.obs_idx, self.miss_ptr, self.miss_idx,
                                    mixture.log_weights + mixture.log_det_factors,
                                    mixture.means, precisions, mixture.factors,
                                    mixture.diagonal, N, S, W, loglik, norm, resp):
            raise ValueError(_covariance.FIT_FAILED)    # some P_MM not positive definite
        if outputs is not None:
            return None
        N, S, W = N.sum(axis=0), S.sum(axis=0), W.sum(axis=0)
        if not mixture.diagonal:
            W = W.reshape(k, d, d)
            W = np.tril(W) + np.swapaxes(np.tril(W, -1), 1, 2)
        return N, S, W, float(loglik.sum())


def recentred(stats, target):
    """Reduced ``stats`` (summed around stats.shift) summed around ``target``
    instead, W as full d x d blocks (or diagonals)."""
    delta = target - stats.shift.astype(np.float64)
    N, S = stats.N, stats.S
    if stats.full:
        W = np.tril(stats.W) + np.swapaxes(np.tril(stats.W, -1), 1, 2)
        SD = S[:, :, None] * delta[:, None, :]
        W = W - SD - np.swapaxes(SD, 1, 2) + N[:, None, None] * delta[:, :, None] * delta[:, None, :]
    else:
        W = stats.W - 2 * delta * S + N[:, None] * delta * delta
    return Statistics(N.copy(), S - N[:, None] * delta, W, target, stats.full)


class MissingData:
    """X with NaN, and its weights, as EM sees them (``_em.InMemoryData``'s members).

    Rows with every value missing are left out of the pass and of
    ``total_weight``.

    Parameters
    ----------
    X : ndarray (n_samples, n_features), finite apart from NaN
    sample_weight : ndarray (n_samples,), already rescaled, or None
    weight_unit : float
        Original weight of one rescaled unit (``_em.rescaled_weights``).
    n_components : int
    allow_empty : bool, default=False
        Accept an X with nothing observed (a Dask block), instead of raising.
    """

    has_missing = True

    def __init__(self, X, sample_weight, weight_unit, n_components, allow_empty=False):
        self.n_components = n_components
        self.X, self.sample_weight, self.dtype = X, sample_weight, X.dtype
        self.weight_unit = weight_unit
        self._weights_arg = np.empty(0, X.dtype) if sample_weight is None else sample_weight
        patterns = Patterns(X)
        empty, complete = patterns.empty(), patterns.complete()
        # the complete rows (ascending), and the others laid out for the filled pass
        self.complete_rows = (np.sort(patterns.rows(complete)) if complete is not None
                              else np.empty(0, dtype=np.intp))
        self.partial = PartialRows(patterns, [p for p in range(len(patterns))
                                              if p not in (empty, complete)])
        if not len(self.partial) and not self.complete_rows.size and not allow_empty:
            raise ValueError(NOTHING_OBSERVED)
        weighted = self._weights_arg.shape[0] > 0
        self._partial_weights = (np.ascontiguousarray(self._weights_arg[self.partial.rows])
                                 if weighted else self._weights_arg)
        self.total_weight = (len(self.partial) + self.complete_rows.size
                             if self.sample_weight is None else
                             float(self.sample_weight[self.partial.rows].sum(dtype=np.float64)
                                   + self.sample_weight[self.complete_rows].sum(
                                       dtype=np.float64)))

    def _used_rows(self):
        """The rows that observe something, ascending."""
        return np.sort(np.concatenate([self.complete_rows, self.partial.rows]))

    def statistics(self, kernel_params, n_threads, mixture):
        """One marginal E-step + expected statistics: (reduced Statistics
        around the means of ``mixture``, sum_i w_i log p(x_i, observed))."""
        k, d = mixture.means.shape
        full = not mixture.diagonal
        loglik = 0.0
        N, S = np.zeros(k), np.zeros((k, d))
        W = np.zeros((k, d, d) if full else (k, d))
        if self.complete_rows.size:
            stats, loglik = pass_statistics(self.X, self._weights_arg, kernel_params, n_threads,
                                            self.complete_rows)
            stats = recentred(stats, mixture.means)
            N, S, W = stats.N, stats.S, stats.W
        if len(self.partial):
            threads = team_size(n_threads, len(self.partial), _filled_flops(mixture))
            n_k, s_k, w_k, partial_loglik = self.partial.run(self.X, self._partial_weights,
                                                              mixture, threads)
            N, S, W, loglik = N + n_k, S + s_k, W + w_k, loglik + partial_loglik
        return Statistics(N, S, W, mixture.means.copy(), full), loglik

    def moments(self):
        """Weighted mean and covariance (``_em.InMemoryData.moments``) of the
        rows the initialisation uses (``initialisation_rows``)."""
        X, weights, _ = self.initialisation_data(None)
        return InMemoryData(X, None if weights is None
                            else weights * self.weight_unit).moments()

    def initialisation_data(self, random_state):
        """Rows to initialise from (``initialisation_rows``), copying only the
        complete rows when they are enough."""
        if self.complete_rows.size >= enough_complete_rows(self.X.shape[1], self.n_components):
            rows = self.complete_rows
        else:
            rows = self._used_rows()
        return initialisation_rows(take_rows(self.X, rows), None if self.sample_weight is None
                                   else self.sample_weight[rows], self.n_components)


def enough_complete_rows(n_features, n_components):
    """How many complete rows the initialisation needs to start from them alone."""
    return max(10 * n_features, n_components, 2)


def initialisation_rows(X, sample_weight, n_components):
    """Rows of X (with NaN) to initialise from, with their weights and total
    weight: the complete rows when there are at least ``10 * n_features`` (and
    ``n_components``) of them, else every row that observes something, its
    missing values replaced by its column's (weighted) observed mean."""
    seen = ~np.isnan(X)
    complete = seen.all(axis=1)
    if complete.all():
        rows = np.arange(X.shape[0])
    elif complete.sum() >= enough_complete_rows(X.shape[1], n_components):
        rows = np.flatnonzero(complete)
        X = take_rows(X, rows)
    else:
        rows = np.flatnonzero(seen.any(axis=1))
        X, seen = X[rows], seen[rows]
        w = (np.ones(len(rows)) if sample_weight is None
             else sample_weight[rows].astype(np.float64))
        means = (np.where(seen, X, 0).T @ w) / np.maximum(seen.T @ w, 1e-300)
        X = np.ascontiguousarray(np.where(seen, X, means.astype(X.dtype)), dtype=X.dtype)
    weights = None if sample_weight is None else sample_weight[rows]
    total = rows.size if weights is None else float(weights.sum(dtype=np.float64))
    return X, weights, total


def e_step(estimator, X, out_norm, out_labels, out_proba, n_threads):
    """Fill the asked outputs (non-empty arrays) of ``BaseMixture._e_step`` for X
    with NaN: each row's marginal over its observed coordinates (a row with
    none observed: log-density 0 and the weights as posterior)."""
    k, d = estimator.means_.shape
    dtype = np.result_type(X.dtype, estimator.means_.dtype)
    kp_full, _, log_weights = estimator._fitted_kernel_parameters(dtype)
    patterns = Patterns(X)
    empty, complete = patterns.empty(), patterns.complete()
    if empty is not None:
        prior = np.exp(log_weights - log_weights.max())
        prior /= prior.sum()
        _store(patterns.rows(empty), 0.0, int(np.argmax(prior)), prior, out_norm, out_labels,
               out_proba)
    if complete is not None:
        _predict_rows(X, patterns.rows(complete), kp_full, dtype, n_threads, out_norm,
                      out_labels, out_proba, (log_weights, estimator.means_,
                                              estimator.precisions_cholesky_,
                                              estimator.covariance_type))
    partial = PartialRows(patterns, [p for p in range(len(patterns)) if p not in (empty,
                                                                                complete)])
    if not len(partial):
        return
    mixture = Mixture(log_weights, estimator.means_, estimator.precisions_cholesky_,
                      estimator.covariance_type)
    X = np.ascontiguousarray(X, dtype=dtype)
    for start in range(0, len(partial), BLOCK_ROWS):
        positions = slice(start, start + BLOCK_ROWS)
        rows = partial.rows[positions]
        norm, proba = np.empty(rows.size), np.empty((rows.size, k))
        with kernel_team(n_threads, rows.size, _filled_flops(mixture)) as threads:
            partial.run(X, np.empty(0, dtype=dtype), mixture, threads, (norm, proba),
                        positions)
        _store(rows, norm, np.argmax(proba, axis=1), proba, out_norm, out_labels, out_proba)


def _filled_flops(mixture):
    """Floating-point operations per row of ``em_pass_filled``."""
    k, d = mixture.means.shape
    return _models.flops_per_row(_models.DIAG_LOOPS if mixture.diagonal else
                                 _models.FULL_BLAS, k, d)


def _predict_rows(X, rows, kp, dtype, n_threads, out_norm, out_labels, out_proba, far_model):
    """The E-step kernel over complete ``rows`` of X under ``kp``; rows too far
    for it are redone by ``_far_rows`` under ``far_model`` (log-weights, means,
    precision Cholesky factors, covariance type)."""
    k, o = kp.shift.shape
    flops = _models.flops_per_row(kp.mode, k, o)
    for block, index in row_blocks(X, rows):
        block = np.ascontiguousarray(block, dtype=dtype)
        norm = np.empty(index.size, dtype=dtype)
        labels = np.empty(index.size if out_labels.size else 0, dtype=np.intp)
        proba = np.empty((index.size, k) if out_proba.size else (0, k), dtype=dtype)
        with kernel_team(n_threads, index.size, flops) as threads:
            estep.e_step(block, kp.shift, kp.prec, kp.coef, kp.exact, kp.offsets, kp.mode,
                         norm, labels, proba, threads)
        if not np.isfinite(norm.min()):
            redo_far_rows(block, norm, labels, proba, *far_model)
        _store(index, norm, labels, proba, out_norm, out_labels, out_proba)


def _store(rows, norm, labels, proba, out_norm, out_labels, out_proba):
    """Write the asked outputs (non-empty arrays) of ``rows``."""
    if out_norm.size:
        out_norm[rows] = norm
    if out_labels.size:
        out_labels[rows] = labels
    if out_proba.size:
        out_proba[rows] = proba
