"""Model-based hierarchical agglomeration (unconstrained Gaussian clusters).

The starting partitions mclust uses (Banfield & Raftery 1993; Fraley 1998):
from singletons, repeatedly merge the two clusters whose union raises the
cost of the partition the least. A cluster C of n_C points with scatter W_C
costs, as mclust's ``hcVVV`` (with its defaults alpha = beta = 1),

    cost(C) = n_C log(det(W_C / n_C) + (trace(W_C) + alpha) / n_C),

the determinant counting only when n_C exceeds the dimension (below it is
zero); alpha is the total scatter of the data over n d. Fraley's trace term
keeps the cost of small clusters finite. As mclust does by default, the data
are first standardised and rotated onto their principal axes, each scaled by
the inverse square root of its singular value (mclust's "SVD"
transformation). On the same data the cuts are mclust's ``hclass``
partitions (tests/test_hierarchical.py).
"""
import numpy as np


def svd_transform(X):
    """mclust's "SVD" transformation: Z = X_s V D^(-1/2), where X_s is X
    centred and scaled to unit standard deviation (n - 1 in the denominator,
    as R's ``scale``) and X_s = U D V' its singular value decomposition."""
    Z = X - X.mean(axis=0)
    scale = Z.std(axis=0, ddof=1) if Z.shape[0] > 1 else np.ones(Z.shape[1])
    Z = Z / np.where(scale > 0, scale, 1.0)
    _, singular, Vt = np.linalg.svd(Z, full_matrices=False)
    keep = singular > singular[0] * 1e-12 if singular.size else singular.astype(bool)
    return Z @ Vt[keep].T / np.sqrt(singular[keep])


def _cost(size, scatter, alpha, d):
    """cost(C) of clusters of ``size`` points with ``scatter`` (arrays, one per cluster)."""
    trace = np.trace(scatter, axis1=-2, axis2=-1)
    det = np.where(size > d, np.linalg.det(scatter / size[..., None, None]), 0.0)
    return size * np.log(det + (trace + alpha) / size)


def _merge_costs(n, mean, W, others, alpha, d):
    """cost(A u B) for cluster A against every cluster B in ``others``."""
    nb, mb, Wb = others
    total = n + nb
    delta = mb - mean
    merged = W + Wb + (n * nb / total)[:, None, None] * delta[:, :, None] * delta[:, None, :]
    return _cost(total, merged, alpha, d)


def agglomerate(X):
    """Merge history of the agglomeration of the rows of X.

    Parameters
    ----------
    X : ndarray of shape (n, d)
        Data to agglomerate (transformed already, see ``svd_transform``).

    Returns
    -------
    merges : ndarray of shape (n - 1, 2)
        Row t merges cluster ``merges[t, 1]`` into ``merges[t, 0]`` (cluster
        ids are the index of a founding row).
    """
    n, d = X.shape
    X = np.asarray(X, dtype=np.float64)
    alpha = max(np.sum((X - X.mean(axis=0)) ** 2) / (n * d), np.finfo(np.float64).eps)
    sizes = np.ones(n)
    means = X.copy()
    scatters = np.zeros((n, d, d))
    own_cost = _cost(sizes, scatters, alpha, d)
    alive = np.ones(n, dtype=bool)
    # Pairwise merge costs, kept complete; row minima locate the best merge.
    costs = np.full((n, n), np.inf)
    for i in range(n - 1):
        rest = slice(i + 1, n)
        costs[i, rest] = (_merge_costs(sizes[i], means[i], scatters[i],
                                       (sizes[rest], means[rest], scatters[rest]), alpha, d)
                          - own_cost[i] - own_cost[rest])
    costs = np.minimum(costs, costs.T)
    row_arg = np.argmin(costs, axis=1) if n else np.empty(0, dtype=np.intp)
    row_min = costs[np.arange(n), row_arg]
    merges = np.empty((max(n - 1, 0), 2), dtype=np.intp)
    # mclust's slots: clusters in order of first row; a merge keeps the lower
    # slot and moves the last cluster into the freed one. Of tied merges it
    # takes the last pair (lower slot, higher slot) ordered by higher slot
    # first, and so do we, since tied costs are common on rounded data.
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
        own_cost[a] = _cost(np.array([total]), scatters[a][None], alpha, d)[0]
        alive[b] = False
        costs[b, :] = costs[:, b] = np.inf
        row_min[b] = np.inf
        others = np.flatnonzero(alive)
        others = others[others != a]
        if others.size == 0:
            continue
        costs[a, others] = costs[others, a] = (
            _merge_costs(sizes[a], means[a], scatters[a],
                         (sizes[others], means[others], scatters[others]), alpha, d)
            - own_cost[a] - own_cost[others])
        row_arg[a] = others[np.argmin(costs[a, others])]
        row_min[a] = costs[a, row_arg[a]]
        # rows whose best partner was merged away look again; the others
        # only compare with the new cluster
        stale = others[(row_arg[others] == a) | (row_arg[others] == b)]
        for x in stale:
            row_arg[x] = np.argmin(costs[x])
            row_min[x] = costs[x, row_arg[x]]
        closer = others[costs[others, a] < row_min[others]]
        row_arg[closer], row_min[closer] = a, costs[closer, a]
    return merges


def cut(merges, n, k):
    """Labels 0..k-1 of n rows after all but the last k - 1 merges."""
    parent = np.arange(n)
    for a, b in merges[: n - k]:
        parent[b] = a
    # follow each row's chain of merges to its surviving cluster
    root = parent.copy()
    while True:
        nxt = parent[root]
        if np.array_equal(nxt, root):
            break
        root = nxt
    return np.unique(root, return_inverse=True)[1]
