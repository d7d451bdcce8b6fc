"""What holding BLAS to one thread buys: seconds per EM iteration with BLAS held
to one thread inside the OpenMP kernels (what gaussmix does, through
threadpoolctl) against BLAS left at its default thread count, in one process.

    python benchmarks/bench_blas_threads.py

Per-iteration time is (t[max_iter=6] - t[max_iter=1]) / 5, best of 3, tol=0.
"""
import time
import warnings

import numpy as np
from threadpoolctl import ThreadpoolController

import gaussmix
from gaussmix import _threading

CASES = [(1_000_000, 2, 3, "full"), (200_000, 16, 16, "full"),
         (100_000, 64, 32, "full"), (100_000, 64, 32, "diag")]


def seconds_per_iteration(X, k, covariance_type):
    def best_fit_time(max_iter):
        gm = gaussmix.GaussianMixture(k, covariance_type=covariance_type, max_iter=max_iter,
                                      tol=0, init_params="random_from_data", reg_covar=1e-6,
                                      random_state=0)
        gm.fit(X)                            # warm-up: thread pools, page faults
        times = []
        for _ in range(3):
            start = time.perf_counter()
            gm.fit(X)
            times.append(time.perf_counter() - start)
        return min(times)
    return (best_fit_time(6) - best_fit_time(1)) / 5


def no_library():
    """A controller of no library: limiting it leaves BLAS at its default."""
    return ThreadpoolController().select(user_api=[])


def main():
    warnings.simplefilter("ignore")           # ConvergenceWarning of the short fits
    rng = np.random.default_rng(0)
    held = _threading._blas_controller
    print(f"{'case':22s} {'held (s/iter)':>14s} {'free (s/iter)':>14s} {'free / held':>12s}")
    for n, d, k, covariance_type in CASES:
        means = rng.normal(0, 3, (k, d))
        X = means[rng.integers(k, size=n)] + rng.normal(size=(n, d))
        result = {}
        for name, controller in (("held", held), ("free", no_library)):
            _threading._blas_controller = controller
            try:
                result[name] = seconds_per_iteration(X, k, covariance_type)
            finally:
                _threading._blas_controller = held
        print(f"{n}x{d}x{k} {covariance_type:5s}".ljust(22),
              f"{result['held']:14.4f} {result['free']:14.4f} {result['free'] / result['held']:12.2f}",
              flush=True)


if __name__ == "__main__":
    main()
