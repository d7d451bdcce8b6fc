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

from ._hierarchical_kernels import merge_history


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
    X = np.ascontiguousarray(X, dtype=np.float64)
    n, d = X.shape
    if n < 2:
        return np.empty((0, 2), dtype=np.intp)
    alpha = max(np.sum((X - X.mean(axis=0)) ** 2) / (n * d), np.finfo(np.float64).eps)
    return merge_history(X, alpha)


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
