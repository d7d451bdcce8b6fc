"""scikit-learn API compatibility: common checks, meta-estimators, pickling, sampling."""

import pickle
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.mixture import GaussianMixture as SkGaussianMixture
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from gaussmix import GaussianMixture

from conftest import (
    COVARIANCE_TYPES,
    FITTED_ARRAYS,
    INIT_PARAMS,
    fit_quiet,
    small_blobs,
)

DEFAULT_PARAMS = dict(
    n_components=1,
    covariance_type="full",
    tol=1e-3,
    reg_covar=1e-6,
    max_iter=100,
    n_init=1,
    init_params="kmeans",
    weights_init=None,
    means_init=None,
    precisions_init=None,
    nan_policy="raise",
    random_state=None,
    warm_start=False,
    verbose=0,
    verbose_interval=10,
    n_threads=None,
    learning_decay=0.55,
    learning_offset=1.0,
)


# ------------------------------------------------------------- common checks


def _expected_failed_checks(estimator):
    # The only declared failure, as scikit-learn declares it for its own KMeans:
    # the check fits on shuffled weighted rows vs. repeated rows, so any random
    # initialisation draws different rows and may label the components in
    # another order. Weighted == repeated from the same start is tested in
    # test_threads_weights.py.
    if estimator.n_components > 1:
        return {
            "check_sample_weight_equivalence_on_dense_data": (
                "random initialisation draws differ between shuffled weighted "
                "rows and repeated rows"
            )
        }
    return {}


@parametrize_with_checks(
    [GaussianMixture(), GaussianMixture(covariance_type="diag", n_components=2)],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


# ------------------------------------------------------------------- package


def test_import_does_not_pull_heavy_dependencies():
    code = (
        "import sys, gaussmix\n"
        "bad = sorted(m for m in ('sklearn', 'pandas', 'matplotlib') if m in sys.modules)\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import gaussmix imported: {out.stdout.strip()}"

def test_default_params_match_spec_and_sklearn():
    params = GaussianMixture().get_params()
    assert params == DEFAULT_PARAMS
    sk_params = SkGaussianMixture().get_params()
    extensions = ("n_threads", "learning_decay", "learning_offset", "nan_policy")
    assert {k: v for k, v in params.items() if k not in extensions} == sk_params


# ------------------------------------------------------- params, clone, pickle


def test_get_set_params_round_trip():
    gm = GaussianMixture(n_components=3, covariance_type="tied", random_state=4, n_threads=1)
    params = gm.get_params()
    other = GaussianMixture()
    assert other.set_params(**params) is other
    assert other.get_params() == params
    other.set_params(tol=1e-5, max_iter=7)
    assert other.tol == 1e-5 and other.max_iter == 7
    with pytest.raises(ValueError):
        other.set_params(not_a_parameter=1)


def test_clone_is_unfitted_copy_with_same_params(faithful_X):
    gm = GaussianMixture(n_components=2, covariance_type="diag", random_state=0).fit(faithful_X)
    cl = clone(gm)
    assert cl is not gm
    assert cl.get_params() == gm.get_params()
    assert not hasattr(cl, "means_")
    cl.fit(faithful_X)
    assert_array_equal(cl.means_, gm.means_)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_pickle_round_trip(covariance_type, faithful_X):
    gm = GaussianMixture(n_components=2, covariance_type=covariance_type, random_state=0)
    gm.fit(faithful_X)
    restored = pickle.loads(pickle.dumps(gm))
    for name in FITTED_ARRAYS:
        assert_array_equal(getattr(restored, name), getattr(gm, name))
    assert restored.get_params() == gm.get_params()
    assert_array_equal(restored.predict(faithful_X), gm.predict(faithful_X))
    assert_array_equal(restored.predict_proba(faithful_X), gm.predict_proba(faithful_X))
    assert_array_equal(restored.score_samples(faithful_X), gm.score_samples(faithful_X))
    # an unfitted estimator pickles too
    assert pickle.loads(pickle.dumps(GaussianMixture(n_components=3))).n_components == 3


# ------------------------------------------------------------ meta-estimators


def test_pipeline_with_standard_scaler(faithful_X):
    pipe = Pipeline([("scale", StandardScaler()),
                     ("gmm", GaussianMixture(n_components=2, random_state=0))])
    labels = pipe.fit_predict(faithful_X)
    assert labels.shape == (272,)
    assert set(np.unique(labels)) == {0, 1}
    Z = StandardScaler().fit_transform(faithful_X)
    direct = GaussianMixture(n_components=2, random_state=0).fit(Z)
    assert_allclose(pipe.score(faithful_X), direct.score(Z), rtol=1e-10)
    assert_array_equal(pipe.predict(faithful_X), direct.predict(Z))
    # Old Faithful: short eruptions with short waits vs long with long waits
    sizes = np.sort(np.bincount(labels))
    assert 80 < sizes[0] < 115


def test_grid_search_over_n_components(faithful_X):
    search = GridSearchCV(
        GaussianMixture(random_state=0, covariance_type="full"),
        {"n_components": [1, 2, 3]},
        cv=3,
    )
    search.fit(faithful_X)
    scores = search.cv_results_["mean_test_score"]
    assert np.all(np.isfinite(scores))
    # two (or more) components explain Old Faithful much better than one
    assert scores[1] > scores[0] + 0.3
    assert search.best_params_["n_components"] in (2, 3)
    assert isinstance(search.best_estimator_, GaussianMixture)


# ----------------------------------------------------------------- fit_predict


@pytest.mark.parametrize("init_params", INIT_PARAMS)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_fit_predict_equals_fit_then_predict(covariance_type, init_params):
    X = small_blobs(400, 3, seed=2)
    kw = dict(n_components=3, covariance_type=covariance_type, init_params=init_params,
              random_state=1, max_iter=20)
    labels = fit_quiet(GaussianMixture(**kw), X).predict(X)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*converge.*")
        fp = GaussianMixture(**kw).fit_predict(X)
    assert_array_equal(fp, labels)
    # non-converged fits too (sklearn's final e-step guarantee)
    kw["max_iter"] = 1
    gm = GaussianMixture(**kw)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*converge.*")
        fp = gm.fit_predict(X)
    assert_array_equal(fp, gm.predict(X))


@pytest.mark.parametrize("init_params", INIT_PARAMS)
def test_init_params_recover_separated_blobs(init_params):
    X = small_blobs(600, 2, seed=3)
    truth = np.sort(GaussianMixture(n_components=3, random_state=0, n_init=3).fit(X).means_, axis=0)
    gm = GaussianMixture(n_components=3, init_params=init_params, random_state=0, n_init=5).fit(X)
    assert gm.converged_
    assert_allclose(np.sort(gm.means_, axis=0), truth, atol=0.05)


# ----------------------------------------------------------------- bic / aic


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_bic_aic_match_sklearn(covariance_type, blobs5d_X):
    X = blobs5d_X
    gm = GaussianMixture(n_components=4, covariance_type=covariance_type, random_state=0).fit(X)
    sk = fit_quiet(SkGaussianMixture(n_components=4, covariance_type=covariance_type,
                                     max_iter=1, random_state=0), X)
    for name in FITTED_ARRAYS:
        setattr(sk, name, np.array(getattr(gm, name), copy=True))
    assert_allclose(gm.bic(X), sk.bic(X), rtol=1e-10)
    assert_allclose(gm.aic(X), sk.aic(X), rtol=1e-10)
    n, d = X.shape
    assert_allclose(gm.bic(X) - gm.aic(X), sk._n_parameters() * (np.log(n) - 2), rtol=1e-10)


def test_bic_prefers_true_number_of_components():
    X = small_blobs(600, 2, seed=5)
    bics = [GaussianMixture(n_components=k, random_state=0).fit(X).bic(X) for k in (1, 2, 3, 4, 5)]
    assert int(np.argmin(bics)) + 1 == 3


# ------------------------------------------------------------------- sample


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_sample_shapes_labels_and_moments(covariance_type, blobs2d_X):
    gm = GaussianMixture(n_components=3, covariance_type=covariance_type, random_state=0)
    gm.fit(blobs2d_X)
    n = 20000
    Xs, y = gm.sample(n)
    assert Xs.shape == (n, 2)
    assert y.shape == (n,)
    assert np.issubdtype(Xs.dtype, np.floating)
    assert np.issubdtype(y.dtype, np.integer)
    assert set(np.unique(y)) <= {0, 1, 2}
    assert np.all(np.isfinite(Xs))

    freq = np.bincount(y, minlength=3) / n
    assert_allclose(freq, gm.weights_, atol=5 * np.sqrt(0.25 / n))
    for c in range(3):
        Xc = Xs[y == c]
        if covariance_type == "full":
            cov = gm.covariances_[c]
        elif covariance_type == "tied":
            cov = gm.covariances_
        elif covariance_type == "diag":
            cov = np.diag(gm.covariances_[c])
        else:
            cov = np.eye(2) * gm.covariances_[c]
        se = np.sqrt(np.diag(cov) / len(Xc))
        assert np.all(np.abs(Xc.mean(axis=0) - gm.means_[c]) < 5 * se), c
        assert_allclose(np.cov(Xc, rowvar=False), cov, rtol=0.1, atol=0.05 * np.abs(cov).max())

    X1, y1 = gm.sample()
    assert X1.shape == (1, 2) and y1.shape == (1,)


def test_sample_is_reproducible_with_random_state(faithful_X):
    gm = GaussianMixture(n_components=2, random_state=3).fit(faithful_X)
    a = gm.sample(50)
    b = gm.sample(50)
    assert_array_equal(a[0], b[0])
    assert_array_equal(a[1], b[1])


def test_sample_rejects_zero_samples(faithful_X):
    gm = GaussianMixture(n_components=2, random_state=0).fit(faithful_X)
    with pytest.raises(ValueError, match="n_samples|sample"):
        gm.sample(0)


def test_sample_unfitted_raises():
    with pytest.raises(ValueError, match="(?i)fit"):
        GaussianMixture().sample(5)


# ------------------------------------------------------------ feature names


def test_feature_names_in_with_dataframe(faithful_X):
    df = pd.DataFrame(faithful_X, columns=["eruptions", "waiting"])
    gm = GaussianMixture(n_components=2, random_state=0).fit(df)
    assert gm.n_features_in_ == 2
    assert list(gm.feature_names_in_) == ["eruptions", "waiting"]
    assert gm.feature_names_in_.dtype == object
    gm_np = GaussianMixture(n_components=2, random_state=0).fit(faithful_X)
    assert not hasattr(gm_np, "feature_names_in_")
    assert gm_np.n_features_in_ == 2
    assert_array_equal(gm.means_, gm_np.means_)
    assert_array_equal(gm.predict(df), gm_np.predict(faithful_X))
    assert_allclose(gm.score_samples(df), gm_np.score_samples(faithful_X), rtol=1e-14)


def test_dataframe_with_wrong_column_names_rejected(faithful_X):
    df = pd.DataFrame(faithful_X, columns=["eruptions", "waiting"])
    gm = GaussianMixture(n_components=2, random_state=0).fit(df)
    with pytest.raises(ValueError, match="(?i)feature names"):
        gm.predict(df.rename(columns={"waiting": "wait"}))


def test_dataframe_with_non_string_columns_has_no_feature_names(faithful_X):
    gm = GaussianMixture(n_components=2, random_state=0).fit(pd.DataFrame(faithful_X))
    assert not hasattr(gm, "feature_names_in_")


# ------------------------------------------------- sklearn exception classes


def test_convergence_warning_is_sklearn_category_when_sklearn_is_loaded(faithful_X):
    """Drop-in: filters on sklearn's ConvergenceWarning also catch gaussmix's."""
    from sklearn.exceptions import ConvergenceWarning

    with pytest.warns(ConvergenceWarning):
        GaussianMixture(n_components=2, max_iter=1, tol=0.0, random_state=0).fit(faithful_X)


def test_not_fitted_error_is_value_and_attribute_error(faithful_X):
    with pytest.raises(ValueError) as exc:
        GaussianMixture().predict_proba(faithful_X)
    assert isinstance(exc.value, AttributeError)


# ------------------------------------------------------------------ misc API


def test_fit_returns_self_and_fitted_attributes(faithful_X):
    gm = GaussianMixture(n_components=2, random_state=0)
    assert gm.fit(faithful_X) is gm
    assert gm.weights_.shape == (2,)
    assert gm.means_.shape == (2, 2)
    assert gm.covariances_.shape == (2, 2, 2)
    assert gm.precisions_.shape == (2, 2, 2)
    assert gm.precisions_cholesky_.shape == (2, 2, 2)
    assert isinstance(gm.lower_bounds_, list)
    assert len(gm.lower_bounds_) == gm.n_iter_
    assert gm.lower_bounds_[-1] == gm.lower_bound_
    assert np.all(np.diff(gm.lower_bounds_) > -1e-10)  # EM never decreases the bound
    # precisions_ is the inverse of covariances_
    for c in range(2):
        assert_allclose(gm.precisions_[c] @ gm.covariances_[c], np.eye(2), atol=1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_verbose_prints_progress(covariance_type, faithful_X, capsys):
    GaussianMixture(n_components=2, covariance_type=covariance_type, verbose=2,
                    verbose_interval=1, random_state=0).fit(faithful_X)
    out = capsys.readouterr().out
    assert "Initialization" in out
    assert "converged" in out.lower()


def test_make_pipeline_clone_and_refit_keep_n_threads(faithful_X):
    pipe = make_pipeline(StandardScaler(), GaussianMixture(n_components=2, n_threads=1,
                                                           random_state=0))
    cl = clone(pipe)
    assert cl.steps[-1][1].n_threads == 1
    cl.fit(faithful_X)
    assert cl.steps[-1][1].converged_


# ------------------------------------------------------------- random state


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

