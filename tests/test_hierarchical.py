"""The model-based agglomeration against mclust's own partitions.

tests/data/mclust_<name>_hclass.csv holds hclass(hc(X, "VVV", use = "SVD"), 1:9)
of mclust 6.0.0 (tools/mclust_reference.R --hclass): the partitions
mclustBIC starts EM from.
"""
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
