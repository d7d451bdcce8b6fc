"""Seconds per EM iteration of two gaussmix builds, interleaved in one process.

Timing two builds in two runs on a shared machine compares two loads as much as
two builds; here the repeats alternate between them, so drift hits both alike.
The other build (a worktree's or checkout's ``src`` with its compiled
extensions) is copied to a temporary directory as package ``gaussmix_other``.

Usage:
    python benchmarks/bench_ab.py --other /work/main/src --cases 6,7,8,9
    python benchmarks/bench_ab.py --other ../old/src --cases full --dtypes float32 --repeats 5

The protocol is bench_em.py's: same data, initial parameters and
(t[1 + iters] - t[1]) / iters, best of repeats; ``--reg-covar`` as there.
"""
import argparse
import atexit
import gc
import os
import shutil
import sys
import tempfile
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_em  # noqa: E402

OTHER = "gaussmix_other"


def import_other(src):
    """The gaussmix package under ``src``, imported as gaussmix_other."""
    target = tempfile.mkdtemp(prefix="bench_ab_")
    atexit.register(shutil.rmtree, target, ignore_errors=True)
    shutil.copytree(os.path.join(src, "gaussmix"), os.path.join(target, OTHER))
    kernels = os.path.join(target, OTHER, "_kernels.py")
    with open(kernels) as f:   # its one absolute import: the compiled kernels
        text = f.read().replace('f"gaussmix.', f'f"{OTHER}.')
    with open(kernels, "w") as f:
        f.write(text)
    sys.path.insert(0, target)
    return __import__(OTHER)


def per_iteration(runners, X, case, init, iters, repeats):
    best = {name: [np.inf, np.inf] for name in runners}
    for _ in range(repeats):
        for name, runner in runners.items():
            for j, max_iter in enumerate((1, 1 + iters)):
                gc.collect()
                t0 = time.perf_counter()
                runner.fit(X, case, init, max_iter)
                best[name][j] = min(best[name][j], time.perf_counter() - t0)
    return {name: (t[1] - t[0]) / iters for name, t in best.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--other", required=True, help="src directory of the other build")
    parser.add_argument("--cases", default="", help="as bench_em.py --cases")
    parser.add_argument("--dtypes", default="float64,float32")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--iters", type=int, default=8)
    parser.add_argument("--reg-covar", type=float, default=1e-3)
    args = parser.parse_args()
    import gaussmix
    other = import_other(os.path.abspath(args.other))
    runners = {"other": bench_em.SklearnLike("other", other.GaussianMixture, args.reg_covar),
               "this": bench_em.SklearnLike("this", gaussmix.GaussianMixture, args.reg_covar)}
    print(f"this: {os.path.dirname(gaussmix.__file__)}; other: {args.other}")
    print(f"{'case':36s} {'dtype':8s} {'other':>8s} {'this':>8s} other/this")
    for case in bench_em.select_cases(args.cases):
        for dt in args.dtypes.split(","):
            X = bench_em.make_data(case.n, case.d, case.k, bench_em.DTYPES[dt], shape=case.data)
            init = bench_em.make_init(X, case.k, case.cov)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t = per_iteration(runners, X, case, init, args.iters, args.repeats)
            print(f"{bench_em.case_name(case):36s} {dt:8s} {t['other']:8.4f} {t['this']:8.4f} "
                  f"{t['other'] / t['this']:.2f}", flush=True)


if __name__ == "__main__":
    main()
