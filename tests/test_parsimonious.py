"""The covariance M-steps of mclust's 14 parsimonious models (gaussmix._parsimonious).

Each M-step must maximise Q(Sigma) = -1/2 sum_k [n_k log det Sigma_k +
tr(Sigma_k^{-1} (W_k + reg n_k I))] over covariances of its model's structure.
The checks compare it with random and numerically optimised covariances of
that structure, built from the volume / shape / orientation parameterisation
Sigma_k = lambda_k D_k A_k D_k^T.
"""
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.optimize import minimize

from gaussmix._parsimonious import (DIAGONAL_MODELS, MODELS, covariances,
                                    n_covariance_parameters)

ITERATIVE_MODELS = ("VEI", "VEE", "EVE", "VVE", "VEV")
REG = 1e-3


def make_problem(k, d, seed, n=30):
    """Masses and weighted scatters about the weighted means of random data."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) + 3.0 * rng.normal(size=d)
    resp = rng.dirichlet(np.full(k, 0.7), size=n)
    nk = resp.sum(axis=0)
    diff = X[:, None, :] - (resp.T @ X / nk[:, None])
    return nk, np.einsum("ik,ikj,ikl->kjl", resp, diff, diff)


def scatter_for(model, W):
    return np.diagonal(W, axis1=1, axis2=2).copy() if model in DIAGONAL_MODELS else W


def as_matrices(sigma):
    if sigma.ndim == 3:
        return sigma
    return sigma[:, :, None] * np.eye(sigma.shape[1])


def q_value(nk, W, sigma, reg):
    """Q of covariances in either layout; W is the full scatter."""
    sigma = as_matrices(sigma)
    W = W + reg * nk[:, None, None] * np.eye(W.shape[1])
    logdet = 2.0 * np.log(np.diagonal(np.linalg.cholesky(sigma), axis1=1, axis2=2)).sum(axis=1)
    trace = np.trace(np.linalg.solve(sigma, W), axis1=1, axis2=2)
    return -0.5 * np.sum(nk * logdet + trace)


def build(model, theta, k, d):
    """Covariances of `model` from unconstrained parameters.

    theta holds log-volumes (1 or k), log-shapes (d - 1 per shape, the last
    log-shape minus their sum) and skew-symmetric generators of orientations
    (d (d - 1) / 2 per orientation, D = Cayley(skew)), in that order: as many
    as n_covariance_parameters(model, k, d).
    """
    volume, shape, orientation = model
    count = {"E": 1, "V": k, "I": 0}
    sizes = np.cumsum([count[volume], count[shape] * (d - 1),
                       count[orientation] * (d * (d - 1) // 2)])
    assert sizes[-1] == theta.size
    lam = np.broadcast_to(np.exp(theta[:sizes[0]]), (k,))
    z = theta[sizes[0]:sizes[1]].reshape(count[shape], d - 1)
    log_a = np.concatenate([z, -z.sum(axis=1, keepdims=True)], axis=1)
    a = np.broadcast_to(np.exp(log_a), (k, d)) if shape != "I" else np.ones((k, d))
    if orientation == "I":
        return lam[:, None] * a
    skew = np.zeros((count[orientation], d, d))
    rows, cols = np.triu_indices(d, 1)
    skew[:, rows, cols] = theta[sizes[1]:].reshape(count[orientation], rows.size)
    skew -= np.swapaxes(skew, 1, 2)
    eye = np.eye(d)
    D = np.broadcast_to(np.linalg.solve(eye - skew, eye + skew), (k, d, d))
    return np.einsum("kij,kj,klj->kil", D, lam[:, None] * a, D)


def start_theta(model, W, nk, k, d):
    """Volumes at the pooled scale, unit shapes, identity orientations."""
    theta = np.zeros(n_covariance_parameters(model, k, d))
    n_volumes = 1 if model[0] == "E" else k
    pooled = W.sum(axis=0) / nk.sum() + REG * np.eye(d)
    theta[:n_volumes] = np.linalg.slogdet(pooled)[1] / d
    return theta


def solve(model, nk, W, **kwargs):
    return covariances(model, nk, scatter_for(model, W), REG, **kwargs)


def check_structure(model, sigma):
    """Symmetric positive definite, equal volumes / shapes / orientations as named."""
    volume, shape, orientation = model
    full = as_matrices(sigma)
    assert_array_equal(full, np.swapaxes(full, 1, 2))
    eigenvalues = np.linalg.eigvalsh(full)
    assert np.all(eigenvalues > 0)
    volumes = np.exp(np.log(eigenvalues).mean(axis=1))
    if volume == "E":
        assert_allclose(volumes, volumes[0], rtol=1e-9)
    if shape == "I":
        assert_allclose(eigenvalues, volumes[:, None] * np.ones_like(eigenvalues), rtol=1e-9)
    elif shape == "E" and orientation == "V":
        shapes = eigenvalues / volumes[:, None]
        assert_allclose(shapes, np.broadcast_to(shapes[0], shapes.shape), rtol=1e-8)
    elif shape == "E":
        normalised = full / volumes[:, None, None]
        assert_allclose(normalised, np.broadcast_to(normalised[0], normalised.shape),
                        rtol=1e-8, atol=1e-10 * np.abs(normalised).max())
    if orientation == "E":
        # Symmetric matrices share an eigenbasis exactly when they commute.
        products = np.einsum("aij,bjl->abil", full, full)
        assert_allclose(products, np.swapaxes(products, 0, 1),
                        atol=1e-9 * np.abs(products).max())


@pytest.mark.parametrize("d", [1, 2, 4])
@pytest.mark.parametrize("model", MODELS)
def test_maximises_q_over_the_structure(model, d):
    k = 3
    nk, W = make_problem(k, d, seed=10 * d + MODELS.index(model))
    sigma = solve(model, nk, W)
    assert sigma.shape == ((k, d) if model in DIAGONAL_MODELS else (k, d, d))
    check_structure(model, sigma)
    q = q_value(nk, W, sigma, REG)
    tol = 1e-8 * (nk.sum() + abs(q))

    # (a) at least as good as random parameter sets of the structure
    rng = np.random.default_rng(d)
    theta0 = start_theta(model, W, nk, k, d)
    for _ in range(100):
        theta = theta0 + rng.normal(scale=0.7, size=theta0.size)
        assert q >= q_value(nk, W, build(model, theta, k, d), REG) - tol

    # (b) at least as good as a direct numerical maximisation
    best = minimize(lambda t: -q_value(nk, W, build(model, t, k, d), REG) / nk.sum(),
                    theta0, method="BFGS")
    assert q >= -best.fun * nk.sum() - tol


@pytest.mark.parametrize("model", ITERATIVE_MODELS)
def test_iterative_models_converge_tightly(model):
    nk, W = make_problem(4, 5, seed=3, n=50)
    loose = q_value(nk, W, solve(model, nk, W), REG)
    tight = q_value(nk, W, solve(model, nk, W, max_iter=2000, tol=0.0), REG)
    assert tight >= loose - 1e-12 * abs(loose)
    assert loose >= tight - 1e-6 * (nk.sum() + abs(tight))


def test_closed_forms_match_scikit_learn_formulas():
    nk, W = make_problem(3, 4, seed=1)
    d = W.shape[1]
    diagonal = np.diagonal(W, axis1=1, axis2=2)
    trace = diagonal.sum(axis=1)
    expected = {
        "VVV": W / nk[:, None, None] + REG * np.eye(d),
        "EEE": np.broadcast_to(W.sum(axis=0) / nk.sum() + REG * np.eye(d), W.shape),
        "VVI": diagonal / nk[:, None] + REG,
        "VII": np.repeat(trace[:, None] / (d * nk[:, None]) + REG, d, axis=1),
        "EII": np.full(diagonal.shape, trace.sum() / (d * nk.sum()) + REG),
    }
    for model, value in expected.items():
        assert_allclose(solve(model, nk, W), value, rtol=1e-12, err_msg=model)


def test_closed_forms_match_scikit_learn():
    gm = pytest.importorskip("sklearn.mixture._gaussian_mixture")
    rng = np.random.default_rng(7)
    X = rng.normal(size=(40, 3))
    resp = rng.dirichlet(np.ones(3), size=40)
    nk, means, _ = gm._estimate_gaussian_parameters(X, resp, 0.0, "full")
    diff = X[:, None, :] - means
    W = np.einsum("ik,ikj,ikl->kjl", resp, diff, diff)
    pairs = {"VVV": "full", "EEE": "tied", "VVI": "diag", "VII": "spherical"}
    for model, covariance_type in pairs.items():
        ours = solve(model, nk, W)
        theirs = gm._estimate_gaussian_parameters(X, resp, REG, covariance_type)[2]
        if covariance_type == "tied":
            ours = ours[0]
        elif covariance_type == "spherical":
            ours = ours[:, 0]
        assert_allclose(ours, theirs, rtol=1e-10, err_msg=model)


@pytest.mark.parametrize("model", MODELS)
def test_one_dimension(model):
    nk, W = make_problem(3, 1, seed=2)
    sigma = solve(model, nk, W).reshape(3)
    if model[0] == "E":
        expected = np.full(3, W.sum() / nk.sum() + REG)
    else:
        expected = W[:, 0, 0] / nk + REG
    assert_allclose(sigma, expected, rtol=1e-10)


@pytest.mark.parametrize("model", ITERATIVE_MODELS)
def test_monotone_from_previous(model):
    k, d = 3, 4
    nk, W = make_problem(k, d, seed=5)
    rng = np.random.default_rng(11)
    theta0 = start_theta(model, W, nk, k, d)
    for _ in range(5):
        previous = build(model, theta0 + rng.normal(size=theta0.size), k, d)
        q = q_value(nk, W, previous, REG)
        for max_iter in (1, 2, 5, 100):
            sigma = solve(model, nk, W, previous=previous, max_iter=max_iter)
            check_structure(model, sigma)
            q_next = q_value(nk, W, sigma, REG)
            assert q_next >= q - 1e-12 * abs(q)
            q = q_next


@pytest.mark.parametrize("model", MODELS)
def test_em_like_sequence_never_decreases_q(model):
    """Each M-step, warm-started from the last, does not lower that step's Q."""
    sigma = None
    for seed in range(6):
        nk, W = make_problem(3, 3, seed=seed)
        if sigma is not None:
            q_previous = q_value(nk, W, sigma, REG)
        sigma = solve(model, nk, W, previous=sigma, max_iter=3)
        if seed:
            assert q_value(nk, W, sigma, REG) >= q_previous - 1e-12 * abs(q_previous)


@pytest.mark.parametrize("model", ITERATIVE_MODELS)
def test_warm_start_at_the_optimum_stays(model):
    nk, W = make_problem(3, 4, seed=8)
    sigma = solve(model, nk, W, max_iter=2000, tol=0.0)
    again = solve(model, nk, W, previous=sigma)
    assert_allclose(again, sigma, rtol=1e-6, atol=1e-9 * np.abs(sigma).max())


@pytest.mark.parametrize("model", MODELS)
def test_tiny_and_empty_components(model):
    nk, W = make_problem(3, 3, seed=4)
    nk[0] = 1e-300
    W[0] = 0.0
    sigma = covariances(model, nk, scatter_for(model, W), 1e-6)
    assert np.all(np.isfinite(sigma))
    check_structure(model, sigma)
    W[0] = 1e-300 * np.eye(3)
    assert np.all(np.isfinite(covariances(model, nk, scatter_for(model, W), 0.0)))


@pytest.mark.parametrize("model", MODELS)
def test_singular_scatter(model):
    """reg_covar = 0 with a rank-one component: only models that need it nonsingular fail."""
    nk, W = make_problem(3, 3, seed=6)
    v = np.array([1.0, -2.0, 0.5])
    W[1] = nk[1] * np.outer(v, v)
    if model in ("VEE", "EVE", "VVE", "VEV", "EVV", "VVV"):
        with pytest.raises(ValueError, match="singular.*increase reg_covar"):
            covariances(model, nk, scatter_for(model, W), 0.0)
    else:
        check_structure(model, covariances(model, nk, scatter_for(model, W), 0.0))
    W[1] = 0.0
    if model in ("EII", "EEI", "EEE", "EEV"):
        check_structure(model, covariances(model, nk, scatter_for(model, W), 0.0))
    else:
        with pytest.raises(ValueError, match=r"component\(s\) \[1\]"):
            covariances(model, nk, scatter_for(model, W), 0.0)


@pytest.mark.parametrize("model", ["EEI", "VEI", "EVI", "VVI", "EEE", "VEE", "EVV", "VVV"])
def test_equivariant_under_feature_scaling(model):
    """Models without rotations or spheres follow a rescaling of the features,
    also one far beyond the precision of an eigendecomposition."""
    nk, W = make_problem(3, 3, seed=9)
    scale = np.array([1e-4, 1.0, 1e4])
    scaled = W * np.outer(scale, scale)
    sigma = covariances(model, nk, scatter_for(model, W), 0.0, tol=1e-14)
    expected = as_matrices(sigma) * np.outer(scale, scale)
    result = as_matrices(covariances(model, nk, scatter_for(model, scaled), 0.0, tol=1e-14))
    assert_allclose(result, expected, rtol=1e-9, atol=1e-12 * np.abs(expected).min())


@pytest.mark.parametrize("scale", [1e-140, 1e-3, 1e3, 1e140])
@pytest.mark.parametrize("model", MODELS)
def test_equivariant_under_scaling(model, scale):
    """Every model follows X -> s X, the iterative ones included: their stopping
    rule must not see the log volumes in Q / n, which move with s."""
    nk, W = make_problem(3, 3, seed=9)
    sigma = covariances(model, nk, scatter_for(model, W), 0.0)
    result = covariances(model, nk, scatter_for(model, W * scale**2), 0.0) / scale**2
    assert_allclose(result, sigma, rtol=1e-9, atol=1e-12 * np.abs(sigma).max())


MCLUST_N_VAR_PARAMS = {  # mclust's nVarParams(modelName, d, G)
    "EII": lambda G, d: 1,
    "VII": lambda G, d: G,
    "EEI": lambda G, d: d,
    "VEI": lambda G, d: G + (d - 1),
    "EVI": lambda G, d: 1 + G * (d - 1),
    "VVI": lambda G, d: G * d,
    "EEE": lambda G, d: d * (d + 1) / 2,
    "VEE": lambda G, d: G + (d - 1) + d * (d - 1) / 2,
    "EVE": lambda G, d: 1 + G * (d - 1) + d * (d - 1) / 2,
    "VVE": lambda G, d: G + G * (d - 1) + d * (d - 1) / 2,
    "EEV": lambda G, d: 1 + (d - 1) + G * d * (d - 1) / 2,
    "VEV": lambda G, d: G + (d - 1) + G * d * (d - 1) / 2,
    "EVV": lambda G, d: 1 + G * (d - 1) + G * d * (d - 1) / 2,
    "VVV": lambda G, d: G * d * (d + 1) / 2,
}


def test_parameter_counts():
    at_3_4 = {"EII": 1, "VII": 3, "EEI": 4, "VEI": 6, "EVI": 10, "VVI": 12, "EEE": 10,
              "VEE": 12, "EVE": 16, "VVE": 18, "EEV": 22, "VEV": 24, "EVV": 28, "VVV": 30}
    assert {m: n_covariance_parameters(m, 3, 4) for m in MODELS} == at_3_4
    for model in MODELS:
        for k, d in [(1, 1), (3, 1), (1, 2), (2, 3), (5, 2), (9, 10)]:
            count = n_covariance_parameters(model, k, d)
            assert isinstance(count, int)
            assert count == MCLUST_N_VAR_PARAMS[model](k, d), (model, k, d)


def test_bad_input():
    nk, W = make_problem(3, 2, seed=0)
    with pytest.raises(ValueError, match="valid models are EII, VII, EEI, VEI"):
        covariances("XYZ", nk, W, REG)
    with pytest.raises(ValueError, match="valid models"):
        covariances("vvv", nk, W, REG)
    with pytest.raises(ValueError, match="valid models"):
        n_covariance_parameters("full", 3, 2)
    bad_shapes = [("VVV", scatter_for("VVI", W)), ("VVI", W), ("VVV", W[:2]),
                  ("EEE", W[:, :, :1]), ("EEE", W[0]), ("EII", W[:, 0, :1].T)]
    for model, scatter in bad_shapes:
        with pytest.raises(ValueError, match="scatter"):
            covariances(model, nk, scatter, REG)
    with pytest.raises(ValueError, match="nk"):
        covariances("VVV", np.array([1.0, 0.0, 2.0]), W, REG)
    with pytest.raises(ValueError, match="reg_covar"):
        covariances("VVV", nk, W, -1.0)
    with pytest.raises(ValueError, match="previous"):
        covariances("VEE", nk, W, REG, previous=W[:2])
    with pytest.raises(ValueError, match="previous"):
        covariances("VEE", nk, W, REG, previous=-np.broadcast_to(np.eye(2), W.shape))
