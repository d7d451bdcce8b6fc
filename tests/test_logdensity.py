"""score_samples / predict_proba / predict against a hand-written mixture log-density.

A model is fitted (to get a fitted estimator of the right shape) and then its
weights_, means_, covariances_ and precisions_cholesky_ are overwritten with
random parameters; the predict-time methods must use exactly these.
"""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from gaussmix import GaussianMixture

from conftest import (
    COVARIANCE_TYPES,
    exact_posterior,
    precision_cholesky_from_cov,
    precisions_from_cholesky,
    precisions_like,
    random_spd,
    two_blobs,
)


def random_covariances(covariance_type, k, d, rng):
    if covariance_type == "full":
        return np.stack([random_spd(d, rng) for _ in range(k)])
    if covariance_type == "tied":
        return random_spd(d, rng)
    if covariance_type == "diag":
        return rng.uniform(0.2, 5.0, size=(k, d))
    return rng.uniform(0.2, 5.0, size=k)


def dense_covariance(covariances, covariance_type, component, d):
    if covariance_type == "full":
        return covariances[component]
    if covariance_type == "tied":
        return covariances
    if covariance_type == "diag":
        return np.diag(covariances[component])
    return np.eye(d) * covariances[component]


def reference_log_prob(X, weights, means, covariances, covariance_type):
    """(n, k) matrix of log(w_j) + log N(x_i | mu_j, Sigma_j), in float64."""
    X = np.asarray(X, dtype=np.float64)
    d = X.shape[1]
    cols = []
    for j in range(len(weights)):
        cov = dense_covariance(np.asarray(covariances, dtype=np.float64), covariance_type, j, d)
        lp = multivariate_normal(mean=np.asarray(means[j], dtype=np.float64), cov=cov).logpdf(X)
        cols.append(np.log(np.float64(weights[j])) + np.atleast_1d(lp))
    return np.stack(cols, axis=1)


def model_with_params(covariance_type, k, d, dtype, seed):
    """A fitted GaussianMixture whose parameters are then set by hand."""
    rng = np.random.default_rng(seed)
    X_fit = rng.normal(size=(max(4 * k, 20), d)).astype(dtype)
    gm = GaussianMixture(n_components=k, covariance_type=covariance_type, max_iter=1,
                         init_params="random_from_data", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm.fit(X_fit)

    weights = rng.dirichlet(np.full(k, 2.0))
    means = rng.normal(scale=3.0, size=(k, d))
    covariances = random_covariances(covariance_type, k, d, rng)
    pchol = precision_cholesky_from_cov(covariances, covariance_type)

    gm.weights_ = weights.astype(dtype)
    gm.means_ = means.astype(dtype)
    gm.covariances_ = covariances.astype(dtype)
    gm.precisions_cholesky_ = pchol.astype(dtype)
    gm.precisions_ = precisions_from_cholesky(pchol, covariance_type).astype(dtype)
    return gm


def sample_points(gm, n, seed):
    rng = np.random.default_rng(seed + 1000)
    means = np.asarray(gm.means_, dtype=np.float64)
    k, d = means.shape
    comp = rng.integers(0, k, size=n)
    X = means[comp] + rng.normal(scale=2.0, size=(n, d))
    return X.astype(gm.means_.dtype)


SHAPES = [
    # (n, d, k)
    (1000, 2, 3),
    (1, 2, 3),
    (257, 1, 2),
    (257, 17, 7),
    (1000, 17, 1),
    (255, 5, 7),
    (1, 17, 7),
    (513, 3, 1),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n,d,k", SHAPES)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_score_samples_and_proba_match_reference(covariance_type, n, d, k, dtype):
    seed = 1000 * d + 10 * k + n
    gm = model_with_params(covariance_type, k, d, dtype, seed)
    X = sample_points(gm, n, seed)

    # Reference in float64 from exactly the (possibly float32) parameters in use.
    wlp = reference_log_prob(X, gm.weights_, gm.means_, gm.covariances_, covariance_type)
    ref_ss = logsumexp(wlp, axis=1)
    ref_proba = np.exp(wlp - ref_ss[:, None])

    if dtype == np.float64:
        rtol, atol_ss, atol_p = 1e-10, 1e-10 * np.abs(ref_ss).max(), 1e-12
    else:
        rtol, atol_ss, atol_p = 1e-4, 1e-4 * max(1.0, np.abs(ref_ss).max()), 1e-4

    ss = gm.score_samples(X)
    assert ss.shape == (n,)
    assert_allclose(ss, ref_ss, rtol=rtol, atol=atol_ss)

    proba = gm.predict_proba(X)
    assert proba.shape == (n, k)
    assert_allclose(proba, ref_proba, rtol=rtol, atol=atol_p)
    assert_allclose(proba.sum(axis=1), 1.0, rtol=10 * np.finfo(dtype).eps * k)

    labels = gm.predict(X)
    assert labels.shape == (n,)
    # argmax must agree except where the reference itself is (nearly) tied
    top2 = np.sort(wlp, axis=1)[:, -2:] if k > 1 else None
    clear = np.ones(n, bool) if k == 1 else (top2[:, 1] - top2[:, 0]) > 1e-3
    assert_array_equal(labels[clear], np.argmax(wlp, axis=1)[clear])

    assert_allclose(gm.score(X), np.mean(ref_ss), rtol=rtol, atol=atol_ss)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_far_away_points_do_not_underflow(covariance_type):
    """Points 1e3 standard deviations away: densities underflow exp() but the
    log-density and the responsibilities must stay finite and correct."""
    gm = model_with_params(covariance_type, 3, 4, np.float64, seed=5)
    X = sample_points(gm, 20, seed=5) * 1e3
    wlp = reference_log_prob(X, gm.weights_, gm.means_, gm.covariances_, covariance_type)
    ref_ss = logsumexp(wlp, axis=1)
    ss = gm.score_samples(X)
    assert np.all(np.isfinite(ss))
    assert_allclose(ss, ref_ss, rtol=1e-10)
    proba = gm.predict_proba(X)
    assert np.all(np.isfinite(proba))
    assert_allclose(proba, np.exp(wlp - ref_ss[:, None]), atol=1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_predict_time_methods_read_current_parameters(covariance_type):
    """Overwriting the parameters twice: the second set must be used (no caching)."""
    gm = model_with_params(covariance_type, 2, 3, np.float64, seed=11)
    X = sample_points(gm, 50, seed=11)
    before = gm.score_samples(X)
    other = model_with_params(covariance_type, 2, 3, np.float64, seed=12)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_"):
        setattr(gm, name, getattr(other, name))
    after = gm.score_samples(X)
    assert not np.allclose(before, after)
    assert_allclose(after, other.score_samples(X), rtol=1e-12)
    ref = logsumexp(
        reference_log_prob(X, other.weights_, other.means_, other.covariances_, covariance_type),
        axis=1,
    )
    assert_allclose(after, ref, rtol=1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_float64_input_on_float32_model_and_vice_versa(covariance_type):
    """Mixing dtypes at predict time must still give the right numbers."""
    gm32 = model_with_params(covariance_type, 3, 4, np.float32, seed=21)
    X = sample_points(gm32, 100, seed=21).astype(np.float64)
    ref = logsumexp(
        reference_log_prob(X, gm32.weights_, gm32.means_, gm32.covariances_, covariance_type),
        axis=1,
    )
    assert_allclose(gm32.score_samples(X), ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())

    gm64 = model_with_params(covariance_type, 3, 4, np.float64, seed=22)
    X32 = sample_points(gm64, 100, seed=22).astype(np.float32)
    ref = logsumexp(
        reference_log_prob(X32, gm64.weights_, gm64.means_, gm64.covariances_, covariance_type),
        axis=1,
    )
    assert_allclose(gm64.score_samples(X32), ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_output_dtypes_follow_model_dtype(covariance_type, dtype):
    gm = model_with_params(covariance_type, 3, 4, dtype, seed=31)
    X = sample_points(gm, 10, seed=31)
    assert gm.score_samples(X).dtype == dtype
    assert gm.predict_proba(X).dtype == dtype
    assert np.issubdtype(gm.predict(X).dtype, np.integer)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_proba_sums_to_one_when_log_densities_are_huge(covariance_type):
    """Found by hypothesis: a point ~1e6 away from two tight components has log
    densities ~ -3e17 whose difference (log weight ratio ~ -33) is below their
    ulp.  Normalising as exp(lp - logsumexp(lp)) then gives [1, 1]; the
    responsibilities must still sum to one."""
    gm = model_with_params(covariance_type, 2, 2, np.float64, seed=41)
    gm.weights_ = np.array([1.0 - 4.4e-15, 4.4e-15])
    gm.means_ = np.array([[760000.0, 760000.0], [0.0, 0.0]])
    var = 1e-6
    if covariance_type == "full":
        gm.covariances_ = np.stack([np.eye(2) * var] * 2)
    elif covariance_type == "tied":
        gm.covariances_ = np.eye(2) * var
    elif covariance_type == "diag":
        gm.covariances_ = np.full((2, 2), var)
    else:
        gm.covariances_ = np.full(2, var)
    gm.precisions_cholesky_ = precision_cholesky_from_cov(gm.covariances_, covariance_type)
    gm.precisions_ = precisions_from_cholesky(gm.precisions_cholesky_, covariance_type)
    X = np.array([[0.0, 760000.0], [0.0, 0.0], [760000.0, 760000.0]])
    proba = gm.predict_proba(X)
    assert np.all(np.isfinite(proba))
    assert np.all((proba >= 0) & (proba <= 1))
    assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    assert_array_equal(gm.predict(X)[1:], [1, 0])


# ------------------------------------------------ astronomically far points


# x = 1e155 from a unit-variance model: squared Mahalanobis distances past 1.8e308.
FAR_ROWS = np.array([[1e155, 0.0], [1e200, 1e200], [-1e300, 3.0], [3.0, -1e160],
                     [1.5e154, 2.0], [1e156, -1e156], [1.0, 2.0]])


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_predict_proba_of_astronomically_far_points_sums_to_one(covariance_type, k, dtype):
    """Was a bug: when every component's log density underflows to -inf (squared
    Mahalanobis distances past float64's range), predict_proba gave a row of
    zeros (with k=1 it is 1 by definition) and predict gave 0. The limit
    posterior is one-hot on the nearest component; score_samples is -inf only
    when log p(x) is below float64's range, as in scikit-learn."""
    X = two_blobs(200, d=2)
    X[:, 1] *= 3.0
    gm = GaussianMixture(k, covariance_type=covariance_type, random_state=0).fit(X.astype(dtype))
    far = FAR_ROWS if dtype == np.float64 else np.array(
        [[1e30, 0.0], [3e38, 3e38], [-3e38, 3.0], [1.0, 2.0]], dtype=dtype)
    proba = gm.predict_proba(far)
    log_norm = gm.score_samples(far)
    assert proba.dtype == log_norm.dtype == dtype
    assert np.all(np.isfinite(proba))
    assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert_array_equal(gm.predict(far), np.argmax(proba, axis=1))
    for row, p, s in zip(far, proba, log_norm):
        expected_p, expected_s = exact_posterior(gm, row)
        assert_allclose(p, expected_p, atol=1e-6 if dtype == np.float32 else 1e-12)
        with np.errstate(over="ignore"):
            assert_allclose(s, dtype(expected_s), rtol=1e-6 if dtype == np.float32 else 1e-12)
    assert np.any(log_norm == -np.inf)


@pytest.mark.parametrize("covariance_type", ["tied", "spherical"])
def test_astronomically_far_points_equidistant_from_components(covariance_type):
    """Exactly equidistant components share a far row in proportion to their
    weights (their determinants being equal)."""
    gm = GaussianMixture(2, covariance_type=covariance_type, max_iter=0,
                         weights_init=np.array([0.3, 0.7]),
                         means_init=np.array([[-1.0, 0.0], [1.0, 0.0]]),
                         precisions_init=precisions_like(covariance_type, 2, 2, 1.0))
    gm.fit(two_blobs(50, d=2))
    far = np.array([[0.0, 1e200], [0.0, -3e170], [1e200, 0.0]])
    assert_allclose(gm.predict_proba(far), [[0.3, 0.7], [0.3, 0.7], [0.0, 1.0]], rtol=1e-12)
    assert_array_equal(gm.predict(far), [1, 1, 1])


def test_astronomically_far_points_on_dask_and_in_blocks():
    """The Dask path, and a block whose far rows need chunks of _far_rows."""
    da = pytest.importorskip("dask.array")
    X = two_blobs(200, d=2)
    gm = GaussianMixture(3, covariance_type="full", random_state=0).fit(X)
    rows = np.vstack([FAR_ROWS] * 20_000)
    proba = gm.predict_proba(rows)
    assert_allclose(proba.sum(axis=1), 1.0)
    assert_array_equal(proba, np.vstack([proba[:len(FAR_ROWS)]] * 20_000))
    dask_rows = da.from_array(rows[:70], chunks=10)
    assert_array_equal(gm.predict_proba(dask_rows).compute(), proba[:70])
    assert_array_equal(gm.predict(dask_rows).compute(), gm.predict(rows[:70]))
    assert_array_equal(gm.score_samples(dask_rows).compute(), gm.score_samples(rows[:70]))
