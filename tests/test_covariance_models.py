"""The covariance-model table (_covariance) and the O(k d) diagonal kernel parameters."""
import tracemalloc

import numpy as np
import pytest
from numpy.testing import assert_allclose

from gaussmix import GaussianMixture, _models
from gaussmix._covariance import COVARIANCE_TYPES, DIAG, FULL, SPHERICAL, TIED, model

ALL_TYPES = ("full", "tied", "diag", "spherical", "EII", "VII", "EEI", "VEI", "EVI", "VVI",
             "EEE", "VEE", "EVE", "VVE", "EEV", "VEV", "EVV", "VVV")


def test_the_table_holds_every_type_once():
    assert sorted(COVARIANCE_TYPES) == sorted(ALL_TYPES)
    assert model("full").mclust == "VVV" and model("spherical").mclust == "VII"
    stored = {name: model(name).layout for name in ALL_TYPES}
    assert stored["EII"] is SPHERICAL and stored["EEI"] is DIAG and stored["EEE"] is TIED
    assert stored["EVE"] is FULL
    with pytest.raises(ValueError, match="unknown covariance type"):
        model("vvv")


def statistics(entry, k=2, d=3, n=400, seed=0):
    """N, S, W (around zero shifts) of random soft assignments of anisotropic data."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) + 2.0
    resp = rng.dirichlet(np.ones(k), size=n)
    N = resp.sum(axis=0)
    S = resp.T @ X
    W = np.einsum("nk,nd,ne->kde", resp, X, X)
    if not entry.layout.full_scatter:
        W = np.diagonal(W, axis1=1, axis2=2).copy()
    return N, S, W, np.zeros((k, d))


@pytest.fixture(scope="module", params=ALL_TYPES)
def fitted(request):
    entry = model(request.param)
    return entry, entry.m_step(*statistics(entry), reg_covar=1e-6)


def as_matrices(layout, array, k, d):
    """Stored covariances or precisions as (k, d, d) matrices, by hand."""
    per = np.asarray(layout.per_component(array, k, d))
    return per if per.ndim == 3 else np.stack([np.diag(row) for row in per])


def test_matrices_expand_the_layout(fitted):
    entry, (_, means, covariances) = fitted
    k, d = means.shape
    assert_allclose(entry.layout.matrices(covariances, k, d),
                    as_matrices(entry.layout, covariances, k, d))


@pytest.mark.parametrize("name", ALL_TYPES)
def test_given_precisions_are_checked(name):
    entry, k, d = model(name), 2, 3
    scales = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    stored = {"full": np.stack([np.diag(row) for row in scales]), "tied": np.diag(scales[0]),
              "diag": scales, "spherical": scales[:, 0]}[entry.layout.name]
    eigenvalues = entry.layout.checked_precision_eigenvalues(stored, name)
    expected = stored if entry.layout.diagonal else np.diagonal(stored, axis1=-2, axis2=-1)
    assert_allclose(np.sort(np.ravel(eigenvalues)), np.sort(np.ravel(expected)))
    bad = -stored
    message = "positive" if entry.layout.diagonal else "symmetric, positive-definite"
    with pytest.raises(ValueError, match=f"'{name} precision' should be {message}"):
        entry.layout.checked_precision_eigenvalues(bad, name)
    if not entry.layout.diagonal:
        skew = np.eye(d) + np.triu(np.ones((d, d)), 1) * 0.5
        skew = skew if entry.layout is TIED else np.stack([skew] * k)
        with pytest.raises(ValueError, match="symmetric"):
            entry.layout.checked_precision_eigenvalues(skew, name)


def test_m_step_shapes(fitted):
    entry, (weights, means, covariances) = fitted
    k, d = means.shape
    assert weights.shape == (k,) and means.shape == (2, 3)
    assert_allclose(weights.sum(), 1.0)
    assert covariances.shape == entry.layout.shape(k, d)
    assert np.all(np.linalg.eigvalsh(as_matrices(entry.layout, covariances, k, d)) > 0)


def test_precision_cholesky_inverts_the_covariances(fitted):
    entry, (_, means, covariances) = fitted
    layout, (k, d) = entry.layout, means.shape
    U = layout.precision_cholesky(covariances)
    assert U.shape == layout.shape(k, d)
    precisions = layout.precisions_from_cholesky(U)
    for sigma, P, factor in zip(as_matrices(layout, covariances, k, d),
                                as_matrices(layout, precisions, k, d),
                                as_matrices(layout, U, k, d)):
        assert_allclose(sigma @ P, np.eye(d), atol=1e-10)
        assert_allclose(factor @ factor.T, P, rtol=1e-12, atol=1e-12)
        assert_allclose(np.tril(factor, -1), 0.0)  # upper triangular
    assert_allclose(layout.covariances_from_cholesky(U), covariances, rtol=1e-10)
    assert_allclose(layout.precision_cholesky_from_precisions(precisions), U, rtol=1e-10)


def test_sampling_moments(fitted):
    entry, (_, means, covariances) = fitted
    layout, (k, d) = entry.layout, means.shape
    counts = np.array([200_000, 100_000])
    parts = layout.sample(np.random.RandomState(0), means, covariances, counts)
    for part, count, mean, sigma in zip(parts, counts, means,
                                        as_matrices(layout, covariances, k, d)):
        assert part.shape == (count, d)
        scale = np.sqrt(np.diag(sigma))
        assert_allclose((part.mean(axis=0) - mean) / scale, 0.0, atol=0.02)
        assert_allclose(np.cov(part.T) / np.outer(scale, scale),
                        sigma / np.outer(scale, scale), atol=0.02)


@pytest.mark.parametrize("name, count", [
    # k = 3 components in d = 4: k d means + k - 1 weights = 14, plus the covariances
    ("full", 14 + 3 * 10), ("VVV", 14 + 3 * 10), ("tied", 14 + 10), ("diag", 14 + 3 * 4),
    ("spherical", 14 + 3), ("EII", 14 + 1), ("EEI", 14 + 4), ("VEI", 14 + 3 + 3),
    ("EVE", 14 + 1 + 3 * 3 + 6), ("VVE", 14 + 3 + 3 * 3 + 6), ("EEV", 14 + 1 + 3 + 3 * 6),
])
def test_parameter_counts(name, count):
    assert model(name).n_parameters(3, 4) == count


def hand_diagonal_kernel_parameters(weights, means, scales, d):
    """The diagonal kernels' parameters computed from d x d factor matrices (the old path)."""
    U = np.stack([np.diag(row) for row in np.broadcast_to(scales.T, (d, len(weights))).T])
    center = weights @ means / weights.sum()
    m = means - center
    P = U @ np.swapaxes(U, 1, 2)
    offsets = (np.log(weights) + np.log(np.diagonal(U, axis1=1, axis2=2)).sum(axis=1)
               - 0.5 * d * np.log(2 * np.pi))
    Pm = np.einsum("kde,ke->kd", P, m)
    p2 = np.diagonal(P, axis1=1, axis2=2)
    gemm_offsets = offsets - 0.5 * np.einsum("kd,kd->k", Pm, m)
    return center, np.hstack([-2 * Pm, p2]).T, gemm_offsets, offsets


@pytest.mark.parametrize("covariance_type", ["diag", "spherical", "EEI", "EII"])
def test_diagonal_kernel_parameters_match_the_matrix_path(covariance_type):
    rng = np.random.default_rng(1)
    k, d = 3, 10     # past DIAG_LOOPS_MAX_DIM: the GEMM mode
    weights = np.array([0.2, 0.3, 0.5])
    means = rng.standard_normal((k, d))
    shape = model(covariance_type).layout.shape(k, d)
    scales = rng.uniform(0.5, 2.0, size=shape)
    kp = _models.kernel_parameters(np.log(weights), means, scales, covariance_type, np.float64)
    center, coef, offsets, _ = hand_diagonal_kernel_parameters(weights, means, scales, d)
    assert kp.mode == _models.DIAG_GEMM
    assert_allclose(kp.shift, np.broadcast_to(center, (k, d)), rtol=1e-14)
    assert_allclose(kp.coef, coef, rtol=1e-13)
    assert_allclose(kp.offsets, offsets, rtol=1e-13)
    # far from the common centre: per-component mode, factors are the scales
    far_means = means * np.array([[1.0], [1.0], [1e6]])
    kp = _models.kernel_parameters(np.log(weights), far_means, scales, covariance_type, np.float64)
    assert kp.mode == _models.DIAG_LOOPS
    assert_allclose(kp.prec, np.broadcast_to(scales.T, (d, k)).T)
    assert_allclose(kp.shift, far_means)
    assert_allclose(kp.offsets, hand_diagonal_kernel_parameters(weights, far_means, scales,
                                                                d)[3], rtol=1e-13)


def peak_bytes(function):
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
def test_diagonal_kernel_parameters_stay_linear_in_d(covariance_type):
    k, d = 2, 20_000
    rng = np.random.default_rng(0)
    means = rng.standard_normal((k, d))
    scales = np.ones(model(covariance_type).layout.shape(k, d))
    peak = peak_bytes(lambda: _models.kernel_parameters(np.log(np.array([0.5, 0.5])), means, scales,
                                                         covariance_type, np.float64))
    assert peak < 10 * 2**20


def test_diag_fit_memory_is_linear_in_d():
    X = np.random.default_rng(0).standard_normal((300, 20_000))
    X[:150] += 3.0
    gm = GaussianMixture(2, covariance_type="diag", max_iter=2, random_state=0)
    peak = peak_bytes(lambda: gm.fit(X))
    assert peak < 100 * 2**20


@pytest.mark.parametrize("name", [name for name in ALL_TYPES if model(name).core])
def test_scatter_per_mass_reproduces_the_covariances(name):
    # scikit-learn's M-steps map the stored W_k / N_k back to the covariances
    entry = model(name)
    weights, means, covariances = entry.m_step(*statistics(entry), reg_covar=1e-6)
    k, d = means.shape
    scatter = entry.layout.scatter_per_mass(covariances, k, d, 1e-6)
    N = weights * 100.0
    W = scatter * N.reshape((k,) + (1,) * (scatter.ndim - 1))
    _, _, again = entry.m_step(N, np.zeros((k, d)), W, means, 1e-6)
    assert_allclose(again, covariances, rtol=1e-9)
