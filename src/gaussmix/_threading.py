"""Thread counts for the compiled kernels."""
from contextlib import nullcontext

from ._parallel import effective_n_threads, have_openmp  # noqa: F401


def single_threaded_blas(n_threads):
    """Hold BLAS to one thread while ``n_threads`` OpenMP threads call it.

    Uses threadpoolctl when it is installed; without it BLAS keeps its own
    setting (correct, possibly oversubscribed).
    """
    if n_threads <= 1:
        return nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return nullcontext()
    return threadpool_limits(limits=1, user_api="blas")
