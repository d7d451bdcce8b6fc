"""The model-based agglomeration against mclust's own partitions.

tests/data/mclust_<name>_hclass.csv holds hclass(hc(X, "VVV", use = "SVD"), 1:9)
of mclust 6.0.0 (tools/mclust_reference.R --hclass): the partitions
mclustBIC starts EM from.
"""
import math
from pathlib import Path

import numpy as np
import pytest

from gaussmix import _hierarchical, load_faithful

DATA = Path(__file__).parent / "data"


def same_partition(a, b):
    """Equal up to the names of the clusters."""
    pairs = np.unique(np.column_stack([a, b]), axis=0)
    return pairs.shape[0] == np.unique(a).size == np.unique(b).size


@pytest.mark.parametrize("name", ["faithful", "diabetes", "iris"])
def test_cuts_are_mclusts_starting_partitions(name):
    X = (load_faithful() if name == "faithful"
         else np.loadtxt(DATA / f"{name}.csv", delimiter=",", skiprows=1))
    reference = np.loadtxt(DATA / f"mclust_{name}_hclass.csv", delimiter=",", skiprows=1)
    merges = _hierarchical.agglomerate(_hierarchical.svd_transform(X))
    for k in range(1, 10):
        labels = _hierarchical.cut(merges, X.shape[0], k)
        assert same_partition(labels, reference[:, k - 1]), k


def test_svd_transform_is_mclusts():
    """Z = X_s V D^(-1/2) with X_s standardised (n - 1) and X_s = U D V'."""
    X = np.random.default_rng(0).normal(size=(40, 3)) @ np.array(
        [[2.0, 0.5, 0.0], [0.0, 1.0, 0.3], [0.0, 0.0, 0.1]])
    Xs = (X - X.mean(axis=0)) / X.std(axis=0, ddof=1)
    Z = _hierarchical.svd_transform(X)
    # Z' Z = D: principal axes, each with squared length its singular value
    singular = np.linalg.svd(Xs, compute_uv=False)
    np.testing.assert_allclose(Z.T @ Z, np.diag(singular), atol=1e-10)
    # the same subspace: Xs is recovered from Z
    coef = np.linalg.lstsq(Z, Xs, rcond=None)[0]
    np.testing.assert_allclose(Z @ coef, Xs, atol=1e-10)


def test_tied_merges_follow_mclusts_order():
    """Four rows, two pairs at one distance: mclust merges the later pair first."""
    X = np.array([[0.0, 0.0], [1.0, 0.0], [10.0, 5.0], [11.0, 5.0]])
    merges = _hierarchical.agglomerate(X)
    assert merges[0].tolist() == [2, 3]


def scaled_det(A, size):
    """det(A / size) of each matrix of the stack A, rounded as the compiled
    kernel: LU of A with partial pivoting (the first largest |entry|), the rows
    below a pivot scaled by its reciprocal, the pivots divided by size
    multiplied in order; 0 after an exactly zero pivot."""
    A = A.copy()
    m, d, _ = A.shape
    rows = np.arange(m)
    det, sign, singular = np.ones(m), np.ones(m), np.zeros(m, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for k in range(d):
            p = k + np.argmax(np.abs(A[:, k:, k]), axis=1)
            sign[p != k] *= -1
            upper = A[rows, k].copy()
            A[rows, k] = A[rows, p]
            A[rows, p] = upper
            pivot = A[:, k, k]
            singular |= pivot == 0
            det = det * (pivot / size)
            factor = A[:, k + 1:, k] * (1.0 / pivot)[:, None]
            A[:, k + 1:, k + 1:] = A[:, k + 1:, k + 1:] - factor[:, :, None] * A[:, k, None, k + 1:]
    return np.where(singular, 0.0, sign * det)


def reference_cost(size, scatter, alpha, d):
    """cost(C) per cluster, by the numpy formula agglomerate replaced, rounded as
    its kernel: scaled_det for np.linalg.det, the trace summed in order, and the C
    library's log (math.log) for np.log, whose SIMD build rounds differently."""
    trace = np.zeros(size.shape)
    for i in range(d):
        trace = trace + scatter[:, i, i]
    det = np.zeros(size.shape)
    big = size > d
    det[big] = scaled_det(scatter[big], size[big])
    det = np.where(det > 0, det, 0.0)  # below 0 is rounding
    log = np.frompyfunc(math.log, 1, 1)(det + (trace + alpha) / size).astype(np.float64)
    return size * log


def reference_merge_costs(n, mean, W, others, alpha, d):
    """cost(A u B) for cluster A against every cluster B in ``others``."""
    nb, mb, Wb = others
    total = n + nb
    delta = mb - mean
    merged = W + Wb + (n * nb / total)[:, None, None] * delta[:, :, None] * delta[:, None, :]
    return reference_cost(total, merged, alpha, d)


def reference_agglomerate(X):
    """The numpy implementation agglomerate had before its kernel (costs by
    reference_cost): the full cost matrix, each row's minimum, rows whose best
    partner took part in a merge looking again."""
    n, d = X.shape
    alpha = max(np.sum((X - X.mean(axis=0)) ** 2) / (n * d), np.finfo(np.float64).eps)
    sizes, means, scatters = np.ones(n), X.copy(), np.zeros((n, d, d))
    own_cost = reference_cost(sizes, scatters, alpha, d)
    alive = np.ones(n, dtype=bool)
    costs = np.full((n, n), np.inf)
    for i in range(n - 1):
        rest = slice(i + 1, n)
        costs[i, rest] = (reference_merge_costs(sizes[i], means[i], scatters[i],
                                                (sizes[rest], means[rest], scatters[rest]),
                                                alpha, d)
                          - own_cost[i] - own_cost[rest])
    costs = np.minimum(costs, costs.T)
    row_arg = np.argmin(costs, axis=1)
    row_min = costs[np.arange(n), row_arg]
    merges = np.empty((n - 1, 2), dtype=np.intp)
    slot = np.arange(n)
    for step in range(n - 1):
        best = row_min.min()
        pairs = [(r, c) for r in np.flatnonzero(row_min == best)
                 for c in np.flatnonzero(costs[r] == best)]
        a, b = max(pairs, key=lambda pair: (max(slot[pair[0]], slot[pair[1]]),
                                            min(slot[pair[0]], slot[pair[1]])))
        a, b = (a, b) if slot[a] < slot[b] else (b, a)
        last = int(np.argmax(np.where(alive, slot, -1)))
        slot[last] = slot[b]
        merges[step] = a, b
        total = sizes[a] + sizes[b]
        delta = means[b] - means[a]
        scatters[a] += scatters[b] + (sizes[a] * sizes[b] / total) * np.outer(delta, delta)
        means[a] += delta * (sizes[b] / total)
        sizes[a] = total
        own_cost[a] = reference_cost(np.array([total]), scatters[a][None], alpha, d)[0]
        alive[b] = False
        costs[b, :] = costs[:, b] = np.inf
        row_min[b] = np.inf
        others = np.flatnonzero(alive)
        others = others[others != a]
        if others.size == 0:
            continue
        costs[a, others] = costs[others, a] = (
            reference_merge_costs(sizes[a], means[a], scatters[a],
                                  (sizes[others], means[others], scatters[others]), alpha, d)
            - own_cost[a] - own_cost[others])
        row_arg[a] = others[np.argmin(costs[a, others])]
        row_min[a] = costs[a, row_arg[a]]
        stale = others[(row_arg[others] == a) | (row_arg[others] == b)]
        for x in stale:
            row_arg[x] = np.argmin(costs[x])
            row_min[x] = costs[x, row_arg[x]]
        closer = others[costs[others, a] < row_min[others]]
        row_arg[closer], row_min[closer] = a, costs[closer, a]
    return merges


def test_scaled_det_is_numpys_det():
    """The reference's determinant: np.linalg.det's value and sign, 0 at a zero pivot."""
    rng = np.random.default_rng(1)
    A = rng.normal(size=(200, 5, 5))
    size = rng.uniform(1.0, 50.0, size=200)
    np.testing.assert_allclose(scaled_det(A, size), np.linalg.det(A / size[:, None, None]),
                               rtol=1e-10)
    psd = A @ A.transpose(0, 2, 1)
    np.testing.assert_allclose(scaled_det(psd, size), np.linalg.det(psd / size[:, None, None]),
                               rtol=1e-10)
    singular = np.array([[[1.0, 2.0], [2.0, 4.0]], [[0.0, 1.0], [1.0, 0.0]]])
    np.testing.assert_array_equal(scaled_det(singular, np.array([1.0, 2.0])), [0.0, -0.25])


@pytest.mark.parametrize("d", range(1, 7))
@pytest.mark.parametrize("decimals", [None, 1, 0])
def test_merges_are_the_numpy_implementations(d, decimals):
    """The same merge sequence as the numpy reference, on continuous data and on
    rounded data, whose many tied costs exercise mclust's order of ties."""
    rng = np.random.default_rng(d)
    for n in (2, 3, d + 2, 40, 250):
        X = rng.normal(size=(n, d)) * rng.uniform(0.5, 3.0, size=d)
        if decimals is not None:
            X = np.round(X, decimals)
        Z = _hierarchical.svd_transform(X)
        if Z.shape[1] == 0:
            continue
        np.testing.assert_array_equal(_hierarchical.agglomerate(Z), reference_agglomerate(Z))


@pytest.mark.parametrize("d", range(1, 7))
def test_merges_are_the_numpy_implementations_on_600_rows(d):
    X = np.round(np.random.default_rng(d).normal(size=(600, d)), 1)
    Z = _hierarchical.svd_transform(X)
    np.testing.assert_array_equal(_hierarchical.agglomerate(Z), reference_agglomerate(Z))


@pytest.mark.parametrize("scale", [1e-3, 1e3])
def test_merges_are_the_numpy_implementations_at_any_scale(scale):
    """Untransformed data: at large scales the determinant dominates the cost,
    at small ones the trace term does (the kernel's lower bounds, tight or loose)."""
    rng = np.random.default_rng(7)
    for d in range(1, 6):
        X = rng.normal(size=(150, d)) * scale
        np.testing.assert_array_equal(_hierarchical.agglomerate(X), reference_agglomerate(X))


def test_non_finite_data_are_refused():
    X = np.random.default_rng(0).normal(size=(10, 2))
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match="not finite"):
        _hierarchical.agglomerate(X)
