"""Missing values (NaN) marginalised out: ``nan_policy="marginalize"``.

Rows are grouped by missingness pattern. Under a pattern that observes the
coordinates O (missing M), component k's marginal over O is Gaussian
(mu_O, Sigma_OO): the existing compiled pass runs on the pattern's rows
restricted to O with the marginal's kernel constants, which gives each row's
log-density (the marginal, as the E-step needs) and the observed-coordinate
statistics N_k, S_k^O, W_k^OO under the right responsibilities.

Given x_O, x_M under component k is Gaussian with mean
mu_M + B_k (x_O - mu_O), B_k = Sigma_MO Sigma_OO^-1, and covariance
C_k = Sigma_MM - B_k Sigma_OM, which does not depend on the row. The expected
full statistics of the pattern (Ghahramani & Jordan 1994) are therefore an
affine image of (N_k, S_k^O, W_k^OO): with z = [1, x_O - c_O] and
x_hat - t = A_k z,

    sum_i r_ik [1, x_hat - t] [1, x_hat - t]^T = A_k (sum_i r_ik z z^T) A_k^T,

plus N_k C_k on the M block of W. O(k d^3) numpy per pattern, no per-row
Python, no n x k array. The patterns' statistics are summed around the
current means and go to the unchanged M-step of every covariance model.

Rows without NaN go through the full-dimensional kernels as one pattern; data
without any NaN never reach this module (bit-for-bit the complete-data fit).
Rows with every value missing carry no information: fit ignores them, and
prediction gives them log-density 0 (the empty marginal) and the mixture
weights as posterior.
"""
import numpy as np

from . import _covariance, _models
from ._blocks import take_rows
from ._em import BLOCK_ROWS, Statistics
from ._far_rows import redo_far_rows
from ._kernels import estep, suffstats
from ._threading import kernel_team, team_size

NAN_POLICIES = ("raise", "marginalize")
_LOG_2PI = np.log(2 * np.pi)
# Rows of one pattern copied (restricted to its observed columns) per kernel call.
PATTERN_BLOCK_ROWS = BLOCK_ROWS


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
        keys = np.ascontiguousarray(packed).view(np.dtype((np.void, width))).ravel()
        unique, inverse = np.unique(keys, return_inverse=True)
        missing = np.unpackbits(np.frombuffer(unique.tobytes(), dtype=np.uint8).reshape(
            len(unique), width), axis=1, count=d).astype(bool)
        self.observed = ~missing
        self.order = np.argsort(inverse.ravel(), kind="stable")
        self.bounds = np.concatenate([[0], np.cumsum(np.bincount(inverse.ravel(),
                                                                 minlength=len(unique)))])

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
    """A mixture's parameters as the marginals need them (float64).

    ``covariances``: (k, d, d) matrices, or (k, d) variances for the
    diagonal layouts.
    """

    def __init__(self, log_weights, means, covariances, covariance_type):
        layout = _covariance.model(covariance_type).layout
        self.log_weights = np.asarray(log_weights, dtype=np.float64)
        self.means = np.asarray(means, dtype=np.float64)
        k, d = self.means.shape
        self.diagonal = layout.diagonal
        self.covariances = np.asarray(layout.per_component(
            np.asarray(covariances, dtype=np.float64), k, d))

    def marginal(self, observed, dtype):
        """The pattern's marginal: kernel constants over the observed
        coordinates, and (B, C) of the conditional law of the missing ones
        (None for the diagonal layouts, whose B is zero and C the variances)."""
        mu = self.means[:, observed]
        k, o = mu.shape
        if self.diagonal:
            U = 1.0 / np.sqrt(self.covariances[:, observed])
            log_det = np.log(U).sum(axis=1)
            mode, prec, conditional = _models.DIAG_LOOPS, U, None
        else:
            cov = self.covariances
            sigma_oo = cov[:, observed][:, :, observed]
            lower = np.linalg.cholesky(sigma_oo)
            U = np.swapaxes(np.linalg.inv(lower), 1, 2)   # U U^T = inv(Sigma_OO)
            log_det = -np.log(np.diagonal(lower, axis1=1, axis2=2)).sum(axis=1)
            mode = _models.kernel_mode("full", k, o, common_shift=False)
            prec = U.reshape(k, o * o)
            missing = ~observed
            # Sigma_MO U gives B = Sigma_MO U U^T and C = Sigma_MM - (Sigma_MO U)(Sigma_MO U)^T
            mo_u = cov[:, missing][:, :, observed] @ U
            B = mo_u @ np.swapaxes(U, 1, 2)
            C = cov[:, missing][:, :, missing] - mo_u @ np.swapaxes(mo_u, 1, 2)
            conditional = (B, C)
        offsets = self.log_weights + log_det - 0.5 * o * _LOG_2PI
        empty = np.empty((0, 0))
        kp = _models.KernelParameters(mode, np.ascontiguousarray(mu, dtype=dtype),
                                      np.ascontiguousarray(prec, dtype=dtype), empty, offsets)
        return kp, U, conditional


def _recentre(stats, target):
    """``stats`` (reduced, summed around stats.shift) moved to sum around ``target``."""
    delta = target - stats.shift.astype(np.float64)
    N, S = stats.N, stats.S
    if stats.full:
        W = np.tril(stats.W) + np.swapaxes(np.tril(stats.W, -1), 1, 2)
        SD = S[:, :, None] * delta[:, None, :]
        W = W - SD - np.swapaxes(SD, 1, 2) + N[:, None, None] * delta[:, :, None] * delta[:, None, :]
    else:
        W = stats.W - 2 * delta * S + N[:, None] * delta * delta
    return N.copy(), S - N[:, None] * delta, W


def _expected_statistics(stats, observed, mixture, conditional, N, S, W):
    """Add a pattern's expected full statistics, around the means, to N, S, W.

    ``stats``: the pass's statistics over the observed coordinates O, around
    their shift c_O; ``conditional``: (B, C) of the missing coordinates M.
    """
    missing = ~observed
    mu = mixture.means
    n_k = stats.N
    f = stats.shift.astype(np.float64) - mu[:, observed]       # c_O - mu_O
    if conditional is None:   # diagonal: x_M independent of x_O, mean mu_M
        S_o, W_o = stats.S, stats.W
        N += n_k
        S[:, observed] += S_o + n_k[:, None] * f
        W[:, observed] += W_o + 2 * f * S_o + n_k[:, None] * f * f
        W[:, missing] += n_k[:, None] * mixture.covariances[:, missing]
        return
    B, C = conditional
    k, o = f.shape
    d = observed.size
    W_oo = np.tril(stats.W) + np.swapaxes(np.tril(stats.W, -1), 1, 2)
    moments = np.empty((k, o + 1, o + 1))          # sum_i r_ik z z^T, z = [1, x_O - c_O]
    moments[:, 0, 0] = n_k
    moments[:, 0, 1:] = moments[:, 1:, 0] = stats.S
    moments[:, 1:, 1:] = W_oo
    index = np.concatenate([np.flatnonzero(observed), np.flatnonzero(missing)])
    A = np.zeros((k, d, o + 1))                    # x_hat - mu = A z, rows in ``index`` order
    A[:, :o, 0] = f
    A[:, np.arange(o), np.arange(1, o + 1)] = 1.0
    A[:, o:, 0] = np.einsum("kmo,ko->km", B, f)    # mean shift mu_M + B (c_O - mu_O) - mu_M
    A[:, o:, 1:] = B
    AM = A @ moments
    ordered_W = AM @ np.swapaxes(A, 1, 2)
    ordered_W[:, o:, o:] += n_k[:, None, None] * C
    N += n_k
    S[:, index] += AM[:, :, 0]
    W[np.ix_(np.arange(k), index, index)] += ordered_W


class MissingData:
    """X with NaN, and its weights, as EM sees them (``_em.InMemoryData``'s members).

    Rows with every value missing are left out of the pass and of
    ``total_weight``.
    """

    def __init__(self, data):
        X = data.X
        self.X, self.sample_weight, self.dtype = X, data.sample_weight, X.dtype
        self.weight_unit = data.weight_unit
        self._weights_arg = data._weights_arg
        self.patterns = Patterns(X)
        empty = self.patterns.empty()
        self._pattern_ids = [p for p in range(len(self.patterns)) if p != empty]
        if not self._pattern_ids:
            raise ValueError("Every value of X is missing (NaN): nothing to fit.")
        used = np.concatenate([self.patterns.rows(p) for p in self._pattern_ids])
        self.total_weight = (used.size if self.sample_weight is None
                             else float(self.sample_weight[used].sum(dtype=np.float64)))

    def _blocks(self, p, columns=None):
        """(rows of X, their weights or an empty array) of pattern p, block by block."""
        rows = self.patterns.rows(p)
        weighted = self._weights_arg.shape[0] > 0
        for start in range(0, rows.size, PATTERN_BLOCK_ROWS):
            index = rows[start:start + PATTERN_BLOCK_ROWS]
            block = take_rows(self.X, index)
            if columns is not None:
                block = np.ascontiguousarray(block[:, columns])
            yield block, (self._weights_arg[index] if weighted else self._weights_arg)

    def statistics(self, kernel_params, n_threads, mixture):
        """One marginal E-step + expected statistics: (reduced Statistics
        around the means of ``mixture``, sum_i w_i log p(x_i, observed))."""
        k, d = mixture.means.shape
        full = not mixture.diagonal
        N, S = np.zeros(k), np.zeros((k, d))
        W = np.zeros((k, d, d) if full else (k, d))
        loglik = 0.0
        complete = self.patterns.complete()
        for p in self._pattern_ids:
            observed = self.patterns.observed[p]
            n_rows = self.patterns.bounds[p + 1] - self.patterns.bounds[p]
            if p == complete:
                kp, conditional = kernel_params, None
            else:
                kp, _, conditional = mixture.marginal(observed, self.dtype)
            o = int(observed.sum())
            threads = team_size(n_threads, n_rows, _models.flops_per_row(kp.mode, k, o))
            stats = Statistics.zeros(kp.shift, kp.mode, threads)
            slot_loglik = np.zeros(len(stats.N))
            for block, weights in self._blocks(p, None if p == complete else observed):
                suffstats.em_pass(block, weights, kp.shift, kp.prec, kp.coef, kp.offsets,
                                  kp.mode, stats.N, stats.S, stats.W, slot_loglik, threads)
            stats = stats.reduced()
            loglik += float(slot_loglik.sum())
            if p == complete:
                n_k, s_k, w_k = _recentre(stats, mixture.means)
                N += n_k
                S += s_k
                W += w_k
            else:
                _expected_statistics(stats, observed, mixture, conditional, N, S, W)
        return Statistics(N, S, W, mixture.means.copy(), full), loglik

    def initialisation_data(self, random_state):
        """Rows to initialise from, with their weights and total weight: the
        complete rows when there are at least ``10 * n_features`` of them,
        else every row with its missing values replaced by its column's
        (weighted) observed mean."""
        d = self.X.shape[1]
        complete = self.patterns.complete()
        rows = self.patterns.rows(complete) if complete is not None else np.empty(0, np.intp)
        if rows.size >= max(10 * d, 2):
            X = take_rows(self.X, rows)
        else:
            rows = np.concatenate([self.patterns.rows(p) for p in self._pattern_ids])
            X = take_rows(self.X, np.sort(rows))
            rows = np.sort(rows)
            w = (np.ones(len(rows)) if self.sample_weight is None
                 else self.sample_weight[rows].astype(np.float64))
            seen = ~np.isnan(X)
            means = (np.where(seen, X, 0).T @ w) / np.maximum(seen.T @ w, 1e-300)
            X = np.where(seen, X, means.astype(X.dtype)).astype(self.dtype)
        weights = None if self.sample_weight is None else self.sample_weight[rows]
        total = rows.size if weights is None else float(weights.sum(dtype=np.float64))
        return X, weights, total


def e_step(estimator, X, out_norm, out_labels, out_proba, n_threads):
    """Fill the asked outputs (non-empty arrays) of ``BaseMixture._e_step`` for X
    with NaN: each row's marginal over its observed coordinates (a row with
    none observed: log-density 0 and the weights as posterior)."""
    k, d = estimator.means_.shape
    dtype = np.result_type(X.dtype, estimator.means_.dtype)
    kp_full, _, log_weights = estimator._fitted_kernel_parameters(dtype)
    mixture = Mixture(log_weights, estimator.means_, estimator.covariances_,
                      estimator.covariance_type)
    prior = np.exp(log_weights - log_weights.max())
    prior /= prior.sum()
    patterns = Patterns(X)
    for p in range(len(patterns)):
        rows, observed = patterns.rows(p), patterns.observed[p]
        if not observed.any():
            _store(rows, 0.0, int(np.argmax(prior)), prior, out_norm, out_labels, out_proba)
            continue
        if observed.all():
            kp, U, columns = kp_full, estimator.precisions_cholesky_, None
            far_means, far_type = estimator.means_, estimator.covariance_type
        else:
            kp, U, _ = mixture.marginal(observed, dtype)
            columns, far_means = observed, mixture.means[:, observed]
            far_type = "diag" if mixture.diagonal else "full"
        flops = _models.flops_per_row(kp.mode, k, int(observed.sum()))
        for start in range(0, rows.size, PATTERN_BLOCK_ROWS):
            index = rows[start:start + PATTERN_BLOCK_ROWS]
            block = take_rows(X, index).astype(dtype, copy=False)
            if columns is not None:
                block = np.ascontiguousarray(block[:, columns])
            norm = np.empty(index.size, dtype=dtype)
            labels = np.empty(index.size if out_labels.size else 0, dtype=np.intp)
            proba = np.empty((index.size, k) if out_proba.size else (0, k), dtype=dtype)
            with kernel_team(n_threads, index.size, flops) as threads:
                estep.e_step(block, kp.shift, kp.prec, kp.coef, kp.offsets, kp.mode,
                             norm, labels, proba, threads)
            if not np.isfinite(norm.min()):
                redo_far_rows(block, norm, labels, proba, log_weights, far_means, U, far_type)
            _store(index, norm, labels, proba, out_norm, out_labels, out_proba)


def _store(rows, norm, labels, proba, out_norm, out_labels, out_proba):
    """Write the asked outputs (non-empty arrays) of ``rows``."""
    if out_norm.size:
        out_norm[rows] = norm
    if out_labels.size:
        out_labels[rows] = labels
    if out_proba.size:
        out_proba[rows] = proba
