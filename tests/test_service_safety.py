"""gaussmix inside a service: forked workers, thread counts from the work,
idle threads that do not spin, and kernel constants kept between calls."""
import contextlib
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import gaussmix._threading as threading_module
from gaussmix import GaussianMixture
from gaussmix._parallel import CHUNK_ROWS
from gaussmix._threading import MIN_FLOPS_PER_THREAD, kernel_team, team_size

needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

# --------------------------------------------------------------------------- fork


def in_forked_child(function, timeout=60):
    """``function()``'s result computed in a forked child; fails the test when
    the child hangs (killed after ``timeout`` seconds) or raises."""
    fd, path = tempfile.mkstemp(suffix=".pickle")
    os.close(fd)
    try:
        pid = os.fork()
        if pid == 0:  # child: report through the file, never return into pytest
            status = 1
            try:
                with open(path, "wb") as report:
                    pickle.dump(function(), report)
                status = 0
            finally:
                os._exit(status)
        deadline = time.monotonic() + timeout
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                pytest.fail(f"the forked child hung for {timeout} s")
            time.sleep(0.01)
        assert status == 0, "the forked child failed"
        with open(path, "rb") as report:
            return pickle.load(report)
    finally:
        os.remove(path)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 6, (4, 6))
    return np.vstack([rng.normal(size=(1_500, 6)) * (0.5 + i) + c
                      for i, c in enumerate(centers)])


def multi_threaded_kernel_calls(data):
    """Every kind of compiled call, each on a team of two threads."""
    X = data
    yield "fit (k-means init, fused pass)", lambda: GaussianMixture(
        4, random_state=0, n_threads=2).fit(X)
    yield "fit (k-means++ init, diag)", lambda: GaussianMixture(
        4, covariance_type="diag", init_params="k-means++", random_state=0, n_threads=2).fit(X)
    gm = GaussianMixture(4, random_state=0, n_threads=1).fit(X)
    yield "predict", lambda: gm.set_params(n_threads=2).predict(X)
    yield "score_samples", lambda: gm.set_params(n_threads=2).score_samples(X)
    yield "partial_fit", lambda: GaussianMixture(
        4, random_state=0, n_threads=2).partial_fit(X)


@needs_fork
@pytest.mark.parametrize("call", range(5))
def test_a_child_forked_after_a_multi_threaded_call_predicts_scores_and_fits(data, call):
    name, run = list(multi_threaded_kernel_calls(data))[call]
    assert team_size(2, len(data), 1) == 2, "the parent's call would run no team"
    run()
    reference = GaussianMixture(4, random_state=0, n_threads=1).fit(data)

    def child():
        assert threading_module._ForkState.serial
        gm = GaussianMixture(4, random_state=0).fit(data)  # default threads: serial here
        return (gm.means_, reference.predict(data), reference.predict_proba(data),
                reference.score(data), team_size(None, 10 ** 9, 10 ** 6))

    means, labels, proba, score, threads = in_forked_child(child)
    assert threads == 1
    assert_allclose(means, reference.means_, rtol=1e-10)
    assert_array_equal(labels, reference.predict(data))
    assert_allclose(proba, reference.predict_proba(data), rtol=1e-12, atol=1e-300)
    assert_allclose(score, reference.score(data), rtol=1e-12)


@needs_fork
def test_every_forked_child_is_serial(monkeypatch):
    # Even one forked before gaussmix ran a team: another library sharing the
    # OpenMP runtime may have run one, and the child would hang on its threads.
    monkeypatch.setattr(threading_module._ForkState, "serial", False)
    assert team_size(2, 10 ** 6, 10 ** 6) == 2
    assert in_forked_child(lambda: team_size(2, 10 ** 6, 10 ** 6)) == 1


@needs_fork
def test_multiprocessing_fork_pool_after_a_fit(data):
    import multiprocessing

    gm = GaussianMixture(4, random_state=0, n_threads=2).fit(data)
    context = multiprocessing.get_context("fork")
    with context.Pool(2) as pool:
        result = pool.map_async(gm.predict, np.array_split(data, 4))
        labels = np.concatenate(result.get(timeout=60))
    assert_array_equal(labels, gm.predict(data))


# --------------------------------------------------------------------------- team size


@pytest.fixture
def real_work_rule(monkeypatch):
    """The production thread rule (conftest lowers it for the other tests)."""
    monkeypatch.setattr(threading_module, "MIN_FLOPS_PER_THREAD", MIN_FLOPS_PER_THREAD)
    monkeypatch.setattr(threading_module._ForkState, "serial", False)


def test_work_below_one_threads_worth_runs_on_the_calling_thread(real_work_rule):
    assert team_size(8, 1, 10 ** 5) == 1
    assert team_size(8, 10 * CHUNK_ROWS, MIN_FLOPS_PER_THREAD / (10 * CHUNK_ROWS) * 0.99) == 1


def test_threads_grow_with_the_work_up_to_the_budget(real_work_rule):
    rows = 100 * CHUNK_ROWS
    per_row = MIN_FLOPS_PER_THREAD / rows
    assert team_size(8, rows, 3 * per_row) == 3
    assert team_size(8, rows, 100 * per_row) == 8
    assert team_size(2, rows, 100 * per_row) == 2


def test_threads_never_exceed_the_chunks(real_work_rule):
    assert team_size(8, 3 * CHUNK_ROWS, 10 ** 9) == 3


def test_a_default_budget_is_the_cores(real_work_rule):
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert team_size(None, 10 ** 6, 10 ** 6) == min(cores, team_size(10 ** 6, 10 ** 6, 10 ** 6))


def test_a_small_call_leaves_blas_limits_alone(real_work_rule, monkeypatch):
    def fail():
        raise AssertionError("small work took the BLAS limit")

    monkeypatch.setattr(threading_module, "single_threaded_blas", fail)
    with kernel_team(None, 10, 100) as threads:
        assert threads == 1


def test_small_predictions_start_no_team(real_work_rule, monkeypatch, data):
    import gaussmix._base

    teams = []
    original = gaussmix._base.kernel_team

    @contextlib.contextmanager
    def recording(*args):
        with original(*args) as threads:
            teams.append(threads)
            yield threads

    monkeypatch.setattr(gaussmix._base, "kernel_team", recording)
    gm = GaussianMixture(4, random_state=0, n_threads=2).fit(data)
    for rows in (1, 10, 100):
        gm.predict_proba(data[:rows])
    assert teams == [1, 1, 1]
    gm.predict_proba(np.tile(data, (20, 1)))
    assert teams[-1] == 2


# --------------------------------------------------------------------------- waiting


def openmp_settings(env):
    """The OpenMP runtime's settings as printed in a fresh interpreter, and
    whether OMP_WAIT_POLICY was in os.environ after importing gaussmix."""
    code = ("import os, gaussmix, gaussmix._parallel as p; p.display_openmp_env(); "
            "print('after import:', os.environ.get('OMP_WAIT_POLICY'))")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=120, check=True)
    return result.stderr, result.stdout


def environment_without_wait_settings():
    return {name: value for name, value in os.environ.items()
            if name not in threading_module._WAIT_SETTINGS}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="GNU OpenMP runtime")
def test_idle_threads_wait_passively_and_the_environment_is_restored():
    settings, after = openmp_settings(environment_without_wait_settings())
    if "OMP_WAIT_POLICY" not in settings:
        pytest.skip("this OpenMP runtime does not display its settings")
    assert "OMP_WAIT_POLICY = 'PASSIVE'" in settings
    assert after.strip() == "after import: None"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="GNU OpenMP runtime")
def test_a_wait_policy_the_user_chose_is_kept():
    env = dict(environment_without_wait_settings(), OMP_WAIT_POLICY="active")
    settings, after = openmp_settings(env)
    if "OMP_WAIT_POLICY" not in settings:
        pytest.skip("this OpenMP runtime does not display its settings")
    assert "OMP_WAIT_POLICY = 'ACTIVE'" in settings
    assert after.strip() == "after import: active"


# --------------------------------------------------------------------------- kernel constants


@pytest.fixture
def counted_builds(monkeypatch):
    """Counts how often GaussianMixture builds its kernel constants."""
    builds = []
    original = GaussianMixture._kernel_parameters

    def counting(self, params, dtype):
        builds.append(dtype)
        return original(self, params, dtype)

    monkeypatch.setattr(GaussianMixture, "_kernel_parameters", counting)
    return builds


def test_kernel_constants_are_built_once_per_dtype(data, counted_builds):
    X32 = data.astype(np.float32)
    gm = GaussianMixture(3, random_state=0).fit(X32)
    counted_builds.clear()
    for _ in range(5):
        gm.predict(X32[:10])
        gm.score_samples(X32[:1])
    assert counted_builds == [np.float32]
    gm.predict_proba(data[:10])  # float64 rows: the constants in float64
    gm.predict_proba(data[:10])
    gm.predict_proba(X32[:10])
    assert counted_builds == [np.float32, np.float64]


def test_a_list_attribute_edited_in_place_is_seen(data):
    gm = GaussianMixture(3, random_state=0).fit(data)
    gm.weights_ = list(gm.weights_)
    before = gm.score_samples(data[:50])
    gm.weights_[0], gm.weights_[1], gm.weights_[2] = 0.6, 0.3, 0.1
    after = gm.score_samples(data[:50])
    assert not np.allclose(after, before)
    assert_allclose(after, sklearn_with(gm).score_samples(data[:50]), rtol=1e-10)


def test_large_arrays_edited_in_place_are_seen():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(3000, 40))
    gm = GaussianMixture(8, random_state=0, max_iter=5).fit(X)  # 8 x 40 x 40: > 64 KiB
    assert gm.precisions_cholesky_.nbytes > 1 << 16
    before = gm.score_samples(X[:20])
    gm.precisions_cholesky_[3] *= 1.5
    after = gm.score_samples(X[:20])
    assert not np.allclose(after, before)
    assert_allclose(after, sklearn_with(gm).score_samples(X[:20]), rtol=1e-10)


def test_a_refit_rebuilds_the_constants(data):
    gm = GaussianMixture(3, random_state=0).fit(data)
    gm.predict(data)
    gm.set_params(n_components=4).fit(data)
    assert_allclose(gm.score_samples(data),
                    GaussianMixture(4, random_state=0).fit(data).score_samples(data))


def sklearn_with(gm):
    """scikit-learn's GaussianMixture carrying gm's fitted attributes."""
    sklearn_mixture = pytest.importorskip("sklearn.mixture")
    reference = sklearn_mixture.GaussianMixture(gm.n_components)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_"):
        setattr(reference, name, np.array(getattr(gm, name)))
    reference.covariance_type = gm.covariance_type
    return reference


@pytest.mark.parametrize("edit", ["assign", "in_place"])
@pytest.mark.parametrize("attribute", ["weights_", "means_", "precisions_cholesky_"])
def test_attributes_set_by_hand_are_used(data, edit, attribute):
    gm = GaussianMixture(3, random_state=0).fit(data)
    before = gm.score_samples(data)
    value = getattr(gm, attribute)
    changed = value * 1.25 if attribute != "weights_" else value[::-1].copy()
    if edit == "assign":
        setattr(gm, attribute, changed)
    else:
        value[...] = changed
    after = gm.score_samples(data)
    assert not np.allclose(after, before)
    assert_allclose(after, sklearn_with(gm).score_samples(data), rtol=1e-10)
