"""Model-based hierarchical agglomeration (unconstrained Gaussian clusters).

The starting partitions mclust uses (Banfield & Raftery 1993; Fraley 1998):
from singletons, repeatedly merge the two clusters whose union lowers the
classification likelihood of a VVV model the least. A cluster C of n_C points
with scatter W_C costs

    cost(C) = n_C log det((W_C + alpha I) / n_C),

where alpha, a fraction of the mean per-feature variance, keeps the
determinant of small clusters finite (as mclust's ``alpha``); a merge adds
cost(A u B) - cost(A) - cost(B). As mclust does by default, the data are
first centred, scaled and rotated onto their principal axes with unit
variance ("SVD" transformation), which makes the result independent of
the features' units and correlations.
"""
import numpy as np


def svd_transform(X):
    """Centred, standardised X in its principal axes, each of unit variance."""
    Z = X - X.mean(axis=0)
    scale = Z.std(axis=0)
    Z = Z / np.where(scale > 0, scale, 1.0)
    _, singular, Vt = np.linalg.svd(Z, full_matrices=False)
    keep = singular > singular[0] * 1e-12 if singular.size else singular.astype(bool)
    return Z @ Vt[keep].T / singular[keep] * np.sqrt(Z.shape[0])


def _merge_costs(n, mean, W, others, alpha, eye):
    """cost(A u B) - cost(A) - cost(B) for cluster A against every cluster in ``others``."""
    nb, mb, Wb = others
    total = n + nb
    delta = mb - mean
    merged = W + Wb + (n * nb / total)[:, None, None] * delta[:, :, None] * delta[:, None, :]
    merged_cost = total * np.linalg.slogdet((merged + alpha * eye) / total[:, None, None])[1]
    return merged_cost


def agglomerate(X, alpha_fraction=1.0):
    """Merge history of the agglomeration of the rows of X.

    Parameters
    ----------
    X : ndarray of shape (n, d)
        Data to agglomerate (transformed already, see ``svd_transform``).
    alpha_fraction : float
        alpha = alpha_fraction * trace(cov(X)) / (n d).

    Returns
    -------
    merges : ndarray of shape (n - 1, 2)
        Row t merges cluster ``merges[t, 1]`` into ``merges[t, 0]`` (cluster
        ids are the index of a founding row).
    """
    n, d = X.shape
    X = np.asarray(X, dtype=np.float64)
    alpha = max(alpha_fraction * np.trace(np.atleast_2d(np.cov(X, rowvar=False))) / (n * d),
                np.finfo(np.float64).eps)
    eye = np.eye(d)
    sizes = np.ones(n)
    means = X.copy()
    scatters = np.zeros((n, d, d))
    own_cost = np.full(n, d * np.log(alpha))
    alive = np.ones(n, dtype=bool)
    # Pairwise merge costs, kept complete; row minima locate the best merge.
    costs = np.full((n, n), np.inf)
    for i in range(n - 1):
        rest = slice(i + 1, n)
        costs[i, rest] = (_merge_costs(1.0, X[i], scatters[i], (sizes[rest], means[rest],
                                                                   scatters[rest]), alpha, eye)
                          - own_cost[i] - own_cost[rest])
    costs = np.minimum(costs, costs.T)
    row_arg = np.argmin(costs, axis=1)
    row_min = costs[np.arange(n), row_arg]
    merges = np.empty((max(n - 1, 0), 2), dtype=np.intp)
    for step in range(n - 1):
        a = int(np.argmin(row_min))
        a, b = sorted((a, int(row_arg[a])))
        merges[step] = a, b
        total = sizes[a] + sizes[b]
        delta = means[b] - means[a]
        scatters[a] += scatters[b] + (sizes[a] * sizes[b] / total) * np.outer(delta, delta)
        means[a] += delta * (sizes[b] / total)
        sizes[a] = total
        own_cost[a] = total * np.linalg.slogdet((scatters[a] + alpha * eye) / total)[1]
        alive[b] = False
        costs[b, :] = costs[:, b] = np.inf
        row_min[b] = np.inf
        others = np.flatnonzero(alive)
        others = others[others != a]
        if others.size == 0:
            continue
        costs[a, others] = costs[others, a] = (
            _merge_costs(sizes[a], means[a], scatters[a],
                         (sizes[others], means[others], scatters[others]), alpha, eye)
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
