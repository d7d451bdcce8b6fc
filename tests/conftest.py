"""Shared data sets, initial parameters and comparison helpers for the gaussmix tests,
and the checks every fit on hostile input must pass (``fit_or_reject``).

Everything here is deterministic: every data set is drawn from a fixed seed so a
failure reproduces exactly.
"""

import os
import re
import warnings
from fractions import Fraction

# scikit-learn's array-API input check runs only when scipy was imported with
# this set; without it the check skips itself.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import gaussmix

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
# All 18 covariance type names: scikit-learn's four and mclust's fourteen.
ALL_COVARIANCE_TYPES = (
    "full", "tied", "diag", "spherical",
    "EII", "VII", "EEI", "VEI", "EVI", "VVI",
    "EEE", "VEE", "EVE", "VVE", "EEV", "VEV", "EVV", "VVV",
)

INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")

# The scikit-learn layout each name stores its arrays in (see the README / _models).
LAYOUT = {
    "full": "full", "tied": "tied", "diag": "diag", "spherical": "spherical",
    "EII": "spherical", "VII": "spherical",
    "EEI": "diag", "VEI": "diag", "EVI": "diag", "VVI": "diag",
    "EEE": "tied",
    "VEE": "full", "EVE": "full", "VVE": "full", "EEV": "full", "VEV": "full",
    "EVV": "full", "VVV": "full",
}

# The initialisations that must follow scikit-learn's random stream exactly.
SKLEARN_STREAM_INITS = ("k-means++", "random", "random_from_data")

FITTED_ARRAYS = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_")

# Large constant added to the "offset" data set.  For Xoff = X + OFFSET (|X| < 64)
# the subtraction Xoff - OFFSET is exact, so Xoff is an exact translation of the
# well-conditioned data set ``offset_blobs() - OFFSET``.
OFFSET = 1.0e4


@pytest.fixture(autouse=True)
def every_chunk_may_get_a_thread(monkeypatch):
    """Kernels on test-sized data use their whole thread budget (one thread per
    chunk of rows), as large data does in use: without this, the work rule
    (``_threading.team_size``) would run most test calls serially and leave the
    multi-threaded paths untested. Tests of the rule itself undo it."""
    monkeypatch.setattr(gaussmix._threading, "MIN_FLOPS_PER_THREAD", 1)


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


# Big enough to be split into many chunks and shared between threads.
N_LARGE = 5000


@pytest.fixture(scope="session")
def X_large():
    centers = [[0.0, 0.0, 0.0], [6.0, 1.0, -2.0], [1.0, 7.0, 3.0], [-5.0, 4.0, 6.0]]
    return make_blobs(N_LARGE + 37, centers, [1.0, 1.4, 0.8, 1.1], seed=11)


@pytest.fixture(scope="session")
def X_small():
    centers = [[0.0, 0.0], [6.0, 1.0], [1.0, 7.0]]
    return make_blobs(150, centers, [1.0, 1.4, 0.8], seed=12)


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


def e_step_statistics(X, sample_weight, params, covariance_type, n_threads):
    """One compiled E-step + statistics pass under maximum-likelihood ``params``
    (``_em.Parameters``), as ``GaussianMixture``'s fit makes it."""
    from gaussmix import _em, _models

    kp = _models.kernel_parameters(np.log(params.weights), params.means, params.precisions_cholesky,
                                   covariance_type, X.dtype)
    return _em.pass_statistics(X, sample_weight, kp, n_threads)


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


# ----------------------------------------------------------- hostile inputs

# A fit on any input ends in exactly one of two ways: a fitted model whose
# arrays and predictions are all finite, or a ValueError/TypeError whose message
# says what is wrong (``fit_or_reject`` checks both).


# A rejection must say what is wrong, in the user's terms: name an argument
# or describe the data/parameter problem. Messages leaked from numpy's
# internals ("probabilities do not sum to 1", "int too large to convert ...")
# do not qualify.
CLEAR_ERROR = re.compile(
    r"(?i)\bX\b|sample_weight|n_components|n_samples|sample\(s\)|feature|dtype|numbers"
    r"|covariance|reg_covar|precision|means_init|weights_init|finite|\bnan\b|infinity"
    r"|singular|ill-defined|collapsed|rows of X|could not convert|cannot be converted"
    r"|sparse|complex|density|batch|scale")


# Wording of internal checks that must not reach the user on its own (appended
# as detail to a message that says what to do, it is fine).
INTERNAL_ERROR = re.compile(r"(?i)previous must|previous covariances|scatter must|"
                            r"probabilities do not sum|gaussmix kernel")


def assert_clear_error(exc):
    message = str(exc)
    assert len(message) >= 15, f"{type(exc).__name__} with a bare message: {message!r}"
    assert CLEAR_ERROR.search(message), f"unclear {type(exc).__name__}: {message!r}"
    assert not INTERNAL_ERROR.match(message), f"internal {type(exc).__name__}: {message!r}"


def expected_dtype(X):
    dtype = getattr(X, "dtype", None)
    return np.float32 if dtype == np.float32 else np.float64


def assert_sane_model(gm, X):
    """Every fitted array and every prediction on X is finite and well-formed."""
    k = gm.n_components
    d = gm.means_.shape[1]
    layout = LAYOUT[gm.covariance_type]
    shapes = {
        "weights_": (k,),
        "means_": (k, d),
        "covariances_": {"full": (k, d, d), "tied": (d, d), "diag": (k, d),
                         "spherical": (k,)}[layout],
    }
    shapes["precisions_"] = shapes["precisions_cholesky_"] = shapes["covariances_"]
    dtype = gm.means_.dtype
    assert dtype == expected_dtype(X), f"fitted in {dtype}, input {getattr(X, 'dtype', None)}"
    for name in FITTED_ARRAYS:
        value = np.asarray(getattr(gm, name))
        assert value.shape == shapes[name], f"{name} has shape {value.shape}"
        assert value.dtype == dtype, f"{name} has dtype {value.dtype}"
        assert np.all(np.isfinite(value)), f"{name} is not finite: {value}"
    tol = 1e-4 if dtype == np.float32 else 1e-8
    assert np.all(gm.weights_ >= 0)
    # After max_iter=0 the initial parameters are the model, as in scikit-learn:
    # lower_bound_ is -inf and, after an index initialisation ('k-means++',
    # 'random_from_data'), weights_ are N_k / n, summing to k / n.
    if gm.max_iter > 0:
        assert abs(float(np.sum(gm.weights_, dtype=np.float64)) - 1.0) <= tol
        assert np.isfinite(gm.lower_bound_), f"lower_bound_ = {gm.lower_bound_}"
    cov = np.asarray(gm.covariances_)
    diagonal = cov if layout in ("diag", "spherical") else np.diagonal(cov, axis1=-2, axis2=-1)
    assert np.all(diagonal > 0), "a variance is not positive"

    proba = gm.predict_proba(X)
    n = np.shape(X)[0]
    assert proba.shape == (n, k)
    assert np.all(np.isfinite(proba)), "predict_proba is not finite"
    assert np.all(proba >= 0) and np.all(proba <= 1 + tol)
    assert_allclose(proba.sum(axis=1, dtype=np.float64), 1.0, atol=tol)
    log_density = gm.score_samples(X)
    assert log_density.shape == (n,)
    # -inf only where log p(x) is below the dtype's range (checked on a few rows)
    below = log_density == -np.inf
    assert np.all(np.isfinite(log_density[~below])), "score_samples is not finite"
    for i in np.flatnonzero(below)[:3]:
        row = np.asarray(X, dtype=np.float64)[i]
        assert exact_posterior(gm, row)[1] < -np.finfo(dtype).max, f"log p(X[{i}]) = -inf"
    labels = gm.predict(X)
    assert labels.shape == (n,) and labels.min() >= 0 and labels.max() < k
    if np.abs(log_density).max() < 1e300:  # else the mean may overflow
        assert np.isfinite(gm.score(X))


def exact_posterior(gm, x):
    """p(k | x) and log p(x) of one row from exact rational Mahalanobis distances
    (the log-weights and log-determinants in float64)."""
    k, d = gm.means_.shape
    layout = LAYOUT[gm.covariance_type]
    U = np.asarray(gm.precisions_cholesky_, dtype=np.float64)
    if layout == "tied":
        U = np.broadcast_to(U, (k, d, d))
    elif layout in ("diag", "spherical"):
        U = np.stack([np.diag(u) for u in np.broadcast_to(U.reshape(k, -1), (k, d))])
    x = [Fraction(float(v)) for v in x]
    distances = []
    for mean, factor in zip(np.asarray(gm.means_, dtype=np.float64), U):
        centred = [xa - Fraction(float(ma)) for xa, ma in zip(x, mean)]
        z = [sum(c * Fraction(float(u)) for c, u in zip(centred, column))
             for column in factor.T]
        distances.append(sum(v * v for v in z))
    with np.errstate(divide="ignore"):
        offsets = (np.log(np.asarray(gm.weights_, dtype=np.float64))
                   + np.log(np.diagonal(U, axis1=1, axis2=2)).sum(axis=1)
                   - 0.5 * d * np.log(2 * np.pi))

    def half(value):  # value / 2 as a float, inf beyond float64's range
        value /= 2
        return float(value) if value < Fraction(np.finfo(np.float64).max) else np.inf

    j = min((k_ for k_ in range(k) if offsets[k_] > -np.inf), key=lambda k_: distances[k_])
    log_ratio = np.array([offsets[c] - offsets[j] - half(distances[c] - distances[j])
                          for c in range(k)])
    proba = np.exp(log_ratio - log_ratio.max())
    with np.errstate(over="ignore"):
        log_norm = (offsets[j] - half(distances[j]) + log_ratio.max()
                    + np.log(proba.sum()))
    return proba / proba.sum(), log_norm


def fit_or_reject(gm, X, sample_weight=None):
    """Fit; return the model when it fitted (after checking it), None when it
    raised a clear ValueError/TypeError. Any other exception propagates."""
    fresh = not hasattr(gm, "means_")
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        # convergence / degenerate-data warnings are fine; results are checked
        warnings.simplefilter("ignore")
        try:
            gm.fit(X, sample_weight=sample_weight)
        except (ValueError, TypeError) as exc:
            assert_clear_error(exc)
            if fresh:  # a failed fit leaves no half-fitted model behind
                assert not hasattr(gm, "means_")
            return None
        assert_sane_model(gm, X)
    return gm


def precisions_like(covariance_type, k, d, value):
    """A valid precisions_init for ``covariance_type`` with ``value`` on the diagonals."""
    layout = LAYOUT[covariance_type]
    if layout == "full":
        return np.repeat(np.eye(d)[None] * value, k, axis=0)
    if layout == "tied":
        return np.eye(d) * value
    if layout == "diag":
        return np.full((k, d), value)
    return np.full(k, value)


def two_blobs(n=200, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    X[n // 2:] += 5.0
    return X


def as_dtype(X, dtype):
    """X (float64) in one of the fuzzed dtypes, the way a user would convert it."""
    with np.errstate(all="ignore"):
        if dtype in ("float64", "float32", "float16"):
            return X.astype(dtype)  # may overflow to inf: then a ValueError is due
        if dtype == "bool":
            return X > np.median(X)
        if dtype == "object_float":
            return X.astype(object)  # Python floats
        info = np.iinfo(np.int64 if dtype == "object_int" else dtype)
        # clip to the range where the float -> int conversion is exact-or-saturating
        Xi = np.clip(np.rint(X), max(info.min, -2.0**62), min(info.max, 2.0**62))
        if dtype == "object_int":
            return np.array([[int(v) for v in row] for row in Xi], dtype=object).reshape(X.shape)
        return Xi.astype(dtype)


def in_memory_layout(X, memory, tmp_dir):
    """X in the requested memory layout (equal values, different buffer)."""
    n, d = X.shape
    if X.dtype == object and memory.startswith("memmap"):
        memory = "read_only"
    if memory == "C":
        return np.ascontiguousarray(X)
    if memory == "F":
        return np.asfortranarray(X)
    if memory == "strided":
        big = np.zeros((2 * n, 3 * d), dtype=X.dtype)
        big[::2, 1::3] = X
        return big[::2, 1::3]
    if memory == "negative_strides":
        return np.ascontiguousarray(X[::-1, ::-1])[::-1, ::-1]
    if memory == "read_only":
        X = X.copy()
        X.setflags(write=False)
        return X
    if memory in ("memmap", "memmap_strided"):
        step = 1 if memory == "memmap" else 2
        path = os.path.join(tmp_dir, "X.dat")
        mm = np.memmap(path, dtype=X.dtype, mode="w+", shape=(step * n, d))
        mm[::step] = X
        mm.flush()
        del mm
        return np.memmap(path, dtype=X.dtype, mode="r", shape=(step * n, d))[::step]
    if memory == "list":
        return X.tolist()
    raise AssertionError(memory)  # pragma: no cover


# --------------------------------------------------------------------------- verbose


class GrowingStepClock:
    """The n-th reading is 1 + 2 + ... + n seconds: consecutive readings are n
    seconds apart, so a lapse and a running total print differently."""

    def __init__(self):
        self.readings = 0
        self.now = 0.0

    def __call__(self):
        self.readings += 1
        self.now += self.readings
        return self.now


def fit_progress(estimator_class, clock_module, clock_name, X, monkeypatch, capsys, **params):
    """The lines a two-component fit of X with ``params`` prints (tol=0: every
    iteration runs) while ``clock_module.clock_name`` is a fresh GrowingStepClock."""
    monkeypatch.setattr(clock_module, clock_name, GrowingStepClock())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning
        estimator_class(n_components=2, random_state=0, tol=0, **params).fit(X)
    monkeypatch.undo()
    return capsys.readouterr().out.splitlines()


def without_numbers_of_the_fit(lines):
    """The lines with the ll changes and lower bounds (which differ in their last
    digits between the libraries) blanked out."""
    return [re.sub(r"(ll change|lower bound) -?\d+\.\d+", r"\1 #", line)
            for line in lines]
