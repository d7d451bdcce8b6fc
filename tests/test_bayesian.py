"""gaussmix.BayesianGaussianMixture: the behaviour scikit-learn's own tests
check (priors' defaults and checks, weights, monotone bound, covariance types
agreeing, translation invariance, fit_predict, predict), its API, and
``sample_weight`` (integer weights are repeated rows; weights are counts).

Numerical parity with scikit-learn is in ``test_bayesian_parity.py``.
"""

import copy
import pickle
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import BayesianGaussianMixture as SkBayesianGaussianMixture
from sklearn.utils.estimator_checks import parametrize_with_checks

import gaussmix
from gaussmix import BayesianGaussianMixture

from conftest import (
    COVARIANCE_TYPES,
    FITTED_ARRAYS,
    assert_close_scaled,
    fit_quiet,
    is_convergence_warning,
    make_blobs,
)

PRIOR_TYPES = ("dirichlet_process", "dirichlet_distribution")
POSTERIOR_ARRAYS = FITTED_ARRAYS + ("mean_precision_", "degrees_of_freedom_")
PRIOR_ATTRIBUTES = ("weight_concentration_prior_", "mean_precision_prior_", "mean_prior_",
                    "degrees_of_freedom_prior_", "covariance_prior_")


def labelled_blobs(n_samples=300, n_features=2, n_components=3, spread=25.0, seed=0):
    """Well separated Gaussian blobs and the label of each row."""
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-spread, spread, size=(n_components, n_features))
    centers[:, 0] = spread * np.arange(n_components)  # at least `spread` apart
    labels = rng.integers(0, n_components, size=n_samples)
    X = np.empty((n_samples, n_features))
    for c in range(n_components):
        a = rng.normal(size=(n_features, n_features)) * 0.6 + np.eye(n_features)
        rows = labels == c
        X[rows] = centers[c] + rng.normal(size=(rows.sum(), n_features)) @ a
    return X, labels, centers


def small_data(n_samples=40, n_features=3, seed=0):
    return np.random.default_rng(seed).normal(size=(n_samples, n_features)) * [1.0, 2.0, 0.5]


def assert_same_state(a, b, rtol):
    """Two BayesianGaussianMixtures have the same posterior."""
    for name in POSTERIOR_ARRAYS:
        assert_close_scaled(getattr(a, name), getattr(b, name), rtol=rtol, err_msg=name)
    for part, (x, y) in enumerate(zip(np.atleast_2d(a.weight_concentration_),
                                      np.atleast_2d(b.weight_concentration_))):
        assert_close_scaled(x, y, rtol=rtol, err_msg=f"weight_concentration_ {part}")
    assert_allclose(a.lower_bounds_, b.lower_bounds_, rtol=rtol)
    assert a.n_iter_ == b.n_iter_ and a.converged_ == b.converged_


# ------------------------------------------------------------------ priors


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_prior_defaults(covariance_type):
    X = small_data()
    gm = BayesianGaussianMixture(n_components=4, covariance_type=covariance_type,
                                 random_state=0).fit(X)
    assert gm.weight_concentration_prior_ == pytest.approx(1 / 4)
    assert gm.mean_precision_prior_ == 1.0
    assert_allclose(gm.mean_prior_, X.mean(axis=0), rtol=1e-13)
    assert gm.degrees_of_freedom_prior_ == X.shape[1]
    # scikit-learn's: the unbiased (n - 1) sample covariance
    expected = {"full": np.cov(X.T), "tied": np.cov(X.T), "diag": X.var(axis=0, ddof=1),
                "spherical": X.var(axis=0, ddof=1).mean()}[covariance_type]
    assert_allclose(gm.covariance_prior_, expected, rtol=1e-12)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_given_priors_are_used_as_given(covariance_type):
    X = small_data()
    d = X.shape[1]
    covariance_prior = {"full": np.cov(X.T) + 2 * np.eye(d), "tied": np.cov(X.T) + np.eye(d),
                        "diag": X.var(axis=0) + 3, "spherical": 0.7}[covariance_type]
    priors = dict(weight_concentration_prior=0.37, mean_precision_prior=0.2,
                  mean_prior=np.array([1.0, -2.0, 0.5]), degrees_of_freedom_prior=d - 0.5,
                  covariance_prior=covariance_prior)
    gm = BayesianGaussianMixture(n_components=3, covariance_type=covariance_type,
                                 random_state=0, **priors).fit(X)
    for name, value in priors.items():
        assert_allclose(getattr(gm, name + "_"), value, rtol=1e-15, err_msg=name)
    assert gm.get_params()["covariance_prior"] is covariance_prior  # not copied or changed


def test_refit_takes_the_default_priors_from_the_new_data():
    X, other = small_data(seed=1), small_data(n_samples=60, seed=2) + 3.0
    gm = BayesianGaussianMixture(n_components=2, random_state=0).fit(X).fit(other)
    assert_allclose(gm.mean_prior_, other.mean(axis=0), rtol=1e-13)
    assert_allclose(gm.covariance_prior_, np.cov(other.T), rtol=1e-12)


def test_weighted_prior_defaults_are_those_of_repeated_rows():
    X = small_data()
    w = np.random.default_rng(1).integers(0, 4, size=len(X))
    kw = dict(n_components=2, random_state=0)
    gm = BayesianGaussianMixture(**kw).fit(X, sample_weight=w)
    assert_allclose(gm.mean_prior_, np.average(X, axis=0, weights=w), rtol=1e-13)
    assert_allclose(gm.covariance_prior_, np.cov(X.T, fweights=w), rtol=1e-12)
    gm = BayesianGaussianMixture(covariance_type="diag", **kw).fit(X, sample_weight=w)
    assert_allclose(gm.covariance_prior_, np.diag(np.cov(X.T, fweights=w)), rtol=1e-12)


D = 3  # small_data's n_features
BAD_PRIORS = [
    # (parameter, value, covariance_type)
    ("weight_concentration_prior", 0.0, "full"),
    ("weight_concentration_prior", -1.0, "full"),
    ("weight_concentration_prior", np.nan, "full"),
    ("weight_concentration_prior", "1", "full"),
    ("mean_precision_prior", 0.0, "diag"),
    ("mean_precision_prior", -0.5, "diag"),
    ("mean_prior", np.zeros(D + 1), "full"),
    ("mean_prior", np.zeros((1, D)), "full"),
    ("mean_prior", [0.0, np.nan, 0.0], "full"),
    ("degrees_of_freedom_prior", D - 1.0, "full"),
    ("degrees_of_freedom_prior", 0.5, "diag"),
    ("degrees_of_freedom_prior", -3.0, "spherical"),
    ("covariance_prior", np.ones(D), "full"),
    ("covariance_prior", np.eye(D + 1), "tied"),
    ("covariance_prior", np.eye(D) + np.triu(np.ones((D, D)), 1) * 0.5, "full"),  # asymmetric
    ("covariance_prior", np.diag([1.0, -1.0, 1.0]), "full"),  # not positive definite
    ("covariance_prior", np.diag([1.0, 0.0, 1.0]), "tied"),  # singular
    ("covariance_prior", np.full((D, D), np.nan), "tied"),
    ("covariance_prior", np.eye(D), "diag"),
    ("covariance_prior", [1.0, 0.0, 1.0], "diag"),
    ("covariance_prior", [1.0, -2.0, 1.0], "diag"),
    ("covariance_prior", 0.0, "spherical"),
    ("covariance_prior", -1.0, "spherical"),
    ("covariance_prior", np.ones(D), "spherical"),
]


@pytest.mark.parametrize("name, value, covariance_type", BAD_PRIORS)
def test_bad_prior_raises_value_error_naming_it(name, value, covariance_type):
    gm = BayesianGaussianMixture(n_components=2, covariance_type=covariance_type,
                                 **{name: value})
    assert gm.get_params()[name] is value  # the constructor only stores
    with pytest.raises(ValueError, match=name):
        gm.fit(small_data())
    assert not hasattr(gm, "means_")


def test_degrees_of_freedom_prior_just_above_its_limit_is_accepted():
    X = small_data()
    gm = BayesianGaussianMixture(n_components=2, degrees_of_freedom_prior=X.shape[1] - 1 + 1e-3,
                                 random_state=0).fit(X)
    assert np.all(np.isfinite(gm.covariances_))
    message = ("The parameter 'degrees_of_freedom_prior' should be greater than 2, "
               "but got 2.000.")  # scikit-learn's words
    with pytest.raises(ValueError, match=message):
        BayesianGaussianMixture(degrees_of_freedom_prior=2.0).fit(X)


@pytest.mark.parametrize("name, value", [
    ("covariance_type", "VVV"), ("covariance_type", "EII"), ("covariance_type", "Full"),
    ("weight_concentration_prior_type", "dirichlet"), ("init_params", "kmeans+"),
])
def test_bad_choice_raises_value_error_naming_it(name, value):
    with pytest.raises(ValueError, match=name):
        BayesianGaussianMixture(**{name: value}).fit(small_data())


def test_constructor_is_keyword_only_with_scikit_learns_defaults():
    with pytest.raises(TypeError):
        BayesianGaussianMixture(3)
    ours = BayesianGaussianMixture().get_params()
    theirs = SkBayesianGaussianMixture().get_params()
    assert set(theirs) <= set(ours)
    assert {name: ours[name] for name in theirs} == theirs
    assert ours["n_threads"] is None


# ----------------------------------------------------------------- weights


def stick_breaking_weights(a, b):
    expected = a / (a + b) * np.concatenate([[1.0], np.cumprod(b / (a + b))[:-1]])
    return expected / expected.sum()


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_weights_are_the_posterior_mean_weights(covariance_type):
    X = small_data()
    kw = dict(n_components=3, covariance_type=covariance_type, random_state=0)
    dd = BayesianGaussianMixture(weight_concentration_prior_type="dirichlet_distribution",
                                 **kw).fit(X)
    concentration = np.asarray(dd.weight_concentration_)
    assert concentration.shape == (3,)
    assert_allclose(dd.weights_, concentration / concentration.sum(), rtol=1e-12)
    assert_allclose(dd.weights_.sum(), 1.0, rtol=1e-14)

    dp = BayesianGaussianMixture(weight_concentration_prior_type="dirichlet_process",
                                 **kw).fit(X)
    a, b = dp.weight_concentration_
    assert a.shape == b.shape == (3,)
    assert_allclose(dp.weights_, stick_breaking_weights(a, b), rtol=1e-12)
    assert_allclose(dp.weights_.sum(), 1.0, rtol=1e-14)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_dirichlet_process_switches_off_unused_components(covariance_type):
    X, _, centers = labelled_blobs(n_samples=600)
    gm = fit_quiet(BayesianGaussianMixture(
        n_components=8, covariance_type=covariance_type, weight_concentration_prior=1e-3,
        init_params="random_from_data", random_state=0, max_iter=500), X)
    active = gm.weights_ > 1e-2
    assert active.sum() == 3, gm.weights_
    assert gm.weights_[~active].sum() < 1e-2
    found = gm.means_[active]
    for center in centers:  # each blob has a component at its centre
        assert np.min(np.linalg.norm(found - center, axis=1)) < 1.0


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_posterior_counts_add_up_to_the_sample_weight(covariance_type, prior_type):
    """beta_k = beta_0 + N_k, and sum_k N_k is the total sample weight."""
    X = small_data()
    k = 3
    for weight in (None, np.full(len(X), 2.5)):
        total = len(X) if weight is None else weight.sum()
        gm = fit_quiet(BayesianGaussianMixture(
            n_components=k, covariance_type=covariance_type,
            weight_concentration_prior_type=prior_type, random_state=0), X, sample_weight=weight)
        nk = gm.mean_precision_ - gm.mean_precision_prior_
        assert_allclose(nk.sum(), total, rtol=1e-12)
        if covariance_type == "tied":
            assert_allclose(gm.degrees_of_freedom_, gm.degrees_of_freedom_prior_ + total / k)
        else:
            assert_allclose(gm.degrees_of_freedom_, gm.degrees_of_freedom_prior_ + nk)
        if prior_type == "dirichlet_process":
            a, b = gm.weight_concentration_
            assert_allclose(a, 1 + nk, rtol=1e-12)
            assert_allclose(b, gm.weight_concentration_prior_ + total - np.cumsum(nk),
                            rtol=1e-10, atol=1e-10 * total)
        else:
            assert_allclose(gm.weight_concentration_, gm.weight_concentration_prior_ + nk,
                            rtol=1e-12)


# ------------------------------------------------------------- lower bound


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_lower_bound_never_decreases(covariance_type, prior_type):
    X, _, _ = labelled_blobs(n_samples=200, seed=3)
    kw = dict(n_components=6, covariance_type=covariance_type,
              weight_concentration_prior_type=prior_type, random_state=0, init_params="random",
              tol=1e-6, max_iter=1000)
    gm = fit_quiet(BayesianGaussianMixture(**kw), X)
    bounds = np.asarray(gm.lower_bounds_)
    assert gm.converged_ and len(bounds) == gm.n_iter_
    assert np.all(np.diff(bounds) >= -1e-10 * np.abs(bounds[1:])), np.diff(bounds).min()
    assert gm.lower_bound_ == bounds[-1]
    assert isinstance(gm.lower_bound_, float)

    # one iteration per fit, as scikit-learn's test_monotonic_likelihood
    warm = BayesianGaussianMixture(**dict(kw, max_iter=1), warm_start=True)
    previous = -np.inf
    for _ in range(40):
        bound = fit_quiet(warm, X).lower_bound_
        assert bound >= previous - 1e-10 * abs(bound)
        previous = bound


# --------------------------------------------- covariance types in the limit


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
def test_covariance_types_agree_on_the_same_responsibilities(prior_type):
    """From the same initial responsibilities, the scale matrices nu_k * covariances_
    of tied / diag / spherical are the mean / diagonal / mean of the full ones."""
    X = make_blobs(200, [[0.0, 0.0], [7.0, 2.0]], [1.0, 1.5], seed=4)

    def scale(covariance_type):
        gm = BayesianGaussianMixture(n_components=4, covariance_type=covariance_type,
                                     weight_concentration_prior_type=prior_type, max_iter=0,
                                     init_params="random", random_state=0).fit(X)
        nu = np.asarray(gm.degrees_of_freedom_)  # (k,), or a float for tied
        return gm.covariances_ * nu.reshape(nu.shape + (1,) * (gm.covariances_.ndim - nu.ndim))

    full = scale("full")
    assert_allclose(scale("tied"), full.mean(axis=0), rtol=1e-10)
    diag = np.diagonal(full, axis1=1, axis2=2)
    assert_allclose(scale("diag"), diag, rtol=1e-10)
    assert_allclose(scale("spherical"), diag.mean(axis=1), rtol=1e-10)


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_translation_moves_only_the_means(covariance_type, prior_type):
    X, _, _ = labelled_blobs(n_samples=200, seed=5)
    kw = dict(n_components=4, covariance_type=covariance_type,
              weight_concentration_prior_type=prior_type, random_state=0, reg_covar=0)
    a = fit_quiet(BayesianGaussianMixture(**kw), X)
    b = fit_quiet(BayesianGaussianMixture(**kw), X + 100)
    assert_allclose(b.means_ - 100, a.means_, atol=1e-7 * np.abs(a.means_).max())
    assert_allclose(b.mean_prior_ - 100, a.mean_prior_, atol=1e-10)
    for name in ("weights_", "covariances_", "precisions_cholesky_", "mean_precision_",
                 "degrees_of_freedom_"):
        assert_close_scaled(getattr(b, name), getattr(a, name), rtol=1e-6, atol_scale=1e-8,
                            err_msg=name)
    assert b.n_iter_ == a.n_iter_


# -------------------------------------------------------------- prediction


@pytest.mark.parametrize("seed, max_iter, tol", [
    (0, 2, 1e-7), (1, 2, 1e-1), (3, 300, 1e-7), (4, 300, 1e-1),
])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_fit_predict_equals_fit_then_predict(covariance_type, seed, max_iter, tol):
    X, _, _ = labelled_blobs(n_samples=60, seed=seed)
    gm = BayesianGaussianMixture(n_components=6, covariance_type=covariance_type,
                                 max_iter=max_iter, tol=tol, reg_covar=0,
                                 random_state=np.random.RandomState(seed))
    other = copy.deepcopy(gm)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*converge.*")
        assert_array_equal(gm.fit(X).predict(X), other.fit_predict(X))


def test_fit_predict_equals_predict_with_n_init():
    X = np.random.RandomState(0).randn(50, 5)
    gm = BayesianGaussianMixture(n_components=5, n_init=10, random_state=0)
    assert_array_equal(fit_quiet(gm, X).predict(X), gm.predict(X))
    labels = BayesianGaussianMixture(n_components=5, n_init=10, random_state=0).fit_predict(X)
    assert_array_equal(labels, gm.predict(X))


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_predict_recovers_separated_labels(covariance_type, prior_type):
    X, y, _ = labelled_blobs(n_samples=300, seed=6)
    gm = BayesianGaussianMixture(n_components=3, covariance_type=covariance_type,
                                 weight_concentration_prior_type=prior_type,
                                 random_state=0).fit(X)
    labels = gm.predict(X)
    proba = gm.predict_proba(X)
    assert_array_equal(labels, proba.argmax(axis=1))
    assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    assert adjusted_rand_score(y, labels) >= 0.95


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_covariances_times_precisions_is_identity(covariance_type):
    X, _, _ = labelled_blobs(n_samples=200, seed=7)
    gm = fit_quiet(BayesianGaussianMixture(n_components=4, covariance_type=covariance_type,
                                           reg_covar=0, random_state=0), X)
    if covariance_type == "full":
        product = np.einsum("kij,kjl->kil", gm.covariances_, gm.precisions_)
        assert_allclose(product, np.broadcast_to(np.eye(2), product.shape), atol=1e-10)
    elif covariance_type == "tied":
        assert_allclose(gm.covariances_ @ gm.precisions_, np.eye(2), atol=1e-10)
    else:
        assert_allclose(gm.covariances_ * gm.precisions_, 1.0, rtol=1e-12)


# ------------------------------------------------- n_init, warm_start, convergence


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
def test_n_init_keeps_the_run_with_the_best_bound(prior_type):
    X, _, _ = labelled_blobs(n_samples=150, seed=8)
    kw = dict(n_components=5, covariance_type="diag", init_params="random",
              weight_concentration_prior_type=prior_type)
    rs = np.random.RandomState(11)  # n_init draws its starts one after another from it
    runs = [fit_quiet(BayesianGaussianMixture(**kw, random_state=rs), X) for _ in range(4)]
    best = runs[int(np.argmax([run.lower_bound_ for run in runs]))]
    gm = fit_quiet(BayesianGaussianMixture(**kw, n_init=4, random_state=11), X)
    assert gm.lower_bound_ == max(run.lower_bound_ for run in runs)
    assert_same_state(gm, best, rtol=1e-12)


def test_warm_start_continues_where_it_stopped():
    X, _, _ = labelled_blobs(n_samples=150, seed=9)
    kw = dict(n_components=4, random_state=0, init_params="random", tol=1e-8, n_init=3)
    gm = fit_quiet(BayesianGaussianMixture(**kw, max_iter=3, warm_start=True), X)
    first = gm.lower_bound_
    fit_quiet(gm, X)  # n_init is ignored: one run, from the stored posterior
    assert gm.lower_bounds_[0] >= first - 1e-10 * abs(first)
    cold = fit_quiet(BayesianGaussianMixture(**kw, max_iter=3 + gm.n_iter_), X)
    assert_allclose(gm.lower_bound_, cold.lower_bound_, rtol=1e-12)
    assert_close_scaled(gm.means_, cold.means_, rtol=1e-10)

    converged = fit_quiet(BayesianGaussianMixture(**kw, max_iter=500, warm_start=True), X)
    assert converged.converged_
    bound = converged.lower_bound_
    converged.fit(X)  # from a converged posterior: done at once
    assert converged.converged_ and converged.n_iter_ <= 2
    assert_allclose(converged.lower_bound_, bound, rtol=1e-9)


def test_convergence_warning_only_when_not_converged():
    X, _, _ = labelled_blobs(n_samples=100, seed=10)
    with pytest.warns(UserWarning) as record:
        gm = BayesianGaussianMixture(n_components=3, max_iter=1, tol=1e-12,
                                     random_state=0).fit(X)
    assert any(is_convergence_warning(w) for w in record)
    assert not gm.converged_ and gm.n_iter_ == 1 and len(gm.lower_bounds_) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gm = BayesianGaussianMixture(n_components=3, max_iter=500, random_state=0).fit(X)
    assert gm.converged_


# ------------------------------------------------------------------- API


def test_unfitted_model_raises_not_fitted_error():
    gm = BayesianGaussianMixture(n_components=2)
    X = small_data()
    message = "This BayesianGaussianMixture instance is not fitted yet"
    for method in (gm.predict, gm.predict_proba, gm.score, gm.score_samples):
        with pytest.raises(NotFittedError, match=message):
            method(X)
    with pytest.raises(NotFittedError, match=message):
        gm.sample(3)


def test_more_components_than_samples_raises():
    with pytest.raises(ValueError, match="Expected n_samples >= n_components"):
        BayesianGaussianMixture(n_components=12).fit(np.random.rand(10, 5))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_sample_shapes_and_frequencies(covariance_type):
    X, _, _ = labelled_blobs(n_samples=300, seed=12)
    gm = BayesianGaussianMixture(n_components=3, covariance_type=covariance_type,
                                 random_state=0).fit(X)
    n = 20000
    X_s, y_s = gm.sample(n)
    assert X_s.shape == (n, 2) and y_s.shape == (n,)
    assert np.issubdtype(y_s.dtype, np.integer) and set(np.unique(y_s)) <= {0, 1, 2}
    assert_allclose(np.bincount(y_s, minlength=3) / n, gm.weights_, atol=5 * np.sqrt(0.25 / n))
    for c in range(3):
        rows = X_s[y_s == c]
        assert np.all(np.abs(rows.mean(axis=0) - gm.means_[c]) < 5 * rows.std(axis=0)
                      / np.sqrt(len(rows)))
    X_1, y_1 = gm.sample()
    assert X_1.shape == (1, 2) and y_1.shape == (1,)
    first, again = gm.sample(50), gm.sample(50)  # random_state=0: the same draw
    assert_array_equal(first[0], again[0])
    assert_array_equal(first[1], again[1])
    with pytest.raises(ValueError):
        gm.sample(0)


def test_clone_get_and_set_params():
    gm = BayesianGaussianMixture(n_components=3, weight_concentration_prior=0.1,
                                 covariance_prior=np.eye(2), n_threads=1)
    twin = clone(gm)
    assert twin is not gm
    assert twin.get_params()["weight_concentration_prior"] == 0.1
    assert_array_equal(twin.get_params()["covariance_prior"], np.eye(2))
    twin.set_params(covariance_type="diag", covariance_prior=[1.0, 2.0])
    assert twin.covariance_type == "diag"
    X, _, _ = labelled_blobs(n_samples=100, seed=13)
    fresh = clone(twin)
    assert fresh.fit(X) is fresh and fresh.covariances_.shape == (3, 2)
    assert isinstance(fresh.score(X), float)
    assert "BayesianGaussianMixture(" in repr(twin)


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("covariance_type", ("full", "tied", "spherical"))
def test_save_load_and_pickle_keep_the_model(tmp_path, covariance_type, prior_type):
    X, _, _ = labelled_blobs(n_samples=150, seed=14)
    gm = BayesianGaussianMixture(n_components=3, covariance_type=covariance_type,
                                 weight_concentration_prior_type=prior_type,
                                 random_state=0).fit(X)
    gm.save(tmp_path / "model.gm")
    for loaded in (gaussmix.load(tmp_path / "model.gm"), pickle.loads(pickle.dumps(gm))):
        assert type(loaded) is BayesianGaussianMixture
        assert loaded.get_params().keys() == gm.get_params().keys()
        for name in POSTERIOR_ARRAYS + PRIOR_ATTRIBUTES:
            assert_array_equal(getattr(loaded, name), getattr(gm, name), err_msg=name)
        if prior_type == "dirichlet_process":
            assert isinstance(loaded.weight_concentration_, tuple)
        for x, y in zip(np.atleast_2d(loaded.weight_concentration_),
                        np.atleast_2d(gm.weight_concentration_)):
            assert_array_equal(x, y)
        assert loaded.lower_bound_ == gm.lower_bound_ and loaded.n_iter_ == gm.n_iter_
        assert_array_equal(loaded.predict_proba(X), gm.predict_proba(X))
        assert_array_equal(loaded.score_samples(X), gm.score_samples(X))


def test_feature_names_from_a_data_frame():
    pd = pytest.importorskip("pandas")
    X, _, _ = labelled_blobs(n_samples=100, seed=15)
    frame = pd.DataFrame(X, columns=["height", "width"])
    gm = BayesianGaussianMixture(n_components=2, random_state=0).fit(frame)
    assert gm.n_features_in_ == 2
    assert list(gm.feature_names_in_) == ["height", "width"]
    plain = BayesianGaussianMixture(n_components=2, random_state=0).fit(X)
    assert_array_equal(gm.predict_proba(frame), plain.predict_proba(X))


def test_thread_count_changes_only_rounding():
    X, _, _ = labelled_blobs(n_samples=3000, n_features=4, seed=16)
    kw = dict(n_components=4, init_params="random_from_data", random_state=0, tol=1e-6)
    one = fit_quiet(BayesianGaussianMixture(**kw, n_threads=1), X)
    two = fit_quiet(BayesianGaussianMixture(**kw, n_threads=2), X)
    assert_same_state(one, two, rtol=1e-9)


# ----------------------------------------------------------- sample_weight


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-8), (np.float32, 1e-4)])
@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_integer_weights_equal_repeated_rows_from_the_same_start(covariance_type, prior_type,
                                                                 dtype, rtol):
    """Repeated rows and integer weights give different starts (every start
    draws per row), so both fits continue one posterior (warm_start): from
    there every step and the bound must agree. Zero weights drop rows."""
    X, _, _ = labelled_blobs(n_samples=120, seed=17)
    X = X.astype(dtype)
    w = np.random.default_rng(0).integers(0, 4, size=len(X))
    start = fit_quiet(BayesianGaussianMixture(
        n_components=4, covariance_type=covariance_type,
        weight_concentration_prior_type=prior_type, init_params="random", random_state=0,
        max_iter=2, tol=1e-7, warm_start=True), X)
    weighted = fit_quiet(copy.deepcopy(start).set_params(max_iter=200), X, sample_weight=w)
    repeated = fit_quiet(copy.deepcopy(start).set_params(max_iter=200), np.repeat(X, w, axis=0))
    assert weighted.n_iter_ > 2 and weighted.means_.dtype == dtype
    assert_same_state(weighted, repeated, rtol=rtol)
    prior_rtol = 1e-12 if dtype == np.float64 else rtol  # float32 weights are rounded
    for name in PRIOR_ATTRIBUTES:
        assert_allclose(getattr(weighted, name), getattr(repeated, name), rtol=prior_rtol,
                        err_msg=name)
    assert_allclose(weighted.score_samples(X), repeated.score_samples(X), rtol=rtol)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_weights_count_samples_their_scale_matters(covariance_type):
    """Unit weights are no weights; weights scaled by c != 1 make the data
    weigh c times more against the prior: another posterior."""
    X, _, _ = labelled_blobs(n_samples=60, seed=18)
    kw = dict(n_components=3, covariance_type=covariance_type, random_state=0,
              init_params="random_from_data")
    plain = fit_quiet(BayesianGaussianMixture(**kw), X)
    ones = fit_quiet(BayesianGaussianMixture(**kw), X, sample_weight=np.ones(len(X)))
    assert_same_state(ones, plain, rtol=1e-12)
    for c in (0.05, 20.0):
        scaled = fit_quiet(BayesianGaussianMixture(**kw), X, sample_weight=np.full(len(X), c))
        assert_allclose((scaled.mean_precision_ - scaled.mean_precision_prior_).sum(),
                        c * len(X), rtol=1e-12)
        assert not np.allclose(scaled.covariances_, plain.covariances_, rtol=1e-3)
        assert abs(scaled.lower_bound_ - plain.lower_bound_) > 1e-3 * abs(plain.lower_bound_)


def test_negative_sample_weight_raises():
    with pytest.raises(ValueError, match="sample_weight"):
        BayesianGaussianMixture(n_components=2).fit(small_data(),
                                                     sample_weight=-np.ones(40))


@pytest.mark.parametrize("total_weight", [0.5, 1.0])
def test_total_weight_too_small_for_the_default_covariance_prior(total_weight):
    """The default covariance_prior is the unbiased covariance, divided by the
    total weight less one: with a total weight <= 1 there is none, and the
    error must say so (not blame the components' covariances), without a
    RuntimeWarning on the way. A given covariance_prior fits the same data."""
    X = small_data()
    w = np.full(len(X), total_weight / len(X))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(ValueError, match="sample_weight|covariance_prior"):
            BayesianGaussianMixture(n_components=2, random_state=0).fit(X, sample_weight=w)
    gm = BayesianGaussianMixture(n_components=2, covariance_prior=np.eye(3),
                                 random_state=0).fit(X, sample_weight=w)
    assert np.all(np.isfinite(gm.covariances_))


def _expected_failed_checks(estimator):
    # As for GaussianMixture (tests/test_gaussian_mixture.py): shuffled weighted
    # rows and repeated rows draw different random starts.
    if estimator.n_components > 1:
        return {"check_sample_weight_equivalence_on_dense_data":
                "random initialisation draws differ between shuffled weighted rows "
                "and repeated rows"}
    return {}


@parametrize_with_checks(
    [BayesianGaussianMixture(),
     BayesianGaussianMixture(n_components=2, covariance_type="diag",
                             weight_concentration_prior_type="dirichlet_distribution")],
    expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
