"""gaussmix on a busy machine: default threads against n_threads=1.

While ``--busy`` other processes spin on the CPU (another job on a shared
machine), times in one process run:

* a small ``select_model`` grid (Old Faithful, 1-5 components, every model);
* a 1000-row ``predict`` of a 4-component, 10-feature full model;

once with default threads and once with ``n_threads=1``, and prints the
ratio default / serial (about 1 when small work stays on the calling thread
and idle threads do not spin; the ratio is what to compare across versions).

Usage:
    python benchmarks/bench_busy.py
    python benchmarks/bench_busy.py --busy 0 --predicts 1000
"""
import argparse
import subprocess
import sys
import time

import numpy as np

from gaussmix import GaussianMixture, load_faithful, select_model


def timings(n_threads, predicts):
    """(seconds of the select_model grid, seconds per 1000-row predict)."""
    X = load_faithful()
    start = time.perf_counter()
    select_model(X, n_components=range(1, 6), n_threads=n_threads)
    grid = time.perf_counter() - start
    Y = np.random.default_rng(0).normal(size=(20_000, 10))
    gm = GaussianMixture(4, random_state=0, n_threads=n_threads).fit(Y)
    rows = np.ascontiguousarray(Y[:1000])
    start = time.perf_counter()
    for _ in range(predicts):
        gm.predict(rows)
    return grid, (time.perf_counter() - start) / predicts


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--busy", type=int, default=2,
                        help="other processes spinning on the CPU (default: 2)")
    parser.add_argument("--predicts", type=int, default=300, help="timed predict calls")
    args = parser.parse_args(argv)
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                for _ in range(args.busy)]
    try:
        results = {setting: timings(n_threads, args.predicts)
                   for setting, n_threads in (("default", None), ("n_threads=1", 1))}
    finally:
        for spinner in spinners:
            spinner.kill()
    print(f"{args.busy} other processes spinning on the CPU")
    for setting, (grid, predict) in results.items():
        print(f"{setting:>12}: select_model grid {grid:6.1f} s, "
              f"1000-row predict {predict * 1e6:7.0f} us")
    (grid_d, pred_d), (grid_s, pred_s) = results["default"], results["n_threads=1"]
    print(f"default / n_threads=1: select_model {grid_d / grid_s:.2f}, "
          f"predict {pred_d / pred_s:.2f}")


if __name__ == "__main__":
    main()
