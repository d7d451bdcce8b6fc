"""The EM fit (gaussmix._em and the covariance M-steps): the same model for any
thread count, and a finite model or a clear error at extreme scales, on data
held far from the origin, on degenerate data and with very many components."""

import time
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from gaussmix import GaussianMixture

from conftest import (ALL_COVARIANCE_TYPES, COVARIANCE_TYPES, INIT_PARAMS, LAYOUT,
                      assert_fitted_params_close, assert_fitted_params_identical, blobs_2d,
                      blobs_5d, fit_or_reject, fit_quiet, hand_init, make_blobs, two_blobs)


# ------------------------------------------------------------------ threads


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


# ----------------------------------------------------------- extreme scales


# Was a bug found by the fuzzing (fixed in commit cab5ead): the
# models run by _parsimonious raised its internal "scatter must be finite" /
# "previous must be a finite array of shape (2, 3), got shape (2, 3)" when the scatter
# overflowed, where full/tied/diag/spherical say what to do.
@pytest.mark.parametrize("covariance_type", ALL_COVARIANCE_TYPES)
@pytest.mark.parametrize("scale", [1e300, 1e200, 1e155, 1e150, 1e-150, 1e-300, 5e-324])
def test_extreme_scales_float64(covariance_type, scale):
    """X * 1e300 overflows its squares, X * 1e-300 underflows them."""
    with np.errstate(all="ignore"):
        X = two_blobs(120) * scale
    for init_params in ("kmeans", "random"):
        fit_or_reject(GaussianMixture(2, covariance_type=covariance_type,
                                      init_params=init_params, random_state=0, max_iter=20), X)


# Was a bug found by the fuzzing (fixed in commit cab5ead): float32
# X whose variances exceed float32's range (spread > ~1.8e19) got covariances_ = inf,
# precisions_ = 0 from an unchecked cast in _em.parameters_from_statistics.
@pytest.mark.parametrize("covariance_type", ALL_COVARIANCE_TYPES)
@pytest.mark.parametrize("scale", [3e37, 1e30, 1e20, 1e18, 1e-19, 1e-30, 1e-38, 1e-44])
def test_extreme_scales_float32(covariance_type, scale):
    """float32 X near the ends of float32's range (squares over/underflow)."""
    with np.errstate(all="ignore"):
        X = (two_blobs(120) * scale).astype(np.float32)
    assert np.isfinite(X).all()
    fit_or_reject(GaussianMixture(2, covariance_type=covariance_type, random_state=0,
                                  max_iter=20), X)


@pytest.mark.parametrize("covariance_type", ["EII", "EEI"])
@pytest.mark.parametrize("max_iter", [1, 2])
def test_float32_covariance_underflow(covariance_type, max_iter):
    """Was a bug (fixed in commit cab5ead): the pooled
    variance of EII/EEI with reg_covar=0 and k = n shrinks 1e-15, 1e-44, ... and a
    float32 model got covariances_ = 0, precisions_ = inf."""
    X = np.array([[2, 1, 0, -2, -1, -3, -3, -3, -2, 2, 1, 3, 0]], dtype=np.float32).T
    fit_or_reject(GaussianMixture(13, covariance_type=covariance_type, reg_covar=0.0,
                                  max_iter=max_iter, random_state=0), X)


@pytest.mark.parametrize("offset", [1e15, -1e15, 1e300])
@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical", "VEV", "EVI"])
def test_huge_offset_with_unit_spread(covariance_type, offset):
    """Unit spread around 1e15 keeps ~2 bits per value; around 1e300 the rows all
    collapse to one value (a clear error for k=2)."""
    fit_or_reject(GaussianMixture(2, covariance_type=covariance_type, random_state=0,
                                  max_iter=20), two_blobs(120) + offset)


@pytest.mark.parametrize("covariance_type", ALL_COVARIANCE_TYPES)
def test_one_feature_at_1e300_the_others_at_1(covariance_type):
    X = two_blobs(120)
    X[:, 1] *= 1e300
    fit_or_reject(GaussianMixture(2, covariance_type=covariance_type, random_state=0,
                                  max_iter=20), X)


# _parsimonious._evi and EVE's diagonals() used to multiply two variances
# ((w @ g) * s / g), overflowing beyond ~1e154; they now take the ratio first.
# EVE at 1e140, and VEE, VVE, VEV at any scale far from 1 (once tolerated at
# rtol 1e-3), also stopped their M-step iterations at points that moved with the
# scale: Q/n moves by -d log s, and with it the stopping rule tol * (1 + |Q/n|);
# _parsimonious.covariances now iterates in units of the mean volume of the S_k.
@pytest.mark.parametrize("scale", [1e-100, 1e-60, 1e60, 1e100, 1e140])
@pytest.mark.parametrize("covariance_type", ALL_COVARIANCE_TYPES)
def test_scale_equivariance_far_from_one(covariance_type, scale):
    """Every model is equivariant under X -> s X (reg_covar=0): means * s,
    covariances * s^2, lower_bound_ - d log s, the same posteriors, for any s whose
    variances s^2 stay well inside float64 (1e-200 .. 1e280)."""
    X = two_blobs(200)
    X[:, 1] *= 3.0
    d = X.shape[1]
    w, m, p = hand_init(X, 2, LAYOUT[covariance_type], seed=0)
    kwargs = dict(n_components=2, covariance_type=covariance_type, reg_covar=0.0,
                  weights_init=w, max_iter=20, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = GaussianMixture(means_init=m, precisions_init=p, **kwargs).fit(X)
        gm = GaussianMixture(means_init=m * scale, precisions_init=p / scale**2,
                             **kwargs).fit(X * scale)
    rtol = 1e-9
    assert_allclose(gm.means_ / scale, ref.means_, rtol=rtol, atol=rtol * 10)
    cov_scale = np.abs(ref.covariances_).max()
    assert_allclose(np.asarray(gm.covariances_) / scale**2, ref.covariances_, rtol=rtol,
                    atol=rtol * cov_scale)
    assert_allclose(gm.lower_bound_ + d * np.log(scale), ref.lower_bound_, rtol=rtol)
    assert_allclose(gm.predict_proba(X * scale), ref.predict_proba(X), atol=rtol * 10)


@pytest.mark.parametrize("covariance_type", ["diag", "spherical", "VVI", "VII"])
def test_diagonal_layouts_reject_infinite_variances(covariance_type):
    """Was a bug (fixed in commit cab5ead):
    _models.precision_cholesky checked diag/spherical variances only for > 0, so an
    overflowed variance passed: covariances_ = inf, precisions_cholesky_ = 0."""
    rng = np.random.default_rng(45997)
    X = rng.integers(-3, 4, size=(1000, 1)).astype(np.float64) * 1e300
    fit_or_reject(GaussianMixture(1, covariance_type=covariance_type, max_iter=0), X,
                  sample_weight=np.full(len(X), 2.5))


@pytest.mark.parametrize("covariance_type", ALL_COVARIANCE_TYPES)
def test_float32_overflow_with_max_iter_0(covariance_type):
    X = (two_blobs(120) * 1e30).astype(np.float32)
    fit_or_reject(GaussianMixture(2, covariance_type=covariance_type, max_iter=0,
                                  random_state=0), X)


@pytest.mark.parametrize("covariance_type, max_iter", [
    ("full", 0), ("full", 3), ("tied", 0), ("tied", 3), ("diag", 0), ("spherical", 0)])
def test_subnormal_variances(covariance_type, max_iter):
    X = np.random.default_rng(0).normal(size=(100, 2)) * 1e-156
    fit_or_reject(GaussianMixture(1, covariance_type=covariance_type, reg_covar=0.0,
                                  max_iter=max_iter), X)


# ------------------------------------------- the shifted (1e8) accumulation


def _offset_problem(name):
    if name == "2d":
        return blobs_2d(), 3
    if name == "5d":
        return blobs_5d(), 4
    d = int(name[:-1])
    rng = np.random.default_rng(d)
    return make_blobs(900, rng.normal(scale=6.0, size=(3, d)), [1.0, 0.8, 1.2], seed=d), 3


@pytest.mark.parametrize("data, covariance_type", [
    (data, covariance_type)
    for data in ("2d", "5d", "12d", "40d")  # the loops (2d, 5d), GEMM and BLAS kernels
    for covariance_type in ("full", "tied", "diag", "spherical", "EII", "VEI", "EVE", "VEV")
    if data in ("2d", "5d") or covariance_type in ("full", "tied", "diag", "spherical")])
def test_data_at_1e8_fits_like_centred_data(data, covariance_type):
    """Spread 1 at 1e8: E[x^2] - E[x]^2 would lose ~all digits, a shifted
    accumulation loses none. Xs = X + 1e8 and Xc = Xs - 1e8 (an exact
    translation of Xs) started from the same parameters, means shifted by 1e8."""
    X0, k = _offset_problem(data)
    shift = 1e8
    Xs = X0 + shift
    Xc = Xs - shift
    w, m, p = hand_init(Xc, k, LAYOUT[covariance_type], seed=0)
    kwargs = dict(n_components=k, covariance_type=covariance_type, tol=0.0,
                  max_iter=10 if data == "40d" else 30, weights_init=w, precisions_init=p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        centred = GaussianMixture(means_init=m, **kwargs).fit(Xc)
        shifted = GaussianMixture(means_init=m + shift, **kwargs).fit(Xs)
    assert_allclose(shifted.lower_bound_, centred.lower_bound_, rtol=1e-8)
    assert_allclose(shifted.lower_bounds_, centred.lower_bounds_, rtol=1e-8)
    assert_allclose(shifted.predict_proba(Xs), centred.predict_proba(Xc), atol=1e-5)
    assert_allclose(shifted.score_samples(Xs), centred.score_samples(Xc), rtol=1e-7, atol=1e-6)
    # the data's own resolution at 1e8 is 1.5e-8
    assert_allclose(shifted.means_ - shift, centred.means_, atol=1e-5)
    scale = np.abs(centred.covariances_).max()
    assert_allclose(shifted.covariances_, centred.covariances_, rtol=1e-5, atol=1e-7 * scale)
    assert_allclose(shifted.weights_, centred.weights_, atol=1e-7)


# ---------------------------------------------------------- degenerate data


@pytest.mark.parametrize("covariance_type", ALL_COVARIANCE_TYPES)
@pytest.mark.parametrize("n_constant", [1, 2])
def test_constant_columns(covariance_type, n_constant):
    X = two_blobs(150, d=3)
    X[:, :n_constant] = 7.0
    gm = fit_or_reject(GaussianMixture(2, covariance_type=covariance_type, random_state=0), X)
    # with the default reg_covar the constant columns are well posed
    assert gm is not None
    cov = np.asarray(gm.covariances_)
    if covariance_type in ("diag", "VVI"):  # the other diagonal models tie the columns
        assert_allclose(cov[:, :n_constant], 1e-6, rtol=1e-3)
    # without regularisation: a fit (spherical pools the variances) or a clear error
    fit_or_reject(GaussianMixture(2, covariance_type=covariance_type, random_state=0,
                                  reg_covar=0.0), X)


@pytest.mark.parametrize("covariance_type", ALL_COVARIANCE_TYPES)
def test_all_rows_equal(covariance_type):
    X = np.tile([[1.5, -2.0, 0.0]], (40, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=r"(?i)equal|identical|distinct|duplicate"):
            GaussianMixture(3, covariance_type=covariance_type).fit(X)
    gm = fit_or_reject(GaussianMixture(1, covariance_type=covariance_type), X)
    assert gm is not None
    assert_allclose(gm.means_, X[:1])


@pytest.mark.parametrize("covariance_type", ALL_COVARIANCE_TYPES)
@pytest.mark.parametrize("init_params", INIT_PARAMS)
def test_few_distinct_rows_each_repeated(covariance_type, init_params):
    """3 distinct points, 50 copies each, with k = 2, 3 (as many as points) and 5 (more)."""
    X = np.repeat([[0.0, 0.0], [4.0, 1.0], [1.0, 5.0]], 50, axis=0)
    for k in (2, 3, 5):
        fit_or_reject(GaussianMixture(k, covariance_type=covariance_type,
                                      init_params=init_params, random_state=0, max_iter=20), X)


@pytest.mark.parametrize("covariance_type", ALL_COVARIANCE_TYPES)
def test_every_row_duplicated(covariance_type):
    X = np.vstack([two_blobs(60)] * 2)
    fit_or_reject(GaussianMixture(2, covariance_type=covariance_type, random_state=0), X)


@pytest.mark.parametrize("covariance_type", ALL_COVARIANCE_TYPES)
@pytest.mark.parametrize("k", [1, 2, 10])
def test_more_features_than_samples(covariance_type, k):
    X = np.random.default_rng(1).normal(size=(10, 50))
    X[5:] += 3.0
    gm = fit_or_reject(GaussianMixture(k, covariance_type=covariance_type, random_state=0,
                                       max_iter=10), X)
    if k == 1:  # d > n is singular only without the regularisation
        assert gm is not None


@pytest.mark.parametrize("covariance_type", ALL_COVARIANCE_TYPES)
@pytest.mark.parametrize("init_params", INIT_PARAMS)
def test_as_many_components_as_samples(covariance_type, init_params):
    X = np.random.default_rng(2).normal(size=(30, 3))
    fit_or_reject(GaussianMixture(30, covariance_type=covariance_type, init_params=init_params,
                                  random_state=0, max_iter=10), X)


# ---------------------------------------------------------- many components


@pytest.mark.parametrize("init_params", INIT_PARAMS)
@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical", "VEV"])
def test_huge_number_of_components_is_fast(covariance_type, init_params):
    """k = 1000 on n = 2000, d = 2: work grows like n * k per pass (one thread
    here; the threaded run is timed below)."""
    X = np.random.default_rng(3).normal(size=(2000, 2))
    start = time.perf_counter()
    gm = fit_or_reject(GaussianMixture(1000, covariance_type=covariance_type,
                                       init_params=init_params, random_state=0, max_iter=3,
                                       n_threads=1), X)
    elapsed = time.perf_counter() - start
    assert gm is not None
    assert elapsed < 20, f"k=1000 took {elapsed:.1f}s"


def test_huge_number_of_components_default_threads():
    X = np.random.default_rng(3).normal(size=(2000, 2))
    start = time.perf_counter()
    gm = fit_or_reject(GaussianMixture(1000, random_state=0, max_iter=3), X)
    elapsed = time.perf_counter() - start
    assert gm is not None
    # well under a minute even on a busy 2-core machine
    assert elapsed < 40, f"k=1000 took {elapsed:.1f}s"
