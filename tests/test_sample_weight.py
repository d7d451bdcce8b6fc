"""Thread-count independence, run-to-run determinism and sample_weight semantics."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from gaussmix import GaussianMixture

from conftest import (
    COVARIANCE_TYPES,
    FITTED_ARRAYS,
    assert_fitted_params_close,
    assert_fitted_params_identical,
    fit_quiet,
    hand_init_kwargs,
    make_blobs,
)

# Big enough to be split into many chunks and shared between threads.
N_LARGE = 5000


@pytest.fixture(scope="module")
def X_large():
    centers = [[0.0, 0.0, 0.0], [6.0, 1.0, -2.0], [1.0, 7.0, 3.0], [-5.0, 4.0, 6.0]]
    return make_blobs(N_LARGE + 37, centers, [1.0, 1.4, 0.8, 1.1], seed=11)


@pytest.fixture(scope="module")
def X_small():
    centers = [[0.0, 0.0], [6.0, 1.0], [1.0, 7.0]]
    return make_blobs(150, centers, [1.0, 1.4, 0.8], seed=12)


# ----------------------------------------------------------------- threads


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random_from_data", "random"])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_one_vs_two_threads_agree(X_large, covariance_type, init_params):
    kw = dict(n_components=4, covariance_type=covariance_type, init_params=init_params,
              random_state=0, max_iter=30)
    gm1 = fit_quiet(GaussianMixture(n_threads=1, **kw), X_large)
    gm2 = fit_quiet(GaussianMixture(n_threads=2, **kw), X_large)
    assert_allclose(gm2.lower_bound_, gm1.lower_bound_, rtol=1e-10)
    assert_fitted_params_close(gm2, gm1, rtol=1e-10)
    assert gm1.n_iter_ == gm2.n_iter_
    assert_allclose(gm2.score_samples(X_large), gm1.score_samples(X_large), rtol=1e-10)
    assert_array_equal(gm2.predict(X_large), gm1.predict(X_large))


def test_predict_time_thread_count_does_not_change_results(X_large):
    gm = GaussianMixture(n_components=4, random_state=0, n_threads=1).fit(X_large)
    ss1 = gm.score_samples(X_large)
    p1 = gm.predict_proba(X_large)
    gm.set_params(n_threads=2)
    assert_allclose(gm.score_samples(X_large), ss1, rtol=1e-12)
    assert_allclose(gm.predict_proba(X_large), p1, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("n_threads", [1, 2, None])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_refit_is_bit_identical(X_large, covariance_type, n_threads):
    kw = dict(n_components=4, covariance_type=covariance_type, random_state=5,
              n_threads=n_threads, n_init=2, max_iter=20)
    a = fit_quiet(GaussianMixture(**kw), X_large)
    b = fit_quiet(GaussianMixture(**kw), X_large)
    assert_fitted_params_identical(a, b)
    assert_array_equal(a.score_samples(X_large), b.score_samples(X_large))
    # refitting the *same* estimator object is identical too
    fit_quiet(a, X_large)
    assert_fitted_params_identical(a, b)


def test_different_random_state_gives_different_start(X_large):
    kw = dict(n_components=4, init_params="random", max_iter=1)
    a = fit_quiet(GaussianMixture(random_state=0, **kw), X_large)
    b = fit_quiet(GaussianMixture(random_state=1, **kw), X_large)
    assert not np.allclose(a.means_, b.means_)


def test_random_state_instance_is_consumed_like_sklearn(X_small):
    """A RandomState instance is advanced by fit: two fits with the same instance
    differ, while two fresh instances with the same seed agree."""
    kw = dict(n_components=3, init_params="random_from_data", max_iter=1)
    rs = np.random.RandomState(0)
    a = fit_quiet(GaussianMixture(random_state=rs, **kw), X_small)
    b = fit_quiet(GaussianMixture(random_state=rs, **kw), X_small)
    c = fit_quiet(GaussianMixture(random_state=np.random.RandomState(0), **kw), X_small)
    assert not np.array_equal(a.means_, b.means_)
    assert_array_equal(a.means_, c.means_)


# ------------------------------------------------------------ sample_weight


def _init_kw(X, covariance_type, k=3):
    return dict(n_components=k, covariance_type=covariance_type,
                **hand_init_kwargs(X, k, covariance_type, seed=3))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_integer_weights_equal_repeated_rows(X_small, covariance_type):
    rng = np.random.default_rng(0)
    w = rng.integers(0, 4, size=len(X_small))
    w[:3] = 1  # the rows chosen as initial means keep a positive weight
    X_rep = np.repeat(X_small, w, axis=0)
    kw = _init_kw(X_small, covariance_type)

    weighted = GaussianMixture(**kw).fit(X_small, sample_weight=w)
    repeated = GaussianMixture(**kw).fit(X_rep)

    assert_fitted_params_close(weighted, repeated, rtol=1e-8)
    assert_allclose(weighted.lower_bound_, repeated.lower_bound_, rtol=1e-8)
    assert_allclose(weighted.lower_bounds_, repeated.lower_bounds_, rtol=1e-8)
    assert weighted.n_iter_ == repeated.n_iter_
    assert weighted.converged_ == repeated.converged_
    assert_allclose(weighted.score_samples(X_small), repeated.score_samples(X_small), rtol=1e-8)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_integer_weights_equal_repeated_rows_float32(X_small, covariance_type):
    rng = np.random.default_rng(1)
    X32 = X_small.astype(np.float32)
    w = rng.integers(1, 4, size=len(X32))
    kw = _init_kw(X_small, covariance_type)
    kw["max_iter"] = 10
    kw["tol"] = 0.0
    weighted = fit_quiet(GaussianMixture(**kw), X32, sample_weight=w)
    repeated = fit_quiet(GaussianMixture(**kw), np.repeat(X32, w, axis=0))
    for name in FITTED_ARRAYS:
        assert getattr(weighted, name).dtype == np.float32
    assert_fitted_params_close(weighted, repeated, rtol=1e-4, atol_scale=1e-5)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_uniform_weights_equal_no_weights(X_small, covariance_type):
    kw = _init_kw(X_small, covariance_type)
    plain = GaussianMixture(**kw).fit(X_small)
    for value in (1.0, 2.5, 1e-3):
        weighted = GaussianMixture(**kw).fit(X_small, sample_weight=np.full(len(X_small), value))
        assert_fitted_params_close(weighted, plain, rtol=1e-10)
        assert_allclose(weighted.lower_bound_, plain.lower_bound_, rtol=1e-10)
        assert weighted.n_iter_ == plain.n_iter_


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random_from_data", "random"])
def test_unit_weights_equal_no_weights_with_random_init(X_small, init_params):
    kw = dict(n_components=3, init_params=init_params, random_state=2)
    plain = GaussianMixture(**kw).fit(X_small)
    weighted = GaussianMixture(**kw).fit(X_small, sample_weight=np.ones(len(X_small)))
    assert_fitted_params_close(weighted, plain, rtol=1e-10)
    assert weighted.n_iter_ == plain.n_iter_


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_zero_weight_rows_equal_removed_rows(X_small, covariance_type):
    rng = np.random.default_rng(4)
    w = np.ones(len(X_small))
    # never zero the rows used as initial means
    candidates = np.setdiff1d(np.arange(len(X_small)), hand_row_indices(X_small, covariance_type))
    zero = rng.choice(candidates, size=40, replace=False)
    w[zero] = 0.0
    # give the zeroed rows absurd values: they must not matter at all
    X = X_small.copy()
    X[zero[:5]] = 1e6
    kw = _init_kw(X_small, covariance_type)

    weighted = GaussianMixture(**kw).fit(X, sample_weight=w)
    removed = GaussianMixture(**kw).fit(X[w > 0])
    assert_fitted_params_close(weighted, removed, rtol=1e-8)
    assert_allclose(weighted.lower_bound_, removed.lower_bound_, rtol=1e-8)
    assert weighted.n_iter_ == removed.n_iter_


def hand_row_indices(X, covariance_type, k=3):
    """Indices of the rows that hand_init_kwargs(seed=3) uses as means."""
    means = hand_init_kwargs(X, k, covariance_type, seed=3)["means_init"]
    return np.array([np.flatnonzero((X == m).all(axis=1))[0] for m in means])


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_fractional_weights_scale_invariance(X_small, covariance_type):
    rng = np.random.default_rng(6)
    w = rng.uniform(0.1, 3.0, size=len(X_small))
    kw = _init_kw(X_small, covariance_type)
    a = GaussianMixture(**kw).fit(X_small, sample_weight=w)
    b = GaussianMixture(**kw).fit(X_small, sample_weight=7.0 * w)
    assert_fitted_params_close(a, b, rtol=1e-9)
    assert_allclose(a.lower_bound_, b.lower_bound_, rtol=1e-9)
    # the weights must actually change the fit
    plain = GaussianMixture(**kw).fit(X_small)
    assert not np.allclose(a.means_, plain.means_, rtol=1e-6)


def test_lower_bound_is_weighted_mean_log_likelihood(X_small):
    rng = np.random.default_rng(8)
    w = rng.uniform(0.0, 2.0, size=len(X_small))
    gm = GaussianMixture(n_components=3, random_state=0, tol=1e-10, max_iter=500)
    gm.fit(X_small, sample_weight=w)
    # at convergence the last bound is the weighted mean log-likelihood of the
    # (almost unchanged) final parameters
    ll = np.average(gm.score_samples(X_small), weights=w)
    assert_allclose(gm.lower_bound_, ll, rtol=1e-7)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_fit_predict_with_weights(X_small, covariance_type):
    w = np.linspace(0.0, 2.0, len(X_small))
    gm = GaussianMixture(n_components=3, covariance_type=covariance_type, random_state=0)
    labels = gm.fit_predict(X_small, sample_weight=w)
    assert labels.shape == (len(X_small),)  # zero-weight rows get labels too
    assert_array_equal(labels, gm.predict(X_small))


def test_weights_with_threads(X_large):
    rng = np.random.default_rng(9)
    w = rng.uniform(0.0, 3.0, size=len(X_large))
    kw = dict(n_components=4, random_state=0, init_params="k-means++")
    a = GaussianMixture(n_threads=1, **kw).fit(X_large, sample_weight=w)
    b = GaussianMixture(n_threads=2, **kw).fit(X_large, sample_weight=w)
    assert_fitted_params_close(a, b, rtol=1e-10)
    assert_allclose(a.lower_bound_, b.lower_bound_, rtol=1e-10)


def test_sample_weight_as_list_and_int_dtype(X_small):
    kw = _init_kw(X_small, "full")
    w = np.arange(len(X_small)) % 3 + 1
    a = GaussianMixture(**kw).fit(X_small, sample_weight=w.tolist())
    b = GaussianMixture(**kw).fit(X_small, sample_weight=w.astype(np.float64))
    assert_fitted_params_close(a, b, rtol=1e-12)


def test_weighted_score_is_weighted_mean_log_density(X_small):
    gm = GaussianMixture(2, random_state=0).fit(X_small)
    counts = np.random.default_rng(1).integers(0, 4, size=X_small.shape[0])
    expected = np.average(gm.score_samples(X_small), weights=counts)
    assert gm.score(X_small, sample_weight=counts) == pytest.approx(expected, rel=1e-12)
    repeated = np.repeat(X_small, counts, axis=0)
    assert gm.score(X_small, sample_weight=counts) == pytest.approx(gm.score(repeated),
                                                                    rel=1e-12)
    with pytest.raises(ValueError, match="non-negative"):
        gm.score(X_small, sample_weight=-counts)
    with pytest.raises(ValueError, match="shape"):
        gm.score(X_small, sample_weight=counts[:-1])
