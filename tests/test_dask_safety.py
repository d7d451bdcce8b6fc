"""Dask passes: kernel threads per block, task keys per pass, a clean scheduler
log, and the weighted mean behind ``score``."""
import io
import logging
import warnings

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

import gaussmix._dask as gm_dask  # noqa: E402
from gaussmix import GaussianMixture, _kernels  # noqa: E402

from conftest import make_blobs  # noqa: E402


@pytest.fixture(scope="module")
def X():
    centers = np.array([[0.0, 0, 0, 0], [5, 4, 0, 1], [0, 5, 5, -2]])
    return make_blobs(12_000, centers, [1.0, 1.4, 0.7], seed=4)


@pytest.fixture
def kernel_threads(monkeypatch):
    """The thread count every compiled E-step and statistics pass is run with."""
    seen = {"e_step": [], "statistics": []}
    e_step, statistics = _kernels.estep.e_step, gm_dask.pass_statistics

    def spy_e_step(*args):
        seen["e_step"].append(args[-1])
        return e_step(*args)

    def spy_statistics(*args):
        seen["statistics"].append(args[-1])
        return statistics(*args)

    monkeypatch.setattr(_kernels.estep, "e_step", spy_e_step)
    monkeypatch.setattr(gm_dask, "pass_statistics", spy_statistics)
    return seen


@pytest.mark.parametrize("n_threads, expected", [(None, 1), (3, 3)])
def test_each_block_runs_one_kernel_thread_unless_told(X, kernel_threads, n_threads,
                                                         expected):
    # Dask runs a block per worker thread; a block that also used every core
    # oversubscribed the machine. An explicit n_threads is per block.
    dask_X = da.from_array(X, chunks=(2_500, 4))
    with dask.config.set(scheduler="synchronous"):
        gm = GaussianMixture(3, random_state=0, max_iter=3, tol=0, n_threads=n_threads)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gm.fit(dask_X)
        kernel_threads["e_step"].clear()
        gm.predict(dask_X).compute()
        gm.predict_proba(dask_X).compute()
        gm.score_samples(dask_X).compute()
    assert len(kernel_threads["e_step"]) >= 3 * 5
    assert set(kernel_threads["e_step"]) == {expected}
    assert set(kernel_threads["statistics"]) == {expected}


def test_passes_with_equal_parameters_get_fresh_task_keys(X):
    # EM at a fixed point makes passes with bitwise-equal parameters; keys
    # derived from the inputs were then resubmitted just after the client had
    # released them, and the scheduler could forget a result before its gather.
    local = GaussianMixture(3, random_state=0).fit(X)
    kernel_params, *_ = local._fitted_kernel_parameters(X.dtype)
    data = gm_dask.DaskData(da.from_array(X, chunks=(2_500, 4)), None, GaussianMixture(3))
    graphs = []
    with dask.config.set(scheduler="synchronous"), \
            dask.callbacks.Callback(start=lambda dsk: graphs.append(set(dsk))):
        first = data.statistics(kernel_params, 1)
        second = data.statistics(kernel_params, 1)
    for name in ("N", "S", "W"):
        np.testing.assert_array_equal(getattr(first[0], name), getattr(second[0], name))
    data_keys = set(dict(data.X.__dask_graph__()))
    assert len(graphs) == 2
    assert graphs[0] & graphs[1] <= data_keys


@pytest.fixture(scope="module")
def rows():
    rng = np.random.default_rng(7)
    values = rng.normal(size=1_000) * 50
    weights = rng.uniform(0, 3, size=1_000)
    weights[::7] = 0
    return values, weights


@pytest.mark.parametrize("weight_kind", ["none", "numpy", "list", "dask-other-chunks"])
def test_weighted_mean_of_lazy_values(rows, weight_kind):
    values, weights = rows
    X = da.ones((1_000, 3), chunks=((100, 400, 500), (2, 1)))
    lazy = da.from_array(values, chunks=((100, 400, 500),))
    sample_weight = {"none": None, "numpy": weights, "list": list(weights),
                     "dask-other-chunks": da.from_array(weights, chunks=300)}[weight_kind]
    expected = values.mean() if sample_weight is None else weights @ values / weights.sum()
    mean = gm_dask.weighted_mean(lazy, sample_weight, X)
    assert type(mean) is float
    assert mean == pytest.approx(expected, rel=1e-13)


@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_weighted_mean_keeps_fractional_weights_in_float64(rows, dtype):
    # The weights are not cast to X's dtype: integer X would truncate them.
    values, weights = rows
    X = da.ones((1_000, 2), chunks=(250, 2), dtype=dtype)
    mean = gm_dask.weighted_mean(da.from_array(values, chunks=250), weights / 7, X)
    assert mean == pytest.approx(weights @ values / weights.sum(), rel=1e-13)


@pytest.mark.parametrize("bad, error, message", [
    (lambda w: w[:-1], ValueError, "shape"),
    (lambda w: np.where(w > 2, -1.0, w), ValueError, "non-negative"),
    (lambda w: np.where(w > 2, np.nan, w), ValueError, "NaN"),
    (lambda w: np.zeros_like(w), ValueError, "sums to zero"),
    (lambda w: w.astype(str), TypeError, "numbers"),
])
def test_weighted_mean_rejects_weights_as_a_local_score_does(rows, bad, error, message):
    values, weights = rows
    X = da.ones((1_000, 2), chunks=(250, 2))
    with pytest.raises(error, match=message):
        gm_dask.weighted_mean(da.from_array(values, chunks=250), bad(weights), X)


@pytest.mark.slow
def test_fits_on_a_cluster_log_no_scheduler_errors():
    distributed = pytest.importorskip("dask.distributed")
    rng = np.random.default_rng(4)
    X = rng.normal(size=(4_000, 4)) + rng.integers(0, 3, 4_000)[:, None] * 4.0
    log = io.StringIO()
    handler = logging.StreamHandler(log)
    handler.setLevel(logging.WARNING)
    loggers = [logging.getLogger(name) for name in ("distributed.scheduler",
                                                    "distributed.client")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      host="127.0.0.1", dashboard_address=None) as cluster, \
                distributed.Client(cluster) as client:
            dask_X = da.from_array(X, chunks=(1_000, 4))
            for seed in range(8):
                # tol=0: the fits reach a fixed point after ~12 iterations and
                # then repeat passes with bitwise-equal parameters
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    GaussianMixture(3, random_state=seed, max_iter=40, tol=0).fit(dask_X)
            worker_logs = client.get_worker_logs()
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
    assert "Couldn't gather" not in log.getvalue()
    assert log.getvalue() == ""
    for worker, lines in worker_logs.items():
        assert not [message for level, message in lines if level in ("ERROR", "CRITICAL")]
