"""Thread counts for the compiled kernels, and BLAS held to one thread.

The kernels call BLAS on one chunk of rows at a time from inside their own
OpenMP threads; a multi-threaded BLAS would start its thread pool on every
such small call (measured: most of the run waiting on BLAS workers). BLAS is
therefore held to one thread around every kernel call, with threadpoolctl.

The BLAS thread limit is process-wide, while gaussmix calls run concurrently
(user thread pools, Dask worker threads). threadpoolctl's limiter saves and
restores the limits per context, so overlapping contexts restore each other's
"1" and leave BLAS single-threaded for good. Here one reference-counted limit
is shared by all threads: the first call to enter saves the limits then in
force and sets 1, the last to leave restores what was saved. Between calls the
limits are the user's own, changes included.

threadpoolctl >= 3.8 lets one thread at a time set OpenBLAS's (process-wide)
limit: the first to set it, until that thread clears its control; the others'
settings are silently dropped. The shared limit is set and restored by
different threads, so control is given back after each change; while a user's
own ``threadpool_limits`` block holds control, the user's limit stands.
"""
import os
import threading
from contextlib import contextmanager
from functools import lru_cache

from threadpoolctl import OpenBLASController, ThreadpoolController

from ._parallel import effective_n_threads  # noqa: F401  (re-exported)


@lru_cache(maxsize=1)
def _blas_controller():
    # Built once: scanning the loaded libraries costs ~1 ms, a limit ~30 us.
    # scipy's BLAS is loaded by now (the kernels link against it).
    return ThreadpoolController().select(user_api="blas")


def _give_back_blas_control():
    clear = getattr(OpenBLASController, "clear_controlling_thread", None)  # >= 3.8
    if clear is not None:
        clear()  # only if this thread controls


class _SharedBlasLimit:
    """One process-wide "BLAS on one thread" shared by every thread that asks.

    ``acquire`` returns a ticket that ``release`` takes back. A fork gives the
    child a fresh state (see ``_after_fork_in_child``); tickets from before the
    fork are then stale and their release does nothing.
    """

    def __init__(self):
        self._reset()

    def _reset(self):
        self._lock = threading.Lock()
        self._holders = 0
        self._saved = None  # threadpoolctl limiter holding the limits to restore
        self._generation = getattr(self, "_generation", 0) + 1

    def acquire(self, controller):
        with self._lock:
            if self._holders == 0:
                self._saved = controller.limit(limits=1)
                _give_back_blas_control()
            self._holders += 1
            return self._generation

    def release(self, ticket):
        with self._lock:
            if ticket != self._generation:
                return
            self._holders -= 1
            if self._holders == 0:
                self._saved.restore_original_limits()
                self._saved = None
                _give_back_blas_control()

    def _after_fork_in_child(self):
        # The threads that held the limit do not exist in the child, and the
        # lock may have been held at the fork: give the child its limits back
        # and start afresh.
        saved = self._saved
        self._reset()
        if saved is not None:
            saved.restore_original_limits()
            _give_back_blas_control()


_SHARED_LIMIT = _SharedBlasLimit()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_SHARED_LIMIT._after_fork_in_child)


@contextmanager
def single_threaded_blas():
    """Context in which BLAS runs on one thread; safe to enter from many
    threads at once and nested, and leaves the limits as it found them."""
    ticket = _SHARED_LIMIT.acquire(_blas_controller())
    try:
        yield
    finally:
        _SHARED_LIMIT.release(ticket)
