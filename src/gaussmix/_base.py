"""The mixture base: what every Gaussian mixture estimator of gaussmix shares.

Every estimator is the same loop: per-component constants -> one compiled
pass over X (responsibilities fused with sufficient statistics) -> an update
from the statistics. ``BaseMixture`` owns the loop and the public API
(validation, ``fit`` with ``n_init`` / ``warm_start`` / convergence,
``partial_fit``, ``predict*``, ``score*``, ``sample``, ``bic`` / ``aic``,
``save``, scikit-learn's parameter protocol) and routes Dask arrays. A
subclass supplies what differs per estimator through the abstract hooks:

- ``_check_own_parameters()``: its constructor parameters beyond the shared ones;
- ``_check_initial_parameters(n_features, dtype)``: the parameters that depend
  on the data's shape (user-given starts, priors);
- ``_begin_fit(data, mass)``: settings a fit derives from its data (priors)
  and the sample weight its statistics stand for; by default none;
- ``_initialize(X, sample_weight, total_weight, random_state, n_threads)``:
  the starting parameters of one run;
- ``_log_weights(params)``: each component's additive log-constant in the
  E-step (log pi_k for EM); with the means and precision Cholesky factors it
  makes the per-component constants of the compiled pass;
- ``_m_step(stats, dtype, previous, unit)``: new parameters from
  ``_em.Statistics`` (``unit`` times them is in the units of the caller's
  sample weights: what a Bayesian update adds to its priors);
- ``_lower_bound(stats, log_likelihood, total_weight, params, previous, unit)``:
  the quantity whose convergence ends a run (and chooses among ``n_init`` runs);
- ``_stream_mass(samples_seen)``: the sample weight ``partial_fit``'s
  running statistics stand for (1 by default);
- ``_running_statistics(params)``: the running statistics whose M-step gives
  back fitted ``params`` (``partial_fit`` after ``fit``; by default the
  maximum-likelihood M-step inverted);
- ``_store_parameters(params)`` / ``_fitted_parameters(dtype)``: params to
  fitted attributes and back;
- ``_kernel_inputs()``: the fitted attributes (and parameters) that the
  fitted kernel constants derive from: while they keep their values, the
  constants are reused from call to call (``_fitted_kernel_parameters``).

``params`` is whatever object the subclass's hooks exchange: an
``_em.Parameters`` (maximum likelihood) or a subclass of it. What ``save``
writes beyond the common attributes is the class's ``_saved_state``
(``_persistence.SavedState``). The fitted attributes every subclass sets are
``weights_``, ``means_``, ``covariances_`` and ``precisions_cholesky_`` in the
layout of its ``covariance_type``; prediction and sampling read those.
"""
import inspect
import numbers
import warnings
import weakref
from abc import ABCMeta, abstractmethod
from time import perf_counter

import numpy as np

from . import _covariance, _dask, _missing, _models, _persistence
from ._blocks import row_ranges
from ._em import InMemoryData
from ._exceptions import (InconsistentVersionWarning, InvalidParameterError,
                          convergence_warning, not_fitted_error)
from ._far_rows import far_rows_limit, redo_far_rows
from ._initialization import INIT_PARAMS
from ._kernels import estep
from ._streaming import RunningStatistics
from ._threading import effective_n_threads, kernel_team, single_threaded_blas
from ._validation import (all_rows_equal, as_float_array, check_feature_names,
                          check_random_state, check_sample_weight, feature_names,
                          parse_text_array)


class _KernelCache:
    """Kernel constants with a snapshot of the values they were built from."""

    def __init__(self, snapshot, constants):
        self._snapshot, self.constants = snapshot, constants

    def holds(self, inputs):
        """True when built from values equal to ``inputs``."""
        return len(inputs) == len(self._snapshot) and all(
            _unchanged(v, s) for v, s in zip(inputs, self._snapshot))


# Each estimator's {dtype: _KernelCache}, held outside the estimator: predicting
# leaves its __dict__ as it was (scikit-learn checks that), and copies and
# pickles of it carry no cache.
_KERNEL_CACHES = weakref.WeakKeyDictionary()


def _snapshot(value):
    """A copy of ``value`` to compare later: arrays (and lists) as arrays."""
    if isinstance(value, (str, bytes, numbers.Number)) or value is None:
        return value
    return np.array(value)


def _unchanged(value, snapshot):
    """``value`` equals its earlier ``snapshot``: same type, shape and bytes
    for arrays, so assignment and in-place edits both show."""
    if not isinstance(snapshot, np.ndarray):
        return type(value) is type(snapshot) and value == snapshot
    value = np.asarray(value)
    if value.dtype != snapshot.dtype or value.shape != snapshot.shape:
        return False
    if value.nbytes <= 1 << 16:
        return value.tobytes() == snapshot.tobytes()  # fastest on small arrays
    return bool(np.array_equal(value, snapshot))      # no copy of a large one


class ParameterProtocol:
    """scikit-learn's parameter protocol from the constructor's signature:
    ``get_params``, ``set_params`` and a ``repr`` of the changed parameters
    (what ``clone``, ``Pipeline`` and grid searches need)."""

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


class BaseMixture(ParameterProtocol, metaclass=ABCMeta):
    """Base class of the mixture estimators (see the module docstring).

    Parameters shared by every mixture are documented on ``GaussianMixture``.
    A subclass that sets ``_saved_format`` is registered for ``load``; its
    ``_saved_state`` (``_persistence.SavedState``) says what it saves beyond
    the fitted state every mixture has.
    """

    _estimator_type = "DensityEstimator"
    _saved_format = None
    # What its files hold beyond every mixture's fitted state (see _persistence).
    _saved_state = _persistence.SavedState()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("_saved_format") is not None:
            _persistence.register(cls)

    def __init__(self, n_components, *, tol, reg_covar, max_iter, n_init, init_params,
                 random_state, warm_start, verbose, verbose_interval, n_threads,
                 learning_decay, learning_offset):
        self.n_components = n_components
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.n_threads = n_threads
        self.learning_decay = learning_decay
        self.learning_offset = learning_offset

    # ------------------------------------------------------- subclass hooks
    @abstractmethod
    def _check_own_parameters(self):
        """Raise InvalidParameterError for a bad parameter of the subclass."""

    @abstractmethod
    def _check_initial_parameters(self, n_features, dtype):
        """Check the parameters that depend on X's ``n_features`` and ``dtype``."""

    def _begin_fit(self, data, mass):
        """Derive what a fit needs from its ``data`` (``_em.InMemoryData`` or
        ``_dask.DaskData``) before the first start; ``mass``: the sample
        weight (caller's units) the fit's statistics stand for. Nothing by default."""

    @abstractmethod
    def _initialize(self, X, sample_weight, total_weight, random_state, n_threads):
        """Parameters to start one run from, in X's dtype."""

    @abstractmethod
    def _log_weights(self, params):
        """Each component's additive log-constant of the E-step, shape (k,)."""

    @abstractmethod
    def _m_step(self, stats, dtype, previous, unit):
        """New parameters in ``dtype`` from reduced ``_em.Statistics``
        (``previous``: the parameters they were gathered under; ``unit``: the
        sample weight of one unit of their weights)."""

    @abstractmethod
    def _lower_bound(self, stats, log_likelihood, total_weight, params, previous, unit):
        """The bound of one iteration: ``stats`` and ``log_likelihood``
        (sum_i w_i log p(x_i)) from the pass over data of ``total_weight``
        under ``previous``, ``params`` from its M-step, ``unit`` as for ``_m_step``."""

    def _stream_mass(self, samples_seen):
        """Sample weight the running statistics of ``partial_fit`` stand for,
        given the weight of every batch so far."""
        return 1.0

    @abstractmethod
    def _store_parameters(self, params):
        """Set the fitted attributes from ``params``."""

    @abstractmethod
    def _fitted_parameters(self, dtype):
        """The fitted attributes as params, in ``dtype``."""

    @abstractmethod
    def _kernel_inputs(self):
        """Tuple of the values ``_kernel_parameters(_fitted_parameters(dtype))``
        and ``far_rows_limit`` derive from (arrays and scalars)."""

    def _kernel_parameters(self, params, dtype):
        """Per-component constants of the compiled pass (``_models.KernelParameters``)."""
        return _models.kernel_parameters(self._log_weights(params), params.means,
                                         params.precisions_cholesky, self.covariance_type,
                                         dtype)

    def _running_statistics(self, params):
        """Running statistics that reproduce ``params`` (``partial_fit`` after
        ``fit``); this default inverts the maximum-likelihood M-step."""
        return RunningStatistics.from_parameters(params, self.covariance_type, self.reg_covar)

    def __sklearn_tags__(self):
        from sklearn.utils import InputTags, Tags, TargetTags

        return Tags(estimator_type="density_estimator",
                    target_tags=TargetTags(required=False), input_tags=InputTags())

    def _check_parameters(self):
        """Check every constructor parameter (the shared ones, then the subclass's)."""
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
        self._check_own_parameters()
        check_choice(self, "init_params", INIT_PARAMS)
        if not isinstance(self.warm_start, (bool, np.bool_)):
            raise InvalidParameterError(f"The 'warm_start' parameter must be a bool. "
                                        f"Got {self.warm_start!r} instead.")

    # --------------------------------------------------------------- fit
    def fit(self, X, y=None, sample_weight=None):
        """Estimate the parameters (``n_init`` runs, best lower bound kept).

        Parameters
        ----------
        X : array-like or Dask array of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; integer weights act as repeated rows.

        Returns
        -------
        self
        """
        self._check_parameters()
        data, names = self._fit_data(X, sample_weight)
        n_threads = effective_n_threads(self.n_threads)
        with single_threaded_blas():
            params, n_iter, lower_bounds, lower_bound, converged = self._fit_runs(
                data, n_threads)
        # The model changes only here, so an interrupted fit leaves it as it was.
        self._set_parameters(params, names)
        self.n_iter_, self.lower_bounds_, self.lower_bound_ = n_iter, lower_bounds, lower_bound
        self.converged_, self._stream = converged, None
        # partial_fit continues from the fit as from one step standing for X's weight
        self.n_samples_seen_ = data.total_weight * data.weight_unit
        self.__dict__.pop("n_steps_", None)
        if not converged and self.max_iter > 0:
            warnings.warn("Best performing initialization did not converge. Try different "
                          "init parameters, or increase max_iter, tol, or check for "
                          "degenerate data.", convergence_warning(), stacklevel=2)
        return self

    def _fit_data(self, X, sample_weight, reset=True, batch=False):
        """X and its weights as a pass sees them (``_em.InMemoryData`` or
        ``_dask.DaskData``), and X's feature names; with ``reset``, X starts a
        new model, else it must match the fitted one. A ``batch`` (of
        ``partial_fit``) must be in memory."""
        if _dask.is_dask_array(X):
            if batch:
                raise TypeError("partial_fit takes in-memory batches; fit() the Dask array, "
                                "or pass its blocks' .compute() results")
            return _dask.DaskData(X, sample_weight, self), None
        X, sample_weight, names = self._training_data(X, sample_weight, reset)
        data = InMemoryData(X, sample_weight)
        if _missing.marginalizes(self) and _missing.has_nan(X):
            data = _missing.MissingData(data.X, data.sample_weight, data.weight_unit,
                                        self.n_components)
        return data, names

    def _training_data(self, X, sample_weight, reset):
        """Validated X, sample weights (as given) and feature names; with ``reset``, X
        starts a new model, else it must match the fitted one."""
        names_source = X
        X = as_float_array(X, min_samples=2 if reset else 1,
                           allow_nan=_missing.marginalizes(self))
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
        if reset and self.n_components > 1 and all_rows_equal(X):
            raise ValueError(f"All rows of X are equal: {self.n_components} components "
                             "cannot be told apart. Use n_components=1 or check the data.")
        if not reset:
            check_feature_names(self, names_source)
        return X, sample_weight, feature_names(names_source)

    def _fit_runs(self, data, n_threads):
        """EM (or the subclass's update) from ``n_init`` starts on ``data``,
        leaving the estimator untouched.

        Returns
        -------
        (params, n_iter, lower_bounds, lower_bound, converged) of the best start.
        """
        do_init = not (self.warm_start and hasattr(self, "converged_"))
        self._begin_fit(data, data.total_weight * data.weight_unit)
        random_state = check_random_state(self.random_state)
        best_lower_bound, best = -np.inf, None
        for init in range(self.n_init if do_init else 1):
            self._print_verbose(f"Initialization {init}")
            start = last_print = perf_counter()
            if do_init:
                params = self._initialize(*data.initialisation_data(random_state),
                                          random_state, n_threads)
                lower_bound = -np.inf
            else:
                params, lower_bound = self._fitted_parameters(data.dtype), self.lower_bound_
            lower_bounds, converged, n_iter = [], False, 0
            for n_iter in range(1, self.max_iter + 1):
                last_bound = lower_bound
                stats, log_likelihood = self._statistics(data, params, n_threads)
                previous, params = params, self._m_step(stats, data.dtype, params,
                                                        data.weight_unit)
                lower_bound = self._lower_bound(stats, log_likelihood, data.total_weight,
                                                params, previous, data.weight_unit)
                lower_bounds.append(lower_bound)
                change = lower_bound - last_bound
                if self.verbose and n_iter % self.verbose_interval == 0:
                    now = perf_counter()  # the time lapse is since the last line, as in sklearn
                    self._print_verbose(f"  Iteration {n_iter}", f"\t time lapse "
                                        f"{now - last_print:.5f}s\t ll change {change:.5f}")
                    last_print = now
                if abs(change) < self.tol:
                    converged = True
                    break
            if self.verbose:
                self._print_verbose(
                    f"Initialization {'converged' if converged else 'did not converge'}.",
                    f" time lapse {perf_counter() - start:.5f}s\t lower bound {lower_bound:.5f}.")
            if self.max_iter == 0 or lower_bound > best_lower_bound or best is None:
                best_lower_bound = lower_bound if self.max_iter else -np.inf
                best = (params, n_iter, lower_bounds, best_lower_bound, converged)
        return best

    def _statistics(self, data, params, n_threads):
        """One pass over ``data`` under ``params``: (reduced Statistics,
        sum_i w_i log p(x_i)); data with missing values also need the
        parameters themselves for their marginals."""
        kernel_params = self._kernel_parameters(params, data.dtype)
        if data.has_missing:
            mixture = _missing.Mixture(self._log_weights(params), params.means,
                                       params.precisions_cholesky, self.covariance_type)
            return data.statistics(kernel_params, n_threads, mixture)
        return data.statistics(kernel_params, n_threads)

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
        self
        """
        self._check_parameters()
        first = not hasattr(self, "means_")
        data, names = self._fit_data(X, sample_weight, reset=first, batch=True)
        n_threads = effective_n_threads(self.n_threads)
        with single_threaded_blas():
            seen = (0.0 if first else getattr(self, "n_samples_seen_", 0.0)) + (
                data.total_weight * data.weight_unit)
            mass = self._stream_mass(seen)
            if first:
                self._begin_fit(data, mass)
                params = self._initialize(*data.initialisation_data(None),
                                          check_random_state(self.random_state), n_threads)
                running, steps = None, 0
            else:
                params = self._fitted_parameters(data.dtype)
                running = getattr(self, "_stream", None)
                if running is None:
                    running = self._running_statistics(params)
                steps = getattr(self, "n_steps_", 1)
            stats, log_likelihood = self._statistics(data, params, n_threads)
            if not np.isfinite(log_likelihood):
                raise ValueError("Every row of the batch has zero density under the model "
                                 "(it is too far from every component); partial_fit cannot "
                                 "learn from it. Check the data's scale or refit.")
            batch = RunningStatistics.from_statistics(stats, data.total_weight)
            if running is not None:
                step = (self.learning_offset + steps) ** -self.learning_decay
                batch = running.blend(batch, step)
            new_params = self._m_step(batch.statistics(), data.dtype, params, mass)
        self._set_parameters(new_params, names if first else False)
        self._stream, self.n_samples_seen_ = batch, seen
        self.n_steps_ = self.n_iter_ = steps + 1
        self.lower_bound_ = self._lower_bound(stats, log_likelihood, data.total_weight,
                                              new_params, params, mass / data.total_weight)
        self.lower_bounds_ = ([] if first else list(getattr(self, "lower_bounds_", [])))
        self.lower_bounds_.append(self.lower_bound_)
        self.converged_ = False
        return self

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit, then return the component labels of X (equals fit(X).predict(X),
        numeric strings in X included)."""
        X = parse_text_array(X)
        return self.fit(X, sample_weight=sample_weight).predict(X)

    def _print_verbose(self, message, timing=""):
        """Print ``message`` when verbose, followed by ``timing`` at verbose >= 2."""
        if self.verbose:
            print(message + (timing if self.verbose >= 2 else ""))

    def _set_parameters(self, params, feature_names_in=False):
        """Set the fitted attributes from ``params``; a fresh model
        (``feature_names_in`` given, None for none) also records its input features."""
        self._store_parameters(params)
        layout = _covariance.model(self.covariance_type).layout
        self.precisions_ = layout.precisions_from_cholesky(self.precisions_cholesky_)
        if feature_names_in is not False:
            self.__dict__.pop("feature_names_in_", None)
            if feature_names_in is not None:
                self.feature_names_in_ = feature_names_in
            self.n_features_in_ = self.means_.shape[1]

    # ----------------------------------------------------------- predict
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

    def _fitted_kernel_parameters(self, dtype):
        """Kernel constants of the fitted model in ``dtype``, the magnitude
        below which no row is too far for them (``far_rows_limit``) and the
        components' log-weights (for the rows that are).

        Every E-step of a fitted model gets them here. They are kept between
        calls while ``_kernel_inputs()`` keep their values: a refit, an
        assigned attribute or an array changed in place all rebuild them.
        """
        dtype = np.dtype(dtype)
        inputs = self._kernel_inputs()
        caches = _KERNEL_CACHES.setdefault(self, {})
        cached = caches.get(dtype)
        if cached is not None and cached.holds(inputs):
            return cached.constants
        # Snapshot first: an edit while the constants are built then shows
        # as a change at the next call instead of hiding in the cache.
        snapshot = tuple(map(_snapshot, inputs))
        params = self._fitted_parameters(dtype)
        constants = (self._kernel_parameters(params, dtype),
                     far_rows_limit(self.means_, self.precisions_cholesky_, dtype),
                     self._log_weights(params))
        caches[dtype] = _KernelCache(snapshot, constants)
        return constants

    def _e_step(self, X, *, log_norm=False, labels=False, proba=False, n_threads=None):
        """Run the chunked E-step kernel on in-memory X, filling only the
        outputs asked for; returns (log_norm, labels, proba), empty when not asked.

        Rows whose log-normaliser is not finite (their densities all
        underflow in the kernel) are redone by ``_far_rows``. Unless it is
        an output, the log-normaliser is computed (into a block-sized
        buffer) only for blocks holding a value beyond ``far_rows_limit``,
        as no other row can underflow. ``n_threads`` defaults to the estimator's.
        """
        self._check_is_fitted()
        check_feature_names(self, X)
        marginalize = _missing.marginalizes(self)
        X = as_float_array(X, parse_strings=False,  # as scikit-learn's predictions
                           allow_nan=marginalize)
        self._check_n_features(X)
        k = self.means_.shape[0]
        dtype = np.result_type(X.dtype, self.means_.dtype)
        n = X.shape[0]
        if marginalize and _missing.has_nan(X):
            outputs = (np.empty(n if log_norm else 0, dtype=dtype),
                       np.empty(n if labels else 0, dtype=np.intp),
                       np.empty((n, k) if proba else (0, k), dtype=dtype))
            _missing.e_step(self, X, *outputs,
                            self.n_threads if n_threads is None else n_threads)
            return outputs
        kp, limit, log_weights = self._fitted_kernel_parameters(dtype)
        out_norm = np.empty(n if log_norm else 0, dtype=dtype)
        out_labels = np.empty(n if labels else 0, dtype=np.intp)
        out_proba = np.empty((n, k) if proba else (0, k), dtype=dtype)
        budget = self.n_threads if n_threads is None else n_threads
        flops = _models.flops_per_row(kp.mode, k, X.shape[1])
        with kernel_team(budget, n, flops) as threads:
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
                estep.e_step(block, kp.shift, kp.prec, kp.coef, kp.exact, kp.offsets, kp.mode,
                             norm, block_labels, block_proba, threads)
                if norm.size and not np.isfinite(norm.min()):
                    redo_far_rows(block, norm, block_labels, block_proba, log_weights,
                                  self.means_, self.precisions_cholesky_, self.covariance_type)
        return out_norm, out_labels, out_proba

    def _e_step_output(self, X, what, n_threads=None):
        """The one output ``what`` ('log_norm', 'labels' or 'proba') of ``_e_step``
        on in-memory X."""
        log_norm, labels, proba = self._e_step(X, n_threads=n_threads, **{what: True})
        return {"log_norm": log_norm, "labels": labels, "proba": proba}[what]

    def _per_row(self, X, what):
        """``what`` ('log_norm', 'labels' or 'proba') of each row of X; lazy
        for a Dask array."""
        if _dask.is_dask_array(X):
            return _dask.predict_blocks(self, X, what)
        return self._e_step_output(X, what)

    def score_samples(self, X):
        """Log-likelihood log p(x) of each sample, shape (n_samples,) (lazy for a
        Dask array)."""
        return self._per_row(X, "log_norm")

    def score(self, X, y=None, sample_weight=None):
        """Mean log-likelihood of X, weighted by ``sample_weight`` when given."""
        log_density = self.score_samples(X).astype(np.float64)
        if _dask.is_dask_array(X):
            return _dask.weighted_mean(log_density, sample_weight, X)
        if sample_weight is None:
            return float(log_density.mean())
        weights = check_sample_weight(sample_weight, log_density.shape[0], np.float64)
        return float(weights @ log_density / weights.sum())

    def predict(self, X):
        """Most probable component of each sample, shape (n_samples,) (lazy for a
        Dask array)."""
        return self._per_row(X, "labels")

    def predict_proba(self, X):
        """Posterior probability of each component, shape (n_samples, n_components)
        (lazy for a Dask array)."""
        return self._per_row(X, "proba")

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
        layout = _covariance.model(self.covariance_type).layout
        parts = layout.sample(rng, self.means_, self.covariances_, counts)
        X = np.vstack(parts).astype(self.means_.dtype, copy=False)
        y = np.concatenate([np.full(count, j, dtype=int) for j, count in enumerate(counts)])
        return X, y

    # ------------------------------------------------------------ persistence
    def save(self, file):
        """Write the fitted model to ``file`` in gaussmix's pickle-free format.

        ``file`` is a path (str or os.PathLike, written as given) or a binary
        file object opened for writing (an open file, ``io.BytesIO``). Read it
        back with ``gaussmix.load(file)``; see README "Saving models".
        """
        _persistence.save(self, file)

    def __getstate__(self):
        """The pickled state: the attributes and the gaussmix version."""
        from . import __version__

        return {**self.__dict__, "_gaussmix_version": __version__}

    def __setstate__(self, state):
        """Restore a pickled state; warn ``InconsistentVersionWarning`` when it
        was pickled by another gaussmix version, or by one that did not record
        its version."""
        from . import __version__

        state = dict(state)
        pickled_by = state.pop("_gaussmix_version", None)
        if pickled_by != __version__:
            warnings.warn(InconsistentVersionWarning(type(self).__name__, pickled_by,
                                                     __version__), stacklevel=2)
        self.__dict__.update(state)


def check_choice(estimator, name, options):
    """Raise InvalidParameterError unless parameter ``name`` is one of ``options``."""
    value = getattr(estimator, name)
    if not isinstance(value, str) or value not in options:
        raise InvalidParameterError(f"The '{name}' parameter must be one of "
                                    f"{list(options)}. Got {value!r} instead.")
