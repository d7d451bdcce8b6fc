"""Latency of small predict calls: gaussmix against scikit-learn, side by side.

A service scores a request of one or a few rows against a preloaded model, so
what matters there is the fixed cost of a call, not the throughput of a pass.
For every model shape and batch size this times ``predict``,
``predict_proba`` and ``score_samples`` of both libraries fitted to the same
data, interleaved in one process run, and prints the median time per call and
the ratio gaussmix / sklearn (below 1: gaussmix is faster).

Two threading settings:

* ``serial``: gaussmix with ``n_threads=1``, scikit-learn under
  ``threadpool_limits(1)``;
* ``default``: both as a user gets them, with no setting.

With ``--busy N``, N other processes spin on the CPU throughout, as on a
shared machine (another job running).

Usage:
    python benchmarks/bench_latency.py
    python benchmarks/bench_latency.py --rows 1,10 --repeats 2000
    python benchmarks/bench_latency.py --busy 2
"""
import argparse
import statistics
import subprocess
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

# (n_components, n_features, covariance_type): a 2-d demo model, a typical
# tabular model and a wide one.
MODELS = [(2, 2, "full"), (4, 10, "full"), (8, 32, "full"), (4, 10, "diag")]
METHODS = ("predict", "predict_proba", "score_samples")


def anisotropic_data(k, d, n=5000, seed=0):
    """Well separated, correlated, anisotropic clusters (real-table shaped)."""
    rng = np.random.default_rng(seed)
    parts = []
    for _ in range(k):
        scales = np.exp(rng.uniform(-1.5, 1.5, d))
        rotation, _ = np.linalg.qr(rng.normal(size=(d, d)))
        cov_root = rotation * scales
        parts.append(rng.normal(size=(n // k, d)) @ cov_root.T + rng.normal(0, 8, d))
    return np.vstack(parts)


def median_call_seconds(call, repeats):
    """Median wall time of ``call()`` over ``repeats`` calls, after a warm-up."""
    for _ in range(20):
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(models, rows, repeats, setting):
    from sklearn.mixture import GaussianMixture as SklearnGM

    from gaussmix import GaussianMixture

    print(f"\n== {setting}: median microseconds per call, ratio gaussmix/sklearn")
    print(f"{'model':>16} {'rows':>5} " + " ".join(f"{m:>28}" for m in METHODS))
    ratios = []
    for k, d, cov in models:
        X = anisotropic_data(k, d)
        threads = {"n_threads": 1} if setting == "serial" else {}
        gm = GaussianMixture(k, covariance_type=cov, random_state=0, **threads).fit(X)
        sk = SklearnGM(k, covariance_type=cov, random_state=0).fit(X)
        for n in rows:
            batch = np.ascontiguousarray(X[:: max(1, len(X) // n)][:n])
            cells = []
            for method in METHODS:
                g_call = lambda: getattr(gm, method)(batch)  # noqa: E731
                s_call = lambda: getattr(sk, method)(batch)  # noqa: E731
                if setting == "serial":
                    with threadpool_limits(1):
                        t_s = median_call_seconds(s_call, repeats)
                else:
                    t_s = median_call_seconds(s_call, repeats)
                t_g = median_call_seconds(g_call, repeats)
                ratios.append(t_g / t_s)
                cells.append(f"{t_g * 1e6:8.1f} vs {t_s * 1e6:8.1f} ({t_g / t_s:4.2f})")
            print(f"{f'k{k} d{d} {cov}':>16} {n:>5} " + " ".join(f"{c:>28}" for c in cells))
    print(f"worst ratio {max(ratios):.2f}, median ratio {statistics.median(ratios):.2f}")
    return ratios


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1,10,100,1000",
                        help="comma-separated batch sizes (default: 1,10,100,1000)")
    parser.add_argument("--repeats", type=int, default=500, help="timed calls per cell")
    parser.add_argument("--settings", default="serial,default",
                        help="comma-separated: serial, default")
    parser.add_argument("--busy", type=int, default=0,
                        help="other processes spinning on the CPU meanwhile (default: 0)")
    args = parser.parse_args(argv)
    rows = [int(r) for r in args.rows.split(",")]
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                for _ in range(args.busy)]
    try:
        if spinners:
            print(f"{len(spinners)} other processes spinning on the CPU")
        for setting in args.settings.split(","):
            measure(MODELS, rows, args.repeats, setting)
    finally:
        for spinner in spinners:
            spinner.kill()


if __name__ == "__main__":
    main()
