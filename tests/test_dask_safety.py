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
    e_step, statistics = _kernels.estep.e_step, gm_dask.e_step_statistics

    def spy_e_step(*args):
        seen["e_step"].append(args[-1])
        return e_step(*args)

    def spy_statistics(*args):
        seen["statistics"].append(args[-1])
        return statistics(*args)

    monkeypatch.setattr(_kernels.estep, "e_step", spy_e_step)
    monkeypatch.setattr(gm_dask, "e_step_statistics", spy_statistics)
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
