"""Repair a macOS wheel so that gaussmix shares scikit-learn's OpenMP runtime.

Usage (cibuildwheel's repair-wheel-command on macOS, see pyproject.toml):

    python tools/repair_macos_wheel.py WHEEL DEST_DIR ARCHS

1. delocate-wheel bundles libomp.dylib into gaussmix/.dylibs, as for any wheel;
2. every compiled module then loads it as @rpath/libomp.dylib again, searched
   in setup.py's MACOS_LIBOMP_RPATHS (scikit-learn's bundled copy, a conda
   environment's) before the wheel's own gaussmix/.dylibs: dyld loads the first
   it finds, so one runtime serves both packages (two LLVM OpenMP runtimes in
   one process abort with "OMP: Error #15");
3. checks that the bundled libomp exports every OpenMP entry point the modules
   import (scikit-learn bundles the same libomp 11.1.0; a newer compiler could
   emit entry points it lacks).

Runs on macOS only (otool, install_name_tool, nm, codesign) with delocate
installed, as in cibuildwheel's build environment.
"""

import importlib.util
import pathlib
import subprocess
import sys

from delocate.wheeltools import InWheel

ROOT = pathlib.Path(__file__).resolve().parents[1]
BUNDLED = "@loader_path/.dylibs"


def macos_libomp_rpaths():
    """setup.py's MACOS_LIBOMP_RPATHS, followed by the wheel's own copy."""
    spec = importlib.util.spec_from_file_location("gaussmix_setup", ROOT / "setup.py")
    setup = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(setup)
    return [*setup.MACOS_LIBOMP_RPATHS, BUNDLED]


def run(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


def rpaths(binary):
    lines = run("otool", "-l", binary).splitlines()
    return [lines[i + 2].split()[1] for i, line in enumerate(lines)
            if line.strip() == "cmd LC_RPATH"]


def openmp_symbols(nm_output):
    names = (line.split()[-1] for line in nm_output.splitlines() if line.strip())
    return {name for name in names if name.startswith(("___kmpc", "___kmp_", "_omp_"))}


def share_libomp(module, search_path, exported):
    """Point one compiled module at @rpath/libomp.dylib with `search_path`."""
    libomp = next((name for name in run("otool", "-L", module).split()
                   if name.endswith("/libomp.dylib")), None)
    if libomp is None:
        sys.exit(f"{module} does not link libomp: its kernels were built serial")
    missing = openmp_symbols(run("nm", "-u", module)) - exported
    if missing:
        sys.exit(f"{module} needs OpenMP entry points the bundled libomp lacks: {sorted(missing)}")
    for path in rpaths(module):
        run("install_name_tool", "-delete_rpath", path, module)
    add = [arg for path in search_path for arg in ("-add_rpath", path)]
    run("install_name_tool", "-change", libomp, "@rpath/libomp.dylib", *add, module)
    run("codesign", "--force", "--sign", "-", module)
    print(f"{module}: @rpath/libomp.dylib, rpaths {rpaths(module)}")


def main(wheel, dest_dir, archs):
    dest = pathlib.Path(dest_dir)
    before = set(dest.glob("*.whl"))
    subprocess.run(["delocate-wheel", "--require-archs", archs, "-w", str(dest), "-v", wheel],
                   check=True)
    (repaired,) = set(dest.glob("*.whl")) - before
    search_path = macos_libomp_rpaths()
    with InWheel(str(repaired), str(repaired)):
        bundled = pathlib.Path("gaussmix/.dylibs/libomp.dylib")
        if not bundled.is_file():
            sys.exit("delocate did not bundle libomp.dylib into gaussmix/.dylibs")
        exported = openmp_symbols(run("nm", "-gU", str(bundled)))
        for module in sorted(pathlib.Path("gaussmix").glob("*.so")):
            share_libomp(str(module), search_path, exported)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
