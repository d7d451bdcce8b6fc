"""Kernel builds (baseline, AVX2) and kernel modes agree with each other."""
import importlib

import numpy as np
import pytest
from numpy.testing import assert_allclose

from gaussmix import GaussianMixture, _covariance, _models
from gaussmix._em import Parameters, Statistics, parameters_from_statistics, pass_statistics
from gaussmix._parallel import FULL_LOOPS_MAX_DIM
from conftest import e_step_statistics

baseline = importlib.import_module("gaussmix._suffstats")
try:
    avx2 = importlib.import_module("gaussmix._suffstats_avx2")
except ImportError:  # non-x86 build: there is only one build to test
    avx2 = None


def _pass(module, X, covariance_type, params):
    weights, means, prec_chol = params
    kp = _models.kernel_parameters(np.log(weights), means, prec_chol, covariance_type, X.dtype)
    stats = Statistics.zeros(kp.shift, kp.mode, 2)
    loglik = np.zeros(2)
    module.em_pass(X, np.empty(0, X.dtype), kp.shift, kp.prec, kp.coef, kp.exact, kp.offsets,
                   kp.mode, stats.N, stats.S, stats.W, loglik)
    return stats.reduced(), loglik.sum()


@pytest.mark.skipif(avx2 is None, reason="AVX2 kernels are built on x86-64 only")
@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("d", [2, 7, 19, 40])
def test_avx2_build_matches_baseline(covariance_type, d):
    from gaussmix._kernels import _cpu_has_avx2_fma
    if not _cpu_has_avx2_fma():
        pytest.skip("this CPU cannot run the AVX2 build")
    rng = np.random.default_rng(d)
    k = 4
    X = rng.standard_normal((1000, d)) * 2 + 5
    means = X[rng.choice(len(X), k, replace=False)]
    cov = np.cov(X.T).reshape(d, d) + np.eye(d)
    covariances = {"full": np.stack([cov] * k), "tied": cov,
                   "diag": np.tile(np.diag(cov), (k, 1)),
                   "spherical": np.full(k, np.trace(cov) / d)}[covariance_type]
    prec_chol = _covariance.model(covariance_type).layout.precision_cholesky(covariances)
    params = (np.full(k, 1 / k), means, prec_chol)
    (a, la), (b, lb) = (_pass(m, X, covariance_type, params) for m in (baseline, avx2))
    assert_allclose(la, lb, rtol=1e-12)
    for name in ("N", "S", "W"):
        assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-10, atol=1e-9)


def _per_component_pass(module, X, params, mode):
    """em_pass in a per-component full mode: (N, S, W, loglik), W summed over slots."""
    weights, means, U = params
    k, d = means.shape
    offsets = np.log(weights) + np.log(np.diagonal(U, axis1=1, axis2=2)).sum(axis=1) \
        - 0.5 * d * np.log(2 * np.pi)
    N, S, W, loglik = np.zeros((2, k)), np.zeros((2, k, d)), np.zeros((2, k, d * d)), np.zeros(2)
    module.em_pass(X, np.empty(0, X.dtype), means.astype(X.dtype), U.reshape(k, d * d).astype(
        X.dtype), np.empty((0, 0)), np.empty((0, 0)), offsets, mode, N, S, W, loglik)
    return N.sum(axis=0), S.sum(axis=0), W.sum(axis=0).reshape(k, d, d), loglik.sum()


@pytest.mark.parametrize("module", [baseline, avx2] if avx2 is not None else [baseline],
                         ids=["baseline", "avx2"][:1 + (avx2 is not None)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("d", range(1, FULL_LOOPS_MAX_DIM + 1))
def test_full_loops_match_numpy_at_every_dimension(module, dtype, d):
    """FULL_LOOPS runs a copy of its log-density loop per d, on blocks of 8
    rows: at every d up to FULL_LOOPS_MAX_DIM, on row counts that leave a
    partial block in the last chunk, its log-likelihood and statistics
    (around each mean) equal a numpy computation."""
    if module is avx2:
        from gaussmix._kernels import _cpu_has_avx2_fma
        if not _cpu_has_avx2_fma():
            pytest.skip("this CPU cannot run the AVX2 build")
    from scipy.special import logsumexp
    rng = np.random.default_rng(d)
    k, n = 3, 2 * 128 + 13
    X = (rng.standard_normal((n, d)) @ rng.normal(size=(d, d)) + rng.integers(0, k, (n, 1))
         * 3.0).astype(dtype)
    means = X[rng.choice(n, k, replace=False)].astype(np.float64)
    A = rng.normal(size=(k, d, d))
    covariances = A @ A.transpose(0, 2, 1) + d * np.eye(d)
    U = _covariance.model("full").layout.precision_cholesky(covariances).astype(dtype)
    weights = np.array([0.5, 0.3, 0.2])
    N, S, W, loglik = _per_component_pass(module, X, (weights, means.astype(dtype), U),
                                          _models.FULL_LOOPS)
    Xd, Ud, md = X.astype(np.float64), U.astype(np.float64), means.astype(dtype).astype(np.float64)
    z = np.einsum("ncd,cde->nce", Xd[:, None, :] - md, Ud)
    log_joint = (np.log(weights) + np.log(np.diagonal(Ud, axis1=1, axis2=2)).sum(axis=1)
                 - 0.5 * d * np.log(2 * np.pi) - 0.5 * np.einsum("nce,nce->nc", z, z))
    resp = np.exp(log_joint - logsumexp(log_joint, axis=1, keepdims=True))
    centred = Xd[:, None, :] - md
    # float32 data take a float32-accurate exp: errors relative to the sums
    # of absolute terms (the centred sums cancel)
    rtol = 1e-10 if dtype == np.float64 else 1e-6
    assert_allclose(loglik, logsumexp(log_joint, axis=1).sum(), rtol=rtol)
    assert_allclose(N, resp.sum(axis=0), rtol=rtol)
    for actual, terms in ((S, resp[:, :, None] * centred),
                          (W, resp[:, :, None, None] * centred[:, :, :, None]
                           * centred[:, :, None, :])):
        lower = np.tril(np.ones((d, d), dtype=bool)) if actual is W else slice(None)
        error = np.abs(actual - terms.sum(axis=0))[:, lower]
        assert np.all(error <= rtol * np.abs(terms).sum(axis=0)[:, lower])


def test_full_loops_refuse_more_features_than_their_copies():
    d = FULL_LOOPS_MAX_DIM + 1
    X = np.random.default_rng(0).standard_normal((50, d))
    with pytest.raises(ValueError, match="FULL_LOOPS runs up to"):
        _per_component_pass(baseline, X, (np.ones(1), X[:1], np.eye(d)[None]),
                            _models.FULL_LOOPS)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("d, k, spacing", [(2, 3, 4.0), (12, 3, 4.0), (40, 3, 4.0),
                                           (80, 16, 1.0)])
def test_common_centre_modes_match_per_component_modes(monkeypatch, covariance_type, d, k,
                                                       spacing):
    """The GEMM modes (statistics around one centre) give the same M-step as the
    per-component modes they fall back to when the centre is too far away
    (d = 80 with 16 components: the quadratic GEMM's extended range)."""
    rng = np.random.default_rng(d)
    n = 500 * k
    X = rng.standard_normal((n, d)) + rng.integers(0, k, n)[:, None] * spacing + 1e3
    gm = GaussianMixture(k, covariance_type=covariance_type, random_state=0).fit(X)
    params = Parameters(gm.weights_, gm.means_, gm.covariances_, gm.precisions_cholesky_)
    results, modes = [], []
    for limit in (_models.COMMON_CENTER_LIMIT, 0.0):
        monkeypatch.setattr(_models, "COMMON_CENTER_LIMIT", limit)
        stats, loglik = e_step_statistics(X, np.empty(0), params, covariance_type, 2)
        modes.append(_models.kernel_parameters(np.log(gm.weights_), gm.means_, gm.precisions_cholesky_,
                                               covariance_type, X.dtype).mode)
        results.append((loglik, parameters_from_statistics(stats, covariance_type, 1e-6,
                                                           X.dtype)))
    # both mechanisms really ran
    assert modes[1] in (_models.FULL_LOOPS, _models.FULL_BLAS, _models.DIAG_LOOPS)
    assert modes[0] in (_models.FULL_GEMM, _models.DIAG_GEMM) or d <= _models.SMALL_DIM
    (la, a), (lb, b) = results
    assert_allclose(la, lb, rtol=1e-12)
    for name in ("weights", "means", "covariances", "precisions_cholesky"):
        assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("covariance_type, mode", [("full", _models.FULL_GEMM),
                                                   ("diag", _models.DIAG_GEMM),
                                                   ("spherical", _models.DIAG_GEMM)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("budget", [1 << 40, 0])   # per-thread slots, one shared slot
def test_far_component_runs_on_its_own_within_the_gemm_pass(monkeypatch, covariance_type, mode,
                                                            dtype, budget):
    """One component far from the common centre no longer sends the whole
    pass to the per-component mode: the GEMM mode keeps the others and runs
    that one around its own mean, with the statistics, log-likelihood and
    predictions of the per-component pass."""
    from gaussmix import _em
    monkeypatch.setattr(_em, "ACCUMULATOR_BUDGET", budget)
    rng = np.random.default_rng(17)
    d, k, n = 12, 4, 4000
    centers = np.zeros((k, d))
    centers[1:3, 0] = [6.0, 12.0]
    centers[3, 1] = 3000.0
    X = (rng.standard_normal((n, d)) + centers[np.arange(n) % k]).astype(dtype)
    gm = GaussianMixture(k, covariance_type=covariance_type, means_init=centers,
                         random_state=0).fit(X)
    params = Parameters(gm.weights_, gm.means_, gm.covariances_, gm.precisions_cholesky_)
    kp = _models.kernel_parameters(np.log(gm.weights_), gm.means_, gm.precisions_cholesky_,
                                   covariance_type, X.dtype)
    assert kp.mode == mode
    assert [bool(np.any(row)) for row in kp.prec] == [False, False, False, True]
    results = []
    for limit in (_models.COMMON_CENTER_LIMIT, 0.0):
        monkeypatch.setattr(_models, "COMMON_CENTER_LIMIT", limit)
        stats, loglik = e_step_statistics(X, np.empty(0, X.dtype), params, covariance_type, 2)
        gm.means_ = gm.means_.copy()     # a new array: the kernel constants are rebuilt
        results.append((loglik, parameters_from_statistics(stats, covariance_type, 1e-6,
                                                           X.dtype),
                        gm.predict_proba(X), gm.score_samples(X)))
    (la, a, pa, sa), (lb, b, pb, sb) = results
    rtol = 1e-12 if dtype == np.float64 else 1e-6
    # the common centre's last bits move the expansion's rounding: 1.3e-12 seen
    assert_allclose(la, lb, rtol=5 * rtol)
    for name in ("weights", "means", "covariances", "precisions_cholesky"):
        assert_allclose(getattr(a, name), getattr(b, name), rtol=1e3 * rtol, atol=1e3 * rtol)
    assert_allclose(pa, pb, rtol=1e3 * rtol, atol=1e3 * rtol)
    assert_allclose(sa, sb, rtol=rtol)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_separated_clusters_match_scikit_learn(covariance_type):
    """Well-separated clusters, where most responsibilities underflow to exactly
    0 and the GEMM modes add only the nonzero ones (statistics_product), next
    to overlapping clusters in later chunks (the GEMM): the same iterations
    as scikit-learn."""
    from sklearn.mixture import GaussianMixture as SkGaussianMixture
    rng = np.random.default_rng(5)
    d, k = 12, 8
    centers = np.zeros((k, d))
    centers[:4] = rng.normal(scale=60.0, size=(4, d))   # about 200 sd apart
    centers[4:, 0] = [0.0, 1.0, 2.0, 3.0]               # four overlapping ones
    labels = np.concatenate([np.arange(2048) % 4, 4 + np.arange(2048) % 4])
    X = rng.standard_normal((labels.size, d)) + centers[labels]
    init = dict(weights_init=np.full(k, 1 / k), means_init=centers + 0.3,
                precisions_init={"full": np.stack([np.eye(d)] * k), "tied": np.eye(d),
                                 "diag": np.ones((k, d)), "spherical": np.ones(k)}[covariance_type])
    fits = [cls(k, covariance_type=covariance_type, max_iter=3, tol=0, random_state=0,
                **init).fit(X) for cls in (GaussianMixture, SkGaussianMixture)]
    ours, theirs = fits
    # the separated rows' responsibilities are mostly exactly zero (the sparse
    # path), the overlapping rows' are not (the GEMM)
    proba = ours.predict_proba(X)
    assert np.count_nonzero(proba[:2048]) <= 2048 * k / 4
    assert np.count_nonzero(proba[2048:]) >= 2048 * k / 2
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        assert_allclose(getattr(ours, name), getattr(theirs, name), rtol=1e-7, atol=1e-10)
    assert_allclose(ours.lower_bound_, theirs.lower_bound_, rtol=1e-10)


def _overlapping_mixture(covariance_type, d=10, k=5, offset=5.0, seed=3):
    """Float64 X of k overlapping clusters a few standard deviations from the
    origin, and the fitted float64 Parameters."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((3000, d)) + rng.normal(scale=2.0, size=(k, d))[np.arange(3000) % k]
    X += offset
    gm = GaussianMixture(k, covariance_type=covariance_type, random_state=0).fit(X)
    return X, Parameters(gm.weights_, gm.means_, gm.covariances_, gm.precisions_cholesky_)


@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_single_precision_log_density_is_within_float32_accuracy(covariance_type):
    """float32 X: the log-density GEMM in single precision (coef float32) gives
    the log-likelihood and M-step of the float64 pass on the unrounded rows to
    float32 accuracy (a few eps32 = 6e-8 relative; measured up to 3.5e-7)."""
    X64, params = _overlapping_mixture(covariance_type)
    X32 = X64.astype(np.float32)
    params32 = Parameters(*(np.asarray(getattr(params, a), dtype=np.float32) for a in
                            ("weights", "means", "covariances", "precisions_cholesky")))
    kp = _models.kernel_parameters(np.log(params32.weights), params32.means,
                                   params32.precisions_cholesky, covariance_type, np.float32)
    assert kp.mode == _models.FULL_GEMM and kp.coef.dtype == np.float32
    reference = e_step_statistics(X64, np.empty(0), params32, covariance_type, 2)
    stats, loglik = e_step_statistics(X32, np.empty(0, np.float32), params32, covariance_type, 2)
    step = parameters_from_statistics(stats, covariance_type, 1e-6, np.float64)
    ref_step = parameters_from_statistics(reference[0], covariance_type, 1e-6, np.float64)
    errors = [abs(loglik - reference[1]) / X64.shape[0]] + [
        np.max(np.abs(getattr(step, a) - getattr(ref_step, a)))
        / np.max(np.abs(getattr(ref_step, a))) for a in ("weights", "means", "covariances")]
    assert np.all(np.array(errors) <= 1e-6), errors


def _anisotropic_pairs(seed=2, d=16, n=4000):
    """Float64 X of two far-apart pairs of overlapping anisotropic clusters
    (covariances A A^T, A entries N(0, 1/d)): the components lie far from the
    common centre in their own narrow metric, and the rows of each pair split
    their responsibility. Returns X and the fitted float32 Parameters."""
    rng = np.random.default_rng(seed)
    k = 4
    pair = rng.normal(scale=2.0, size=(1, d)) * np.array([[1.0], [1.0], [-1.0], [-1.0]])
    centers = pair + rng.normal(scale=0.3, size=(k, d))
    labels = np.arange(n) % k
    factors = rng.normal(scale=1 / np.sqrt(d), size=(k, d, d))
    X = centers[labels] + np.einsum("nd,ned->ne", rng.standard_normal((n, d)), factors[labels])
    gm = GaussianMixture(k, covariance_type="full", reg_covar=1e-3, random_state=0).fit(X)
    return X, Parameters(*(np.asarray(getattr(gm, a), dtype=np.float32) for a in
                           ("weights_", "means_", "covariances_", "precisions_cholesky_")))


@pytest.mark.parametrize("d", [16, 13])    # 13: U_k's columns past the last multiple of 8
def test_single_precision_refined_where_it_matters(monkeypatch, d):
    """The single-precision GEMM's log-densities of refined components that can
    matter are recomputed in double: with every component refined, the float32
    pass gives the float64 pass's log-likelihood and M-step on the same
    (float32) rows and parameters to 1e-12, where the single-precision values
    alone are off by 1e-6 to 1e-5 on these far, narrow components."""
    X64, params32 = _anisotropic_pairs(d=d)
    X32 = X64.astype(np.float32)
    monkeypatch.setattr(_models, "SINGLE_PRECISION_REACH", 0.0)
    monkeypatch.setattr(_models, "SINGLE_REFINED_MIN_DIM", d)
    kp = _models.kernel_parameters(np.log(params32.weights), params32.means,
                                   params32.precisions_cholesky, "full", np.float32)
    assert kp.coef.dtype == np.float32 and np.all(kp.exact[:, 1 + d] > 0)   # all refined
    kp64 = _models.kernel_parameters(np.log(params32.weights), params32.means,
                                     params32.precisions_cholesky, "full", np.float64)
    reference = pass_statistics(X32.astype(np.float64), np.empty(0), kp64, 2)
    ref_step = parameters_from_statistics(reference[0], "full", 1e-3, np.float64)

    def errors(kernel_params):
        stats, loglik = pass_statistics(X32, np.empty(0, np.float32), kernel_params, 2)
        step = parameters_from_statistics(stats, "full", 1e-3, np.float64)
        return np.array([abs(loglik - reference[1]) / X64.shape[0]] + [
            np.max(np.abs(getattr(step, a) - getattr(ref_step, a)))
            / np.max(np.abs(getattr(ref_step, a))) for a in ("weights", "means", "covariances")])

    refined = errors(kp)
    assert np.all(refined <= 1e-12), refined
    unrefined = errors(kp._replace(exact=np.empty((0, 0))))
    assert np.max(unrefined) >= 1e-6, unrefined     # the data exercise the refinement


def test_single_precision_refines_only_far_from_the_centre(monkeypatch):
    """float32 X: FULL_GEMM's log-density GEMM is in single precision; only
    components beyond SINGLE_PRECISION_REACH from the common centre in their
    own metric have their log-densities refined (none here: no ``exact``,
    until one is moved away, which takes the others past it too), and only
    from SINGLE_REFINED_MIN_DIM features (below, the GEMM stays double).
    float64 X and the diagonal GEMM stay double."""
    X64, params = _overlapping_mixture("full", offset=0.0)
    log_weights = np.log(params.weights)
    d = X64.shape[1]
    near = _models.kernel_parameters(log_weights, params.means, params.precisions_cholesky,
                                     "full", np.float32)
    assert near.coef.dtype == np.float32 and near.exact.size == 0
    as_f64 = _models.kernel_parameters(log_weights, params.means, params.precisions_cholesky,
                                       "full", np.float64)
    assert as_f64.coef.dtype == np.float64 and as_f64.exact.size == 0
    diag = _models.kernel_parameters(log_weights, params.means,
                                     np.diagonal(params.precisions_cholesky, axis1=1, axis2=2),
                                     "diag", np.float32)
    assert diag.mode == _models.DIAG_GEMM and diag.coef.dtype == np.float64
    means = params.means.copy()
    means[0] += 200.0       # R^2 ~ 10 * 200^2 / var: past SINGLE_PRECISION_REACH
    narrow = _models.kernel_parameters(log_weights, means, params.precisions_cholesky, "full",
                                       np.float32)
    assert narrow.coef.dtype == np.float64 and narrow.exact.size == 0     # d < 32
    monkeypatch.setattr(_models, "SINGLE_REFINED_MIN_DIM", d)
    far = _models.kernel_parameters(log_weights, means, params.precisions_cholesky, "full",
                                    np.float32)
    assert far.mode == _models.FULL_GEMM and far.coef.dtype == np.float32
    assert far.exact[0, 1 + d] != 0                 # [offset, mu_0, U_0]
    assert_allclose(far.exact[0, 1:1 + d], means[0])
    assert_allclose(far.exact[0, 1 + d:].reshape(d, d), params.precisions_cholesky[0])


@pytest.mark.parametrize("d", [2, 12])     # FULL_LOOPS, FULL_GEMM
def test_float32_responsibilities_match_double_reference(d):
    """float32 data take a shorter exp polynomial (and, near the centre, a
    float32 log-density GEMM at d = 12): the responsibilities of d = 2 (loops,
    every other step in double) still match a float64 scipy reference on the
    same rows to 1e-10, and the GEMM mode's to float32 accuracy."""
    from scipy.special import softmax
    rng = np.random.default_rng(d)
    k = 3
    X = (rng.standard_normal((3000, d)) + rng.normal(scale=1.5, size=(k, d))[
        np.arange(3000) % k]).astype(np.float32)
    gm = GaussianMixture(k, covariance_type="full", random_state=0).fit(X)
    # in float64 from the float32 parameters the kernels take (U: precision Cholesky)
    U = gm.precisions_cholesky_.astype(np.float64)
    z = np.einsum("ncd,cde->nce", X.astype(np.float64)[:, None, :] - gm.means_.astype(np.float64),
                  U)
    log_joint = (np.log(gm.weights_.astype(np.float64))
                 + np.log(np.diagonal(U, axis1=1, axis2=2)).sum(axis=1)
                 - 0.5 * np.einsum("nce,nce->nc", z, z))
    expected = softmax(log_joint, axis=1)
    rtol = 1e-10 if d == 2 else 1e-5
    assert_allclose(gm.predict_proba(X), expected.astype(np.float32), rtol=1e-6, atol=1e-7)
    stats, _ = e_step_statistics(X, np.empty(0, np.float32), Parameters(
        gm.weights_.astype(np.float64), gm.means_, gm.covariances_, gm.precisions_cholesky_),
        "full", 2)
    assert_allclose(stats.N, expected.sum(axis=0), rtol=rtol)
