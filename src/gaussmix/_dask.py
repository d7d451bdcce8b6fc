"""Fits and predictions on Dask arrays, with the same compiled kernels.

``GaussianMixture.fit(X)`` with X a ``dask.array.Array`` (chunked by rows)
persists X (and the weights) on the workers once, then makes each EM
iteration one pass: the compiled statistics pass runs on every block where
the block lives, the per-block statistics (k + k d + k d^2 + 1 numbers) are
summed in a binary tree, and the M-step runs on the client. Initialisation
runs on a bounded random sample of the rows (``SAMPLE_ROWS``), gathered to
the client. Nothing here imports Dask unless a Dask array is passed.
"""
import numpy as np

from . import _missing
from ._em import Statistics, pass_statistics
from ._threading import single_threaded_blas
from ._validation import infinity_error, nan_error

# Rows gathered to the client for the initialisation (k-means etc.).
SAMPLE_ROWS = 100_000


def is_dask_array(X):
    """True for a ``dask.array.Array`` (checked without importing Dask)."""
    return (type(X).__module__.split(".")[0] == "dask" and hasattr(X, "chunks")
            and hasattr(X, "to_delayed"))


def block_threads(estimator):
    """Kernel threads for one block's pass: the estimator's ``n_threads`` when
    set, else 1, as Dask already runs one block per worker thread (the cores a
    worker process sees are shared with the other workers on its machine)."""
    return estimator.n_threads or 1


def _as_row_chunked(X, estimator):
    """X as a 2-D float array chunked by rows only, with known chunk sizes."""
    if X.ndim != 2:
        raise ValueError(f"Expected a 2D Dask array, got {X.ndim}D with shape {X.shape}.")
    if any(np.isnan(size) for size in X.shape) or any(
            np.isnan(size) for size in X.chunks[0]):
        raise ValueError("X has unknown chunk sizes; call X.compute_chunk_sizes() first.")
    if X.dtype.kind not in "biuf":
        raise TypeError(f"X must hold numbers, got dtype {X.dtype}.")
    dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.float64
    n, d = X.shape
    if n < max(2, estimator.n_components):
        raise ValueError(f"Expected n_samples >= max(2, n_components) but got "
                         f"n_components = {estimator.n_components}, n_samples = {n}")
    if d == 0:
        raise ValueError("X has 0 features; a minimum of 1 is required.")
    return X.astype(dtype).rechunk({1: -1})


def _aligned_weights(sample_weight, X, dtype):
    """``sample_weight`` (array-like or Dask array of shape (n_samples,)) as a
    lazy ``dtype`` array chunked as X's rows, or None."""
    import dask.array as da

    if sample_weight is None:
        return None
    if not is_dask_array(sample_weight):
        sample_weight = np.asarray(sample_weight)
        if sample_weight.dtype.kind not in "biuf":
            raise TypeError(f"sample_weight must hold numbers, got dtype "
                            f"{sample_weight.dtype}.")
        sample_weight = da.from_array(sample_weight, chunks=-1)
    if sample_weight.shape != (X.shape[0],):
        raise ValueError(f"sample_weight has shape {sample_weight.shape}, expected "
                         f"({X.shape[0]},).")
    return sample_weight.astype(dtype).rechunk((X.chunks[0],))


def _check_weights(finite, non_negative, sum_or_max):
    """Raise as ``_validation.check_sample_weight`` does, from computed checks
    of the weights (all finite, all >= 0, their sum or their maximum)."""
    if not finite:
        raise ValueError("sample_weight contains NaN or infinity.")
    if not non_negative:
        raise ValueError("sample_weight must be non-negative.")
    if not sum_or_max > 0:
        raise ValueError("sample_weight sums to zero: at least one sample needs weight.")


def weighted_mean(values, sample_weight, X):
    """Mean of the lazy per-row ``values`` of X, weighted by ``sample_weight``.

    Parameters
    ----------
    values : dask.array.Array of shape (n_samples,)
        Chunked as X's rows (as ``predict_blocks`` returns them).
    sample_weight : None, array-like or dask.array.Array of shape (n_samples,)
        Non-negative finite weights, not all zero; None for the plain mean.
    X : dask.array.Array of shape (n_samples, n_features)

    Returns
    -------
    mean : float
        Computed in float64, in one pass over ``values``.
    """
    import dask
    import dask.array as da

    values = values.astype(np.float64)
    if sample_weight is None:
        return float(values.mean().compute())
    weights = _aligned_weights(sample_weight, X, np.float64)
    total, weight, finite, non_negative = dask.compute(
        (values * weights).sum(), weights.sum(), da.isfinite(weights).all(),
        (weights >= 0).all())
    _check_weights(finite, non_negative, weight)
    return float(total / weight)


def _rescaled(weights, largest, dtype):
    """Weights scaled to maximum 1, then mean 1, persisted, and the original
    weight of one unit: as ``_em.rescaled_weights`` scales them in memory."""
    scaled = weights / largest
    mean = float(scaled.sum(dtype=np.float64).compute()) / weights.shape[0]
    return (scaled / mean).astype(dtype).persist(), largest * mean


class DaskData:
    """A row-chunked Dask array (and weights) persisted on the workers, as EM sees it.

    Offers the members of ``_em.InMemoryData`` (``_missing.MissingData``'s
    when X holds NaN that the estimator marginalises: ``has_missing``).
    """

    def __init__(self, X, sample_weight, estimator):
        import dask
        import dask.array as da

        X = _as_row_chunked(X, estimator)
        estimator._check_initial_parameters(X.shape[1], X.dtype)
        weights = _aligned_weights(sample_weight, X, X.dtype)
        X, weights = dask.persist(X, weights)
        nan = da.isnan(X)
        observed = ~nan.all(axis=1)
        checks = [(da.isfinite(X) | nan).all(), nan.any(), observed.sum()]
        if weights is not None:
            checks += [da.isfinite(weights).all(), (weights >= 0).all(), weights.max()]
        results = dask.compute(*checks)
        if not results[0]:
            raise infinity_error("X")
        self.has_missing = bool(results[1])
        if self.has_missing and not _missing.marginalizes(estimator):
            raise nan_error("X")
        self.weight_unit, self.total_weight = 1.0, float(results[2])
        if weights is not None:    # the rescaled weights of the observed rows
            _check_weights(*results[3:])
            weights, self.weight_unit = _rescaled(weights, results[5], X.dtype)
            self.total_weight = float(da.where(observed, weights, 0).sum(
                dtype=np.float64).compute())
        self.X, self.weights, self.dtype = X, weights, X.dtype
        if self.total_weight == 0:
            raise ValueError(_missing.NOTHING_OBSERVED)
        self.n_components = estimator.n_components
        self.block_threads = block_threads(estimator)

    def statistics(self, kernel_params, n_threads, mixture=None):
        """One pass on the workers under ``kernel_params`` (and ``mixture``,
        ``_missing.Mixture``, when ``has_missing``): (reduced Statistics,
        sum_i w_i log p(x_i))."""
        import dask

        # Every pass gets fresh task keys (pure=False). With keys derived from
        # the inputs, a pass whose parameters equal the previous pass's (EM at
        # a fixed point) resubmits the keys the client has just released, and
        # the scheduler can forget the result before it is gathered ("Couldn't
        # gather keys ... 'forgotten'", then a recompute).
        blocks = self.X.to_delayed().ravel()
        weights = ([None] * len(blocks) if self.weights is None
                   else self.weights.to_delayed().ravel())
        shared = dask.delayed((kernel_params, mixture), pure=False)
        parts = [dask.delayed(_block_statistics, pure=False)(
            block, weight, shared, self.block_threads)
            for block, weight in zip(blocks, weights)]
        N, S, W, log_likelihood = _tree_sum(parts).compute()
        shift = kernel_params.shift if mixture is None else mixture.means
        return Statistics(N, S, W, shift, W.ndim == 3), log_likelihood

    def moments(self):
        """Weighted mean (d,) and covariance (d, d) of X, float64, with the
        unbiased divisor (``_em.InMemoryData.moments``): one pass for the mean,
        one for the scatter, each a tree sum of per-block results. With NaN:
        of the rows ``_missing.initialisation_rows`` would take."""
        import dask

        X = self.X.astype(np.float64)
        w = None if self.weights is None else self.weights.astype(np.float64)
        if self.has_missing:
            X, w = self._initialisation_rows(X, w)
        if w is None:
            total, weighted_sum = dask.compute(X.shape[0], X.sum(axis=0))
        else:
            total, weighted_sum = dask.compute(w.sum(), (X * w[:, None]).sum(axis=0))
        mean = weighted_sum / total
        centred = X - mean
        weighted = centred if w is None else centred * w[:, None]
        scatter = (weighted.T @ centred).compute()
        unit = self.weight_unit
        return mean, scatter * unit / (float(total) * unit - 1.0)

    def _initialisation_rows(self, X, w):
        """X (float64, NaN) and weights with the rows ``initialisation_rows``
        leaves out weighted 0 and the holes filled: the complete rows if
        there are enough, else every observed row, holes at the column means."""
        import dask.array as da

        seen = ~da.isnan(X)
        weights = da.ones(X.shape[0], chunks=X.chunks[0]) if w is None else w
        complete = seen.all(axis=1)
        if complete.sum().compute() >= _missing.enough_complete_rows(X.shape[1],
                                                                     self.n_components):
            return da.where(seen, X, 0.0), da.where(complete, weights, 0.0)
        column_means = (da.where(seen, X, 0.0) * weights[:, None]).sum(axis=0) / da.maximum(
            (seen * weights[:, None]).sum(axis=0), 1e-300)
        return da.where(seen, X, column_means), da.where(seen.any(axis=1), weights, 0.0)

    def initialisation_data(self, random_state):
        """A random sample of at most ``SAMPLE_ROWS`` rows, gathered to the client."""
        import dask

        n = self.X.shape[0]
        if n <= SAMPLE_ROWS:
            rows = slice(None)
        else:  # draws with replacement, duplicates dropped: O(sample), not O(n)
            rows = np.unique(random_state.randint(0, n, SAMPLE_ROWS))
        X = self.X[rows]
        weights = None if self.weights is None else self.weights[rows]
        X, weights = dask.compute(X, weights)
        X = np.ascontiguousarray(X)
        if self.has_missing:
            return _missing.initialisation_rows(X, weights, self.n_components)
        total = X.shape[0] if weights is None else float(weights.sum())
        return X, weights, total


def _block_statistics(X, weights, parameters, n_threads):
    """The compiled pass on one block (runs on a worker); ``parameters``:
    kernel parameters and the mixture of the marginal pass (None: X complete)."""
    kernel_params, mixture = parameters
    X = np.ascontiguousarray(X)
    with single_threaded_blas():
        if mixture is not None and _missing.has_nan(X):
            data = _missing.MissingData(X, None if weights is None else np.asarray(weights),
                                        1.0, mixture.means.shape[0], allow_empty=True)
            stats, log_likelihood = data.statistics(kernel_params, n_threads, mixture)
            return stats.N, stats.S, stats.W, log_likelihood
        weights_arg = (np.empty(0, X.dtype) if weights is None
                       else np.ascontiguousarray(weights, dtype=X.dtype))
        stats, log_likelihood = pass_statistics(X, weights_arg, kernel_params, n_threads)
    if mixture is not None:    # around the means, as the blocks with NaN
        stats = _missing.recentred(stats, mixture.means)
    return stats.N, stats.S, stats.W, log_likelihood


def _add(a, b):
    return tuple(x + y for x, y in zip(a, b))


def _tree_sum(parts):
    """Pairwise sums of delayed statistics: depth log2(blocks), never all at once
    (fresh keys, as in ``DaskData.statistics``)."""
    import dask

    while len(parts) > 1:
        pairs = [dask.delayed(_add, pure=False)(parts[i], parts[i + 1])
                 for i in range(0, len(parts) - 1, 2)]
        parts = pairs + ([parts[-1]] if len(parts) % 2 else [])
    return parts[0]


def predict_blocks(estimator, X, what):
    """Lazy ``what`` ('labels', 'proba' or 'log_norm') of a row-chunked Dask array."""
    X = X.rechunk({1: -1}) if X.ndim == 2 else X
    if X.ndim != 2:
        raise ValueError(f"Expected a 2D Dask array, got {X.ndim}D.")
    estimator._check_is_fitted()
    estimator._check_n_features(X)
    dtype = np.result_type(X.dtype if X.dtype.kind == "f" else np.float64,
                           estimator.means_.dtype)
    threads = block_threads(estimator)
    if what == "proba":
        return X.map_blocks(estimator._e_step_output, what, threads, dtype=dtype,
                            chunks=(X.chunks[0], (estimator.n_components,)))
    return X.map_blocks(estimator._e_step_output, what, threads, drop_axis=1,
                        dtype=np.intp if what == "labels" else dtype)
