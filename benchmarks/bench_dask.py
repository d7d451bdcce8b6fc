"""Seconds per EM iteration: local fit vs the same fit on a Dask LocalCluster.

    python benchmarks/bench_dask.py [--sizes 100000 300000 1000000 3000000]

Same data, same initial parameters, tol=0; per-iteration time is
(time of 11 iterations - time of 1) / 10, best of 3, which leaves out
initialisation, persisting and validation. The cluster has 2 worker processes with one thread
each on loopback (this machine has 2 cores), and the local fit uses both
cores with OpenMP, so the ratio shows Dask's per-iteration overhead: task
scheduling and the tree reduction of k + kd + kd^2 + 1 numbers per block.
"""
import argparse
import time
import warnings

import numpy as np


def per_iteration(fit, X, init):
    from gaussmix import GaussianMixture

    times = {}
    for max_iter in (1, 11):
        runs = []
        for _ in range(3):
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit(GaussianMixture(8, tol=0, max_iter=max_iter, **init), X)
            runs.append(time.perf_counter() - start)
        times[max_iter] = min(runs)
    return (times[11] - times[1]) / 10


def main():
    import dask.array as da
    from dask.distributed import Client, LocalCluster

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+",
                        default=[100_000, 300_000, 1_000_000, 3_000_000])
    parser.add_argument("--chunk-rows", type=int, default=250_000)
    args = parser.parse_args()
    d, k = 16, 8
    rng = np.random.default_rng(0)
    centers = rng.normal(scale=5, size=(k, d))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster):
        print(f"d={d}, k={k}, full covariance, float64, chunks of {args.chunk_rows} rows")
        print(f"{'n_samples':>10} {'local s/iter':>13} {'dask s/iter':>12} {'dask/local':>11}")
        for n in args.sizes:
            X = rng.normal(size=(n, d)) + centers[rng.integers(0, k, n)]
            init = dict(means_init=centers + 0.5, weights_init=np.full(k, 1 / k))
            local = per_iteration(lambda gm, X: gm.fit(X), X, init)
            dask_X = da.from_array(X, chunks=(args.chunk_rows, d)).persist()
            remote = per_iteration(lambda gm, X: gm.fit(X), dask_X, init)
            print(f"{n:>10} {local:>13.4f} {remote:>12.4f} {remote / local:>11.2f}", flush=True)


if __name__ == "__main__":
    main()
