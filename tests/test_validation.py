"""Bad input is rejected with a clear ValueError/TypeError; unusual but valid input works."""

import tempfile
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal

from gaussmix import GaussianMixture

from conftest import (
    ALL_COVARIANCE_TYPES,
    COVARIANCE_TYPES,
    FITTED_ARRAYS,
    as_dtype,
    assert_clear_error,
    assert_finite_fitted,
    assert_fitted_params_close,
    assert_fitted_params_identical,
    assert_sane_model,
    fit_or_reject,
    hand_init,
    in_memory_layout,
    precisions_like,
    small_blobs,
    two_blobs,
)

NONFINITE = r"(?i)nan|inf|finite"


@pytest.fixture(scope="module")
def X():
    return small_blobs(120, 2, seed=0)


# ------------------------------------------------------------------ bad X

@pytest.mark.parametrize("method", ["predict", "predict_proba", "score_samples", "score"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_predict_rejects_non_finite(X, method, bad):
    gm = GaussianMixture(n_components=2, random_state=0).fit(X)
    Xb = X.copy()
    Xb[3, 0] = bad
    with pytest.raises(ValueError, match=NONFINITE):
        getattr(gm, method)(Xb)

@pytest.mark.parametrize("shape", [(0, 2), (0, 0)])
def test_fit_rejects_empty(shape):
    with pytest.raises(ValueError, match=r"(?i)0 sample|empty|at least|minimum|0 feature"):
        GaussianMixture().fit(np.empty(shape))


def test_fit_rejects_zero_features():
    with pytest.raises(ValueError, match=r"(?i)0 feature|feature|empty|at least|minimum"):
        GaussianMixture().fit(np.empty((10, 0)))


def test_fit_rejects_1d(X):
    with pytest.raises(ValueError, match=r"(?i)2D|2-D|two.dim|ndim|dimension|reshape"):
        GaussianMixture().fit(X[:, 0])


def test_fit_rejects_3d(X):
    with pytest.raises(ValueError, match=r"(?i)2D|2-D|two.dim|ndim|dim"):
        GaussianMixture().fit(X.reshape(60, 2, 2))


def test_predict_rejects_1d_and_3d(X):
    gm = GaussianMixture(n_components=2, random_state=0).fit(X)
    with pytest.raises(ValueError, match=r"(?i)2D|2-D|dim|reshape"):
        gm.predict(X[:, 0])
    with pytest.raises(ValueError, match=r"(?i)2D|2-D|dim|reshape"):
        gm.score_samples(X.reshape(60, 2, 2))


def test_fit_rejects_fewer_samples_than_components(X):
    with pytest.raises(ValueError, match=r"n_samples|n_components"):
        GaussianMixture(n_components=6).fit(X[:5])


@pytest.mark.parametrize("method", ["predict", "predict_proba", "score_samples", "score",
                                    "bic", "aic"])
def test_predict_rejects_wrong_n_features(X, method):
    gm = GaussianMixture(n_components=2, random_state=0).fit(X)
    X3 = np.column_stack([X, X[:, 0]])
    with pytest.raises(ValueError, match=r"(?i)feature"):
        getattr(gm, method)(X3)


@pytest.mark.parametrize("method", ["predict", "predict_proba", "score_samples", "score",
                                    "bic", "aic"])
def test_unfitted_raises(X, method):
    with pytest.raises(ValueError, match=r"(?i)fit"):
        getattr(GaussianMixture(), method)(X)


def test_unfitted_error_is_also_attribute_error(X):
    with pytest.raises(AttributeError):
        GaussianMixture().predict(X)


def test_sparse_input_rejected(X):
    with pytest.raises(TypeError, match=r"(?i)sparse|dense"):
        GaussianMixture(n_components=2).fit(sp.csr_matrix(X))
    gm = GaussianMixture(n_components=2, random_state=0).fit(X)
    with pytest.raises(TypeError, match=r"(?i)sparse|dense"):
        gm.predict(sp.csr_matrix(X))


def test_complex_input_rejected(X):
    with pytest.raises((ValueError, TypeError), match=r"(?i)complex"):
        GaussianMixture(n_components=2).fit(X + 1j)

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


# ------------------------------------------------------- invalid parameters


@pytest.mark.parametrize(
    "params, pattern",
    [
        (dict(n_components=0), "n_components"),
        (dict(n_components=-2), "n_components"),
        (dict(covariance_type="bogus"), "covariance_type"),
        (dict(tol=-1.0), "tol"),
        (dict(reg_covar=-1.0), "reg_covar"),
        (dict(max_iter=-1), "max_iter"),
        (dict(n_init=0), "n_init"),
        (dict(init_params="bogus"), "init_params"),
    ],
)
def test_invalid_parameter_values(X, params, pattern):
    with pytest.raises(ValueError, match=pattern):
        GaussianMixture(**params).fit(X)


@pytest.mark.parametrize(
    "params, pattern",
    [
        (dict(n_components=2.5), "n_components"),
        (dict(n_components="2"), "n_components"),
        (dict(max_iter=1.5), "max_iter"),
        (dict(covariance_type=None), "covariance_type"),
    ],
)
def test_invalid_parameter_types(X, params, pattern):
    with pytest.raises((ValueError, TypeError), match=pattern):
        GaussianMixture(**params).fit(X)


def test_parameters_are_validated_at_fit_not_init():
    # sklearn convention: __init__ only stores, so set_params/clone work
    gm = GaussianMixture(n_components=0, covariance_type="bogus")
    assert gm.n_components == 0 and gm.covariance_type == "bogus"


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_wrong_shapes_of_initial_parameters(X, covariance_type):
    w, m, p = hand_init(X, 3, covariance_type)
    with pytest.raises(ValueError, match=r"(?i)weights"):
        GaussianMixture(3, covariance_type=covariance_type, weights_init=w[:2]).fit(X)
    with pytest.raises(ValueError, match=r"(?i)means"):
        GaussianMixture(3, covariance_type=covariance_type, means_init=m[:, :1]).fit(X)
    with pytest.raises(ValueError, match=r"(?i)means"):
        GaussianMixture(3, covariance_type=covariance_type, means_init=m[:2]).fit(X)
    p_wide = np.ones(p.shape[:-1] + (p.shape[-1] + 1,))
    with pytest.raises(ValueError, match=r"(?i)precision"):
        GaussianMixture(3, covariance_type=covariance_type, precisions_init=p_wide).fit(X)
    bad_p = np.ones((3, 2, 2, 2))
    with pytest.raises(ValueError, match=r"(?i)precision|dim|shape"):
        GaussianMixture(3, covariance_type=covariance_type, precisions_init=bad_p).fit(X)


def test_weights_init_must_sum_to_one_and_be_in_range(X):
    with pytest.raises(ValueError, match=r"(?i)weights|sum"):
        GaussianMixture(2, weights_init=np.array([0.5, 0.6])).fit(X)
    with pytest.raises(ValueError, match=r"(?i)weights|range|negative"):
        GaussianMixture(2, weights_init=np.array([1.5, -0.5])).fit(X)

@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_non_positive_definite_precisions_rejected(X, covariance_type):
    if covariance_type == "full":
        bad = np.stack([np.eye(2), np.array([[1.0, 2.0], [2.0, 1.0]])])  # eigenvalue -1
    elif covariance_type == "tied":
        bad = np.array([[1.0, 2.0], [2.0, 1.0]])
    elif covariance_type == "diag":
        bad = np.array([[1.0, 1.0], [1.0, -1.0]])
    else:
        bad = np.array([1.0, 0.0])
    with pytest.raises(ValueError, match=r"(?i)precision|positive"):
        GaussianMixture(2, covariance_type=covariance_type, precisions_init=bad).fit(X)


@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_non_symmetric_precisions_rejected(X, covariance_type):
    bad = np.array([[2.0, 0.5], [0.0, 2.0]])
    if covariance_type == "full":
        bad = np.stack([np.eye(2), bad])
    with pytest.raises(ValueError, match=r"(?i)precision|symmetric"):
        GaussianMixture(2, covariance_type=covariance_type, precisions_init=bad).fit(X)


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


# ------------------------------------------------------------- sample_weight


def test_negative_sample_weight_rejected(X):
    w = np.ones(len(X))
    w[4] = -1.0
    with pytest.raises(ValueError, match=r"(?i)sample_weight|negative"):
        GaussianMixture(2).fit(X, sample_weight=w)


@pytest.mark.parametrize("length_delta", [-1, 1])
def test_wrong_length_sample_weight_rejected(X, length_delta):
    w = np.ones(len(X) + length_delta)
    with pytest.raises(ValueError, match=r"(?i)sample_weight|shape|length"):
        GaussianMixture(2).fit(X, sample_weight=w)


def test_2d_sample_weight_rejected(X):
    with pytest.raises(ValueError, match=r"(?i)sample_weight|shape|dim"):
        GaussianMixture(2).fit(X, sample_weight=np.ones((len(X), 1)))

def test_all_zero_sample_weight_rejected(X):
    with pytest.raises(ValueError, match=r"(?i)sample_weight|weight|zero"):
        GaussianMixture(2).fit(X, sample_weight=np.zeros(len(X)))


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


# ------------------------------------------------------------- a failed fit


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


# ------------------------------------------------------------ singular data


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_all_rows_equal_with_several_components_raises(covariance_type):
    X = np.tile([[1.5, -2.0]], (50, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=r"(?i)singular|degenerate|distinct|identical|"
                                             r"ill-defined|collapsed|reg_covar|duplicate|equal"):
            GaussianMixture(n_components=2, covariance_type=covariance_type,
                            random_state=0).fit(X)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_all_rows_equal_one_component_regularised(covariance_type):
    X = np.tile([[1.5, -2.0]], (50, 1))
    gm = GaussianMixture(n_components=1, covariance_type=covariance_type, reg_covar=1e-4).fit(X)
    assert_finite_fitted(gm)
    assert_allclose(gm.means_, [[1.5, -2.0]])
    # the covariance is exactly the regularisation
    assert_allclose(np.ravel(gm.covariances_)[[0, -1]], 1e-4, rtol=1e-6)
    assert np.all(np.isfinite(gm.score_samples(X)))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_singular_data_without_regularisation_raises(covariance_type):
    X = np.tile([[1.5, -2.0]], (50, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=r"(?i)singular|degenerate|ill-defined|collapsed|"
                                             r"reg_covar|positive"):
            GaussianMixture(n_components=1, covariance_type=covariance_type,
                            reg_covar=0.0).fit(X)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag"])
def test_zero_variance_feature_without_regularisation_raises(covariance_type):
    # second feature is constant: its variance is exactly zero, so the
    # full/tied/diag covariance is singular when reg_covar=0
    t = np.linspace(0.0, 1.0, 40)
    X = np.column_stack([t, np.zeros_like(t)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=r"(?i)singular|degenerate|ill-defined|collapsed|"
                                             r"reg_covar|positive"):
            GaussianMixture(n_components=1, covariance_type=covariance_type,
                            reg_covar=0.0).fit(X)


# --------------------------------------------------- valid but unusual input


def _reference_fit(X, **kw):
    return GaussianMixture(n_components=3, random_state=0, **kw).fit(X)


@pytest.fixture(scope="module")
def Xv():
    return small_blobs(300, 3, seed=4)


def test_read_only_array_gives_same_result(Xv):
    ref = _reference_fit(Xv)
    Xr = Xv.copy()
    Xr.setflags(write=False)
    gm = _reference_fit(Xr)
    assert_fitted_params_identical(gm, ref)
    assert_array_equal(gm.predict_proba(Xr), ref.predict_proba(Xv))
    assert not Xr.flags.writeable  # input left alone


def test_memmap_input_gives_same_result(Xv, tmp_path):
    path = tmp_path / "X.npy"
    np.save(path, Xv)
    Xm = np.load(path, mmap_mode="r")
    assert isinstance(Xm, np.memmap)
    ref = _reference_fit(Xv)
    gm = _reference_fit(Xm)
    assert_fitted_params_identical(gm, ref)
    assert_array_equal(gm.score_samples(Xm), ref.score_samples(Xv))
    assert_array_equal(gm.predict(Xm), ref.predict(Xv))


def test_raw_np_memmap_float32(Xv, tmp_path):
    path = tmp_path / "X32.dat"
    mm = np.memmap(path, dtype=np.float32, mode="w+", shape=Xv.shape)
    mm[:] = Xv
    mm.flush()
    Xm = np.memmap(path, dtype=np.float32, mode="r", shape=Xv.shape)
    ref = _reference_fit(Xv.astype(np.float32))
    gm = _reference_fit(Xm)
    assert gm.means_.dtype == np.float32
    assert_fitted_params_identical(gm, ref)


def test_fortran_ordered_input(Xv):
    ref = _reference_fit(Xv)
    Xf = np.asfortranarray(Xv)
    gm = _reference_fit(Xf)
    assert_fitted_params_close(gm, ref, rtol=1e-10)
    assert gm.n_iter_ == ref.n_iter_
    assert_allclose(gm.score_samples(Xf), ref.score_samples(Xv), rtol=1e-10)
    assert_array_equal(gm.predict(Xf), ref.predict(Xv))


def test_non_contiguous_input(Xv):
    big = np.zeros((2 * Xv.shape[0], 2 * Xv.shape[1] + 1))
    big[::2, 1::2] = Xv
    Xs = big[::2, 1::2]
    assert not Xs.flags.c_contiguous and not Xs.flags.f_contiguous
    ref = _reference_fit(Xv)
    gm = _reference_fit(Xs)
    assert_fitted_params_close(gm, ref, rtol=1e-10)
    assert_allclose(gm.score_samples(Xs), ref.score_samples(Xv), rtol=1e-10)
    assert_array_equal(gm.predict(Xs), ref.predict(Xv))


def test_negative_strides_input(Xv):
    Xrev = Xv[::-1]
    ref = GaussianMixture(n_components=3, init_params="random_from_data",
                          random_state=0).fit(np.ascontiguousarray(Xrev))
    gm = GaussianMixture(n_components=3, init_params="random_from_data",
                         random_state=0).fit(Xrev)
    assert_fitted_params_close(gm, ref, rtol=1e-10)


@pytest.mark.parametrize("int_dtype", [np.int64, np.int32])
def test_integer_input(int_dtype):
    rng = np.random.default_rng(0)
    Xi = np.concatenate([rng.integers(0, 20, size=(100, 2)),
                         rng.integers(50, 70, size=(100, 2))]).astype(int_dtype)
    gm = GaussianMixture(n_components=2, random_state=0).fit(Xi)
    ref = GaussianMixture(n_components=2, random_state=0).fit(Xi.astype(np.float64))
    for name in FITTED_ARRAYS:
        assert getattr(gm, name).dtype == np.float64, name
    assert_fitted_params_close(gm, ref, rtol=1e-12)
    assert_array_equal(gm.predict(Xi), ref.predict(Xi.astype(np.float64)))


def test_list_input(Xv):
    ref = _reference_fit(Xv)
    gm = _reference_fit(Xv.tolist())
    assert_fitted_params_close(gm, ref, rtol=1e-12)
    assert_array_equal(gm.predict(Xv.tolist()), ref.predict(Xv))


def test_input_not_modified(Xv):
    X = Xv.copy()
    w = np.linspace(0.5, 2.0, len(X))
    w_copy = w.copy()
    gm = GaussianMixture(n_components=3, random_state=0).fit(X, sample_weight=w)
    gm.predict_proba(X)
    gm.score_samples(X)
    assert_array_equal(X, Xv)
    assert_array_equal(w, w_copy)

def test_two_samples_minimum():
    X = np.array([[0.0, 1.0], [1.0, 0.0]])
    gm = GaussianMixture(n_components=1).fit(X)
    assert_allclose(gm.means_, [[0.5, 0.5]])
    with pytest.raises(ValueError, match=r"(?i)sample|at least|minimum"):
        GaussianMixture(n_components=1).fit(X[:1])


def test_max_iter_zero_keeps_initial_parameters(Xv):
    w, m, p = hand_init(Xv, 3, "diag")
    gm = GaussianMixture(n_components=3, covariance_type="diag", weights_init=w, means_init=m,
                         precisions_init=p, max_iter=0)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        gm.fit(Xv)
    assert not any("converge" in str(r.message) for r in rec)
    assert gm.n_iter_ == 0
    assert_allclose(gm.weights_, w)
    assert_allclose(gm.means_, m)
    assert_allclose(gm.precisions_cholesky_, np.sqrt(p))
    assert_allclose(gm.covariances_, 1.0 / p)
    assert np.all(np.isfinite(gm.score_samples(Xv)))


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int32", "int64", "bool", "float16"])
def test_small_dtypes_give_the_float64_fit(dtype):
    X = as_dtype(two_blobs(120) * 3, dtype)
    a = fit_or_reject(GaussianMixture(2, random_state=0), X)
    b = fit_or_reject(GaussianMixture(2, random_state=0), X.astype(np.float64))
    assert a is not None and b is not None
    for name in FITTED_ARRAYS:
        assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-12, atol=1e-12)


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

