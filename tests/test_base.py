"""The mixture base (gaussmix._base.BaseMixture): a new estimator needs only its hooks.

``FixedVarianceMixture``, written here, is a mixture of isotropic Gaussians
of one known variance (only the weights and means are learnt). It implements
the abstract hooks and nothing else, and gets fit, predict, score, sample,
partial_fit, Dask routing and scikit-learn compatibility from the base.
"""
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import logsumexp
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

from gaussmix import GaussianMixture
from gaussmix._base import BaseMixture
from gaussmix._persistence import estimator_class
from gaussmix._em import Parameters
from gaussmix._exceptions import InvalidParameterError


class FixedVarianceMixture(BaseMixture):
    """Isotropic components of one known ``variance``; weights and means are fitted."""

    covariance_type = "spherical"

    def __init__(self, n_components=1, *, variance=1.0, tol=1e-3, reg_covar=1e-6,
                 max_iter=100, n_init=1, init_params="random", random_state=None,
                 warm_start=False, verbose=0, verbose_interval=10, n_threads=None,
                 learning_decay=0.55, learning_offset=1.0):
        super().__init__(n_components, tol=tol, reg_covar=reg_covar, max_iter=max_iter,
                         n_init=n_init, init_params=init_params, random_state=random_state,
                         warm_start=warm_start, verbose=verbose,
                         verbose_interval=verbose_interval, n_threads=n_threads,
                         learning_decay=learning_decay, learning_offset=learning_offset)
        self.variance = variance

    def _check_own_parameters(self):
        if not (isinstance(self.variance, float) and self.variance > 0):
            raise InvalidParameterError("variance must be a positive float")

    def _check_initial_parameters(self, n_features, dtype):
        pass  # nothing given by the user depends on X

    def _parameters(self, weights, means, dtype):
        k = len(weights)
        return Parameters(np.asarray(weights, dtype), np.asarray(means, dtype),
                          np.full(k, self.variance, dtype),
                          np.full(k, self.variance ** -0.5, dtype))

    def _initialize(self, X, sample_weight, total_weight, random_state, n_threads):
        rows = random_state.choice(X.shape[0], self.n_components, replace=False)
        k = self.n_components
        return self._parameters(np.full(k, 1 / k), X[rows], X.dtype)

    def _log_weights(self, params):
        return np.log(params.weights.astype(np.float64))

    def _m_step(self, stats, dtype, previous, unit):
        N = stats.N + 10 * np.finfo(np.float64).eps
        return self._parameters(N / N.sum(), stats.shift + stats.S / N[:, None], dtype)

    def _lower_bound(self, stats, log_likelihood, total_weight, params, previous, unit):
        return log_likelihood / total_weight

    def _store_parameters(self, params):
        self.weights_, self.means_ = params.weights, params.means
        self.covariances_, self.precisions_cholesky_ = (params.covariances,
                                                        params.precisions_cholesky)

    def _fitted_parameters(self, dtype):
        return self._parameters(self.weights_, self.means_, dtype)

    def _kernel_inputs(self):
        return (self.variance, self.weights_, self.means_)


def two_blobs(n=2_000, seed=0):
    rng = np.random.RandomState(seed)
    truth = rng.randint(0, 2, n)
    X = rng.standard_normal((n, 3)) + np.where(truth[:, None] == 1, 8.0, -8.0)
    return X, truth


def log_density(model, X):
    """log p(x) of the fitted FixedVarianceMixture, by hand."""
    d = X.shape[1]
    sq = ((X[:, None, :] - model.means_[None]) ** 2).sum(axis=2)
    log_gauss = -0.5 * sq / model.variance - 0.5 * d * np.log(2 * np.pi * model.variance)
    return logsumexp(log_gauss + np.log(model.weights_), axis=1)


def test_the_base_cannot_be_instantiated_and_every_hook_is_required():
    with pytest.raises(TypeError):
        BaseMixture(1)
    for hook in BaseMixture.__abstractmethods__:
        namespace = {name: value for name, value in vars(FixedVarianceMixture).items()
                     if name != hook and (name == "__init__" or not name.startswith("__"))}
        incomplete = type("Incomplete", (BaseMixture,), namespace)
        with pytest.raises(TypeError, match=hook):
            incomplete()


def test_a_subclass_with_only_the_hooks_fits_predicts_and_scores():
    X, truth = two_blobs()
    model = FixedVarianceMixture(2, random_state=0).fit(X)
    assert model.converged_ and model.n_iter_ >= 1
    order = np.argsort(model.means_[:, 0])
    assert_allclose(model.means_[order], [[-8.0] * 3, [8.0] * 3], atol=0.1)
    assert_allclose(model.covariances_, [1.0, 1.0])
    labels = model.predict(X)
    assert_array_equal(labels == order[1], truth == 1)
    assert_array_equal(model.fit_predict(X), labels)
    proba = model.predict_proba(X)
    assert proba.shape == (X.shape[0], 2)
    assert_allclose(proba.sum(axis=1), 1.0)
    assert_allclose(model.score_samples(X), log_density(model, X), rtol=1e-10)
    assert_allclose(model.score(X), log_density(model, X).mean(), rtol=1e-10)
    assert_allclose(model.lower_bound_, model.score(X), rtol=1e-6)
    assert not hasattr(model, "bic")  # a maximum-likelihood criterion: GaussianMixture's


def test_a_subclass_samples_from_its_fitted_mixture():
    X, _ = two_blobs()
    model = FixedVarianceMixture(2, random_state=0).fit(X)
    drawn, components = model.sample(20_000)
    assert drawn.shape == (20_000, 3) and components.shape == (20_000,)
    for j in range(2):
        rows = drawn[components == j]
        assert_allclose(rows.mean(axis=0), model.means_[j], atol=0.05)
        assert_allclose(rows.var(axis=0), model.variance, rtol=0.05)
    assert_allclose(np.bincount(components) / 20_000, model.weights_, atol=0.02)


def test_a_subclass_is_clonable_and_validates_its_parameters():
    model = FixedVarianceMixture(3, variance=2.0, random_state=1)
    copy = clone(model)
    assert copy is not model and copy.get_params() == model.get_params()
    assert repr(copy) == "FixedVarianceMixture(n_components=3, random_state=1, variance=2.0)"
    X, _ = two_blobs(n=200)
    with pytest.raises(InvalidParameterError, match="variance"):
        FixedVarianceMixture(variance=-1.0).fit(X)
    with pytest.raises(InvalidParameterError, match="tol"):  # a shared parameter
        FixedVarianceMixture(tol=-1.0).fit(X)


def test_a_subclass_gets_partial_fit_from_the_base():
    X, truth = two_blobs(n=4_000)
    model = FixedVarianceMixture(2, random_state=0)
    for batch in np.array_split(X, 8):
        model.partial_fit(batch)
    assert model.n_steps_ == 8
    order = np.argsort(model.means_[:, 0])
    assert_allclose(model.means_[order], [[-8.0] * 3, [8.0] * 3], atol=0.15)
    assert_array_equal(model.predict(X) == order[1], truth == 1)


def test_a_subclass_fits_a_dask_array_as_it_fits_memory():
    da = pytest.importorskip("dask.array")
    dask = pytest.importorskip("dask")
    X, _ = two_blobs()
    local = FixedVarianceMixture(2, random_state=0).fit(X)
    with dask.config.set(scheduler="synchronous"):
        lazy = da.from_array(X, chunks=500)
        remote = FixedVarianceMixture(2, random_state=0).fit(lazy)
        assert_allclose(remote.means_, local.means_, rtol=1e-10)
        assert_array_equal(remote.predict(lazy).compute(), local.predict(X))
        weights = np.linspace(0.5, 1.5, X.shape[0])
        assert_allclose(remote.score(lazy, sample_weight=weights),
                        local.score(X, sample_weight=weights), rtol=1e-10)


def test_gaussian_mixture_is_a_base_mixture():
    assert issubclass(GaussianMixture, BaseMixture)
    own = {name for name in vars(GaussianMixture) if not name.startswith("__")}
    assert own - {"_abc_impl", "_saved_format", "_saved_state"} == {
        "_check_own_parameters", "_check_initial_parameters", "_initialize",
        "_log_weights", "_m_step", "_lower_bound", "_store_parameters",
        "_fitted_parameters", "_kernel_inputs", "_n_parameters", "bic", "aic"}


def test_saved_formats_name_their_estimator_class():
    # _persistence finds the class to load into here, importing no estimator module.
    assert estimator_class(GaussianMixture._saved_format) is GaussianMixture
    assert estimator_class("gaussmix.GaussianMixture") is GaussianMixture
    assert estimator_class("gaussmix.Unknown") is None
    assert FixedVarianceMixture._saved_format is None  # not registered: no file format


def _expected_failed_checks(estimator):
    # As for GaussianMixture (test_estimator.py): with two components the
    # random start differs between weighted and repeated rows.
    if estimator.n_components > 1:
        return {"check_sample_weight_equivalence_on_dense_data":
                "random initialisation draws differ between weighted and repeated rows"}
    return {}


@parametrize_with_checks([FixedVarianceMixture(), FixedVarianceMixture(2, random_state=0)],
                         expected_failed_checks=_expected_failed_checks)
def test_a_subclass_passes_scikit_learns_estimator_checks(estimator, check):
    check(estimator)
