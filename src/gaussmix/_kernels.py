"""The compiled kernels this CPU runs: the AVX2+FMA build when the CPU has it
(and it was built), else the baseline build. GAUSSMIX_DISABLE_AVX2=1 forces
the baseline, e.g. to compare the two."""
import importlib
import os


def _cpu_has_avx2_fma():
    try:  # numpy's own CPU feature detection (runtime, not build time)
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:
        try:
            from numpy.core._multiarray_umath import __cpu_features__
        except ImportError:
            return False
    return bool(__cpu_features__.get("AVX2") and __cpu_features__.get("FMA3"))


def _load(name):
    if _cpu_has_avx2_fma() and not os.environ.get("GAUSSMIX_DISABLE_AVX2"):
        try:
            return importlib.import_module(f"gaussmix.{name}_avx2")
        except ImportError:
            pass
    return importlib.import_module(f"gaussmix.{name}")


suffstats = _load("_suffstats")
estep = _load("_estep")
kmeans = _load("_kmeans_kernels")
