"""valgrind memcheck over a small workload: no invalid access in gaussmix's kernels."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

WORKLOAD = Path(__file__).with_name("memcheck_workload.py")
OUR_MODULES = re.compile(r"_suffstats|_estep|_kmeans|_parallel")
PROBLEMS = re.compile(r"Invalid (read|write)|uninitialised|Conditional jump|Invalid free")


@pytest.mark.skipif(shutil.which("valgrind") is None or not sys.platform.startswith("linux"),
                    reason="needs valgrind (apt install valgrind)")
@pytest.mark.slow
def test_kernels_are_memcheck_clean(tmp_path):
    log = tmp_path / "memcheck.log"
    env = dict(os.environ, PYTHONMALLOC="malloc", OMP_NUM_THREADS="2")
    result = subprocess.run(
        ["valgrind", "--tool=memcheck", "--error-limit=no", "--num-callers=40",
         f"--log-file={log}", sys.executable, "-W", "ignore", str(WORKLOAD)],
        capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]
    records = re.split(r"==\d+== \n", log.read_text())
    ours = [r for r in records if PROBLEMS.search(r) and OUR_MODULES.search(r)]
    assert ours == [], "\n\n".join(ours[:3])
