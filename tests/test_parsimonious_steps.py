"""The compiled covariance M-steps (gaussmix._parsimonious_steps) against their
numpy reference, gaussmix._parsimonious, which is checked against R's mclust.

The compiled code runs the same algorithm step for step, so the two must agree
to rounding for any max_iter and starting point.  Where the reference is itself
only accurate to rounding amplified by bad scaling (eigendecompositions of S_k
whose variances span 14 orders of magnitude), "to rounding" means: no further
from the reference than the reference moves when its input moves by one unit
in the last place.
"""
import numpy as np
import pytest

from gaussmix import _parsimonious, _parsimonious_steps
from gaussmix._parsimonious import DIAGONAL_MODELS, MODELS

ITERATIVE_MODELS = ("VEI", "VEE", "EVE", "VVE", "VEV")
REG = 1e-6
TOLERANCE = 1e-9
# (k, d): every k in {1, 2, 3, 5, 9} and every d in {1, 2, 3, 5}
SHAPES = [(1, 1), (1, 5), (2, 3), (3, 2), (5, 5), (5, 1), (9, 2), (9, 5)]


def make_problem(rng, k, d, badly_scaled):
    """Masses and SPD scatters; badly scaled: features in units 1e-3 .. 1e4."""
    X = rng.normal(size=(k, 3 * d + 2, d)) @ (np.eye(d) + 0.5 * rng.normal(size=(d, d)))
    if badly_scaled:
        X = X * 10.0 ** rng.uniform(-3, 4, size=d)
    scatter = np.einsum("kni,knj->kij", X, X)
    return rng.uniform(0.5, 20.0, size=k), scatter


def layout(model, scatter):
    return np.einsum("kii->ki", scatter).copy() if model in DIAGONAL_MODELS else scatter


def reference_rounding(model, nk, *args):
    """How far the reference moves when the masses move by one ulp either way."""
    expected = _parsimonious.covariances(model, nk, *args)
    return max(distance(_parsimonious.covariances(model, nk * (1 + eps), *args), expected)
               for eps in (np.finfo(float).eps, -np.finfo(float).epsneg))


def distance(a, b):
    """Largest difference in units of the reference's standard deviations,
    |a_ij - b_ij| / sqrt(b_ii b_jj): the same for any units of the features."""
    if b.ndim == 2:
        return np.max(np.abs(a - b) / b)
    sd = np.sqrt(np.einsum("kii->ki", b))
    return np.max(np.abs(a - b) / (sd[:, :, None] * sd[:, None, :]))


def test_model_codes_follow_models():
    assert _parsimonious_steps.MODEL_CODES == {name: i for i, name in enumerate(MODELS)}
    assert [getattr(_parsimonious_steps, name) for name in MODELS] == list(range(len(MODELS)))
    # covariance_step takes the models before VVI for the diagonal layout
    assert MODELS[:len(DIAGONAL_MODELS)] == DIAGONAL_MODELS


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("badly_scaled", [False, True])
def test_matches_the_reference(model, badly_scaled):
    rng = np.random.default_rng([MODELS.index(model), badly_scaled])
    compared = 0
    for k, d in SHAPES:
        nk, scatter = make_problem(rng, k, d, badly_scaled)
        scatter = layout(model, scatter)
        other_nk, other_scatter = make_problem(rng, k, d, badly_scaled)
        try:
            starts = [None, _parsimonious.covariances(model, other_nk, layout(model, other_scatter),
                                                      REG)]
        except ValueError:  # numerically singular: tested below
            continue
        for previous in starts:
            for max_iter in (1, 3, 100):
                args = (model, nk, scatter, REG, previous, max_iter)
                expected = _parsimonious.covariances(*args)
                got = _parsimonious_steps.covariances(*args)
                assert got.shape == expected.shape
                allowed = max(TOLERANCE, 10 * reference_rounding(*args))
                assert distance(got, expected) <= allowed
                compared += 1
    assert compared >= 36


def singular_problems(d=3):
    """(nk, scatter, reg_covar, which models fail) of numerically singular S_k."""
    rng = np.random.default_rng(3)
    nk, scatter = make_problem(rng, 4, d, False)
    zero_column = scatter.copy()
    zero_column[:, 0, :] = zero_column[:, :, 0] = 0.0
    v = np.arange(1.0, d + 1.0)
    rank_one = nk[:, None, None] * np.outer(v, v)
    all_zero = np.zeros_like(scatter)
    return [
        (nk, zero_column, 0.0, set(MODELS) - {"EII", "VII"}),
        (nk, rank_one, 0.0, set(MODELS) - set(DIAGONAL_MODELS)),
        (nk, all_zero, 0.0, set(MODELS)),
    ]


@pytest.mark.parametrize("model", MODELS)
def test_singular_scatters_raise_like_the_reference(model):
    for nk, scatter, reg_covar, failing in singular_problems():
        scatter = layout(model, scatter)
        if model in failing:
            with pytest.raises(ValueError, match=f"{model} M-step: the regularised scatter"):
                _parsimonious.covariances(model, nk, scatter, reg_covar)
            with pytest.raises(ValueError, match=f"{model} M-step: the regularised scatter"):
                _parsimonious_steps.covariances(model, nk, scatter, reg_covar)
        else:
            np.testing.assert_allclose(
                _parsimonious_steps.covariances(model, nk, scatter, reg_covar),
                _parsimonious.covariances(model, nk, scatter, reg_covar), rtol=TOLERANCE)


@pytest.mark.parametrize("model", ITERATIVE_MODELS)
def test_bad_arguments_raise_like_the_reference(model):
    nk, scatter = make_problem(np.random.default_rng(4), 2, 2, False)
    scatter = layout(model, scatter)
    eye = np.ones((2, 2)) if model in DIAGONAL_MODELS else np.broadcast_to(np.eye(2), (2, 2, 2))
    for kwargs in (dict(max_iter=0), dict(tol=-1.0), dict(tol=np.nan)):
        for module in (_parsimonious, _parsimonious_steps):
            with pytest.raises(ValueError, match="max_iter >= 1 and tol >= 0"):
                module.covariances(model, nk, scatter, REG, **kwargs)
    if model in ("VEI", "VEE", "VEV"):  # the models that take volumes from previous
        for module in (_parsimonious, _parsimonious_steps):
            with pytest.raises(ValueError, match="previous covariances must be positive definite"):
                module.covariances(model, nk, scatter, REG, previous=-eye)
    for module in (_parsimonious, _parsimonious_steps):
        with pytest.raises(ValueError, match="previous must be a finite array"):
            module.covariances(model, nk, scatter, REG, previous=eye[:1])
