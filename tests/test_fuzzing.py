"""Hostile inputs (issue "Reliability: fuzzed inputs").

Whatever the input -- any shape, dtype, memory layout, covariance type or
initialisation, extreme scales, degenerate data, extreme sample weights -- a fit
must end in exactly one of two ways:

* a fitted model whose fitted arrays, ``lower_bound_``, ``predict_proba``,
  ``score_samples`` (and ``score``) are all finite, with weights that sum to
  one; or
* a ValueError/TypeError with a message that says what is wrong,

never another exception, a crash, a hang, or NaN/inf in the results.

The property-based tests run a small, deterministic budget by default. The
long (slow, several minutes) exploration is::

    GM_FUZZ_EXAMPLES=2000 GM_HYP_RANDOM=1 python -m pytest tests/test_hostile_inputs.py
"""

import os
import re
import tempfile
import time
import warnings
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from gaussmix import GaussianMixture

from conftest import FITTED_ARRAYS, blobs_2d, blobs_5d, hand_init, make_blobs

# All 18 covariance type names: scikit-learn's four and mclust's fourteen.
ALL_COVARIANCE_TYPES = (
    "full", "tied", "diag", "spherical",
    "EII", "VII", "EEI", "VEI", "EVI", "VVI",
    "EEE", "VEE", "EVE", "VVE", "EEV", "VEV", "EVV", "VVV",
)
ALL_INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")
# The scikit-learn layout each name stores its arrays in (see the README / _models).
LAYOUT = {
    "full": "full", "tied": "tied", "diag": "diag", "spherical": "spherical",
    "EII": "spherical", "VII": "spherical",
    "EEI": "diag", "VEI": "diag", "EVI": "diag", "VVI": "diag",
    "EEE": "tied",
    "VEE": "full", "EVE": "full", "VVE": "full", "EEV": "full", "VEV": "full",
    "EVV": "full", "VVV": "full",
}

# The mclust models whose M-step runs in _parsimonious (not the four closed forms
# shared with scikit-learn: VII, VVI, EEE, VVV).
PARSIMONIOUS_ONLY = ("EII", "EEI", "VEI", "EVI", "VEE", "EVE", "VVE", "EEV", "VEV", "EVV")

FUZZ_SETTINGS = settings(
    max_examples=int(os.environ.get("GM_FUZZ_EXAMPLES", 30)),
    deadline=None,
    derandomize=not os.environ.get("GM_HYP_RANDOM"),
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# A rejection must say what is wrong, in the user's terms: name an argument
# or describe the data/parameter problem. Messages leaked from numpy's
# internals ("probabilities do not sum to 1", "int too large to convert ...")
# do not qualify.
CLEAR_ERROR = re.compile(
    r"(?i)\bX\b|sample_weight|n_components|n_samples|sample\(s\)|feature|dtype|numbers"
    r"|covariance|reg_covar|precision|means_init|weights_init|finite|\bnan\b|infinity"
    r"|singular|ill-defined|collapsed|rows of X|could not convert|cannot be converted"
    r"|sparse|complex|density|batch|scale")


# ------------------------------------------------------------------ helpers


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


# ---------------------------------------------------------- fuzzed problems

_SIZES = {
    # name: (n range, d range); large n only with small d (and small k, below)
    "tiny": ((1, 12), (1, 64)),
    "small": ((13, 200), (1, 16)),
    "medium": ((200, 1000), (1, 6)),
    "large": ((1000, 3000), (1, 3)),
}
_KINDS = ("blobs", "integers", "few_values", "constant_columns", "all_equal",
          "duplicated_rows", "heavy_tail", "one_outlier")
_DTYPES = ("float64", "float32", "float16", "int8", "int32", "int64", "uint8", "bool",
           "object_float", "object_int")
_MEMORY = ("C", "F", "strided", "negative_strides", "read_only", "memmap", "memmap_strided",
           "list")
_WEIGHTS = (None, "uniform", "random", "with_zeros", "integers", "tiny", "huge", "single")


@st.composite
def fuzz_problems(draw):
    size = draw(st.sampled_from(sorted(_SIZES)))
    (n_lo, n_hi), (d_lo, d_hi) = _SIZES[size]
    n = draw(st.integers(n_lo, n_hi))
    d = draw(st.integers(d_lo, d_hi))
    # Bound n * d * k (and d * d * k for the full models) to keep each example fast.
    k_cap = max(1, min(n, 8, 30_000 // (n * d), 20_000 // (d * d)))
    k_mode = draw(st.sampled_from(["usual", "usual", "usual", "equal_n", "above_n"]))
    if k_mode == "equal_n" and n * d <= 2_000 and n <= 60:
        k = n
    elif k_mode == "above_n" and n <= 12:
        k = n + draw(st.integers(1, 3))
    else:
        k = draw(st.integers(1, k_cap))
    return dict(
        size=size, n=n, d=d, k=k,
        kind=draw(st.sampled_from(_KINDS)),
        # mostly ordinary scales: extreme scale/offset pairs often collapse all rows
        scale=draw(st.sampled_from([1.0, 1.0, 1.0, 1.0, 1e-300, 1e-150, 1e-8, 1e8, 1e150,
                                    1e300])),
        offset=draw(st.sampled_from([0.0, 0.0, 0.0, 1e8, -1e12])),
        dtype=draw(st.sampled_from(_DTYPES)),
        memory=draw(st.sampled_from(_MEMORY)),
        weights=draw(st.sampled_from(_WEIGHTS)),
        covariance_type=draw(st.sampled_from(ALL_COVARIANCE_TYPES)),
        init_params=draw(st.sampled_from(ALL_INIT_PARAMS)),
        reg_covar=draw(st.sampled_from([1e-6, 0.0, 1e-2])),
        max_iter=draw(st.integers(0, 6)),
        n_init=draw(st.integers(1, 2)),
        tol=draw(st.sampled_from([1e-3, 0.0])),
        n_threads=draw(st.sampled_from([None, 1, 2])),
        seed=draw(st.integers(0, 2**32 - 1)),
    )


def fuzz_values(kind, n, d, rng):
    """float64 data of one hostile kind, before scaling."""
    if kind == "blobs":
        centers = rng.normal(scale=5.0, size=(3, d))
        return centers[rng.integers(0, 3, n)] + rng.normal(size=(n, d))
    if kind == "integers":
        return rng.integers(-3, 4, size=(n, d)).astype(np.float64)
    if kind == "few_values":
        return rng.choice([0.0, 1.0, -2.5], size=(n, d))
    if kind == "constant_columns":
        X = rng.normal(size=(n, d))
        X[:, 0] = 3.0
        X[:, rng.random(d) < 0.5] = -1.25
        return X
    if kind == "all_equal":
        return np.tile(rng.normal(size=(1, d)), (n, 1))
    if kind == "duplicated_rows":
        base = rng.normal(size=(max(1, n // 4), d))
        return base[rng.integers(0, base.shape[0], n)]
    if kind == "heavy_tail":
        return rng.standard_cauchy(size=(n, d))
    if kind == "one_outlier":
        X = rng.normal(size=(n, d))
        X[rng.integers(n)] = 1e12
        return X
    raise AssertionError(kind)  # pragma: no cover


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


def fuzz_weights(kind, n, rng):
    if kind is None:
        return None
    if kind == "uniform":
        return np.full(n, 2.5)
    if kind == "random":
        return rng.uniform(0.0, 3.0, n)
    if kind == "with_zeros":
        return rng.choice([0.0, 1e-3, 1.0, 5.0], size=n)
    if kind == "integers":
        return rng.integers(0, 4, size=n)  # all-zero is possible: a clear ValueError
    if kind == "tiny":
        return rng.uniform(0.5, 1.0, n) * 1e-300
    if kind == "huge":
        return rng.uniform(0.5, 1.0, n) * 1e300
    if kind == "single":
        w = np.zeros(n)
        w[rng.integers(n)] = 1.0
        return w
    raise AssertionError(kind)  # pragma: no cover


@FUZZ_SETTINGS
@given(problem=fuzz_problems())
def test_fuzzed_fit_is_finite_or_a_clear_error(problem):
    """slow when GM_FUZZ_EXAMPLES is large: the long exploration is
    ``GM_FUZZ_EXAMPLES=2000 GM_HYP_RANDOM=1 python -m pytest tests/test_hostile_inputs.py``.

    Shapes n in [1, 3000], d in [1, 64], k in [1, n] (and k > n), every dtype,
    memory layout, covariance type and initialisation: a finite model or a
    clear ValueError/TypeError, nothing else.
    """
    note(repr(problem))
    p = problem
    rng = np.random.default_rng(p["seed"])
    with np.errstate(all="ignore"):
        values = fuzz_values(p["kind"], p["n"], p["d"], rng) * p["scale"] + p["offset"]
    X = as_dtype(values, p["dtype"])
    sample_weight = fuzz_weights(p["weights"], p["n"], rng)
    gm = GaussianMixture(
        n_components=p["k"], covariance_type=p["covariance_type"],
        init_params=p["init_params"], reg_covar=p["reg_covar"], max_iter=p["max_iter"],
        n_init=p["n_init"], tol=p["tol"], n_threads=p["n_threads"],
        random_state=p["seed"] % (2**31))
    with tempfile.TemporaryDirectory() as tmp_dir:
        Xin = in_memory_layout(X, p["memory"], tmp_dir)
        start = time.perf_counter()
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            try:
                gm.fit(Xin, sample_weight=sample_weight)
            except (ValueError, TypeError) as exc:
                elapsed = time.perf_counter() - start
                note(f"{type(exc).__name__}: {exc}")
                event(f"outcome: {type(exc).__name__} {str(exc)[:40]}")
                assert_clear_error(exc)
                assert not hasattr(gm, "means_")
            else:
                elapsed = time.perf_counter() - start
                event(f"outcome: fitted ({p['size']})")
                assert_sane_model(gm, Xin)
                if p["memory"] != "list":
                    # the input is left as it was (read-only and memmapped inputs included)
                    assert_array_equal(np.asarray(Xin), X)
        del Xin
    assert elapsed < 60, f"one fit took {elapsed:.1f}s"


_BATCHES = ("random", "one_row", "all_equal_rows", "first_row_repeated", "int8", "object",
            "far_away", "scale_1e150", "tiny_weights", "zero_weights",
            "single_weight", "nan", "wrong_width")


@FUZZ_SETTINGS
@given(
    covariance_type=st.sampled_from(ALL_COVARIANCE_TYPES),
    init_params=st.sampled_from(ALL_INIT_PARAMS),
    k=st.integers(1, 3),
    d=st.integers(1, 5),
    batches=st.lists(st.sampled_from(_BATCHES), min_size=1, max_size=6),
    seed=st.integers(0, 2**31 - 1),
)
def test_fuzzed_partial_fit_sequences(covariance_type, init_params, k, d, batches, seed):
    """A sequence of hostile partial_fit batches: every call leaves a finite
    model, or raises a clear ValueError/TypeError and leaves the model as it was."""
    rng = np.random.default_rng(seed)
    gm = GaussianMixture(k, covariance_type=covariance_type, init_params=init_params,
                         random_state=seed)
    base = two_blobs(60, d, seed=seed % 1000)
    for kind in ["random"] + list(batches):
        m = int(rng.integers(k, 40))
        X, w = base[rng.integers(0, base.shape[0], m)], None
        if kind == "one_row":
            X = X[:1]
        elif kind == "all_equal_rows":
            X = np.tile(X[:1], (m, 1))
        elif kind == "first_row_repeated":
            X = np.vstack([X[:1], np.tile(X[1:2], (m, 1))])
        elif kind == "int8":
            X = np.rint(X).astype(np.int8)
        elif kind == "object":
            X = X.astype(object)
        elif kind == "far_away":
            X = X + 1e6
        elif kind == "scale_1e150":
            X = X * 1e150
        elif kind == "tiny_weights":
            w = np.full(X.shape[0], 1e-300)
        elif kind == "zero_weights":
            w = np.zeros(X.shape[0])
        elif kind == "single_weight":
            w = np.zeros(X.shape[0])
            w[0] = 1.0
        elif kind == "nan":
            X = X.copy()
            X[rng.integers(X.shape[0]), rng.integers(d)] = np.nan
        elif kind == "wrong_width":
            X = np.hstack([X, X[:, :1]])
        note(f"batch {kind}: shape {X.shape}")
        fitted = hasattr(gm, "means_")
        before = {name: np.copy(getattr(gm, name)) for name in FITTED_ARRAYS} if fitted else {}
        steps = getattr(gm, "n_steps_", 0)
        width = getattr(gm, "n_features_in_", None)
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            try:
                gm.partial_fit(X, sample_weight=w)
            except (ValueError, TypeError) as exc:
                note(f"{type(exc).__name__}: {exc}")
                assert_clear_error(exc)
                for name, value in before.items():
                    assert_array_equal(getattr(gm, name), value, err_msg=name)
                assert getattr(gm, "n_steps_", 0) == steps
                assert hasattr(gm, "means_") == fitted
                continue
            assert kind not in ("nan", "zero_weights"), f"{kind} accepted"
            assert not fitted or X.shape[1] == width, "a batch of the wrong width accepted"
            assert gm.n_steps_ == steps + 1
            assert_sane_model(gm, X)


# ------------------------------------------------------------ NaN and inf


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, "inf_and_minus_inf"])
@pytest.mark.parametrize("where", ["first", "last", "past_first_check_block"])
@pytest.mark.parametrize("memory", ["C", "F", "strided", "negative_strides", "memmap"])
def test_non_finite_anywhere_in_X_is_rejected(bad, where, memory):
    # 40_000 rows: validation checks X in blocks of 2**15 rows
    X = np.random.default_rng(0).normal(size=(40_000 if where.startswith("past") else 50, 3))
    row, col = {"first": (0, 0), "last": (-1, -1), "past_first_check_block": (-5, 1)}[where]
    if bad == "inf_and_minus_inf":  # their sum is NaN, not inf
        X[row, col], X[row - 1, col - 1] = np.inf, -np.inf
    else:
        X[row, col] = bad
    with tempfile.TemporaryDirectory() as tmp_dir:
        Xin = in_memory_layout(X, memory, tmp_dir)
        with pytest.raises(ValueError, match=r"(?i)nan|inf|finite"):
            GaussianMixture(2, random_state=0).fit(Xin)
        gm = GaussianMixture(2, random_state=0).fit(two_blobs(50))
        with pytest.raises(ValueError, match=r"(?i)nan|inf|finite"):
            gm.partial_fit(Xin)
        del Xin


@pytest.mark.parametrize("dtype", ["float16", "float32", "object_float"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_X_in_other_dtypes_is_rejected(dtype, bad):
    X = as_dtype(two_blobs(60), dtype)
    X[7, 2] = bad
    with pytest.raises(ValueError, match=r"(?i)nan|inf|finite"):
        GaussianMixture(2).fit(X)


def test_float16_overflow_is_a_clear_error():
    # 7e4 is past float16's range: the user's own cast made inf
    with np.errstate(over="ignore"):
        X = (two_blobs(60) * 2e4).astype(np.float16)
    assert not np.isfinite(X).all()
    with pytest.raises(ValueError, match=r"(?i)inf|finite"):
        GaussianMixture(2).fit(X)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("position", [0, -1])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_non_finite_sample_weight_is_rejected(bad, position, dtype):
    X = two_blobs(80).astype(dtype)
    w = np.ones(80)
    w[position] = bad
    with pytest.raises(ValueError, match=r"(?i)sample_weight"):
        GaussianMixture(2).fit(X, sample_weight=w)
    gm = GaussianMixture(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match=r"(?i)sample_weight"):
        gm.partial_fit(X, sample_weight=w)
    with pytest.raises(ValueError, match=r"(?i)sample_weight"):
        gm.score(X, sample_weight=w)


@pytest.mark.parametrize("covariance_type", ALL_COVARIANCE_TYPES)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_initial_parameters_are_rejected(covariance_type, bad):
    X = two_blobs(80)
    k, d = 2, X.shape[1]
    good = dict(weights_init=np.array([0.4, 0.6]), means_init=X[[0, -1]].copy(),
                precisions_init=precisions_like(covariance_type, k, d, 1.0))
    for name in good:
        kwargs = {key: value.copy() for key, value in good.items()}
        kwargs[name].flat[-1] = bad
        gm = GaussianMixture(k, covariance_type=covariance_type, **kwargs)
        with pytest.raises(ValueError, match=rf"(?i){name}|nan|inf|finite"):
            gm.fit(X)
        with pytest.raises(ValueError, match=rf"(?i){name}|nan|inf|finite"):
            GaussianMixture(k, covariance_type=covariance_type, **kwargs).partial_fit(X)
    # and the good ones fit
    fit_or_reject(GaussianMixture(k, covariance_type=covariance_type, **good), X)


def test_failed_refit_keeps_the_previous_model():
    X = two_blobs(100)
    gm = GaussianMixture(2, random_state=0).fit(X)
    before = {name: getattr(gm, name).copy() for name in FITTED_ARRAYS}
    Xbad = X.copy()
    Xbad[10, 0] = np.nan
    with pytest.raises(ValueError):
        gm.fit(Xbad)
    with pytest.raises(ValueError):
        gm.fit(X, sample_weight=np.zeros(len(X)))
    for name, value in before.items():
        assert_array_equal(getattr(gm, name), value)
    assert_sane_model(gm, X)


# ------------------------------------------------------------ extreme scales


# Was a bug found by this file (fixed in commit cab5ead): the
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


# Was a bug found by this file (fixed in commit cab5ead): float32
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


@pytest.mark.parametrize("case", ["EVI_max_iter_0", "EVI_partial_fit"])
def test_evi_with_large_variances_is_finite(case):
    """max_iter=0 must fit (variances 1e160 are representable); partial_fit of a
    batch at 1e150 may refuse clearly (it gave covariances_ = inf before)."""
    X = two_blobs(120, d=2)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        if case == "EVI_max_iter_0":
            gm = GaussianMixture(2, covariance_type="EVI", random_state=0, max_iter=0)
            assert fit_or_reject(gm, X * 1e80) is not None  # variances 1e160: no overflow
            return
        gm = GaussianMixture(1, covariance_type="EVI", random_state=0).partial_fit(X)
        try:
            gm.partial_fit(X * 1e150)  # variances 1e300: representable
        except ValueError as exc:
            assert_clear_error(exc)
            return
    assert_sane_model(gm, X * 1e150)


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


# ---------------------------------------------- the shifted (1e8) accumulation


def _offset_problem(name):
    if name == "2d":
        return blobs_2d(), 3
    if name == "5d":
        return blobs_5d(), 4
    rng = np.random.default_rng(40)
    return make_blobs(900, rng.normal(scale=6.0, size=(3, 40)), [1.0, 0.8, 1.2], seed=40), 3


@pytest.mark.parametrize("data, covariance_type", [
    (data, covariance_type)
    for data in ("2d", "5d", "40d")  # the loop, GEMM and BLAS kernels
    for covariance_type in ("full", "tied", "diag", "spherical", "EII", "VEI", "EVE", "VEV")
    if data != "40d" or covariance_type in ("full", "tied", "diag", "spherical")])
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


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical", "tied"])
def test_partial_fit_of_an_astronomically_far_batch(covariance_type):
    """Was a bug (fixed in commit cab5ead): the batch
    was silently ignored (zero responsibilities), n_steps_ advanced and
    lower_bound_ = -inf."""
    X = two_blobs(60, d=1)
    gm = GaussianMixture(2, covariance_type=covariance_type, random_state=0).partial_fit(X)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            gm.partial_fit(X[:22] * 1e300)
        except ValueError as exc:
            assert_clear_error(exc)
            return
    assert np.isfinite(gm.lower_bound_)
    assert_sane_model(gm, X[:22] * 1e300)


# ------------------------------------------------------------ degenerate data


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
@pytest.mark.parametrize("init_params", ALL_INIT_PARAMS)
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
@pytest.mark.parametrize("init_params", ALL_INIT_PARAMS)
def test_as_many_components_as_samples(covariance_type, init_params):
    X = np.random.default_rng(2).normal(size=(30, 3))
    fit_or_reject(GaussianMixture(30, covariance_type=covariance_type, init_params=init_params,
                                  random_state=0, max_iter=10), X)


@pytest.mark.parametrize("init_params", ALL_INIT_PARAMS)
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


# ---------------------------------------------------------------- dtypes


@pytest.mark.parametrize("values", [
    [[1, 2], [3, 4], [5, 7], [8, 1]],                  # Python ints
    [[1.5, 2], [3, 4.25], [5, 7], [8, 1]],             # mixed ints and floats
    [[True, 2], [3, False], [5, 7], [8, 1]],           # bools among numbers
    [[2**62, 1], [-2**62, 3], [5, 7], [8, 1]],         # large exact ints
    [[10**300, 1], [-10**300, 3], [5, 7], [8, 1]],     # ints at float range's edge
])
def test_object_arrays_of_python_numbers(values):
    X = np.array(values, dtype=object)
    fit_or_reject(GaussianMixture(2, random_state=0), X)


def test_object_array_with_int_beyond_float_range():
    """Was a bug (fixed in commit cab5ead): OverflowError
    from X.astype(float64) in _validation.as_float_array."""
    X = np.array([[10**400, 1], [2, 3], [4, 5], [6, 8]], dtype=object)
    with pytest.raises(ValueError, match=r"(?i)X|float|range|large"):
        GaussianMixture(2).fit(X)


@pytest.mark.parametrize("values, error, clear", [
    ([[None, 1], [2, 3], [4, 5]], ValueError, True),         # None: missing value
    ([["a", 1], [2, 3], [4, 5]], ValueError, True),          # not a number
    ([[1 + 2j, 1], [2, 3], [4, 5]], (ValueError, TypeError), True),
    # numpy's own "setting an array element with a sequence." (not checked for wording)
    ([[[1], 1], [2, 3], [4, 5]], (ValueError, TypeError), False),
])
def test_object_arrays_of_non_numbers_are_rejected(values, error, clear):
    X = np.empty((3, 2), dtype=object)
    for i, row in enumerate(values):
        for j, value in enumerate(row):
            X[i, j] = value
    with pytest.raises(error) as info:
        GaussianMixture(1).fit(X)
    if clear:
        assert_clear_error(info.value)


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int32", "int64", "bool", "float16"])
def test_small_dtypes_give_the_float64_fit(dtype):
    X = as_dtype(two_blobs(120) * 3, dtype)
    a = fit_or_reject(GaussianMixture(2, random_state=0), X)
    b = fit_or_reject(GaussianMixture(2, random_state=0), X.astype(np.float64))
    assert a is not None and b is not None
    for name in FITTED_ARRAYS:
        assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------ memory maps


@pytest.mark.parametrize("mode", ["r", "r+", "c"])
def test_memmap_modes_with_unflushed_and_private_changes(tmp_path, mode):
    """A copy-on-write map with private changes, and a shared map with
    unflushed writes, must be read as they are (page releases lose nothing)."""
    X = two_blobs(3000, d=4)
    path = tmp_path / "X.dat"
    mm = np.memmap(path, dtype=np.float64, mode="w+", shape=X.shape)
    mm[:] = X
    mm.flush()
    del mm
    Xm = np.memmap(path, dtype=np.float64, mode=mode, shape=X.shape)
    expected = X.copy()
    if mode != "r":
        Xm[::7, 1] = -3.0  # private (mode c) or not yet flushed (mode r+)
        expected[::7, 1] = -3.0
    ref = GaussianMixture(2, random_state=0).fit(expected)
    gm = GaussianMixture(2, random_state=0).fit(Xm)
    for name in FITTED_ARRAYS:
        assert_array_equal(getattr(gm, name), getattr(ref, name))
    assert_array_equal(gm.score_samples(Xm), ref.score_samples(expected))
    assert_array_equal(np.asarray(Xm), expected)


# ------------------------------------------------------------ sample weights


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


@pytest.mark.parametrize("init_params", ALL_INIT_PARAMS)
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


@pytest.mark.parametrize("covariance_type", ["EVE", "VVE", "EEV", "VEV", "VEE", "EVV"])
def test_huge_weights_parsimonious(covariance_type):
    """Was a bug (fixed in commit cab5ead, by normalising the weights):
    _parsimonious._component_covariances symmetrises with
    (scatter + scatter^T) / (2 nk), whose sum overflowed past ~9e307: LinAlgError
    'Eigenvalues did not converge' or a misleading 'singular' scatter."""
    X = np.random.default_rng(0).normal(size=(200, 3))
    X[17] = 1e4
    ref = GaussianMixture(1, covariance_type=covariance_type, max_iter=3).fit(X)
    gm = GaussianMixture(1, covariance_type=covariance_type, max_iter=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm.fit(X, sample_weight=np.full(len(X), 1e300))
    assert_allclose(gm.lower_bound_, ref.lower_bound_, rtol=1e-9)


@pytest.mark.parametrize("weights", [1e300, 1e-300])
def test_float32_data_with_weights_outside_float32(weights):
    """The weights are cast to float32 with X: 1e300 -> inf, 1e-300 -> 0."""
    X = two_blobs(100).astype(np.float32)
    fit_or_reject(GaussianMixture(2, random_state=0), X,
                  sample_weight=np.full(len(X), weights))


# ------------------------------------------- initial parameters out of range


@pytest.mark.parametrize("covariance_type", ALL_COVARIANCE_TYPES)
@pytest.mark.parametrize("value", [1e300, 1e-300])
@pytest.mark.parametrize("max_iter", [0, 5])
def test_extreme_finite_precisions_init_float64(covariance_type, value, max_iter):
    X = two_blobs(100)
    gm = GaussianMixture(2, covariance_type=covariance_type, max_iter=max_iter,
                         weights_init=np.array([0.5, 0.5]), means_init=X[[0, -1]].copy(),
                         precisions_init=precisions_like(covariance_type, 2, 3, value))
    fit_or_reject(gm, X)


FLOAT32_INIT_CASES = {
    "precisions_max_iter_0": dict(covariance_type="diag", max_iter=0,
                                  precisions_init=precisions_like("diag", 2, 3, 1e39)),
    "precisions_max_iter_1": dict(covariance_type="spherical", max_iter=1,
                                  precisions_init=precisions_like("spherical", 2, 3, 1e300)),
    "means": dict(means_init=np.array([[1e39] * 3, [0.0] * 3])),
    # variances 1e39: precisions that fit, covariances that do not
    "iterative_model": dict(covariance_type="EVE",
                            precisions_init=precisions_like("EVE", 2, 3, 1e-39)),
    "tied_variances": dict(covariance_type="tied",
                           precisions_init=np.diag([1.0, 1.0, 1e-39])),
}


@pytest.mark.parametrize("case", sorted(FLOAT32_INIT_CASES))
def test_float32_init_parameters_are_checked_in_float32(case):
    """Was a bug: initial parameters were validated in float64 and cast to X's
    dtype unchecked: for float32 X, precisions_init=1e39 became inf (max_iter=0:
    precisions_ = inf was the fitted model), or the fit failed with the misleading
    'ill-defined empirical covariance ... scale the input data'."""
    X = two_blobs(100).astype(np.float32)
    kwargs = dict(n_components=2, weights_init=np.array([0.5, 0.5]), means_init=X[[0, -1]])
    kwargs.update(FLOAT32_INIT_CASES[case])
    name = "means_init" if case == "means" else "precisions_init"
    with pytest.raises(ValueError, match=rf"'{name}' is out of float32's range for float32 X"):
        GaussianMixture(**kwargs).fit(X)
    with pytest.raises(ValueError, match=rf"'{name}' is out of float32's range"):
        GaussianMixture(**kwargs).partial_fit(X)
    gm = GaussianMixture(**kwargs)  # the same parameters fit float64 X
    fit_or_reject(gm, X.astype(np.float64))
    assert gm.means_.dtype == np.float64


def test_init_parameters_are_checked_in_the_range_of_x():
    """float64 X: variances beyond float64's range name precisions_init too; float32
    parameters at the edge of its range fit; the Dask path checks in X's dtype."""
    X = two_blobs(100)
    with pytest.raises(ValueError, match=r"'precisions_init' is out of float64's range"):
        GaussianMixture(2, covariance_type="diag",
                        precisions_init=precisions_like("diag", 2, 3, 1e-309)).fit(X)
    X32 = X.astype(np.float32)
    gm = GaussianMixture(2, covariance_type="diag", max_iter=0, weights_init=[0.5, 0.5],
                         means_init=np.array([[3e38] * 3, [0.0] * 3]),
                         precisions_init=precisions_like("diag", 2, 3, 1e38))
    assert fit_or_reject(gm, X32) is not None
    da = pytest.importorskip("dask.array")
    kwargs = dict(n_components=2, **FLOAT32_INIT_CASES["means"])
    with pytest.raises(ValueError, match=r"'means_init' is out of float32's range"):
        GaussianMixture(**kwargs).fit(da.from_array(X32, chunks=50))


# ---------------------------------------------------------------- partial_fit


@pytest.mark.parametrize("covariance_type", ALL_COVARIANCE_TYPES)
def test_partial_fit_single_row_batches(covariance_type):
    X = two_blobs(100)
    gm = GaussianMixture(2, covariance_type=covariance_type, random_state=0)
    with pytest.raises(ValueError, match=r"(?i)sample"):
        gm.partial_fit(X[:1])  # a first batch of one row cannot initialise
    assert not hasattr(gm, "means_")
    gm.partial_fit(X)
    for row in range(0, 100, 7):
        fit_ok = True
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            try:
                gm.partial_fit(X[row:row + 1])
            except ValueError as exc:
                assert_clear_error(exc)
                fit_ok = False
        if fit_ok:
            assert_sane_model(gm, X)


@pytest.mark.parametrize("covariance_type", ALL_COVARIANCE_TYPES)
@pytest.mark.parametrize("k", [1, 2])
def test_partial_fit_batches_of_equal_rows_after_the_first(covariance_type, k):
    X = two_blobs(100)
    gm = GaussianMixture(k, covariance_type=covariance_type, random_state=0).partial_fit(X)
    for repeat in range(20):
        batch = np.tile(X[repeat % 3], (25, 1))
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            try:
                gm.partial_fit(batch)
            except ValueError as exc:
                assert_clear_error(exc)
                continue
        assert_sane_model(gm, batch)
        assert_sane_model(gm, X)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical", "EVE"])
def test_partial_fit_first_batch_all_equal_rows(covariance_type):
    batch = np.tile([[1.0, 2.0, 3.0]], (20, 1))
    with pytest.raises(ValueError, match=r"(?i)equal"):
        GaussianMixture(2, covariance_type=covariance_type).partial_fit(batch)
    gm = GaussianMixture(1, covariance_type=covariance_type).partial_fit(batch)
    assert_sane_model(gm, batch)
    gm.partial_fit(two_blobs(50))
    assert_sane_model(gm, batch)
