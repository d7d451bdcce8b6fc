"""Shared data sets, initial parameters and comparison helpers for the gaussmix tests.

Everything here is deterministic: every data set is drawn from a fixed seed so a
failure reproduces exactly.
"""

import os
import warnings
from pathlib import Path

# scikit-learn's array-API input check runs only when scipy was imported with
# this set; without it the check skips itself.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import gaussmix

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")
# The initialisations that must follow scikit-learn's random stream exactly.
SKLEARN_STREAM_INITS = ("k-means++", "random", "random_from_data")

FITTED_ARRAYS = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_")

# Large constant added to the "offset" data set.  For Xoff = X + OFFSET (|X| < 64)
# the subtraction Xoff - OFFSET is exact, so Xoff is an exact translation of the
# well-conditioned data set ``offset_blobs() - OFFSET``.
OFFSET = 1.0e4

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_FAITHFUL = REPO_ROOT.parent / "shared" / "data" / "faithful.csv"


# --------------------------------------------------------------------------- data


def make_blobs(n_samples, centers, scales, seed):
    """Draw ``n_samples`` points from anisotropic Gaussian blobs.

    ``centers`` is (k, d); ``scales`` is a list of k per-blob scale factors.
    Each blob gets its own random rotation/stretch so that 'full' differs from
    'diag' and 'spherical'.  Blob sizes are deliberately unequal.
    """
    rng = np.random.default_rng(seed)
    centers = np.asarray(centers, dtype=np.float64)
    k, d = centers.shape
    props = np.arange(1, k + 1, dtype=np.float64)
    props /= props.sum()
    counts = np.floor(props * n_samples).astype(int)
    counts[-1] += n_samples - counts.sum()
    parts = []
    for c in range(k):
        a = rng.normal(size=(d, d)) * scales[c] / np.sqrt(d)
        a += np.eye(d) * scales[c] * 0.5
        parts.append(centers[c] + rng.normal(size=(counts[c], d)) @ a)
    X = np.concatenate(parts)
    return X[rng.permutation(n_samples)]


def blobs_2d():
    return make_blobs(450, [[0.0, 0.0], [8.0, 1.0], [2.0, 9.0]], [1.0, 1.5, 0.7], seed=0)


def blobs_5d():
    centers = np.array(
        [
            [0.0, 0.0, 0.0, 0.0, 0.0],
            [9.0, -2.0, 3.0, 0.0, 1.0],
            [-3.0, 9.0, -1.0, 4.0, 0.0],
            [2.0, 3.0, 10.0, -6.0, 5.0],
        ]
    )
    return make_blobs(640, centers, [1.0, 1.3, 0.8, 1.1], seed=1)


def faithful():
    return gaussmix.load_faithful()


def offset_blobs():
    """``blobs_2d() + 1e4``; ``offset_blobs() - OFFSET`` is an exact translation of it."""
    return blobs_2d() + OFFSET


DATASETS = {
    # name: (loader, n_components)
    "blobs2d": (blobs_2d, 3),
    "blobs5d": (blobs_5d, 4),
    "faithful": (faithful, 2),
    "offset": (offset_blobs, 3),
}


@pytest.fixture(scope="session")
def faithful_X():
    return faithful()


@pytest.fixture(scope="session")
def blobs2d_X():
    return blobs_2d()


@pytest.fixture(scope="session")
def blobs5d_X():
    return blobs_5d()


def small_blobs(n_samples=300, n_features=2, seed=0):
    """Three well separated blobs, for quick API tests."""
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-10, 10, size=(3, n_features))
    centers[1] += 15
    centers[2] -= 15
    return make_blobs(n_samples, centers, [1.0, 0.8, 1.2], seed=seed)


# --------------------------------------------------------------- initial parameters


def hand_init(X, n_components, covariance_type, seed=0):
    """Initial (weights, means, precisions) computed in plain numpy.

    Means are k distinct data points, weights are uneven but sum to one and the
    precisions come from the global covariance of X (in the layout that
    ``precisions_init`` expects for ``covariance_type``).
    """
    X = np.asarray(X, dtype=np.float64)
    n, d = X.shape
    rng = np.random.default_rng(seed)
    means = X[rng.choice(n, size=n_components, replace=False)].copy()
    weights = np.arange(1, n_components + 1, dtype=np.float64) + n_components
    weights /= weights.sum()
    cov = np.atleast_2d(np.cov(X, rowvar=False)) + 1e-6 * np.eye(d)
    if covariance_type == "full":
        prec = np.linalg.inv(cov)
        prec = 0.5 * (prec + prec.T)
        precisions = np.repeat(prec[None], n_components, axis=0)
    elif covariance_type == "tied":
        prec = np.linalg.inv(cov)
        precisions = 0.5 * (prec + prec.T)
    elif covariance_type == "diag":
        precisions = np.repeat((1.0 / np.diag(cov))[None], n_components, axis=0)
    elif covariance_type == "spherical":
        precisions = np.full(n_components, 1.0 / np.mean(np.diag(cov)))
    else:  # pragma: no cover - test bug
        raise AssertionError(covariance_type)
    return weights, means, precisions


def hand_init_kwargs(X, n_components, covariance_type, seed=0):
    w, m, p = hand_init(X, n_components, covariance_type, seed=seed)
    return dict(weights_init=w, means_init=m, precisions_init=p)


# ---------------------------------------------------------------- random SPD etc.


def random_spd(d, rng, cond=30.0):
    """Random symmetric positive definite (d, d) matrix with condition ~cond."""
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    eig = np.exp(rng.uniform(0.0, np.log(cond), size=d))
    return (q * eig) @ q.T


def precision_cholesky_from_cov(cov, covariance_type):
    """sklearn's precisions_cholesky_ layout for given covariances_."""
    if covariance_type == "full":
        out = np.empty_like(cov)
        for k, c in enumerate(cov):
            lc = np.linalg.cholesky(c)
            out[k] = np.linalg.solve(lc, np.eye(c.shape[0])).T
        return out
    if covariance_type == "tied":
        lc = np.linalg.cholesky(cov)
        return np.linalg.solve(lc, np.eye(cov.shape[0])).T
    return 1.0 / np.sqrt(cov)


def precisions_from_cholesky(pchol, covariance_type):
    if covariance_type == "full":
        return np.einsum("kij,klj->kil", pchol, pchol)
    if covariance_type == "tied":
        return pchol @ pchol.T
    return pchol**2


# ------------------------------------------------------------------- comparisons


def rtol_for(dtype):
    return 1e-4 if np.dtype(dtype) == np.float32 else 1e-10


def assert_close_scaled(actual, desired, rtol, atol_scale=1e-10, err_msg=""):
    """assert_allclose with an absolute tolerance scaled by the size of ``desired``.

    Entries that are (close to) zero, e.g. off-diagonal covariance terms, are
    compared against ``atol_scale * max|desired|`` instead of relatively.
    """
    actual = np.asarray(actual)
    desired = np.asarray(desired)
    assert actual.shape == desired.shape, (
        f"{err_msg}: shape {actual.shape} != {desired.shape}"
    )
    scale = float(np.max(np.abs(desired))) if desired.size else 0.0
    assert_allclose(
        actual, desired, rtol=rtol, atol=atol_scale * max(scale, 1e-300), err_msg=err_msg
    )


def assert_fitted_params_close(model, reference, rtol, atol_scale=1e-10, attrs=FITTED_ARRAYS):
    for name in attrs:
        assert_close_scaled(
            getattr(model, name),
            getattr(reference, name),
            rtol=rtol,
            atol_scale=atol_scale,
            err_msg=name,
        )


def assert_fitted_params_identical(a, b):
    for name in FITTED_ARRAYS:
        assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.lower_bound_ == b.lower_bound_
    assert a.n_iter_ == b.n_iter_
    assert a.converged_ == b.converged_
    assert list(a.lower_bounds_) == list(b.lower_bounds_)


def assert_finite_fitted(model):
    for name in FITTED_ARRAYS:
        value = np.asarray(getattr(model, name))
        assert np.all(np.isfinite(value)), f"{name} is not finite: {value}"
    assert np.isfinite(model.lower_bound_)
    assert_allclose(np.sum(model.weights_), 1.0, rtol=1e-5)
    assert np.all(np.asarray(model.weights_) >= 0)


def is_convergence_warning(w):
    """gaussmix must not import sklearn, so it has its own ConvergenceWarning class;
    accept any class called ConvergenceWarning that is a UserWarning (as sklearn's is)."""
    return w.category.__name__ == "ConvergenceWarning" and issubclass(w.category, UserWarning)


def fit_quiet(model, X, **fit_kwargs):
    """Fit, ignoring ConvergenceWarning only (any other warning is kept)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*converge.*")
        return model.fit(X, **fit_kwargs)
