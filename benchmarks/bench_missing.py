"""Cost of an EM iteration with missing values, relative to complete data.

Both fits start from the same given parameters, so only EM iterations are
timed: (time of ``max_iter=hi`` - time of ``max_iter=lo``) / (hi - lo), for
the complete X and for X with a share of its cells set to NaN completely at
random (``nan_policy="marginalize"``). Prints the ratio per repeat.

    python benchmarks/bench_missing.py                 # 2e5 x 16, k=16 full, 10% missing
    python benchmarks/bench_missing.py --n 20000 --repeats 1
    python benchmarks/bench_missing.py --n-threads 1      # one core: less noise on a busy machine
"""
import argparse
import time
import warnings

import numpy as np

from gaussmix import GaussianMixture


def per_iteration(X, start, args, policy):
    """Seconds per EM iteration from ``start`` (weights, means, precisions)."""
    times = {}
    for iters in (args.lo, args.hi):
        gm = GaussianMixture(args.k, covariance_type=args.covariance_type, tol=0.0,
                             max_iter=iters, weights_init=start[0], means_init=start[1],
                             precisions_init=start[2], nan_policy=policy,
                             n_threads=args.n_threads)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            begin = time.perf_counter()
            gm.fit(X)
            times[iters] = time.perf_counter() - begin
    return (times[args.hi] - times[args.lo]) / (args.hi - args.lo)


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
    args = parser.parse_args()
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
    start = (start_fit.weights_, start_fit.means_, start_fit.precisions_)
    complete_rows = (~np.isnan(holes).any(axis=1)).mean()
    print(f"{args.n} x {args.d}, k={args.k} {args.covariance_type}, "
          f"{args.missing:.0%} of cells missing ({complete_rows:.1%} complete rows)")
    for repeat in range(args.repeats):
        complete = per_iteration(X, start, args, "raise")
        missing = per_iteration(holes, start, args, "marginalize")
        print(f"  repeat {repeat}: complete {complete:.4f} s/iter, missing {missing:.4f} "
              f"s/iter, ratio {missing / complete:.2f}x")


if __name__ == "__main__":
    main()
