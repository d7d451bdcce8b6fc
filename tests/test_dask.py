"""Fits on Dask arrays, on a real LocalCluster (2 worker processes on loopback)."""
import os
import subprocess
import sys

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("dask.distributed")

import gaussmix._dask as gm_dask  # noqa: E402
from gaussmix import GaussianMixture  # noqa: E402

from conftest import FITTED_ARRAYS, hand_init_kwargs, make_blobs  # noqa: E402

from gaussmix._covariance import model  # noqa: E402


def layout(covariance_type):
    return model(covariance_type).layout.name

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical", "VEV", "EVI")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None)
    with cluster, distributed.Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def X():
    centers = np.array([[0.0, 0, 0, 0], [5, 4, 0, 1], [0, 5, 5, -2]])
    return make_blobs(12_000, centers, [1.0, 1.4, 0.7], seed=4)


def fit_both(X, dask_X, covariance_type, sample_weight=None, dask_weight=None, **params):
    kwargs = dict(n_components=3, covariance_type=covariance_type, tol=0, max_iter=15,
                  **hand_init_kwargs(X, 3, layout(covariance_type)), **params)
    with pytest.warns(UserWarning):  # tol=0: "did not converge"
        local = GaussianMixture(**kwargs).fit(X, sample_weight=sample_weight)
    with pytest.warns(UserWarning):
        remote = GaussianMixture(**kwargs).fit(dask_X, sample_weight=dask_weight)
    return local, remote


def assert_same_fit(remote, local):
    for name in FITTED_ARRAYS:
        value = getattr(local, name)
        assert_allclose(getattr(remote, name), value, rtol=1e-10,
                        atol=1e-12 * np.abs(value).max(), err_msg=name)
    assert remote.lower_bound_ == pytest.approx(local.lower_bound_, rel=1e-12)
    assert remote.n_iter_ == local.n_iter_


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_distributed_fit_equals_local_fit(client, X, covariance_type):
    local, remote = fit_both(X, da.from_array(X, chunks=(2_500, 4)), covariance_type)
    assert_same_fit(remote, local)


@pytest.mark.parametrize("chunks", [((1_000, 3_500, 17, 7_483), (4,)), ((12_000,), (4,)),
                                    ((5_000, 7_000), (2, 2))])
def test_uneven_single_and_column_split_blocks(client, X, chunks):
    local, remote = fit_both(X, da.from_array(X, chunks=chunks), "full")
    assert_same_fit(remote, local)


@pytest.mark.parametrize("as_dask", [True, False])
def test_weighted_distributed_fit_equals_local(client, X, as_dask):
    weights = np.random.default_rng(0).uniform(0, 3, X.shape[0])
    dask_weights = da.from_array(weights, chunks=3_000) if as_dask else weights
    local, remote = fit_both(X, da.from_array(X, chunks=4_000), "diag", weights, dask_weights)
    assert_same_fit(remote, local)


@pytest.mark.parametrize("scale", [1e-300, 1e300])
def test_extreme_dask_weights_are_rescaled_like_local_ones(client, X, scale):
    weights = np.random.default_rng(1).uniform(0.5, 3, X.shape[0])
    local, _ = fit_both(X, X, "full", weights)
    _, remote = fit_both(X, da.from_array(X, chunks=4_000), "full", weights,
                         da.from_array(weights * scale, chunks=4_000))
    assert_same_fit(remote, local)


def test_predictions_are_lazy_dask_arrays(client, X):
    gm = GaussianMixture(3, random_state=0).fit(X)
    dask_X = da.from_array(X, chunks=3_000)
    for method, expected in [(gm.predict, gm.predict(X)), (gm.predict_proba, gm.predict_proba(X)),
                             (gm.score_samples, gm.score_samples(X))]:
        lazy = method(dask_X)
        assert isinstance(lazy, da.Array) and lazy.shape == expected.shape
        assert_allclose(lazy.compute(), expected, rtol=1e-12, atol=1e-300)
    assert gm.score(dask_X) == pytest.approx(gm.score(X), rel=1e-12)
    weights = np.arange(X.shape[0]) % 3
    assert gm.score(dask_X, sample_weight=da.from_array(weights, chunks=5_000)) == \
        pytest.approx(gm.score(X, sample_weight=weights), rel=1e-12)


def test_initialisation_from_a_bounded_sample(client, X, monkeypatch):
    monkeypatch.setattr(gm_dask, "SAMPLE_ROWS", 2_000)
    gm = GaussianMixture(3, random_state=0).fit(da.from_array(X, chunks=4_000))
    reference = GaussianMixture(3, random_state=0).fit(X)
    order = np.argsort(gm.means_[:, 0])
    assert_allclose(gm.means_[order], reference.means_[np.argsort(reference.means_[:, 0])],
                    atol=0.05)


def test_a_worker_dying_mid_fit_is_recovered(client, X, monkeypatch):
    """Dask recomputes the lost blocks; the result is still the local one."""
    original = gm_dask.DaskData.statistics
    calls = []

    def kill_one_worker_on_third_pass(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            victim = sorted(client.scheduler_info()["workers"])[0]
            try:
                client.run(os._exit, 1, workers=[victim])
            except (OSError, distributed.comm.CommClosedError):
                pass  # it died before answering, as intended
        return original(self, *args, **kwargs)

    monkeypatch.setattr(gm_dask.DaskData, "statistics", kill_one_worker_on_third_pass)
    local, remote = fit_both(X, da.from_array(X, chunks=2_000), "full")
    assert len(calls) == 15
    assert_same_fit(remote, local)
    client.wait_for_workers(2, timeout=60)


@pytest.mark.parametrize("make_bad, message", [
    (lambda X: da.from_array(np.where(X > 6, np.nan, X), chunks=3_000), "NaN"),
    (lambda X: da.from_array(X[:, :, None], chunks=3_000), "2D"),
    (lambda X: da.from_array(X, chunks=3_000)[da.from_array(X[:, 0] > 0)], "chunk sizes"),
])
def test_bad_dask_input_raises(client, X, make_bad, message):
    with pytest.raises(ValueError, match=message):
        GaussianMixture(2).fit(make_bad(X))


def test_bad_dask_weights_raise(client, X):
    dask_X = da.from_array(X, chunks=3_000)
    with pytest.raises(ValueError, match="non-negative"):
        GaussianMixture(2).fit(dask_X, sample_weight=-da.ones(X.shape[0], chunks=3_000))
    with pytest.raises(ValueError, match="shape"):
        GaussianMixture(2).fit(dask_X, sample_weight=np.ones(5))
    with pytest.raises(TypeError, match="partial_fit"):
        GaussianMixture(2).partial_fit(dask_X)


def test_dask_is_not_imported_for_numpy_input():
    code = ("import sys, numpy as np, gaussmix; "
            "gm = gaussmix.GaussianMixture(2, random_state=0).fit(np.random.rand(100, 2)); "
            "gm.predict(np.random.rand(5, 2)); print('dask' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr
