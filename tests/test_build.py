"""How gaussmix is built: OpenMP detection (setup.py), the OpenMP build of the
installed kernels, and one process shared with scikit-learn's OpenMP runtime."""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

from gaussmix._parallel import have_openmp

SETUP_PY = pathlib.Path(__file__).resolve().parents[1] / "setup.py"


@pytest.fixture
def setup_module():
    """setup.py as a module (its build runs only as a script)."""
    if not SETUP_PY.is_file():
        pytest.skip("setup.py is not next to tests/ (tests copied out of the checkout)")
    spec = importlib.util.spec_from_file_location("gaussmix_setup", SETUP_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def failing_probe(setup_module, monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(setup_module, "_compiles_with", lambda *flags: False)
    monkeypatch.delenv("GAUSSMIX_NO_OPENMP", raising=False)
    return setup_module


def test_failed_openmp_probe_builds_serial_with_a_warning(failing_probe, monkeypatch):
    monkeypatch.delenv("GAUSSMIX_REQUIRE_OPENMP", raising=False)
    with pytest.warns(UserWarning, match="serial kernels"):
        assert failing_probe.openmp_flags() == ([], [])


def test_failed_openmp_probe_is_a_build_error_when_openmp_is_required(failing_probe, monkeypatch):
    monkeypatch.setenv("GAUSSMIX_REQUIRE_OPENMP", "1")
    with pytest.raises(SystemExit, match="GAUSSMIX_REQUIRE_OPENMP"):
        failing_probe.openmp_flags()


def test_macos_kernels_look_for_scikit_learns_libomp_first(setup_module, monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr(setup_module, "_compiles_with", lambda *flags: True)
    monkeypatch.delenv("GAUSSMIX_NO_OPENMP", raising=False)
    monkeypatch.setenv("LIBOMP_PREFIX", str(tmp_path))
    _, link_args = setup_module.openmp_flags()
    rpaths = [arg.removeprefix("-Wl,-rpath,") for arg in link_args if arg.startswith("-Wl,-rpath,")]
    assert rpaths == ["@loader_path/../sklearn/.dylibs", "@loader_path/../../..", f"{tmp_path}/lib"]


@pytest.mark.skipif(not os.environ.get("GAUSSMIX_REQUIRE_OPENMP"),
                    reason="GAUSSMIX_REQUIRE_OPENMP is not set (serial builds allowed)")
def test_kernels_were_compiled_with_openmp():
    assert have_openmp(), "the kernels were built without OpenMP (serial)"


# Each order of import, then an OpenMP fit by each package: a second LLVM
# OpenMP runtime aborts the process ("OMP: Error #15") when it starts.
SHARED_PROCESS = textwrap.dedent("""
    import json
    import sys
    import numpy as np
    first, second = sys.argv[1:]
    __import__(first); __import__(second)
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_info
    import gaussmix
    X = np.random.default_rng(0).normal(size=(5000, 4))
    KMeans(3, n_init=1, random_state=0).fit(X)
    gaussmix.GaussianMixture(3, n_threads=2, random_state=0).fit(X)
    print(json.dumps([info["filepath"] for info in threadpool_info() if info["user_api"] == "openmp"]))
""")


@pytest.mark.parametrize("first, second", [("sklearn", "gaussmix"), ("gaussmix", "sklearn")])
def test_runs_in_one_process_with_scikit_learn(first, second):
    pytest.importorskip("sklearn")
    env = {k: v for k, v in os.environ.items() if k != "KMP_DUPLICATE_LIB_OK"}
    result = subprocess.run([sys.executable, "-c", SHARED_PROCESS, first, second],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    runtimes = json.loads(result.stdout.strip().splitlines()[-1])
    if sys.platform == "darwin" and have_openmp():
        # scikit-learn's bundled libomp, or gaussmix's own when it has none
        assert len(runtimes) == 1, runtimes
