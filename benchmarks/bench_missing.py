"""Cost of an EM iteration with missing values, relative to complete data.

Both fits start from the same given parameters, so only EM iterations are
timed: (time of ``max_iter=hi`` - time of ``max_iter=lo``) / (hi - lo), for
the complete X and for X with a share of its cells set to NaN completely at
random (``nan_policy="marginalize"``). Prints the ratio per repeat.

    python benchmarks/bench_missing.py                 # 2e5 x 16, k=16 full, 10% missing
    python benchmarks/bench_missing.py --n 20000 --repeats 1
    python benchmarks/bench_missing.py --n-threads 1      # one core: less noise on a busy machine
    python benchmarks/bench_missing.py --memory --repeats 1   # and the peak memory above X
"""
import argparse
import json
import os
import subprocess
import sys
import time
import warnings

import numpy as np

from gaussmix import GaussianMixture


def per_iteration(X, start, args, policy):
    """Seconds per EM iteration from ``start`` (weights, means, precisions)."""
    times = {}
    for iters in (args.lo, args.hi):
        begin = time.perf_counter()
        fit(X, start, args, policy, iters)
        times[iters] = time.perf_counter() - begin
    return (times[args.hi] - times[args.lo]) / (args.hi - args.lo)


def peak_memory_child(args, policy):
    """In a fresh process: MiB of peak RSS above the data and the starting
    parameters during a ``max_iter=args.lo`` fit, after a warm-up fit."""
    X, holes, start = data_and_start(args)
    if policy == "raise":
        del holes
    else:
        X = holes
    fit(X[:2000], start, args, policy, 2)
    baseline = rss_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")                       # resets VmHWM
    fit(X, start, args, policy, args.lo)
    print(json.dumps({"peak_mib": (rss_kib("VmHWM") - baseline) / 1024,
                      "data_mib": X.nbytes / 2**20}))


def rss_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def peak_memory(args, policy):
    """``peak_memory_child`` in a subprocess; glibc returns large freed blocks
    to the system (a fixed mmap threshold), so the peak is the fit's own."""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072")
    out = subprocess.run([sys.executable, __file__, "--memory-child", policy, "--n", str(args.n),
                          "--d", str(args.d), "--k", str(args.k), "--covariance-type",
                          args.covariance_type, "--missing", str(args.missing), "--lo",
                          str(args.lo)], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def fit(X, start, args, policy, iters):
    gm = GaussianMixture(args.k, covariance_type=args.covariance_type, tol=0.0, max_iter=iters,
                         weights_init=start[0], means_init=start[1], precisions_init=start[2],
                         nan_policy=policy, n_threads=args.n_threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm.fit(X)


def data_and_start(args):
    """The complete X, X with holes, and a starting point fitted on X."""
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=3.0, size=(args.k, args.d))
    X = centres[rng.integers(args.k, size=args.n)] + rng.normal(size=(args.n, args.d))
    holes = X.copy()
    holes[rng.random(X.shape) < args.missing] = np.nan
    start_fit = GaussianMixture(args.k, covariance_type=args.covariance_type, max_iter=5,
                                random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start_fit.fit(X)
    return X, holes, (start_fit.weights_, start_fit.means_, start_fit.precisions_)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--d", type=int, default=16)
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--covariance-type", default="full")
    parser.add_argument("--missing", type=float, default=0.1, help="share of cells missing")
    parser.add_argument("--lo", type=int, default=2)
    parser.add_argument("--hi", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n-threads", type=int, default=None,
                        help="threads of both fits (default: every core)")
    parser.add_argument("--memory", action="store_true",
                        help="also the peak memory above X of a fit (Linux, subprocesses)")
    parser.add_argument("--memory-child", choices=["raise", "marginalize"],
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        return peak_memory_child(args, args.memory_child)
    X, holes, start = data_and_start(args)
    complete_rows = (~np.isnan(holes).any(axis=1)).mean()
    print(f"{args.n} x {args.d}, k={args.k} {args.covariance_type}, "
          f"{args.missing:.0%} of cells missing ({complete_rows:.1%} complete rows)")
    for repeat in range(args.repeats):
        complete = per_iteration(X, start, args, "raise")
        missing = per_iteration(holes, start, args, "marginalize")
        print(f"  repeat {repeat}: complete {complete:.4f} s/iter, missing {missing:.4f} "
              f"s/iter, ratio {missing / complete:.2f}x")
    if args.memory:
        for policy, name in (("raise", "complete"), ("marginalize", "missing")):
            result = peak_memory(args, policy)
            print(f"  peak memory above X ({result['data_mib']:.1f} MiB), {name}: "
                  f"{result['peak_mib']:.1f} MiB")


if __name__ == "__main__":
    main()
