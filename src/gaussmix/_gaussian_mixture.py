"""GaussianMixture: scikit-learn's estimator API over the compiled EM core."""
import inspect
import math
import numbers
import warnings
from time import perf_counter

import numpy as np

from . import _dask, _models, _persistence
from ._em import (InMemoryData, Parameters, RunningStatistics, e_step_statistics,
                  parameters_from_statistics)
from ._blocks import row_ranges
from ._kernels import estep
from ._exceptions import InvalidParameterError, convergence_warning, not_fitted_error
from ._initialization import INIT_PARAMS, initial_parameters
from ._threading import effective_n_threads, single_threaded_blas
from ._validation import (all_rows_equal, as_float_array, check_array_param,
                          check_feature_names, check_param_range, check_random_state,
                          check_sample_weight, feature_names)


class GaussianMixture:
    """Gaussian mixture model fitted by expectation-maximisation.

    A drop-in for ``sklearn.mixture.GaussianMixture``: same parameters, fitted
    attributes and results, computed by compiled, multi-threaded kernels that
    make one pass over X per EM iteration and never hold an
    n_samples x n_components array.

    Parameters
    ----------
    n_components : int, default=1
        Number of mixture components.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
        Covariance model: one full matrix per component, one shared full
        matrix, one diagonal per component, or one variance per component.
    tol : float, default=1e-3
        EM stops when the per-sample lower bound changes by less than tol.
    reg_covar : float, default=1e-6
        Added to the covariance diagonals to keep them positive definite.
    max_iter : int, default=100
        Maximum number of EM iterations per initialisation.
    n_init : int, default=1
        Number of initialisations; the one with the best lower bound is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, default='kmeans'
        How the initial responsibilities are chosen. 'kmeans', and 'k-means++'
        on more than max(32768, 50 * n_components) rows, run on a random
        subsample of that many rows.
    weights_init, means_init, precisions_init : array-like, default=None
        User-given initial parameters (override those from ``init_params``).
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation (and ``sample``).
    warm_start : bool, default=False
        Start ``fit`` from the previous solution (then n_init is ignored).
    verbose : int, default=0
        1 prints initialisations, 2 also iterations with timings.
    verbose_interval : int, default=10
        Iterations between two progress lines.
    n_threads : int or None, default=None
        OpenMP threads for the kernels; None uses every core this process may
        use (capped by OMP_NUM_THREADS / threadpoolctl limits).
    learning_decay : float in (0.5, 1], default=0.55
        ``partial_fit`` only: the step size of update t is
        ``(learning_offset + t) ** -learning_decay``.
    learning_offset : float >= 0, default=1.0
        ``partial_fit`` only: larger values damp the early updates.

    Attributes
    ----------
    weights_, means_, covariances_, precisions_, precisions_cholesky_ : ndarray
        Fitted parameters, in the dtype of the training data.
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        Mean log-likelihood of the best initialisation.
    lower_bounds_ : list of float
        Lower bound after each iteration of the best initialisation.
    n_steps_ : int
        After ``partial_fit``: the number of batches taken in.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when fitted on a DataFrame with string column names.
    """

    _estimator_type = "DensityEstimator"

    def __init__(self, n_components=1, *, covariance_type="full", tol=1e-3,
                 reg_covar=1e-6, max_iter=100, n_init=1, init_params="kmeans",
                 weights_init=None, means_init=None, precisions_init=None,
                 random_state=None, warm_start=False, verbose=0, verbose_interval=10,
                 n_threads=None, learning_decay=0.55, learning_offset=1.0):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.n_threads = n_threads
        self.learning_decay = learning_decay
        self.learning_offset = learning_offset

    # ---------------------------------------------------------------- params
    @classmethod
    def _get_param_names(cls):
        signature = inspect.signature(cls.__init__)
        return sorted(p for p in signature.parameters if p != "self")

    def get_params(self, deep=True):
        """Constructor parameters as a dict (scikit-learn convention)."""
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params):
        """Set constructor parameters; returns self."""
        valid = self._get_param_names()
        for key, value in params.items():
            if key not in valid:
                raise ValueError(f"Invalid parameter {key!r} for estimator "
                                 f"{type(self).__name__}. Valid parameters are: {valid}.")
            setattr(self, key, value)
        return self

    def __repr__(self):
        defaults = inspect.signature(type(self).__init__).parameters
        changed = []
        for name in self._get_param_names():
            value, default = getattr(self, name), defaults[name].default
            if value is default or (isinstance(value, (str, numbers.Number))
                                    and type(value) is type(default) and value == default):
                continue
            changed.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(changed)})"

    def __sklearn_tags__(self):
        from sklearn.utils import InputTags, Tags, TargetTags

        return Tags(estimator_type="density_estimator",
                    target_tags=TargetTags(required=False), input_tags=InputTags())

    def _check_parameters(self):
        def check(name, kind, low, allow_none=False):
            value = getattr(self, name)
            if allow_none and value is None:
                return
            if not isinstance(value, kind) or isinstance(value, bool):
                raise InvalidParameterError(
                    f"The '{name}' parameter of {type(self).__name__} must be "
                    f"{'an int' if kind is numbers.Integral else 'a float'} >= {low}"
                    f"{' or None' if allow_none else ''}. Got {value!r} instead.")
            if not value >= low:
                raise InvalidParameterError(f"The '{name}' parameter must be >= {low}; "
                                            f"got {value!r}.")

        def choice(name, options):
            value = getattr(self, name)
            if not isinstance(value, str) or value not in options:
                raise InvalidParameterError(f"The '{name}' parameter must be one of "
                                            f"{list(options)}. Got {value!r} instead.")

        check("n_components", numbers.Integral, 1)
        check("tol", numbers.Real, 0)
        check("reg_covar", numbers.Real, 0)
        check("max_iter", numbers.Integral, 0)
        check("n_init", numbers.Integral, 1)
        check("verbose", numbers.Integral, 0)
        check("verbose_interval", numbers.Integral, 1)
        check("n_threads", numbers.Integral, 1, allow_none=True)
        check("learning_offset", numbers.Real, 0)
        if (not isinstance(self.learning_decay, numbers.Real)
                or isinstance(self.learning_decay, bool) or not 0.5 < self.learning_decay <= 1):
            raise InvalidParameterError("The 'learning_decay' parameter must be a float in "
                                        f"(0.5, 1]. Got {self.learning_decay!r} instead.")
        choice("covariance_type", _models.COVARIANCE_TYPES)
        choice("init_params", INIT_PARAMS)
        if not isinstance(self.warm_start, (bool, np.bool_)):
            raise InvalidParameterError(f"The 'warm_start' parameter must be a bool. "
                                        f"Got {self.warm_start!r} instead.")

    def _check_initial_parameters(self, n_features, dtype):
        """Check the ``*_init`` parameters for X of ``n_features`` and ``dtype``: the
        means, the precisions and the variances they imply must fit in ``dtype``."""
        k, cov_type = self.n_components, self.covariance_type
        if self.weights_init is not None:
            w = check_array_param(self.weights_init, "weights_init", (k,), dtype)
            if np.any(w < 0) or np.any(w > 1):
                raise ValueError("The parameter 'weights_init' should be in the range "
                                 f"[0, 1], but got min {w.min():.5f}, max {w.max():.5f}.")
            if not np.isclose(w.sum(), 1.0, rtol=0, atol=1e-6):
                raise ValueError("The parameter 'weights_init' should be normalized, "
                                 f"but got sum(weights_init) = {w.sum():.5f}.")
        if self.means_init is not None:
            check_array_param(self.means_init, "means_init", (k, n_features), dtype)
        if self.precisions_init is not None:
            shape = _models.precisions_shape(cov_type, k, n_features)
            p = check_array_param(self.precisions_init, "precisions_init", shape, dtype)
            if _models.layout(cov_type) in ("diag", "spherical"):
                if np.any(p <= 0):
                    raise ValueError(f"'{cov_type} precision' should be positive.")
                eigenvalues = p
            else:
                matrices = p.reshape(-1, n_features, n_features)
                eigenvalues = np.linalg.eigvalsh(matrices)
                if (not np.allclose(matrices, np.swapaxes(matrices, 1, 2))
                        or np.any(eigenvalues <= 0)):
                    raise ValueError(f"'{cov_type} precision' should be symmetric, "
                                     "positive-definite.")
            with np.errstate(over="ignore"):  # a variance beyond float64 is inf here
                variances = 1 / eigenvalues
            check_param_range("precisions_init", np.maximum(eigenvalues, variances), dtype,
                              "its eigenvalues and the variances they imply")

    # ------------------------------------------------------------------- fit
    def fit(self, X, y=None, sample_weight=None):
        """Estimate the parameters with EM (``n_init`` runs, best kept).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; integer weights act as repeated rows.

        Returns
        -------
        self : GaussianMixture
        """
        self._check_parameters()
        if _dask.is_dask_array(X):
            data, names = _dask.DaskData(X, sample_weight, self), None
        else:
            X, sample_weight, names = self._training_data(X, sample_weight, reset=True)
            data = InMemoryData(X, sample_weight)
        n_threads = effective_n_threads(self.n_threads)
        with single_threaded_blas():
            params, n_iter, lower_bounds, lower_bound, converged = self._fit_em(
                data, n_threads)
        # The model changes only here, so an interrupted fit leaves it as it was.
        self._set_parameters(params, names)
        self.n_iter_, self.lower_bounds_, self.lower_bound_ = n_iter, lower_bounds, lower_bound
        self.converged_, self._stream = converged, None
        if not converged and self.max_iter > 0:
            warnings.warn("Best performing initialization did not converge. Try different "
                          "init parameters, or increase max_iter, tol, or check for "
                          "degenerate data.", convergence_warning(), stacklevel=2)
        return self

    def _training_data(self, X, sample_weight, reset):
        """Validated X, sample weights and feature names; with ``reset``, X
        starts a new model, else it must match the fitted one."""
        names_source = X
        X = as_float_array(X, min_samples=2 if reset else 1)
        n_samples, n_features = X.shape
        if reset:
            if n_samples < self.n_components:
                raise ValueError("Expected n_samples >= n_components but got n_components = "
                                 f"{self.n_components}, n_samples = {n_samples}")
            self._check_initial_parameters(n_features, X.dtype)
        else:
            self._check_n_features(X)
            X = np.ascontiguousarray(X, dtype=self.means_.dtype)
        sample_weight = check_sample_weight(sample_weight, n_samples, X.dtype)
        if sample_weight is not None:
            # Mean weight 1 leaves every estimate unchanged (weights act only
            # relative to each other) but keeps tiny or huge weights clear of
            # the M-step's absolute 10 eps guard on N_k and of overflow.
            scaled = sample_weight / sample_weight.max()  # a sum of huge weights overflows
            sample_weight = (scaled / scaled.mean(dtype=np.float64)).astype(X.dtype)
        if reset and self.n_components > 1 and all_rows_equal(X):
            raise ValueError(f"All rows of X are equal: {self.n_components} components "
                             "cannot be told apart. Use n_components=1 or check the data.")
        if not reset:
            check_feature_names(self, names_source)
        return X, sample_weight, feature_names(names_source)

    def partial_fit(self, X, y=None, sample_weight=None):
        """One step of online (stepwise) EM on a batch of samples.

        The first call on an unfitted estimator initialises the parameters
        from its batch (``init_params`` and the ``*_init`` parameters, as in
        ``fit``); a fitted estimator continues from its parameters. Each call
        runs one E-step over the batch, blends the batch's statistics into
        the running ones with step size
        ``(learning_offset + t) ** -learning_decay`` (t: batches taken in
        before; the first batch has step 1) and makes an M-step: the stepwise
        EM of Cappé & Moulines (2009). Feed shuffled batches, for several
        passes over the data when it is finite.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The batch; the first needs at least ``n_components`` rows.
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : GaussianMixture
        """
        self._check_parameters()
        if _dask.is_dask_array(X):
            raise TypeError("partial_fit takes in-memory batches; fit() the Dask array, or "
                            "pass its blocks' .compute() results")
        first = not hasattr(self, "means_")
        X, sample_weight, names = self._training_data(X, sample_weight, reset=first)
        total_weight = X.shape[0] if sample_weight is None else float(sample_weight.sum())
        weights_arg = np.empty(0, X.dtype) if sample_weight is None else sample_weight
        n_threads = effective_n_threads(self.n_threads)
        cov_type = self.covariance_type
        with single_threaded_blas():
            if first:
                params = initial_parameters(X, sample_weight, total_weight, self,
                                            check_random_state(self.random_state), n_threads)
                running, steps = None, 0
            else:
                params = self._fitted_parameters(X.dtype)
                running = getattr(self, "_stream", None)
                if running is None:
                    running = RunningStatistics.from_parameters(params, cov_type, self.reg_covar)
                steps = getattr(self, "n_steps_", 1)
            stats, log_likelihood = e_step_statistics(X, weights_arg, params, cov_type,
                                                      n_threads)
            if not np.isfinite(log_likelihood):
                raise ValueError("Every row of the batch has zero density under the model "
                                 "(it is too far from every component); partial_fit cannot "
                                 "learn from it. Check the data's scale or refit.")
            batch = RunningStatistics.from_statistics(stats, total_weight)
            if running is not None:
                step = (self.learning_offset + steps) ** -self.learning_decay
                batch = running.blend(batch, step)
            params = batch.parameters(cov_type, self.reg_covar, X.dtype, params.covariances)
        if first:
            self._set_parameters(params, names)
        else:
            self._set_parameters(params)
        self._stream = batch
        self.n_steps_ = self.n_iter_ = steps + 1
        self.lower_bound_ = log_likelihood / total_weight
        self.lower_bounds_ = ([] if first else list(getattr(self, "lower_bounds_", [])))
        self.lower_bounds_.append(self.lower_bound_)
        self.converged_ = False
        return self

    def _fit_em(self, data, n_threads):
        """EM from ``n_init`` starts on ``data`` (``_em.InMemoryData`` or
        ``_dask.DaskData``), leaving the estimator untouched.

        Returns
        -------
        (params, n_iter, lower_bounds, lower_bound, converged) of the best start.
        """
        do_init = not (self.warm_start and hasattr(self, "converged_"))
        random_state = check_random_state(self.random_state)
        best_lower_bound, best = -np.inf, None
        for init in range(self.n_init if do_init else 1):
            self._print_verbose(1, f"Initialization {init}")
            start = perf_counter()
            if do_init:
                params = initial_parameters(*data.initialisation_data(random_state), self,
                                            random_state, n_threads)
                lower_bound = -np.inf
            else:
                params, lower_bound = self._fitted_parameters(data.dtype), self.lower_bound_
            lower_bounds, converged, n_iter = [], False, 0
            for n_iter in range(1, self.max_iter + 1):
                previous = lower_bound
                stats, log_likelihood = data.statistics(params, self.covariance_type, n_threads)
                params = parameters_from_statistics(
                    stats, self.covariance_type, self.reg_covar, data.dtype, params.covariances)
                lower_bound = log_likelihood / data.total_weight
                lower_bounds.append(lower_bound)
                change = lower_bound - previous
                if n_iter % self.verbose_interval == 0:
                    self._print_verbose(2, f"  Iteration {n_iter}\t time lapse "
                                        f"{perf_counter() - start:.5f}s\t ll change {change:.5f}")
                if abs(change) < self.tol:
                    converged = True
                    break
            self._print_verbose(1, f"Initialization {'converged' if converged else 'did not converge'}."
                                f" time lapse {perf_counter() - start:.5f}s\t lower bound {lower_bound:.5f}")
            if self.max_iter == 0 or lower_bound > best_lower_bound or best is None:
                best_lower_bound = lower_bound if self.max_iter else -np.inf
                best = (params, n_iter, lower_bounds, best_lower_bound, converged)
        return best

    def _print_verbose(self, level, message):
        if self.verbose >= level:
            print(message)

    def _set_parameters(self, params, feature_names_in=False):
        """Set the fitted arrays; a fresh model (``feature_names_in`` given,
        None for none) also records its input features."""
        if feature_names_in is not False:
            self.__dict__.pop("feature_names_in_", None)
            if feature_names_in is not None:
                self.feature_names_in_ = feature_names_in
            self.n_features_in_ = params.means.shape[1]
        self.weights_ = params.weights
        self.means_ = params.means
        self.covariances_ = params.covariances
        self.precisions_cholesky_ = params.precisions_cholesky
        self.precisions_ = _models.precisions_from_cholesky(
            params.precisions_cholesky, self.covariance_type)

    def _fitted_parameters(self, dtype):
        return Parameters(*(np.asarray(a, dtype=dtype) for a in (
            self.weights_, self.means_, self.covariances_, self.precisions_cholesky_)))

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit, then return the component labels of X (equals fit(X).predict(X))."""
        return self.fit(X, sample_weight=sample_weight).predict(X)

    # --------------------------------------------------------------- predict
    def _check_is_fitted(self):
        if not hasattr(self, "means_"):
            raise not_fitted_error()(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with "
                "appropriate arguments before using this estimator.")

    def _check_n_features(self, X):
        d = self.means_.shape[1]
        if X.shape[1] != d:
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} "
                             f"is expecting {d} features as input.")

    def _e_step(self, X, *, log_norm=False, labels=False, proba=False, n_threads=None):
        """Run the chunked E-step kernel, filling only the outputs asked for,
        on ``n_threads`` threads (None: the estimator's ``n_threads``).

        Rows whose log-normaliser is not finite (their densities all
        underflow in the kernel) are redone by ``_far_rows``. Unless it is
        an output, the log-normaliser is computed (into a block-sized
        buffer) only for blocks holding a value beyond ``_far_rows_limit``,
        as no other row can underflow.
        """
        self._check_is_fitted()
        check_feature_names(self, X)
        X = as_float_array(X)
        self._check_n_features(X)
        k = self.means_.shape[0]
        dtype = np.result_type(X.dtype, self.means_.dtype)
        n = X.shape[0]
        kp = _models.kernel_parameters(self.weights_, self.means_, self.precisions_cholesky_,
                                       self.covariance_type, dtype)
        limit = _far_rows_limit(self.means_, self.precisions_cholesky_, dtype)
        out_norm = np.empty(n if log_norm else 0, dtype=dtype)
        out_labels = np.empty(n if labels else 0, dtype=np.intp)
        out_proba = np.empty((n, k) if proba else (0, k), dtype=dtype)
        n_threads = effective_n_threads(self.n_threads if n_threads is None else n_threads)
        with single_threaded_blas():
            for start, stop in row_ranges(X):
                rows = slice(start, stop)
                block = np.ascontiguousarray(X[rows], dtype=dtype)
                if out_norm.size:
                    norm = out_norm[rows]
                elif -limit <= block.min() <= block.max() <= limit:
                    norm = out_norm  # empty: no row of the block can underflow
                else:
                    norm = np.empty(stop - start, dtype=dtype)
                block_labels = out_labels[rows] if labels else out_labels
                block_proba = out_proba[rows] if proba else out_proba
                estep.e_step(block, kp.shift, kp.prec, kp.coef, kp.offsets, kp.mode,
                             norm, block_labels, block_proba, n_threads)
                if norm.size == 0 or np.isfinite(norm.min()):
                    continue
                far = np.flatnonzero(~np.isfinite(norm))
                step = max(1, _FAR_CHUNK // (k * X.shape[1]))
                for i in range(0, far.size, step):
                    part = far[i:i + step]
                    self._redo_far_rows(block[part], part, norm, block_labels, block_proba)
        return out_norm, out_labels, out_proba

    def _redo_far_rows(self, X, rows, out_norm, out_labels, out_proba):
        """Overwrite the outputs of ``rows`` (X holds them) by ``_far_rows``."""
        norm, proba = _far_rows(X, self.weights_, self.means_, self.precisions_cholesky_,
                                self.covariance_type)
        proba = proba.astype(out_norm.dtype)
        with np.errstate(over="ignore"):  # float32: log p(x) below its range is -inf
            out_norm[rows] = norm
        if out_labels.size:
            out_labels[rows] = np.argmax(proba, axis=1)
        if out_proba.size:
            out_proba[rows] = proba

    def score_samples(self, X):
        """Log-likelihood log p(x) of each sample, shape (n_samples,) (lazy for a
        Dask array)."""
        if _dask.is_dask_array(X):
            return _dask.predict_blocks(self, X, "log_norm")
        return self._e_step(X, log_norm=True)[0]

    def score(self, X, y=None, sample_weight=None):
        """Mean log-likelihood of X, weighted by ``sample_weight`` when given."""
        if _dask.is_dask_array(X):
            return _dask.weighted_mean(self.score_samples(X), sample_weight, X)
        log_density = self.score_samples(X).astype(np.float64)
        if sample_weight is None:
            return float(log_density.mean())
        weights = check_sample_weight(sample_weight, log_density.shape[0], np.float64)
        return float(weights @ log_density / weights.sum())

    def save(self, path):
        """Write the fitted model to ``path`` in gaussmix's pickle-free format.

        Read it back with ``gaussmix.load(path)``; see README "Saving models".
        """
        _persistence.save(self, path)

    def predict(self, X):
        """Most probable component of each sample, shape (n_samples,) (lazy for a
        Dask array)."""
        if _dask.is_dask_array(X):
            return _dask.predict_blocks(self, X, "labels")
        return self._e_step(X, labels=True)[1]

    def predict_proba(self, X):
        """Posterior probability of each component, shape (n_samples, n_components)
        (lazy for a Dask array)."""
        if _dask.is_dask_array(X):
            return _dask.predict_blocks(self, X, "proba")
        return self._e_step(X, proba=True)[2]

    def _n_parameters(self):
        k, d = self.means_.shape
        return _models.n_parameters(self.covariance_type, k, d)

    def bic(self, X):
        """Bayesian information criterion on X (lower is better)."""
        n = np.shape(X)[0]
        return -2 * self.score(X) * n + self._n_parameters() * math.log(n)

    def aic(self, X):
        """Akaike information criterion on X (lower is better)."""
        return -2 * self.score(X) * np.shape(X)[0] + 2 * self._n_parameters()

    def sample(self, n_samples=1):
        """Draw samples from the fitted mixture.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of shape (n_samples,)
            Component of each sample (samples are grouped by component).
        """
        self._check_is_fitted()
        if not isinstance(n_samples, numbers.Integral) or n_samples < 1:
            raise ValueError(f"Invalid value for 'n_samples': {n_samples!r}. The sampling "
                             "requires at least one sample.")
        _, d = self.means_.shape
        rng = check_random_state(self.random_state)
        weights = np.asarray(self.weights_, dtype=np.float64)
        counts = rng.multinomial(n_samples, weights / weights.sum())
        stored_as = _models.layout(self.covariance_type)
        if stored_as in ("full", "tied"):
            covs = (self.covariances_ if stored_as == "full"
                    else [self.covariances_] * len(counts))
            parts = [rng.multivariate_normal(mean, cov, int(count))
                     for mean, cov, count in zip(self.means_, covs, counts)]
        else:
            parts = [mean + rng.standard_normal(size=(count, d)) * np.sqrt(cov)
                     for mean, cov, count in zip(self.means_, self.covariances_, counts)]
        X = np.vstack(parts).astype(self.means_.dtype, copy=False)
        y = np.concatenate([np.full(count, j, dtype=int) for j, count in enumerate(counts)])
        return X, y


# Elements of the (rows, n_components, n_features) temporaries of one ``_far_rows`` call.
_FAR_CHUNK = 1 << 18


def _far_rows_limit(means, prec_chol, dtype):
    """A magnitude below which no value of a row can make the kernels' squared
    Mahalanobis distances overflow ``dtype`` (1e-4: a margin for their sums
    and expansions)."""
    d = means.shape[1]
    reach = np.sqrt(np.finfo(dtype).max) * 1e-4 / (d * np.abs(prec_chol).max())
    return reach - np.abs(means).max()


def _far_rows(X, weights, means, prec_chol, covariance_type):
    """log p(x) and p(k | x) (float64) of rows too far for the kernels.

    The squared Mahalanobis distances D_k = |z_k|^2, z_k = (x - mu_k) U_k,
    overflow for a row astronomically far from every component. Here the row
    and the means are scaled by 2^-e and z by 2^-f, so D_k = 4^(e + f) m_k
    with m_k of order one, and differences D_k - D_0 are taken as
    (z_k - z_0) . (z_k + z_0), z_k - z_0 = (x U_k - x U_0) - (mu_k U_k -
    mu_0 U_0): with equal factors (tied) the first term is exactly zero and
    the means decide, although each D_k alone rounds them away. The
    posterior concentrates on the nearest component, as it does in the
    limit; log-weights and log-determinants count only between equal
    distances. log p(x) is -inf below float64's range.

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
    weights, means, prec_chol : ndarrays
        The fitted parameters; ``covariance_type`` says their layout.

    Returns
    -------
    log_norm : ndarray of shape (n_rows,)
    proba : ndarray of shape (n_rows, n_components)
    """
    X = np.asarray(X, dtype=np.float64)
    means = np.asarray(means, dtype=np.float64)
    U = np.asarray(prec_chol, dtype=np.float64)
    k, d = means.shape
    stored_as = _models.layout(covariance_type)
    if stored_as == "tied":
        U = np.broadcast_to(U, (k, d, d))
    elif stored_as == "spherical":
        U = np.repeat(U[:, None], d, axis=1)
    with np.errstate(divide="ignore"):
        offsets = np.log(np.asarray(weights, dtype=np.float64))
    diagonal = U if U.ndim == 2 else np.diagonal(U, axis1=1, axis2=2)
    offsets += np.log(diagonal).sum(axis=1) - 0.5 * d * np.log(2 * np.pi)

    def times_factors(rows):  # rows (n_rows, k, d) times each U_k
        return rows * U if U.ndim == 2 else np.einsum("rkd,kde->rke", rows, U)

    n = X.shape[0]
    e = np.frexp(np.maximum(np.abs(X).max(axis=1), np.abs(means).max()))[1][:, None, None]
    y = times_factors(np.broadcast_to(np.ldexp(X[:, None, :], -e), (n, k, d)))
    q = times_factors(np.ldexp(means, -e))
    f = np.frexp((np.abs(y) + np.abs(q)).max(axis=(1, 2)))[1][:, None, None]
    y, q = np.ldexp(y, -f), np.ldexp(q, -f)  # now |y| + |q| < 1: nothing below overflows
    z = y - q
    power = 2 * (e + f)[:, :, 0]  # D_k = 2^power m_k
    # m_k - m_0, then relative to the nearest component j (zero-weight ones excluded)
    rel = (((y - y[:, :1]) - (q - q[:, :1])) * (z + z[:, :1])).sum(axis=2)
    rel[:, offsets == -np.inf] = np.inf
    j = np.argmin(rel, axis=1)
    rows = np.arange(n)
    rel -= rel[rows, j][:, None]
    with np.errstate(over="ignore"):
        log_ratio = offsets - offsets[j][:, None] - np.ldexp(0.5 * rel, power)
    top = log_ratio.max(axis=1)
    proba = np.exp(log_ratio - top[:, None])
    total = proba.sum(axis=1)
    proba /= total[:, None]
    nearest = np.square(z[rows, j]).sum(axis=1)
    with np.errstate(over="ignore"):
        log_norm = offsets[j] - np.ldexp(0.5 * nearest, power[:, 0]) + top + np.log(total)
    return log_norm, proba
