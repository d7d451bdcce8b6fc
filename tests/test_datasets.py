"""The data sets shipped with gaussmix (gaussmix._datasets)."""

from importlib import resources

import numpy as np
from numpy.testing import assert_allclose, assert_array_equal

import gaussmix


def test_load_faithful():
    X = gaussmix.load_faithful()
    assert isinstance(X, np.ndarray)
    assert X.shape == (272, 2)
    assert X.dtype == np.float64
    assert_allclose(X[0], [3.6, 79.0])
    assert_allclose(X[-1], [4.467, 74.0])
    assert 1.5 < X[:, 0].min() and X[:, 0].max() < 5.2
    assert 40 <= X[:, 1].min() and X[:, 1].max() <= 96
    # the loader's parse equals numpy's own reading of the file shipped in the package
    with resources.as_file(resources.files("gaussmix") / "data" / "faithful.csv") as path:
        assert_array_equal(X, np.loadtxt(path, delimiter=",", skiprows=1))
