"""Memory and scale targets of issue 3, each case in a fresh subprocess (Linux).

    python benchmarks/bench_scale.py            # all cases below
    python benchmarks/bench_scale.py --case scale

Cases
-----
memory   fit (5e6, 8) float64, k=16, 3 iterations: peak RSS above X; then
         predict_proba: peak above X and its own output.
sklearn  the same fit with scikit-learn (1 iteration), for comparison.
scale    fit (5e7, 8) float32, k=16, 10 iterations (tol=0): init and
         per-iteration time, peak RSS above X.
sklearn-extrapolate  scikit-learn's peak above X at 5e6 float32 rows, k=16:
         its memory grows linearly in n (n x k temporaries), so x10 estimates
         the scale case.
"""
import argparse
import json
import subprocess
import sys
import time

import numpy as np

CASES = ("memory", "sklearn", "scale", "sklearn-extrapolate")


def _status_mib(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(field)


def _reset_peak():
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")


def _data(n, d, k, dtype, seed=0):
    """k well-separated blobs, generated block by block (no float64 temporary of X)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=6.0, size=(k, d))
    X = np.empty((n, d), dtype=dtype)
    for start in range(0, n, 1_000_000):
        stop = min(start + 1_000_000, n)
        X[start:stop] = rng.normal(size=(stop - start, d)) + centers[
            rng.integers(0, k, stop - start)]
    return X


def run_case(case):
    from gaussmix import GaussianMixture

    d, k = 8, 16
    n, dtype, library = {"memory": (5_000_000, np.float64, "gaussmix"),
                         "sklearn": (5_000_000, np.float64, "sklearn"),
                         "scale": (50_000_000, np.float32, "gaussmix"),
                         "sklearn-extrapolate": (5_000_000, np.float32, "sklearn")}[case]
    X = _data(n, d, k, dtype)
    if library == "sklearn":
        from sklearn.mixture import GaussianMixture as Estimator
    else:
        Estimator = GaussianMixture
    Estimator(k, max_iter=1, random_state=0).fit(X[:20_000])  # warm thread pools, imports
    result = {"case": case, "n": n, "d": d, "k": k, "dtype": np.dtype(dtype).name,
              "X_MiB": X.nbytes / 2**20}
    base = _status_mib("VmRSS")
    _reset_peak()
    if case == "scale":
        start = time.perf_counter()
        Estimator(k, max_iter=0, random_state=0).fit(X)  # initialisation only
        init_seconds = time.perf_counter() - start
        start = time.perf_counter()
        gm = Estimator(k, max_iter=10, tol=0, random_state=0).fit(X)
        result.update(init_seconds=init_seconds, fit_seconds=time.perf_counter() - start,
                      lower_bound=float(gm.lower_bound_))
    else:
        iterations = 1 if library == "sklearn" else 3
        start = time.perf_counter()
        gm = Estimator(k, max_iter=iterations, tol=0, random_state=0).fit(X)
        result["fit_seconds"] = time.perf_counter() - start
    result["fit_peak_above_X_MiB"] = _status_mib("VmHWM") - base
    if case == "memory":
        before = _status_mib("VmRSS")
        _reset_peak()
        proba = gm.predict_proba(X)
        result["predict_proba_output_MiB"] = proba.nbytes / 2**20
        result["predict_proba_peak_above_output_MiB"] = (_status_mib("VmHWM") - before
                                                         - proba.nbytes / 2**20)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=CASES, action="append")
    parser.add_argument("--child", choices=CASES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_case(args.child)))
        return
    for case in args.case or CASES:
        out = subprocess.run([sys.executable, "-W", "ignore", __file__, "--child", case],
                             capture_output=True, text=True)
        if out.returncode != 0:
            print(f"{case}: failed (exit {out.returncode}) {out.stderr.strip()[-300:]}")
            continue
        result = json.loads(out.stdout)
        print(", ".join(f"{key}={value:.3f}" if isinstance(value, float) else
                        f"{key}={value}" for key, value in result.items()), flush=True)


if __name__ == "__main__":
    main()
