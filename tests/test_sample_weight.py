"""sample_weight: its semantics (integer weights repeat rows, zero weights remove
them, scale does not matter) and weights of extreme magnitude."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from gaussmix import GaussianMixture

from conftest import (
    ALL_COVARIANCE_TYPES,
    COVARIANCE_TYPES,
    FITTED_ARRAYS,
    INIT_PARAMS,
    LAYOUT,
    assert_fitted_params_close,
    fit_or_reject,
    fit_quiet,
    hand_init,
    hand_init_kwargs,
    two_blobs,
)


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


# ---------------------------------------------------------- extreme weights


@pytest.mark.parametrize("covariance_type", ALL_COVARIANCE_TYPES)
@pytest.mark.parametrize("weights", ["tiny", "huge", "tiny_and_zeros", "huge_and_zeros",
                                     "tiny_huge_zeros", "denormal", "one_nonzero"])
def test_extreme_sample_weights(covariance_type, weights):
    X = two_blobs(200)
    n = X.shape[0]
    i = np.arange(n)
    w = {
        "tiny": np.full(n, 1e-300),
        "huge": np.full(n, 1e300),
        "tiny_and_zeros": np.where(i % 2 == 0, 0.0, 1e-300),
        "huge_and_zeros": np.where(i % 2 == 0, 0.0, 1e300),
        "tiny_huge_zeros": np.choose(i % 3, [0.0, 1e-300, 1e300]),
        "denormal": np.full(n, 5e-324),
        "one_nonzero": np.where(i == 17, 1.0, 0.0),
    }[weights]
    for init_params in ("kmeans", "random_from_data"):
        fit_or_reject(GaussianMixture(2, covariance_type=covariance_type,
                                      init_params=init_params, random_state=0, max_iter=20),
                      X, sample_weight=w)
    fit_or_reject(GaussianMixture(1, covariance_type=covariance_type, max_iter=20), X,
                  sample_weight=w)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical", "VEV"])
@pytest.mark.parametrize("c", [
    1e-300, 1e-30, 1e-3, 1e3, 1e150, 1e300,
])
def test_uniform_weights_of_any_magnitude_equal_no_weights(covariance_type, c):
    """sample_weight = c * ones is the unweighted fit, whatever c > 0. (Was a bug for
    c <= 1e-12, fixed in commit cab5ead: the M-step's
    absolute 10 eps guard on N_k swamped tiny weights.)"""
    X = two_blobs(200)
    w, m, p = hand_init(X, 2, LAYOUT[covariance_type], seed=0)
    kwargs = dict(n_components=2, covariance_type=covariance_type, weights_init=w,
                  means_init=m, precisions_init=p, max_iter=30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = GaussianMixture(**kwargs).fit(X)
        gm = GaussianMixture(**kwargs).fit(X, sample_weight=np.full(len(X), c))
    assert_allclose(gm.lower_bound_, ref.lower_bound_, rtol=1e-8)
    for name in FITTED_ARRAYS:
        scale = np.abs(getattr(ref, name)).max()
        assert_allclose(getattr(gm, name), getattr(ref, name), rtol=1e-6, atol=1e-9 * scale,
                        err_msg=name)


@pytest.mark.parametrize("init_params", INIT_PARAMS)
def test_weights_whose_sum_overflows(init_params):
    X = two_blobs(200)
    w = np.full(len(X), 1e308)
    gm = GaussianMixture(2, init_params=init_params, random_state=0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gm.fit(X, sample_weight=w)
    except ValueError as exc:
        assert "sample_weight" in str(exc), str(exc)
    else:
        ref = GaussianMixture(2, init_params=init_params, random_state=0).fit(X)
        assert_allclose(gm.means_, ref.means_, rtol=1e-6)


@pytest.mark.parametrize("init_params", ["k-means++", "random_from_data"])
def test_huge_weights_keep_the_lower_bounds_finite(init_params):
    """Was a bug (fixed in commit cab5ead): sum_i w_i
    log p(x_i) with raw weights 1e300 overflowed: lower_bounds_[0] = -inf."""
    X = np.random.default_rng(0).normal(size=(1000, 1))
    gm = GaussianMixture(1, init_params=init_params, random_state=0, max_iter=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm.fit(X, sample_weight=np.full(len(X), 1e300))
    assert np.all(np.isfinite(gm.lower_bounds_)), gm.lower_bounds_


@pytest.mark.parametrize("weights", [1e300, 1e-300])
def test_float32_data_with_weights_outside_float32(weights):
    """The weights are cast to float32 with X: 1e300 -> inf, 1e-300 -> 0."""
    X = two_blobs(100).astype(np.float32)
    fit_or_reject(GaussianMixture(2, random_state=0), X,
                  sample_weight=np.full(len(X), weights))
