"""Build the compiled kernels; all package metadata lives in pyproject.toml."""

import multiprocessing
import os
import platform
import sys
import tempfile
import subprocess
import sysconfig

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# Extensions are compiled in parallel, one job per core, unless -j/--parallel
# says otherwise; Cython translates them in parallel where worker processes
# fork (spawned workers would re-run this script).
JOBS = os.cpu_count() or 1
CYTHON_JOBS = JOBS if multiprocessing.get_start_method() == "fork" else 0


class ParallelBuildExt(build_ext):
    def finalize_options(self):
        super().finalize_options()
        if not self.parallel:
            self.parallel = JOBS


def openmp_flags():
    """Return (compile_args, link_args) enabling OpenMP, or empty lists when the
    compiler has no OpenMP (the kernels then run serially)."""
    if os.environ.get("GAUSSMIX_NO_OPENMP"):
        return [], []
    if sys.platform == "win32":
        return ["/openmp"], []
    if sys.platform == "darwin":
        prefix = os.environ.get("LIBOMP_PREFIX") or next(
            (p for p in ("/opt/homebrew/opt/libomp", "/usr/local/opt/libomp") if os.path.isdir(p)),
            None,
        )
        if prefix is None:
            return [], []
        return (
            ["-Xpreprocessor", "-fopenmp", f"-I{prefix}/include"],
            [f"-L{prefix}/lib", "-lomp", f"-Wl,-rpath,{prefix}/lib"],
        )
    candidate = (["-fopenmp"], ["-fopenmp"])
    return candidate if _compiles_with(*candidate) else ([], [])


def _compiles_with(compile_args, link_args):
    """Try to compile and link a tiny OpenMP program."""
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "t.c")
        with open(src, "w") as f:
            f.write("#include <omp.h>\nint main(void){return omp_get_max_threads() < 1;}\n")
        cmd = cc.split() + [src, "-o", os.path.join(tmp, "t")] + compile_args + link_args
        return subprocess.run(cmd, capture_output=True).returncode == 0


omp_compile, omp_link = openmp_flags()
if sys.platform == "win32":
    opt = ["/O2"]
else:
    # No errno and no FP traps: lets GCC/Clang if-convert and vectorise the
    # kernels' select-heavy loops (exp, row maxima). Results are unchanged.
    opt = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-Wno-unreachable-code"]
    # Python's CFLAGS carry -g: 11.8 MB of .so instead of 2.4. Debug builds keep it.
    if not os.environ.get("GAUSSMIX_DEBUG"):
        opt.append("-g0")


ext_args = dict(
    include_dirs=[np.get_include()],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")],
    extra_link_args=omp_link,
)
extensions = [
    Extension(f"gaussmix.{name}", [f"src/gaussmix/{name}.pyx"],
              extra_compile_args=opt + omp_compile, **ext_args)
    for name in ["_estep", "_suffstats", "_kmeans_kernels", "_parallel"]
]

# The hot kernels are compiled a second time for AVX2+FMA (x86-64 only); the
# package picks that build at import when the CPU has both (gaussmix/_kernels.py),
# so wheels stay portable while most machines get 256-bit vector loops.
if platform.machine().lower() in ("x86_64", "amd64") and not os.environ.get("GAUSSMIX_NO_AVX2"):
    avx2 = ["/arch:AVX2"] if sys.platform == "win32" else ["-mavx2", "-mfma"]
    extensions += [
        Extension(f"gaussmix.{name}_avx2", [f"src/gaussmix/{name}_avx2.pyx"],
                  extra_compile_args=opt + avx2 + omp_compile, **ext_args)
        for name in ["_estep", "_suffstats", "_kmeans_kernels"]
    ]

debug = bool(os.environ.get("GAUSSMIX_DEBUG"))
setup(
    cmdclass={"build_ext": ParallelBuildExt},
    ext_modules=cythonize(
        extensions,
        nthreads=CYTHON_JOBS,
        # Separate C output per mode, so switching GAUSSMIX_DEBUG regenerates it.
        build_dir="build/cython-debug" if debug else "build/cython",
        compiler_directives={
            "language_level": 3,
            "boundscheck": debug,
            "wraparound": False,
            "initializedcheck": debug,
            "cdivision": True,
        },
    )
)
