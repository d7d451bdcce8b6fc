"""select_model against R's mclustBIC on the same data, in one run.

For each data set: the seconds ``select_model(X, n_components=range(1, 10))``
takes (all 14 models, defaults), the seconds ``mclustBIC(X, G = 1:9)`` takes
in Rscript (when it is installed, with the mclust package: Debian's
r-cran-mclust), their ratio, and how many of the grid's cells reach a
log-likelihood above, equal to or below mclust's: equal means within
``--tolerance`` (default 1e-6) times |mclust's log-likelihood| (at least 1e-3),
as EM stopped by different rules lands within that of the same optimum.
Cells mclust reports as missing (NA) are counted apart. Both picks by BIC
are printed.

Data sets: faithful (272 x 2), diabetes (145 x 3), iris (150 x 4) from
tests/data, and blobs<N>x<d>: N rows of three Gaussian clusters in d
dimensions (random means and covariances, seed 0), written to a CSV for R.

Run: python benchmarks/bench_select.py [--data faithful,diabetes,iris,blobs5000x5]
     [--repeats 3] [--n-jobs N] [--no-mclust]
"""
import argparse
import csv
import math
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

import gaussmix

ROOT = Path(__file__).parents[1]
TESTS_DATA = ROOT / "tests" / "data"
R_SCRIPT = ROOT / "tools" / "mclust_reference.R"


def three_clusters(n, d, seed=0):
    """n rows of three Gaussian clusters (weights 0.5, 0.3, 0.2) in d dimensions."""
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n, [0.5, 0.3, 0.2])
    parts = []
    for count in counts:
        A = rng.normal(size=(d, d)) / math.sqrt(d)
        parts.append(rng.normal(scale=3.0, size=d) + rng.normal(size=(count, d)) @ A.T)
    X = np.concatenate(parts)
    return X[rng.permutation(n)]


def load(name):
    if name == "faithful":
        return gaussmix.load_faithful()
    if name.startswith("blobs"):
        n, d = name[len("blobs"):].split("x")
        return three_clusters(int(n), int(d))
    return np.loadtxt(TESTS_DATA / f"{name}.csv", delimiter=",", skiprows=1)


def run_mclust(X, workdir):
    """(seconds, {(k, model): loglik}, {(k, model): bic}) of mclustBIC, or None."""
    if shutil.which("Rscript") is None:
        return None
    path = Path(workdir) / "X.csv"
    np.savetxt(path, X, delimiter=",", header=",".join(f"x{j}" for j in range(X.shape[1])),
               comments="")
    seconds = float(subprocess.run(["Rscript", str(R_SCRIPT), "--time", str(path)],
                                   capture_output=True, text=True, check=True).stdout)
    table = subprocess.run(["Rscript", str(R_SCRIPT), str(path)], capture_output=True,
                           text=True, check=True).stdout.splitlines()
    rows = list(csv.DictReader(table))
    loglik = {(int(r["n_components"]), r["model"]): float(r["loglik"]) for r in rows}
    bic = {(int(r["n_components"]), r["model"]): float(r["bic"]) for r in rows}
    return seconds, loglik, bic


def compare(selection, loglik, tolerance):
    """Counts of cells above / equal / below mclust, and cells mclust misses."""
    counts = dict(above=0, equal=0, below=0, mclust_missing=0)
    for i, k in enumerate(selection.n_components):
        for j, model in enumerate(selection.covariance_types):
            reference = loglik.get((int(k), model))
            if reference is None:
                counts["mclust_missing"] += 1
                continue
            ours = selection.log_likelihood_[i, j]
            slack = max(tolerance * abs(reference), 1e-3)
            if not ours >= reference - slack:
                counts["below"] += 1
            elif ours > reference + slack:
                counts["above"] += 1
            else:
                counts["equal"] += 1
    return counts


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="faithful,diabetes,iris,blobs5000x5")
    parser.add_argument("--repeats", type=int, default=1,
                        help="select_model runs per data set (the best time is kept)")
    parser.add_argument("--n-jobs", type=int, default=None,
                        help="select_model's n_jobs (default: its default)")
    parser.add_argument("--tolerance", type=float, default=1e-6)
    parser.add_argument("--no-mclust", action="store_true")
    args = parser.parse_args()
    print(f"{'data':<16}{'gaussmix s':>11}{'mclust s':>10}{'gm/mclust':>10}"
          f"{'above':>7}{'equal':>7}{'below':>7}{'NA in mclust':>13}  picks (gaussmix | mclust)")
    jobs = {} if args.n_jobs is None else {"n_jobs": args.n_jobs}  # else the default
    with tempfile.TemporaryDirectory() as workdir:
        for name in args.data.split(","):
            X = load(name)
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                selection = gaussmix.select_model(X, n_components=range(1, 10), **jobs)
                times.append(time.perf_counter() - start)
            best = selection.best_params_
            ours = f"{best['covariance_type']},{best['n_components']}"
            mclust = None if args.no_mclust else run_mclust(X, workdir)
            label = f"{name} ({X.shape[0]}x{X.shape[1]})" if name.startswith("blobs") else name
            if mclust is None:
                print(f"{label:<16}{min(times):>11.2f}{'-':>10}{'-':>10}  {ours}")
                continue
            seconds, loglik, bic = mclust
            counts = compare(selection, loglik, args.tolerance)
            k, model = max(bic, key=bic.get)
            print(f"{label:<16}{min(times):>11.2f}{seconds:>10.2f}{min(times) / seconds:>10.2f}"
                  f"{counts['above']:>7}{counts['equal']:>7}{counts['below']:>7}"
                  f"{counts['mclust_missing']:>13}  {ours} | {model},{k}", flush=True)
            if args.repeats > 1:
                print(f"{'':<16}gaussmix times: " + " ".join(f"{t:.2f}" for t in times))


if __name__ == "__main__":
    main()
