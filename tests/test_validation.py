"""Bad input is rejected with a clear ValueError/TypeError; unusual but valid input works."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal

from gaussmix import GaussianMixture

from conftest import (
    COVARIANCE_TYPES,
    FITTED_ARRAYS,
    assert_finite_fitted,
    assert_fitted_params_close,
    assert_fitted_params_identical,
    hand_init,
    small_blobs,
)

NONFINITE = r"(?i)nan|inf|finite"


@pytest.fixture(scope="module")
def X():
    return small_blobs(120, 2, seed=0)


# ------------------------------------------------------------------ bad X


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_fit_rejects_non_finite(X, bad):
    Xb = X.copy()
    Xb[7, 1] = bad
    with pytest.raises(ValueError, match=NONFINITE):
        GaussianMixture(n_components=2).fit(Xb)


@pytest.mark.parametrize("method", ["predict", "predict_proba", "score_samples", "score"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_predict_rejects_non_finite(X, method, bad):
    gm = GaussianMixture(n_components=2, random_state=0).fit(X)
    Xb = X.copy()
    Xb[3, 0] = bad
    with pytest.raises(ValueError, match=NONFINITE):
        getattr(gm, method)(Xb)


def test_float32_nan_rejected(X):
    Xb = X.astype(np.float32)
    Xb[0, 0] = np.nan
    with pytest.raises(ValueError, match=NONFINITE):
        GaussianMixture(n_components=2).fit(Xb)


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


def test_non_numeric_input_rejected():
    with pytest.raises((ValueError, TypeError)):
        GaussianMixture().fit(np.array([["a", "b"], ["c", "d"], ["e", "f"]], dtype=object))


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


def test_means_init_non_finite_rejected(X):
    m = np.array([[0.0, 0.0], [np.nan, 1.0]])
    with pytest.raises(ValueError, match=NONFINITE + "|means"):
        GaussianMixture(2, means_init=m).fit(X)


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


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_sample_weight_rejected(X, bad):
    w = np.ones(len(X))
    w[0] = bad
    with pytest.raises(ValueError, match=r"(?i)sample_weight|" + NONFINITE[4:]):
        GaussianMixture(2).fit(X, sample_weight=w)


def test_all_zero_sample_weight_rejected(X):
    with pytest.raises(ValueError, match=r"(?i)sample_weight|weight|zero"):
        GaussianMixture(2).fit(X, sample_weight=np.zeros(len(X)))


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


def test_float16_input_is_upcast(Xv):
    gm = GaussianMixture(n_components=3, random_state=0).fit(Xv.astype(np.float16))
    assert gm.means_.dtype in (np.float32, np.float64)
    assert_finite_fitted(gm)


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
