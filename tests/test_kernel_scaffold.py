"""Kernel memory: scratch sized for the mode it runs, and accumulators bounded
independently of the thread count (one shared slot beyond a budget), with the
same statistics as per-thread slots."""
import subprocess
import sys
import textwrap
import tracemalloc

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from gaussmix import GaussianMixture, _covariance, _em, _models
from gaussmix._em import Parameters, Statistics, responsibility_statistics
from gaussmix._kernels import suffstats

from conftest import e_step_statistics

MIB = 1 << 20


def run_isolated(code, timeout=300):
    """Run MEASURE + ``code`` in a fresh interpreter; it prints the MiB it measured."""
    result = subprocess.run([sys.executable, "-c", MEASURE + textwrap.dedent(code)],
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return float(result.stdout.split()[-1])


# Peak resident memory grown since ``mark()``, in a process whose address space
# may grow by at most 1 GiB: a d x d scratch buffer (3.2 GB at d = 20,000) is
# never touched by the diagonal modes, so it would not show in RSS, but its
# malloc fails under the limit.
MEASURE = """
import resource
import numpy as np

def rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

def limit_address_space():
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[0])
    limit = pages * resource.getpagesize() + (1 << 30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and RLIMIT_AS")
def test_diagonal_kernels_stay_order_kd():
    """The compiled passes on 300 x 20,000 data, k = 2, diagonal factors: under
    100 MB above X in every diagonal mode (the scratch is the same for a shared
    accumulator slot)."""
    code = """
    from gaussmix import _models
    from gaussmix._kernels import estep, suffstats

    k = 2

    def passes(X):
        d = X.shape[1]
        means = X[:k].copy()
        p = np.ones((k, d))                   # diagonal precision Cholesky factors
        center = means.mean(axis=0)
        m = means - center
        offsets = np.log(np.full(k, 0.5)) - 0.5 * d * np.log(2 * np.pi)
        modes = {
            _models.DIAG_GEMM: (np.ascontiguousarray(np.broadcast_to(center, (k, d))),
                                np.empty((0, 0)),
                                np.ascontiguousarray(np.hstack([-2 * m, p]).T),
                                offsets - 0.5 * (m ** 2).sum(axis=1)),
            _models.DIAG_LOOPS: (means, p, np.empty((0, 0)), offsets),
        }
        for mode, (shift, prec, coef, offs) in modes.items():
            suffstats.em_pass(X, np.empty(0), shift, prec, coef, np.empty((0, 0)), offs, mode,
                              *accumulators(d), np.zeros(2))
            estep.e_step(X, shift, prec, coef, np.empty((0, 0)), offs, mode, np.empty(len(X)),
                         np.empty(0, np.intp), np.empty((0, k)), 2)
        suffstats.accumulate_responsibilities(X, np.full((len(X), k), 0.5),
                                              modes[_models.DIAG_GEMM][0], _models.DIAG_GEMM,
                                              *accumulators(d))

    def accumulators(d):                      # two threads' slots
        return np.zeros((2, k)), np.zeros((2, k, d)), np.zeros((2, k, d))

    X = np.random.default_rng(0).standard_normal((300, 20_000))
    passes(X[:2, :8].copy())                  # threads and BLAS buffers exist
    passes(X[:200, :64].copy())
    base = rss_mib()
    limit_address_space()
    passes(X)
    print(rss_mib() - base)
    """
    assert run_isolated(code) < 100


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and RLIMIT_AS")
@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
def test_diagonal_fit_stays_order_kd(covariance_type):
    """A diag or spherical fit of 300 x 20,000 float64, k = 2: under 100 MB above X."""
    code = f"""
    import warnings
    from gaussmix import GaussianMixture

    X = np.random.default_rng(0).standard_normal((300, 20_000))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        GaussianMixture(2, covariance_type="{covariance_type}", max_iter=2,
                        random_state=0).fit(X[:50, :20])
    base = rss_mib()
    limit_address_space()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        GaussianMixture(2, covariance_type="{covariance_type}", max_iter=3,
                        random_state=0).fit(X)
    print(rss_mib() - base)
    """
    assert run_isolated(code) < 100


def full_parameters(rng, k, d, covariance_type="full", offset=0.0):
    """Parameters of a k-component model around data of d features."""
    means = rng.standard_normal((k, d)) * 3 + offset
    cov = np.eye(d) + 0.1 * np.ones((d, d))
    covariances = {"full": np.stack([cov] * k), "tied": cov,
                   "diag": np.tile(np.diag(cov), (k, 1)),
                   "spherical": np.full(k, 1.1)}[covariance_type]
    prec_chol = _covariance.model(covariance_type).layout.precision_cholesky(covariances)
    return Parameters(np.full(k, 1 / k), means, covariances, prec_chol)


@pytest.mark.slow
def test_accumulators_do_not_grow_with_threads():
    """16 threads, 32 components of 512 features: the statistics of a pass take
    at most the budget plus one k x d x d copy (per-thread slots: 16 copies)."""
    rng = np.random.default_rng(0)
    k, d, threads = 32, 512, 16
    params = full_parameters(rng, k, d)
    X = rng.standard_normal((300, d))
    kp = _models.kernel_parameters(np.log(params.weights), params.means, params.precisions_cholesky,
                                   "full", X.dtype)
    one_copy = 8 * k * (1 + d + d * d)
    tracemalloc.start()
    try:
        stats = Statistics.zeros(kp.shift, kp.mode, threads)
        loglik = np.zeros(len(stats.N))
        suffstats.em_pass(X, np.empty(0), kp.shift, kp.prec, kp.coef, kp.exact, kp.offsets,
                          kp.mode, stats.N, stats.S, stats.W, loglik, threads)
        reduced = stats.reduced()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= _em.ACCUMULATOR_BUDGET + one_copy + MIB
    assert reduced.N.sum() == pytest.approx(len(X))


# (covariance_type, d, k, common-centre limit): every kernel mode
MODES = [("full", 2, 5, None),          # FULL_LOOPS
         ("full", 12, 5, None),         # FULL_GEMM
         ("full", 60, 5, None),         # FULL_BLAS
         ("diag", 12, 5, None),         # DIAG_GEMM
         ("spherical", 12, 5, 0.0)]     # DIAG_LOOPS


@pytest.fixture(params=MODES, ids=lambda m: f"{m[0]}-d{m[1]}-limit{m[3]}")
def mode_case(request, monkeypatch):
    covariance_type, d, k, limit = request.param
    if limit is not None:
        monkeypatch.setattr(_models, "COMMON_CENTER_LIMIT", limit)
    rng = np.random.default_rng(d)
    X = rng.standard_normal((2000, d)) * 2 + 5
    weights = rng.uniform(0.2, 2.0, len(X))
    params = full_parameters(rng, k, d, covariance_type, offset=5)
    return X, weights, params, covariance_type


def shared_and_per_thread(monkeypatch, compute, threads=3):
    """compute() with per-thread slots, then twice with one shared slot."""
    monkeypatch.setattr(_em, "ACCUMULATOR_BUDGET", 1 << 40)
    per_thread = compute(threads)
    monkeypatch.setattr(_em, "ACCUMULATOR_BUDGET", 0)
    return per_thread, compute(threads), compute(threads)


def assert_statistics(a, b, equal):
    check = assert_array_equal if equal else (
        lambda x, y: assert_allclose(x, y, rtol=1e-10, atol=1e-9))
    for name in ("N", "S", "W"):
        check(getattr(a, name), getattr(b, name))


def test_shared_slot_pass_matches_per_thread_slots(monkeypatch, mode_case):
    X, weights, params, covariance_type = mode_case

    def compute(threads):
        return e_step_statistics(X, weights, params, covariance_type, threads)

    (a, la), (b, lb), (c, lc) = shared_and_per_thread(monkeypatch, compute)
    assert_statistics(a, b, equal=False)
    assert la == pytest.approx(lb, rel=1e-12)
    assert_statistics(b, c, equal=True)          # reproducible
    assert lb == lc


@pytest.mark.parametrize("covariance_type, d", [("full", 2), ("full", 30), ("diag", 12)])
def test_shared_slot_given_responsibilities_match_per_thread_slots(monkeypatch,
                                                                   covariance_type, d):
    rng = np.random.default_rng(1)
    k = 4
    X = rng.standard_normal((1500, d)) + 3
    resp = rng.dirichlet(np.ones(k), len(X))
    shift = X[:k]

    def compute(threads):
        return responsibility_statistics([(X[:700], resp[:700]), (X[700:], resp[700:])],
                                         shift, X.dtype, covariance_type, threads,
                                         n_rows=len(X))

    a, b, c = shared_and_per_thread(monkeypatch, compute)
    assert_statistics(a, b, equal=False)
    assert_statistics(b, c, equal=True)


def test_fit_with_shared_slot_equals_fit_with_per_thread_slots(monkeypatch):
    rng = np.random.default_rng(2)
    X = np.concatenate([rng.standard_normal((400, 6)) + 4 * i for i in range(3)])

    def compute(threads):
        return GaussianMixture(3, random_state=0, n_threads=threads).fit(X)

    a, b, c = shared_and_per_thread(monkeypatch, compute)
    assert_allclose(a.means_, b.means_, rtol=1e-10)
    assert_allclose(a.covariances_, b.covariances_, rtol=1e-9, atol=1e-12)
    assert_array_equal(b.covariances_, c.covariances_)
