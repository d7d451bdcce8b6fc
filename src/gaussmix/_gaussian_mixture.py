"""GaussianMixture: scikit-learn's estimator API over the compiled EM core."""
import math

import numpy as np

from . import _covariance
from ._base import BaseMixture, check_choice
from ._em import Parameters, parameters_from_statistics
from ._initialization import initial_parameters
from ._missing import NAN_POLICIES
from ._persistence import SavedState
from ._validation import check_array_param, check_param_range


class GaussianMixture(BaseMixture):
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
        1 prints initialisations and iteration numbers, 2 also the time since
        the previous line and the change of the lower bound (as scikit-learn).
    verbose_interval : int, default=10
        Iterations between two progress lines.
    n_threads : int or None, default=None
        Most OpenMP threads a kernel call may use; None: every core this
        process may use (capped by OMP_NUM_THREADS / threadpoolctl limits).
        Each call uses as many as its work pays for, and one in a child
        forked after a multi-threaded call.
    learning_decay : float in (0.5, 1], default=0.55
        ``partial_fit`` only: the step size of update t is
        ``(learning_offset + t) ** -learning_decay``.
    learning_offset : float >= 0, default=1.0
        ``partial_fit`` only: larger values damp the early updates.
    nan_policy : {'raise', 'marginalize'}, default='raise'
        What NaN in X means. 'raise': an error, as scikit-learn. 'marginalize':
        a value missing at random; every method then takes NaN anywhere, fit
        maximises the observed-data likelihood (EM over each row's observed
        coordinates, ``_missing``), predictions use each row's marginal over
        its observed coordinates. Rows with every value missing are ignored
        by fit and get log-density 0 and the weights as posterior. With NaN,
        the initialisation runs on the complete rows when there are at least
        10 * n_features (and n_components) of them, else on every row with its
        holes filled by the column means.

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

    _saved_format = "gaussmix.GaussianMixture"
    _saved_state = SavedState(array_params=("weights_init", "means_init", "precisions_init"))

    def __init__(self, n_components=1, *, covariance_type="full", tol=1e-3,
                 reg_covar=1e-6, max_iter=100, n_init=1, init_params="kmeans",
                 weights_init=None, means_init=None, precisions_init=None,
                 random_state=None, warm_start=False, verbose=0, verbose_interval=10,
                 n_threads=None, learning_decay=0.55, learning_offset=1.0,
                 nan_policy="raise"):
        super().__init__(n_components, tol=tol, reg_covar=reg_covar, max_iter=max_iter,
                         n_init=n_init, init_params=init_params, random_state=random_state,
                         warm_start=warm_start, verbose=verbose,
                         verbose_interval=verbose_interval, n_threads=n_threads,
                         learning_decay=learning_decay, learning_offset=learning_offset)
        self.covariance_type = covariance_type
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.nan_policy = nan_policy

    def _check_own_parameters(self):
        check_choice(self, "covariance_type", _covariance.COVARIANCE_TYPES)
        check_choice(self, "nan_policy", NAN_POLICIES)

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
            layout = _covariance.model(cov_type).layout
            p = check_array_param(self.precisions_init, "precisions_init",
                                  layout.shape(k, n_features), dtype)
            eigenvalues = layout.checked_precision_eigenvalues(p, cov_type)
            with np.errstate(over="ignore"):  # a variance beyond float64 is inf here
                variances = 1 / eigenvalues
            check_param_range("precisions_init", np.maximum(eigenvalues, variances), dtype,
                              "its eigenvalues and the variances they imply")

    def _initialize(self, X, sample_weight, total_weight, random_state, n_threads):
        return initial_parameters(X, sample_weight, total_weight, self, random_state,
                                  n_threads)

    def _log_weights(self, params):
        with np.errstate(divide="ignore"):
            return np.log(np.asarray(params.weights, dtype=np.float64))

    def _m_step(self, stats, dtype, previous, unit):
        # Maximum likelihood does not depend on the unit of the weights; the
        # previous covariances warm-start the iterative mclust models.
        return parameters_from_statistics(stats, self.covariance_type, self.reg_covar, dtype,
                                          previous.covariances)

    def _lower_bound(self, stats, log_likelihood, total_weight, params, previous, unit):
        return log_likelihood / total_weight  # the mean log-likelihood

    def _store_parameters(self, params):
        self.weights_ = params.weights
        self.means_ = params.means
        self.covariances_ = params.covariances
        self.precisions_cholesky_ = params.precisions_cholesky

    def _fitted_parameters(self, dtype):
        return Parameters(*(np.asarray(a, dtype=dtype) for a in (
            self.weights_, self.means_, self.covariances_, self.precisions_cholesky_)))

    def _kernel_inputs(self):
        return (self.covariance_type, self.weights_, self.means_, self.precisions_cholesky_)

    def _n_parameters(self):
        """Free parameters of the fitted model, as mclust counts them."""
        k, d = self.means_.shape
        return _covariance.model(self.covariance_type).n_parameters(k, d)

    def bic(self, X):
        """Bayesian information criterion on X (lower is better)."""
        n = np.shape(X)[0]
        return -2 * self.score(X) * n + self._n_parameters() * math.log(n)

    def aic(self, X):
        """Akaike information criterion on X (lower is better)."""
        return -2 * self.score(X) * np.shape(X)[0] + 2 * self._n_parameters()
