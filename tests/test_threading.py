"""The process-wide BLAS thread limit under concurrent, nested and forked use."""
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import threadpoolctl  # noqa: E402

from gaussmix import GaussianMixture  # noqa: E402
from gaussmix._threading import single_threaded_blas  # noqa: E402


def blas_threads():
    """The thread count of every loaded BLAS, as threadpoolctl reads it now."""
    return tuple(info["num_threads"] for info in threadpoolctl.threadpool_info()
                 if info["user_api"] == "blas")


@pytest.fixture
def two_blas_threads():
    """The BLAS limits as found (at least 2 threads, so that a leaked limit of 1
    shows), with no thread holding threadpoolctl's control of them (a
    ``threadpool_limits`` block would hold it, and other threads' limits would
    then be dropped)."""
    found = blas_threads()
    if not found or min(found) < 2:
        pytest.skip("no BLAS that runs on 2 threads")
    yield found
    if blas_threads() != found:  # do not leak a failure into later tests
        controller = threadpoolctl.ThreadpoolController().select(user_api="blas")
        for lib, threads in zip(controller.lib_controllers, found):
            lib.set_num_threads(threads)
        clear = getattr(threadpoolctl.OpenBLASController, "clear_controlling_thread", None)
        if clear is not None:
            clear(force=True)


@pytest.fixture(scope="module")
def fitted():
    X = np.random.default_rng(0).normal(size=(2_000, 5))
    return GaussianMixture(3, random_state=0).fit(X), X


def test_thread_pool_of_predictions_leaves_blas_limits_as_found(fitted, two_blas_threads):
    gm, X = fitted
    expected = gm.predict_proba(X[:100])
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(gm.predict_proba, [X[:100]] * 500))
    assert blas_threads() == two_blas_threads
    for result in results:
        np.testing.assert_array_equal(result, expected)


def enter_a_enter_b_leave_a_leave_b(nested=False):
    """Two threads overlapping in that order (the one that made threadpoolctl's
    per-context restore leave BLAS at 1); with ``nested``, A also enters a
    second context inside its first. Returns the limits seen inside: A's
    inner context's and A's outer context's (when nested), then B's after A left."""
    a_entered, b_entered, a_left = threading.Event(), threading.Event(), threading.Event()
    seen = []

    def first():
        with single_threaded_blas():
            a_entered.set()
            b_entered.wait(10)
            if nested:
                with single_threaded_blas():
                    seen.append(blas_threads())
                seen.append(blas_threads())
        a_left.set()

    def second():
        a_entered.wait(10)
        with single_threaded_blas():
            b_entered.set()
            a_left.wait(10)
            seen.append(blas_threads())

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    return seen


def test_overlapping_contexts_hold_the_limit_until_the_last_leaves(two_blas_threads):
    assert enter_a_enter_b_leave_a_leave_b() == [(1,) * len(two_blas_threads)]
    assert blas_threads() == two_blas_threads


def test_nested_use_in_one_thread_while_another_overlaps(two_blas_threads):
    # Thread A nests two contexts; B enters inside A's outer one and leaves
    # after A: the limit holds throughout and is restored once, at the end.
    ones = (1,) * len(two_blas_threads)
    assert enter_a_enter_b_leave_a_leave_b(nested=True) == [ones] * 3
    assert blas_threads() == two_blas_threads


def test_a_limit_the_user_sets_between_calls_is_kept(two_blas_threads):
    ones = (1,) * len(two_blas_threads)
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        assert enter_a_enter_b_leave_a_leave_b() == [ones]
        assert blas_threads() == ones
    assert blas_threads() == two_blas_threads
    assert enter_a_enter_b_leave_a_leave_b() == [ones]
    assert blas_threads() == two_blas_threads


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_while_another_thread_holds_the_limit(two_blas_threads):
    # The child has no thread holding the limit: it must get its own BLAS limits
    # back and be able to take the limit itself (the lock starts afresh).
    inside, done = threading.Event(), threading.Event()

    def hold():
        with single_threaded_blas():
            inside.set()
            done.wait(20)

    holder = threading.Thread(target=hold)
    holder.start()
    inside.wait(10)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report, never return into pytest
        status = 1
        try:
            before = blas_threads()
            with single_threaded_blas():
                during = blas_threads()
            after = blas_threads()
            os.write(write_end, repr((before, during, after)).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    done.set()
    holder.join(10)
    with os.fdopen(read_end) as pipe:
        report = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert status == 0
    before, during, after = eval(report)
    assert before == after == two_blas_threads
    assert during == (1,) * len(two_blas_threads)
    assert blas_threads() == two_blas_threads
