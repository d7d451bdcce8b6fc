"""How many OpenMP threads the kernels may use; also the kernels' constants
for Python: CHUNK_ROWS and the kernel modes (FULL_LOOPS ... DIAG_LOOPS), defined
once in _parallel.pxd."""
import os

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define GAUSSMIX_HAVE_OPENMP 1
    #else
    #define GAUSSMIX_HAVE_OPENMP 0
    static int omp_get_max_threads(void) { return 1; }
    #endif
    """
    int omp_get_max_threads() nogil
    int GAUSSMIX_HAVE_OPENMP


def have_openmp():
    """True when the kernels were compiled with OpenMP."""
    return bool(GAUSSMIX_HAVE_OPENMP)


def effective_n_threads(n_threads=None):
    """Resolve the ``n_threads`` parameter to a positive thread count.

    None means every core this process may run on, capped by the OpenMP limit
    (OMP_NUM_THREADS, threadpoolctl); an explicit count is used as given.
    """
    if n_threads is not None:
        return int(n_threads)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return max(1, min(cores, omp_get_max_threads()))


cdef extern from *:
    """
    #if defined(_OPENMP) && (_OPENMP >= 202011 || (defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11))
    static void gaussmix_display_openmp_env(void) { omp_display_env(0); }
    #else
    static void gaussmix_display_openmp_env(void) { }
    #endif
    """
    void gaussmix_display_openmp_env() nogil


def display_openmp_env():
    """Print the OpenMP runtime's settings to the C stderr (OpenMP >= 5.1
    runtimes; nothing otherwise). For diagnostics and tests."""
    gaussmix_display_openmp_env()
