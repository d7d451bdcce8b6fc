"""Thread counts for the compiled kernels, and BLAS held to one thread.

The kernels call BLAS on one chunk of rows at a time from inside their own
OpenMP threads; a multi-threaded BLAS would start its thread pool on every
such small call (measured: most of the run waiting on BLAS workers). BLAS is
therefore held to one thread around every kernel call, with threadpoolctl
when it is installed (scikit-learn brings it); gaussmix does not require it.
"""
from contextlib import nullcontext
from functools import lru_cache

from ._parallel import effective_n_threads  # noqa: F401  (re-exported)


@lru_cache(maxsize=1)
def _blas_controller():
    # Built once: scanning the loaded libraries costs ~1 ms, a limit ~30 us.
    # scipy's BLAS is loaded by now (the kernels link against it).
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    return ThreadpoolController().select(user_api="blas")


def single_threaded_blas():
    """Context in which BLAS runs on the calling thread only."""
    controller = _blas_controller()
    return nullcontext() if controller is None else controller.limit(limits=1)
