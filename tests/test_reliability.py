"""Concurrency, interruption and resource use of a fitted or fitting model."""
import _thread
import subprocess
import sys
import textwrap
import threading
import tracemalloc
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from gaussmix._em import InMemoryData
from gaussmix import GaussianMixture

from conftest import COVARIANCE_TYPES, FITTED_ARRAYS, make_blobs


def blobs(n=40_000, d=6, seed=0):
    centers = np.random.default_rng(seed).normal(scale=5, size=(4, d))
    return make_blobs(n, centers, [1.0, 0.5, 1.5, 0.8], seed=seed)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_eight_threads_predict_like_serial_calls(covariance_type):
    X = blobs()
    gm = GaussianMixture(4, covariance_type=covariance_type, random_state=0).fit(X)
    serial = (gm.predict(X), gm.predict_proba(X), gm.score_samples(X))
    calls = [gm.predict, gm.predict_proba, gm.score_samples] * 8
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda call: call(X), calls))
    for index, result in enumerate(results):
        assert_array_equal(result, serial[index % 3])


def test_keyboard_interrupt_stops_within_one_iteration_and_keeps_the_model(monkeypatch):
    X = blobs(n=100_000, d=8)
    gm = GaussianMixture(3, random_state=0, tol=0.5).fit(X[:5_000, :4])
    before = {name: getattr(gm, name).copy() for name in FITTED_ARRAYS}
    before_scalars = (gm.n_iter_, gm.converged_, gm.lower_bound_, gm.n_features_in_)

    state = {"calls": 0, "fired": False, "passes_after": 0}
    original = InMemoryData.statistics

    def interrupt():
        state["fired"] = True
        _thread.interrupt_main()

    def counting_pass(*args, **kwargs):
        state["calls"] += 1
        state["passes_after"] += state["fired"]
        if state["calls"] == 3:  # interrupt from another thread, mid-pass
            threading.Thread(target=interrupt).start()
        return original(*args, **kwargs)

    monkeypatch.setattr(InMemoryData, "statistics", counting_pass)
    gm.set_params(tol=0, max_iter=10_000, n_init=1)
    with pytest.raises(KeyboardInterrupt):
        gm.fit(X)
    assert state["fired"] and state["passes_after"] <= 1
    for name, value in before.items():
        assert_array_equal(getattr(gm, name), value)
    assert (gm.n_iter_, gm.converged_, gm.lower_bound_, gm.n_features_in_) == before_scalars


def test_repeated_fit_predict_does_not_leak():
    script = textwrap.dedent("""
        import numpy as np
        from gaussmix import GaussianMixture

        def rss_mib():
            with open("/proc/self/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024

        rng = np.random.default_rng(0)
        X = np.vstack([rng.normal(size=(200, 3)), rng.normal(size=(200, 3)) + 4])
        kinds = ["full", "tied", "diag", "spherical"]
        def cycle(i):
            gm = GaussianMixture(2, covariance_type=kinds[i % 4], random_state=i,
                                 init_params=["kmeans", "k-means++"][i % 2]).fit(X)
            gm.predict_proba(X); gm.score_samples(X); gm.predict(X)
        for i in range(50):
            cycle(i)
        start = rss_mib()
        for i in range(500):
            cycle(i)
        print(rss_mib() - start)
    """)
    if not sys.platform.startswith("linux"):
        pytest.skip("reads /proc/self/status")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert float(result.stdout) < 10.0


@pytest.mark.parametrize("method", ["predict_proba", "predict", "score_samples"])
def test_predict_methods_allocate_only_their_output(method):
    """No n-sized temporaries: numpy's allocations (traced by tracemalloc)
    during the call peak less than 1 MiB above the output."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400_000, 4)) + rng.integers(0, 3, 400_000)[:, None] * 4.0
    gm = GaussianMixture(3, max_iter=5, random_state=0).fit(X)
    getattr(gm, method)(X[:1000])                # warm-up: imports, thread pools
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        out = getattr(gm, method)(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - out.nbytes < 1 << 20, (peak, out.nbytes)
