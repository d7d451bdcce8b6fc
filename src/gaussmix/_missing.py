"""Missing values (NaN) marginalised out: ``nan_policy="marginalize"``.

Rows are grouped by missingness pattern. Under a pattern that observes the
coordinates O (missing M), component k's marginal over O is Gaussian
(mu_O, Sigma_OO): the compiled pass runs on the pattern's rows restricted to
O with the marginal's kernel constants, which gives each row's log-density
(the marginal, as the E-step needs) and the observed-coordinate statistics
N_k, S_k^O, W_k^OO under the right responsibilities. Patterns observing
equally many coordinates are handled in groups: their marginal factors come
from the precision matrices in stacked numpy (the Schur complement
P_OO - P_OM P_MM^-1 P_MO, m x m inverses), patterns of MANY_ROWS rows or
more run ``_suffstats.em_pass`` (the GEMM modes), the others go many at a
time through ``_suffstats.em_pass_patterns``.

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


# Below this many rows per pattern (on average over a batch) the loop kernels
# beat one BLAS call per pattern and component.
FEW_ROWS = 128
# Patterns of at least this many rows run the complete-data kernels (the GEMM
# modes, around a common centre) on their observed columns.
MANY_ROWS = 2048
# Patterns whose marginals are built together (bounds the (group, k, d, d) temporaries).
GROUP_PATTERNS = 256


class Mixture:
    """A mixture's parameters as the marginals need them (float64): the
    precision matrices (k, d, d), or the precisions (k, d) of a diagonal layout."""

    def __init__(self, log_weights, means, precisions_cholesky, covariance_type):
        layout = _covariance.model(covariance_type).layout
        self.log_weights = np.asarray(log_weights, dtype=np.float64)
        self.means = np.asarray(means, dtype=np.float64)
        k, d = self.means.shape
        self.diagonal = layout.diagonal
        U = np.asarray(layout.per_component(
            np.asarray(precisions_cholesky, dtype=np.float64), k, d))
        self.precisions = U ** 2 if self.diagonal else U @ np.swapaxes(U, 1, 2)

    def marginals(self, observed, dtype):
        """The marginals of patterns that observe equally many coordinates.

        Parameters
        ----------
        observed : ndarray of bool, shape (n_patterns, d), the same count o per row

        Returns
        -------
        Marginals
        """
        G, d = observed.shape
        k = self.means.shape[0]
        o = int(observed[0].sum())
        obs = np.flatnonzero(observed.ravel()).reshape(G, o) % d
        mis = np.flatnonzero(~observed.ravel()).reshape(G, d - o) % d
        mu_o = np.moveaxis(self.means[:, obs], 0, 1)                  # (G, k, o)
        if self.diagonal:
            precision = np.moveaxis(self.precisions[:, obs], 0, 1)
            U = np.sqrt(precision)
            log_det = np.log(U).sum(axis=2)
            mode, prec = _models.DIAG_LOOPS, U
            B, C = None, 1.0 / np.moveaxis(self.precisions[:, mis], 0, 1)
        else:
            def block(rows, cols):
                return np.moveaxis(self.precisions[:, rows[:, :, None], cols[:, None, :]], 0, 1)
            # x_M | x_O, k ~ N(mu_M + B (x_O - mu_O), C): C = inv(P_MM), B = -C P_MO;
            # the marginal precision of x_O is the Schur complement P_OO + P_OM B.
            p_oo, p_mo = block(obs, obs), block(mis, obs)
            C = np.linalg.inv(block(mis, mis)) if d > o else np.zeros((G, k, 0, 0))
            B = -C @ p_mo
            Q = p_oo + np.swapaxes(p_mo, 2, 3) @ B
            Q = 0.5 * (Q + np.swapaxes(Q, 2, 3))
            try:   # the upper factor of Q: the lower factor of Q reversed, reversed
                U = np.linalg.cholesky(Q[..., ::-1, ::-1])[..., ::-1, ::-1]
            except np.linalg.LinAlgError:
                raise ValueError(_covariance.FIT_FAILED) from None
            log_det = np.log(np.diagonal(U, axis1=2, axis2=3)).sum(axis=2)
            mode = _models.kernel_mode("full", k, o, common_shift=False)
            prec = U.reshape(G, k, o * o)
        offsets = self.log_weights + log_det - 0.5 * o * _LOG_2PI
        return Marginals(mode, np.ascontiguousarray(mu_o, dtype=dtype),
                         np.ascontiguousarray(prec, dtype=dtype), offsets, U, obs, mis, B, C)


class Marginals:
    """Kernel constants of a group of patterns (``shift[g]``, ``prec[g]``,
    ``offsets[g]`` for pattern g, in the layout of ``mode``), their factors U
    and the conditional law of the missing coordinates (B None: diagonal)."""

    def __init__(self, mode, shift, prec, offsets, U, obs, mis, B, C):
        self.mode, self.shift, self.prec, self.offsets = mode, shift, prec, offsets
        self.U, self.obs, self.mis, self.B, self.C = U, obs, mis, B, C

    def kernel_parameters(self, g):
        """Pattern g's constants as ``_models.KernelParameters``."""
        return _models.KernelParameters(self.mode, self.shift[g], self.prec[g],
                                        np.empty((0, 0)), self.offsets[g])

    def expected_statistics(self, N, S, W, means):
        """Sum over the group of each pattern's expected full statistics
        around ``means``, from the pass's N (G, k), S (G, k, o) and W (G, k,
        o*o lower triangles, or o diagonals) around the patterns' shifts."""
        G, k, o = S.shape
        d = o + self.mis.shape[1]
        f = self.shift.astype(np.float64) - np.moveaxis(means[:, self.obs], 0, 1)   # c_O - mu_O
        S_o = S + N[:, :, None] * f
        # position of each (pattern, component, ordered coordinate) in the summed output
        place = np.concatenate([self.obs, self.mis], axis=1)[:, None, :] + (
            d * np.arange(k))[None, :, None]
        if self.B is None:   # diagonal: x_M independent of x_O, mean mu_M, variance C
            W_o = W + 2 * f * S + N[:, :, None] * f * f
            S_full = np.concatenate([S_o, np.zeros((G, k, d - o))], axis=2)
            W_full = np.concatenate([W_o, N[:, :, None] * self.C], axis=2)
            return (N.sum(axis=0), _summed(place, S_full, (k, d)),
                    _summed(place, W_full, (k, d)))
        W = W.reshape(G, k, o, o)
        W_o = np.where(np.tri(o, dtype=bool), W, np.swapaxes(W, 2, 3))   # mirror the lower triangles
        if f.any():     # float32 shifts: the pass's centre is mu_O rounded
            fS = f[:, :, :, None] * S[:, :, None, :]
            W_o += fS + np.swapaxes(fS, 2, 3) + N[:, :, None, None] * (
                f[:, :, :, None] * f[:, :, None, :])
        B = self.B
        S_full = np.concatenate([S_o, np.einsum("gkmo,gko->gkm", B, S_o)], axis=2)
        W_full = np.empty((G, k, d, d))
        W_full[:, :, :o, :o] = W_o
        W_full[:, :, o:, :o] = BW = B @ W_o                       # W_MO
        W_full[:, :, :o, o:] = np.swapaxes(BW, 2, 3)
        W_full[:, :, o:, o:] = BW @ np.swapaxes(B, 2, 3) + N[:, :, None, None] * self.C
        columns = np.concatenate([self.obs, self.mis], axis=1)[:, None, None, :]
        return (N.sum(axis=0), _summed(place, S_full, (k, d)),
                _summed(d * place[..., None] + columns, W_full, (k, d, d)))


def _summed(place, values, shape):
    """Sum of ``values`` by their flat position ``place`` in an array of ``shape``."""
    return np.bincount(place.ravel(), weights=values.ravel(),
                       minlength=int(np.prod(shape))).reshape(shape)


def pattern_groups(patterns, ids):
    """``ids`` (patterns observing something, not everything) in groups of at
    most GROUP_PATTERNS that observe equally many coordinates."""
    ids = np.asarray(ids, dtype=np.intp)
    counts = patterns.observed[ids].sum(axis=1)
    for o in np.unique(counts):
        same = ids[counts == o]
        for start in range(0, same.size, GROUP_PATTERNS):
            yield same[start:start + GROUP_PATTERNS]


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


class MissingData:
    """X with NaN, and its weights, as EM sees them (``_em.InMemoryData``'s members).

    Rows with every value missing are left out of the pass and of
    ``total_weight``.
    """

    def __init__(self, data, n_components):
        X = data.X
        self.n_components = n_components
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

    def statistics(self, kernel_params, n_threads, mixture):
        """One marginal E-step + expected statistics: (reduced Statistics
        around the means of ``mixture``, sum_i w_i log p(x_i, observed))."""
        k, d = mixture.means.shape
        full = not mixture.diagonal
        loglik = 0.0
        complete = self.patterns.complete()
        N, S = np.zeros(k), np.zeros((k, d))
        W = np.zeros((k, d, d) if full else (k, d))
        if complete is not None:
            stats, loglik = self._pattern_pass(complete, kernel_params, n_threads)
            N, S, W = _recentre(stats.reduced(), mixture.means)
        partial = [p for p in self._pattern_ids if p != complete]
        for group in pattern_groups(self.patterns, partial):
            group_loglik, n_k, s_k, w_k = self._group_statistics(group, mixture, n_threads)
            loglik += group_loglik
            N += n_k
            S += s_k
            W += w_k
        return Statistics(N, S, W, mixture.means.copy(), full), loglik

    def _group_statistics(self, group, mixture, n_threads):
        """The patterns ``group``'s marginal pass and expected full statistics:
        (log-likelihood, N, S, W) around the means of ``mixture``."""
        k = mixture.means.shape[0]
        marginals = mixture.marginals(self.patterns.observed[group], self.dtype)
        o = marginals.shift.shape[2]
        width = o if mixture.diagonal else o * o
        Ng, Sg, Wg = np.zeros((len(group), k)), np.zeros((len(group), k, o)), np.zeros(
            (len(group), k, width))
        group_loglik = np.zeros(len(group))
        counts = self.patterns.bounds[group + 1] - self.patterns.bounds[group]
        many = counts >= MANY_ROWS
        for g in np.flatnonzero(many):   # the complete-data kernels, GEMM modes included
            kp = _models.kernel_parameters(mixture.log_weights, mixture.means[:, marginals.obs[g]],
                                           marginals.U[g], "diag" if mixture.diagonal else "full",
                                           self.dtype)
            stats, group_loglik[g] = self._pattern_pass(group[g], kp, n_threads,
                                                        marginals.obs[g])
            n_k, s_k, w_k = _recentre(stats.reduced(), marginals.shift[g].astype(np.float64))
            Ng[g], Sg[g], Wg[g] = n_k, s_k, w_k.reshape(k, width)
        for batch, block, weights, bounds in self._gathered(group[~many], marginals.obs[~many]):
            batch = np.flatnonzero(~many)[batch]
            N_b, S_b, W_b = np.zeros((len(batch), k)), np.zeros((len(batch), k, o)), np.zeros(
                (len(batch), k, width))
            loglik_b = np.zeros(len(batch))
            mode = marginals.mode
            if mode == _models.FULL_BLAS and block.shape[0] < FEW_ROWS * len(batch):
                mode = _models.FULL_LOOPS      # a BLAS call per few rows costs more
            threads = team_size(n_threads, block.shape[0], _models.flops_per_row(mode, k, o))
            suffstats.em_pass_patterns(block, weights, bounds, marginals.shift[batch],
                                       marginals.prec[batch], marginals.offsets[batch],
                                       mode, N_b, S_b, W_b, loglik_b, threads)
            Ng[batch] += N_b    # a pattern appears at most once per batch
            Sg[batch] += S_b
            Wg[batch] += W_b
            group_loglik[batch] += loglik_b
        return (float(group_loglik.sum()),
                *marginals.expected_statistics(Ng, Sg, Wg, mixture.means))

    def _pattern_pass(self, p, kp, n_threads, columns=None):
        """The compiled pass over pattern p's rows (restricted to ``columns``)
        under ``kp``: (Statistics, log-likelihood)."""
        k, o = kp.shift.shape
        rows = self.patterns.rows(p)
        threads = team_size(n_threads, rows.size, _models.flops_per_row(kp.mode, k, o))
        stats = Statistics.zeros(kp.shift, kp.mode, threads)
        loglik = np.zeros(len(stats.N))
        weighted = self._weights_arg.shape[0] > 0
        for start in range(0, rows.size, PATTERN_BLOCK_ROWS):
            index = rows[start:start + PATTERN_BLOCK_ROWS]
            block = (take_rows(self.X, index) if columns is None
                     else np.ascontiguousarray(self.X[index[:, None], columns]))
            suffstats.em_pass(block, self._weights_arg[index] if weighted else self._weights_arg,
                              kp.shift, kp.prec, kp.coef, kp.offsets, kp.mode,
                              stats.N, stats.S, stats.W, loglik, threads)
        return stats, float(loglik.sum())

    def _gathered(self, group, columns):
        """The rows of the patterns ``group`` (pattern g observing ``columns[g]``),
        restricted to their observed columns, a batch of patterns at a time:
        (batch's indices into group, rows (C-contiguous), weights or an empty
        array, row bounds of each pattern). A pattern of more than
        PATTERN_BLOCK_ROWS rows comes in several batches."""
        weighted = self._weights_arg.shape[0] > 0
        pieces, size = [], 0

        def batch():
            index = np.concatenate([rows for _, rows in pieces])
            counts = [rows.size for _, rows in pieces]
            cols = np.repeat(columns[[g for g, _ in pieces]], counts, axis=0)
            block = np.ascontiguousarray(self.X[index[:, None], cols])
            return (np.array([g for g, _ in pieces], dtype=np.intp), block,
                    self._weights_arg[index] if weighted else self._weights_arg,
                    np.concatenate([[0], np.cumsum(counts)]).astype(np.intp))

        for g, p in enumerate(group):
            rows = self.patterns.rows(p)
            for start in range(0, rows.size, PATTERN_BLOCK_ROWS):
                piece = rows[start:start + PATTERN_BLOCK_ROWS]
                if size + piece.size > PATTERN_BLOCK_ROWS and pieces:
                    yield batch()
                    pieces, size = [], 0
                pieces.append((g, piece))
                size += piece.size
        if pieces:
            yield batch()

    def initialisation_data(self, random_state):
        """Rows to initialise from, with their weights and total weight: the
        complete rows when there are at least ``10 * n_features`` (and
        ``n_components``) of them, else every row with its missing values
        replaced by its column's (weighted) observed mean."""
        d = self.X.shape[1]
        complete = self.patterns.complete()
        rows = self.patterns.rows(complete) if complete is not None else np.empty(0, np.intp)
        if rows.size >= max(10 * d, self.n_components, 2):
            X = take_rows(self.X, rows)
        else:
            rows = np.sort(np.concatenate([self.patterns.rows(p) for p in self._pattern_ids]))
            X = take_rows(self.X, rows)
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
    mixture = Mixture(log_weights, estimator.means_, estimator.precisions_cholesky_,
                      estimator.covariance_type)
    patterns = Patterns(X)
    partial = []
    for p in range(len(patterns)):
        rows, observed = patterns.rows(p), patterns.observed[p]
        if not observed.any():
            prior = np.exp(log_weights - log_weights.max())
            prior /= prior.sum()
            _store(rows, 0.0, int(np.argmax(prior)), prior, out_norm, out_labels, out_proba)
        elif observed.all():
            _predict_rows(X, rows, None, kp_full, dtype, n_threads, out_norm, out_labels,
                          out_proba, (log_weights, estimator.means_,
                                      estimator.precisions_cholesky_,
                                      estimator.covariance_type))
        else:
            partial.append(p)
    far_type = "diag" if mixture.diagonal else "full"
    for group in pattern_groups(patterns, partial):
        marginals = mixture.marginals(patterns.observed[group], dtype)
        for g, p in enumerate(group):
            columns = marginals.obs[g]
            _predict_rows(X, patterns.rows(p), columns, marginals.kernel_parameters(g), dtype,
                          n_threads, out_norm, out_labels, out_proba,
                          (log_weights, mixture.means[:, columns], marginals.U[g], far_type))


def _predict_rows(X, rows, columns, kp, dtype, n_threads, out_norm, out_labels, out_proba,
                  far_model):
    """The E-step kernel over ``rows`` of X restricted to ``columns`` (None: all)
    under ``kp``; rows too far for it are redone by ``_far_rows`` under
    ``far_model`` (log-weights, means, precision Cholesky factors, covariance type)."""
    k, o = kp.shift.shape
    flops = _models.flops_per_row(kp.mode, k, o)
    for start in range(0, rows.size, PATTERN_BLOCK_ROWS):
        index = rows[start:start + PATTERN_BLOCK_ROWS]
        block = (take_rows(X, index) if columns is None
                 else X[index[:, None], columns]).astype(dtype, copy=False)
        block = np.ascontiguousarray(block)
        norm = np.empty(index.size, dtype=dtype)
        labels = np.empty(index.size if out_labels.size else 0, dtype=np.intp)
        proba = np.empty((index.size, k) if out_proba.size else (0, k), dtype=dtype)
        with kernel_team(n_threads, index.size, flops) as threads:
            estep.e_step(block, kp.shift, kp.prec, kp.coef, kp.offsets, kp.mode,
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
