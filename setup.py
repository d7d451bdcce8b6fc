"""Build the compiled kernels; all package metadata lives in pyproject.toml.

The build dependencies (Cython, numpy, setuptools) are imported in main(), so
the OpenMP detection below can be imported and tested without them
(tests/test_build.py; tools/repair_macos_wheel.py reads MACOS_LIBOMP_RPATHS).
"""

import glob
import hashlib
import multiprocessing
import os
import platform
import subprocess
import sys
import sysconfig
import tempfile
import warnings

# Extensions are compiled in parallel, one job per core, unless -j/--parallel
# says otherwise.
JOBS = os.cpu_count() or 1

# macOS: the kernels load libomp as @rpath/libomp.dylib and dyld takes the
# first directory of this list that has one, so that gaussmix shares the
# OpenMP runtime of a scikit-learn installed next to it (its wheels bundle
# libomp in sklearn/.dylibs) and, in a conda environment, the environment's
# libomp (<prefix>/lib). Two LLVM OpenMP runtimes in one process abort with
# "OMP: Error #15". The directory of libomp at build time comes last (source
# builds); wheels get gaussmix/.dylibs there instead (tools/repair_macos_wheel.py).
MACOS_LIBOMP_RPATHS = ("@loader_path/../sklearn/.dylibs", "@loader_path/../../..")


def openmp_flags():
    """Return (compile_args, link_args) enabling OpenMP.

    Without a working OpenMP the kernels are built serial, with a warning; with
    GAUSSMIX_REQUIRE_OPENMP=1 (the wheel builds set it) that is an error instead.
    """
    if os.environ.get("GAUSSMIX_NO_OPENMP"):
        return _without_openmp("GAUSSMIX_NO_OPENMP is set")
    if sys.platform == "win32":
        return ["/openmp"], []
    if sys.platform == "darwin":
        prefix = os.environ.get("LIBOMP_PREFIX") or next(
            (p for p in ("/opt/homebrew/opt/libomp", "/usr/local/opt/libomp") if os.path.isdir(p)),
            None,
        )
        if prefix is None:
            return _without_openmp("no libomp found (brew install libomp, or set LIBOMP_PREFIX)")
        rpaths = [*MACOS_LIBOMP_RPATHS, f"{prefix}/lib"]
        candidate = (
            ["-Xpreprocessor", "-fopenmp", f"-I{prefix}/include"],
            # header room for tools/repair_macos_wheel.py to rewrite the rpaths
            [f"-L{prefix}/lib", "-lomp", "-Wl,-headerpad_max_install_names"]
            + [f"-Wl,-rpath,{path}" for path in rpaths],
        )
    else:
        candidate = (["-fopenmp"], ["-fopenmp"])
    if not _compiles_with(*candidate):
        return _without_openmp(f"the compiler cannot build an OpenMP program with {candidate}")
    return candidate


def _without_openmp(reason):
    """No OpenMP flags, or SystemExit when GAUSSMIX_REQUIRE_OPENMP is set."""
    if os.environ.get("GAUSSMIX_REQUIRE_OPENMP"):
        raise SystemExit(f"gaussmix: GAUSSMIX_REQUIRE_OPENMP is set but OpenMP is unavailable: {reason}")
    warnings.warn(f"gaussmix: building serial kernels (no OpenMP): {reason}", stacklevel=2)
    return [], []


def _compiles_with(compile_args, link_args):
    """Try to compile and link a tiny OpenMP program."""
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "t.c")
        with open(src, "w") as f:
            f.write("#include <omp.h>\nint main(void){return omp_get_max_threads() < 1;}\n")
        cmd = cc.split() + [src, "-o", os.path.join(tmp, "t")] + compile_args + link_args
        return subprocess.run(cmd, capture_output=True).returncode == 0


def _load_libomp_through_rpath(extension_path):
    """Make a macOS extension load libomp as @rpath/libomp.dylib.

    Homebrew's libomp names itself by its absolute path, which the linker
    copies into the extension; dyld would then never look in MACOS_LIBOMP_RPATHS.
    """
    linked = subprocess.run(["otool", "-L", extension_path], capture_output=True,
                            text=True, check=True).stdout.split()
    libomp = next((name for name in linked if name.endswith("/libomp.dylib")), None)
    if libomp is None or libomp == "@rpath/libomp.dylib":
        return
    subprocess.run(["install_name_tool", "-change", libomp, "@rpath/libomp.dylib",
                    extension_path], check=True)
    # install_name_tool invalidates the linker's ad-hoc signature (arm64 needs one)
    subprocess.run(["codesign", "--force", "--sign", "-", extension_path], check=True)


def main():
    import numpy as np
    from Cython.Build import cythonize
    from setuptools import Extension, setup
    from setuptools.command.build_ext import build_ext

    omp_compile, omp_link = openmp_flags()

    class ParallelBuildExt(build_ext):
        def finalize_options(self):
            super().finalize_options()
            if not self.parallel:
                self.parallel = JOBS
            if rebuild:  # the last build's inputs or flags differ: nothing is reused
                self.force = True

        def run(self):
            super().run()
            os.makedirs("build", exist_ok=True)
            with open(STAMP_PATH, "w") as f:
                f.write(stamp)

        def build_extension(self, ext):
            super().build_extension(ext)
            if sys.platform == "darwin" and omp_link:
                _load_libomp_through_rpath(self.get_ext_fullpath(ext.name))

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
        for name in ["_estep", "_suffstats", "_kmeans_kernels", "_parallel", "_parsimonious_steps",
                     "_hierarchical_kernels"]
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
    # Separate C output per mode, so switching GAUSSMIX_DEBUG regenerates it.
    c_dir = "build/cython-debug" if debug else "build/cython"
    stamp = _build_inputs_digest(debug, extensions)
    rebuild = _last_build_digest() != stamp
    if not rebuild and all(os.path.exists(_c_path(c_dir, ext)) for ext in extensions):
        ext_modules = _from_translated_c(c_dir, extensions)
    else:
        # Cython translates in parallel where worker processes fork (spawned
        # workers would re-run this script).
        cython_jobs = JOBS if multiprocessing.get_start_method() == "fork" else 0
        ext_modules = cythonize(
            extensions,
            nthreads=cython_jobs,
            force=rebuild,
            build_dir=c_dir,
            compiler_directives={
                "language_level": 3,
                "boundscheck": debug,
                "wraparound": False,
                "initializedcheck": debug,
                "cdivision": True,
            },
        )
    setup(cmdclass={"build_ext": ParallelBuildExt}, ext_modules=ext_modules)


# pip builds a clone in place, each time in a fresh isolated environment whose
# numpy/scipy .pxd files are newer than the C that Cython wrote last time, so
# Cython would translate everything again and every module be recompiled
# (`pip install .` then `pip install ".[test]"`: two full builds). Instead a
# digest of everything a build depends on (gaussmix's .pyx/.pxd, the Cython,
# numpy and scipy versions, the build mode and every compile and link flag)
# is kept with the build: while it is unchanged the C is reused and build_ext
# skips the modules it compiled; any change rebuilds everything.
STAMP_PATH = os.path.join("build", "gaussmix-build.sha256")


def _build_inputs_digest(debug, extensions):
    """Digest of what the built modules depend on."""
    import Cython
    import numpy
    import scipy

    flags = [(ext.name, ext.extra_compile_args, ext.extra_link_args, ext.define_macros)
             for ext in extensions]
    digest = hashlib.sha256(repr((Cython.__version__, numpy.__version__, scipy.__version__,
                                  debug, sys.version, platform.machine(), flags)).encode())
    for path in sorted(glob.glob("src/gaussmix/*.pyx") + glob.glob("src/gaussmix/*.pxd")
                       + glob.glob("src/gaussmix/*.pxi")):
        with open(path, "rb") as f:
            digest.update(path.encode() + b"\0" + f.read())
    return digest.hexdigest()


def _last_build_digest():
    try:
        with open(STAMP_PATH) as f:
            return f.read()
    except OSError:
        return None


def _c_path(c_dir, ext):
    return os.path.join(c_dir, os.path.splitext(ext.sources[0])[0] + ".c")


def _from_translated_c(c_dir, extensions):
    """``extensions`` compiled from their C in ``c_dir``."""
    for ext in extensions:
        ext.sources = [_c_path(c_dir, ext)]
    return extensions


if __name__ == "__main__":
    main()
