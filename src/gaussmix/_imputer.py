"""GaussianMixtureImputer: fill missing values from a Gaussian mixture fitted with them."""
import inspect

import numpy as np

from ._base import ParameterProtocol
from ._gaussian_mixture import GaussianMixture
from ._missing import Mixture, PartialRows, Patterns
from ._validation import as_float_array, check_random_state

_MIXTURE_PARAMETERS = tuple(p for p in inspect.signature(GaussianMixture.__init__).parameters
                            if p not in ("self", "nan_policy"))


class GaussianMixtureImputer(ParameterProtocol):
    """Fill each missing value (NaN) from a Gaussian mixture fitted to the
    observed values (``GaussianMixture(nan_policy="marginalize")``).

    A missing block x_M of a row is replaced by its conditional expectation
    sum_k p(k | x_O) E[x_M | x_O, k], E[x_M | x_O, k] = mu_kM + Sigma_kMO
    Sigma_kOO^-1 (x_O - mu_kO); or, with ``sample_posterior=True``, by a draw
    from the conditional distribution (a component drawn from p(k | x_O), then
    x_M from N(E[x_M | x_O, k], Sigma_kMM - Sigma_kMO Sigma_kOO^-1 Sigma_kOM)),
    as ``IterativeImputer(sample_posterior=True)`` does. Rows with every value
    missing get the mixture's mean (or a draw from the mixture). Usable in a
    scikit-learn ``Pipeline``.

    Parameters
    ----------
    n_components, covariance_type, tol, reg_covar, max_iter, n_init, init_params,
    weights_init, means_init, precisions_init, random_state, warm_start, verbose,
    verbose_interval, n_threads, learning_decay, learning_offset
        As for ``GaussianMixture``; ``random_state`` also seeds the draws.
    sample_posterior : bool, default=False
        Draw each filled value from its conditional distribution instead of
        taking its conditional expectation.

    Attributes
    ----------
    mixture_ : GaussianMixture
        The fitted mixture.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when fitted on a DataFrame with string column names.
    """

    def __init__(self, n_components=1, *, covariance_type="full", tol=1e-3, reg_covar=1e-6,
                 max_iter=100, n_init=1, init_params="kmeans", weights_init=None,
                 means_init=None, precisions_init=None, random_state=None, warm_start=False,
                 verbose=0, verbose_interval=10, n_threads=None, learning_decay=0.55,
                 learning_offset=1.0, sample_posterior=False):
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
        self.sample_posterior = sample_posterior

    def __sklearn_tags__(self):
        from sklearn.utils import InputTags, Tags, TargetTags, TransformerTags

        return Tags(estimator_type=None, target_tags=TargetTags(required=False),
                    transformer_tags=TransformerTags(),
                    input_tags=InputTags(allow_nan=True))

    def fit(self, X, y=None, sample_weight=None):
        """Fit the mixture to X (NaN marking missing values); returns self."""
        if not isinstance(self.sample_posterior, (bool, np.bool_)):
            raise ValueError("The 'sample_posterior' parameter must be a bool. "
                             f"Got {self.sample_posterior!r} instead.")
        mixture = GaussianMixture(**{name: getattr(self, name) for name in _MIXTURE_PARAMETERS},
                                  nan_policy="marginalize")
        self.mixture_ = mixture.fit(X, sample_weight=sample_weight)
        self.n_features_in_ = mixture.n_features_in_
        self.__dict__.pop("feature_names_in_", None)
        if hasattr(mixture, "feature_names_in_"):
            self.feature_names_in_ = mixture.feature_names_in_
        self._draws = check_random_state(self.random_state)
        return self

    def fit_transform(self, X, y=None, sample_weight=None):
        return self.fit(X, sample_weight=sample_weight).transform(X)

    def transform(self, X):
        """X with every NaN filled (a new array, X's float dtype)."""
        if not hasattr(self, "mixture_"):
            from ._exceptions import not_fitted_error
            raise not_fitted_error()(f"This {type(self).__name__} instance is not fitted yet.")
        gm = self.mixture_
        proba = gm.predict_proba(X)                    # checks X and its feature names
        X = np.array(as_float_array(X, allow_nan=True))   # a copy, float32 or float64
        if not np.isnan(X).any():
            return X
        mixture = Mixture(np.log(gm.weights_), gm.means_, gm.precisions_cholesky_,
                          gm.covariance_type)
        patterns = Patterns(X)
        empty = patterns.empty()
        if empty is not None:
            self._fill(X, patterns.rows(empty), np.arange(X.shape[1]), proba,
                       mixture.means[:, None, :], None)
        partial = PartialRows(patterns, [p for p in range(len(patterns))
                                         if p != empty and not patterns.observed[p].all()])
        for group, obs, mis in partial.groups():
            B, C = mixture.conditionals(obs, mis)
            for g, q in enumerate(range(group.start, group.stop)):
                rows = partial.rows_of(q)
                centred = X[rows[:, None], obs[g]] - mixture.means[:, obs[g]][:, None, :]
                means = mixture.means[:, mis[g]][:, None, :]        # (k, rows or 1, m)
                if B is not None:
                    means = means + centred @ np.swapaxes(B[g], 1, 2)
                self._fill(X, rows, mis[g], proba, means,
                           C[g] if C.ndim == 4 else C[g][:, :, None] * np.eye(mis.shape[1]))
        return X

    def _fill(self, X, rows, mis, proba, means, covariances):
        """Fill X[rows, mis] from the components' conditional ``means`` (k, rows
        or 1, m) and ``covariances`` (k, m, m; None: the components' own)."""
        gm = self.mixture_
        k = gm.means_.shape[0]
        resp = proba[rows].astype(np.float64)
        means = np.broadcast_to(means, (k, rows.size, mis.size))
        if not self.sample_posterior:
            X[rows[:, None], mis] = np.einsum("rk,krm->rm", resp, means)
            return
        if covariances is None:
            layout_cov = Mixture(np.zeros(k), gm.means_, gm.precisions_cholesky_,
                                 gm.covariance_type).precisions
            covariances = (np.linalg.inv(layout_cov) if layout_cov.ndim == 3
                           else (1.0 / layout_cov)[:, :, None] * np.eye(mis.size))
        cumulative = np.cumsum(resp, axis=1)
        draws = self._draws.uniform(size=(rows.size, 1)) * cumulative[:, -1:]
        component = np.minimum((cumulative < draws).sum(axis=1), k - 1)
        factors = np.linalg.cholesky(covariances + 1e-300 * np.eye(mis.size))
        noise = self._draws.standard_normal(size=(rows.size, mis.size))
        X[rows[:, None], mis] = (means[component, np.arange(rows.size)]
                                 + np.einsum("rij,rj->ri", factors[component], noise))

    def get_feature_names_out(self, input_features=None):
        """The input feature names (the imputer keeps every column)."""
        if not hasattr(self, "n_features_in_"):
            raise AttributeError("get_feature_names_out needs a fitted imputer.")
        fitted = getattr(self, "feature_names_in_", None)
        if input_features is not None:
            names = np.asarray(input_features, dtype=object)
            if len(names) != self.n_features_in_ or (fitted is not None and
                                                      np.any(names != fitted)):
                raise ValueError("input_features is not equal to feature_names_in_ "
                                 f"(expected {self.n_features_in_} names).")
            return names
        if fitted is not None:
            return np.asarray(fitted, dtype=object)
        return np.asarray([f"x{i}" for i in range(self.n_features_in_)], dtype=object)
