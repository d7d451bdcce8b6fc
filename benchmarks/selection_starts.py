"""Which starting partitions reach the best optima in model selection?

For every cell (1-9 components x 14 mclust models) of Old Faithful, fit EM to
convergence from each kind of start that ``select_model`` uses and count how
often each reaches (a) the best optimum among the starts and (b) at least
mclust 6.0.0's log-likelihood (tests/data/mclust_faithful_loglik.csv).

Run: python benchmarks/selection_starts.py
"""
import collections
import csv
import time
from pathlib import Path

import numpy as np

import gaussmix
from gaussmix import _kmeans, _selection_em
from gaussmix._parsimonious import MODELS
from gaussmix._selection import _hierarchical_labels

REFERENCE = Path(__file__).parents[1] / "tests" / "data" / "mclust_faithful_loglik.csv"


def main(n_kmeans=5):
    X = gaussmix.load_faithful()
    with open(REFERENCE) as file:
        mclust = {(int(r["n_components"]), r["model"]): float(r["loglik"])
                  for r in csv.DictReader(file)}
    random_state = np.random.RandomState(0)
    data = _selection_em.GridData(X)
    hierarchical = _hierarchical_labels(X, range(1, 10), random_state)
    best_counts, mclust_counts, missed = collections.Counter(), collections.Counter(), []
    start_time = time.perf_counter()
    for k in range(1, 10):
        starts = {"ward": hierarchical[k][0], "model-based hc": hierarchical[k][1]}
        for seed in range(n_kmeans):
            starts[f"kmeans {seed}"] = _kmeans.kmeans(X, k, random_state, None, 1)[0]
        for model in MODELS:
            reached = {}
            for name, labels in starts.items():
                if np.unique(labels).size != k:
                    continue
                try:
                    start = _selection_em.partition_parameters(data, labels, k, model, 1e-6)
                    fit = _selection_em.em(data, model, start, tol=1e-5, reg_covar=1e-6,
                                           max_iter=1000)
                except ValueError:
                    continue
                if not _selection_em.degenerate(model, fit.params, 1e-6):
                    reached[name] = fit.lower_bound * X.shape[0]
            best = max(reached.values())
            for name, value in reached.items():
                best_counts[name] += value >= best - 1e-3
                mclust_counts[name] += value >= mclust[(k, model)] - 1e-3
            if best < mclust[(k, model)] - 1e-3:
                missed.append((k, model, round(best - mclust[(k, model)], 3)))
    print(f"{9 * len(MODELS)} cells, {time.perf_counter() - start_time:.1f} s")
    print(f"{'start':<16}{'best of starts':>16}{'>= mclust':>12}")
    for name in best_counts:
        print(f"{name:<16}{best_counts[name]:>16}{mclust_counts[name]:>12}")
    print("cells where no start reaches mclust:", missed or "none")


if __name__ == "__main__":
    main()
