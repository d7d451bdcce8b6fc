"""Thread counts for the compiled kernels, and BLAS held to one thread.

Each kernel call runs on ``team_size`` threads: as many as its work pays for,
up to the caller's budget (``n_threads``, default every core). A team costs
tens of microseconds to wake and join, so small calls run on the calling
thread, outside any OpenMP region.

After ``fork`` the child gets the parent's OpenMP runtime without its worker
threads; GNU libgomp then waits forever for them at the child's first
parallel region. Whether the parent ever started a team is unknowable here
(another library sharing the runtime may have), so a forked child runs every
kernel on its calling thread: the same computation, serial. Forked workers
are a pool that already spreads over the cores.

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

# Settings by which a user chooses how idle OpenMP threads wait (GNU, LLVM).
_WAIT_SETTINGS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME", "KMP_LIBRARY")


@contextmanager
def _passive_wait_while_loading():
    """OMP_WAIT_POLICY=PASSIVE while the OpenMP runtime loads, unless the user
    chose a wait setting; the environment is restored on exit.

    Idle OpenMP threads otherwise spin for up to milliseconds after every
    parallel region (GNU: 300 000 pauses), taking a core from the caller's
    own Python work between kernel calls and from other processes on a busy
    machine. A runtime reads its settings once, as it starts (GNU's when the
    library loads, LLVM's at its first call), so this sets them then. A runtime
    already loaded by another library keeps its own settings.
    """
    if any(name in os.environ for name in _WAIT_SETTINGS):
        yield
        return
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    try:
        yield
    finally:
        os.environ.pop("OMP_WAIT_POLICY", None)


with _passive_wait_while_loading():
    from ._parallel import CHUNK_ROWS, effective_n_threads
    effective_n_threads()  # starts LLVM's runtime, which reads its settings now

# Floating-point operations a thread must get for a team to pay for waking and
# joining it (about 100 us of these kernels on one core); calibrated with
# benchmarks/bench_latency.py and bench_em.py.
MIN_FLOPS_PER_THREAD = 1_000_000


class _ForkState:
    """Whether this process is a forked child, whose kernels run serially."""
    serial = False


def _serial_in_child():
    _ForkState.serial = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_serial_in_child)


def team_size(n_threads, n_rows, flops_per_row):
    """Threads for one kernel call over ``n_rows`` rows.

    Parameters
    ----------
    n_threads : int or None
        The caller's budget (None: every core, see ``effective_n_threads``).
    n_rows : int
    flops_per_row : float
        The kernel's floating-point operations per row (an estimate).

    Returns
    -------
    int
        At least 1; at most the budget, one per chunk of rows, and one per
        ``MIN_FLOPS_PER_THREAD`` of work; 1 in a forked child.
    """
    if _ForkState.serial:
        return 1
    by_work = int(n_rows * flops_per_row // MIN_FLOPS_PER_THREAD)
    by_chunks = -(-int(n_rows) // CHUNK_ROWS)
    return max(1, min(effective_n_threads(n_threads), by_work, by_chunks))


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
def kernel_team(n_threads, n_rows, flops_per_row):
    """Context for one kernel call: yields its ``team_size`` and holds BLAS to
    one thread (``single_threaded_blas``) unless the work is below one
    thread's worth, which BLAS would not spread over threads either (so a
    small call skips the limit's cost)."""
    threads = team_size(n_threads, n_rows, flops_per_row)
    if n_rows * flops_per_row < MIN_FLOPS_PER_THREAD:
        yield threads
        return
    with single_threaded_blas():
        yield threads


@contextmanager
def single_threaded_blas():
    """Context in which BLAS runs on one thread; safe to enter from many
    threads at once and nested, and leaves the limits as it found them."""
    ticket = _SHARED_LIMIT.acquire(_blas_controller())
    try:
        yield
    finally:
        _SHARED_LIMIT.release(ticket)
