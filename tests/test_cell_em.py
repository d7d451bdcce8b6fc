"""The compiled EM of a model-selection cell (``suffstats.cell_em``) against
the numpy loop it replaces (``_selection_em._numpy_em``: the threaded pass
and ``_parsimonious``' M-steps), which tests/test_selection.py and
tests/test_parsimonious.py check against scikit-learn and R's mclust."""
import numpy as np
import pytest
from numpy.testing import assert_allclose

from gaussmix import _models, _selection_em
from gaussmix._kernels import suffstats
from gaussmix._parsimonious import MODELS

SETTINGS = dict(tol=1e-6, reg_covar=1e-6, max_iter=400)


def _data(faithful_X, weighted):
    weights = np.random.default_rng(3).uniform(0.2, 3.0, faithful_X.shape[0]) if weighted else None
    return _selection_em.GridData(faithful_X, weights)


def _start(data, k, covariance_type, seed=0):
    labels = np.random.default_rng(seed).permutation(np.arange(data.n_samples) % k)
    return _selection_em.partition_parameters(data, labels, k, covariance_type, 1e-6)


def _compiled_only(monkeypatch):
    """Make a fall back to the numpy loop an error."""
    def refuse(*args):
        raise AssertionError("the compiled loop fell back to the numpy loop")
    monkeypatch.setattr(_selection_em, "_numpy_em", refuse)


@pytest.mark.parametrize("covariance_type", MODELS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("k", [1, 3, 5])
def test_compiled_em_runs_the_numpy_loops_iterations(faithful_X, monkeypatch, covariance_type,
                                                      weighted, k):
    data = _data(faithful_X, weighted)
    start = _start(data, k, covariance_type)
    expected = _selection_em._numpy_em(data, covariance_type, start, SETTINGS["tol"],
                                       SETTINGS["reg_covar"], SETTINGS["max_iter"], 1)
    _compiled_only(monkeypatch)
    fit = _selection_em.em(data, covariance_type, start, **SETTINGS)
    assert fit.converged == expected.converged
    # the same iterations up to rounding; a slow ascent may stop one step apart
    assert abs(fit.n_iter - expected.n_iter) <= 1
    steps = min(fit.n_iter, expected.n_iter)
    assert_allclose(fit.lower_bounds[:steps], expected.lower_bounds[:steps], rtol=1e-9, atol=1e-9)
    if fit.n_iter == expected.n_iter:
        assert_allclose(fit.params.weights, expected.params.weights, rtol=1e-6, atol=1e-9)
        assert_allclose(fit.params.means, expected.params.means, rtol=1e-6, atol=1e-7)
        assert_allclose(fit.params.covariances, expected.params.covariances, rtol=1e-6,
                        atol=1e-7)
        assert_allclose(fit.params.precisions_cholesky, expected.params.precisions_cholesky,
                        rtol=1e-5, atol=1e-7)
    assert fit.params.covariances.shape == expected.params.covariances.shape


def test_compiled_em_stops_at_max_iter_and_resumes(faithful_X, monkeypatch):
    data = _data(faithful_X, False)
    start = _start(data, 4, "VVE")
    _compiled_only(monkeypatch)
    whole = _selection_em.em(data, "VVE", start, **SETTINGS)
    settings = dict(SETTINGS, max_iter=5)
    head = _selection_em.em(data, "VVE", start, **settings)
    assert head.n_iter == 5 and not head.converged
    rest = _selection_em.resume(data, "VVE", head, **SETTINGS)
    assert rest.n_iter == whole.n_iter
    assert_allclose(rest.lower_bounds, whole.lower_bounds, rtol=1e-12)


@pytest.mark.parametrize("covariance_type", ["VVV", "VEV", "VVE", "VEI", "VVI"])
def test_a_failing_m_step_raises_the_numpy_loops_error(covariance_type):
    # a cluster of three copies of one point: without reg_covar its
    # covariance collapses in the first M-step
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(60, 2)), np.tile([[8.0, 8.0]], (3, 1))])
    data = _selection_em.GridData(X)
    labels = np.r_[np.zeros(60, dtype=np.intp), np.ones(3, dtype=np.intp)]
    start = _selection_em.partition_parameters(data, labels, 2, covariance_type, 1e-3)
    with pytest.raises(ValueError) as numpy_error:
        _selection_em._numpy_em(data, covariance_type, start, 1e-8, 0.0, 50, 1)
    with pytest.raises(ValueError) as compiled_error:
        _selection_em.em(data, covariance_type, start, tol=1e-8, reg_covar=0.0, max_iter=50)
    assert str(compiled_error.value) == str(numpy_error.value)


def test_cell_em_rejects_malformed_arguments(faithful_X):
    X = np.ascontiguousarray(faithful_X)
    k, d = 2, X.shape[1]
    args = dict(weights=np.full(k, 0.5), means=X[:k].copy(), covariances=np.tile(np.eye(d).ravel(),
                                                                                 (k, 1)))

    def run(mode=_models.FULL_LOOPS, lower_bounds=10, model=MODELS.index("VVV"), **changes):
        a = dict(args, **changes)
        return suffstats.cell_em(X, np.empty(0), model, mode, a["weights"],
                                 a["means"], a["covariances"], 1e-6, 1e-5, 10, float(len(X)),
                                 np.empty(lower_bounds), np.empty((k, d * d)))

    assert run()[0] > 0
    with pytest.raises(ValueError, match="per-component modes"):
        run(mode=_models.FULL_GEMM)
    with pytest.raises(ValueError, match="covariances"):
        run(covariances=np.ones((k, d)))
    with pytest.raises(ValueError, match="means"):
        run(means=np.zeros((k + 1, d)))
    with pytest.raises(ValueError, match="lower-bound"):
        run(lower_bounds=5)
    with pytest.raises(ValueError, match="unknown mclust model"):
        run(model=14)
    with pytest.raises(ValueError, match="stores diagonals"):
        run(model=MODELS.index("VVI"))  # a diagonal model in a full mode


@pytest.mark.parametrize("covariance_type", MODELS)
@pytest.mark.parametrize("weighted", [False, True])
def test_compiled_partition_start_equals_numpys(faithful_X, monkeypatch, covariance_type,
                                                weighted):
    data = _data(faithful_X, weighted)
    labels = np.random.default_rng(1).permutation(np.arange(data.n_samples) % 4)
    expected = _selection_em._numpy_partition_parameters(data, labels, 4, covariance_type, 1e-6)
    monkeypatch.setattr(_selection_em, "_numpy_partition_parameters", None)  # no fall back
    start = _selection_em.partition_parameters(data, labels, 4, covariance_type, 1e-6)
    for name in ("weights", "means", "covariances", "precisions_cholesky"):
        assert_allclose(getattr(start, name), getattr(expected, name), rtol=1e-9, atol=1e-12,
                        err_msg=name)


def test_partition_start_rejects_an_empty_cluster(faithful_X):
    data = _data(faithful_X, False)
    labels = np.arange(data.n_samples) % 3
    with pytest.raises(ValueError, match="empty cluster"):
        _selection_em.partition_parameters(data, labels, 4, "VVV", 1e-6)
    with pytest.raises(ValueError, match="cover 0..3"):
        suffstats.cell_start(data.X, np.empty(0), labels, 13, 1e-6, np.empty(4),
                             np.empty((4, 2)), np.empty((4, 4)), np.empty((4, 4)))


@pytest.mark.parametrize("d", [1, 2, 3, 5, 8, 9])
@pytest.mark.parametrize("covariance_type", ["VVV", "EEE", "VEV", "EVE", "VEI", "EII"])
def test_compiled_em_in_every_kernel_mode(monkeypatch, d, covariance_type):
    """d = 1 ... 8 run the row loops (a copy per d, FULL_LOOPS_MAX_DIM), d = 9
    the per-component BLAS calls, d = 1 the degenerate shapes."""
    rng = np.random.default_rng(d)
    centres = rng.normal(scale=4.0, size=(3, d))
    X = np.vstack([c + rng.normal(size=(100, d)) @ rng.normal(size=(d, d)) / np.sqrt(d)
                   for c in centres])
    data = _selection_em.GridData(X, rng.uniform(0.5, 2.0, X.shape[0]))
    start = _start(data, 3, covariance_type, seed=d)
    expected = _selection_em._numpy_em(data, covariance_type, start, SETTINGS["tol"],
                                       SETTINGS["reg_covar"], SETTINGS["max_iter"], 1)
    _compiled_only(monkeypatch)
    fit = _selection_em.em(data, covariance_type, start, **SETTINGS)
    assert abs(fit.n_iter - expected.n_iter) <= 1
    steps = min(fit.n_iter, expected.n_iter)
    assert_allclose(fit.lower_bounds[:steps], expected.lower_bounds[:steps], rtol=1e-9, atol=1e-9)
    assert_allclose(fit.params.means, expected.params.means, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("covariance_type, k", [("VVI", 6), ("EEI", 3), ("VVV", 3), ("VEV", 4)])
def test_compiled_em_on_many_rows_and_threads(monkeypatch, covariance_type, k):
    """Beyond SMALL_ROWS the diagonal models, and full ones with few
    components, still run compiled, their passes threaded (slots summed in
    order): the numpy loop's iterations, whatever the thread count."""
    rng = np.random.default_rng(k)
    n = _selection_em.SMALL_ROWS + 3000
    X = rng.normal(size=(n, 3)) @ rng.normal(size=(3, 3)) + rng.integers(0, 3, (n, 1)) * 4.0
    data = _selection_em.GridData(X)
    assert data.cell_mode(covariance_type, k) is not None
    assert data.cell_mode("VVV", _selection_em.CELL_LOOPS_MAX_COMPONENTS + 1) is None
    start = _start(data, k, covariance_type)
    expected = _selection_em._numpy_em(data, covariance_type, start, SETTINGS["tol"],
                                       SETTINGS["reg_covar"], 60, 2)
    _compiled_only(monkeypatch)
    for n_threads in (1, 2):
        fit = _selection_em.em(data, covariance_type, start, **dict(SETTINGS, max_iter=60),
                               n_threads=n_threads)
        steps = min(fit.n_iter, expected.n_iter)
        assert abs(fit.n_iter - expected.n_iter) <= 1
        assert_allclose(fit.lower_bounds[:steps], expected.lower_bounds[:steps], rtol=1e-9)
        assert_allclose(fit.params.means, expected.params.means, rtol=1e-5, atol=1e-6)


def test_threads_only_where_the_rows_pay_for_them(faithful_X, monkeypatch):
    """A cell's passes get the caller's threads on many rows, one on a few
    hundred (waking a team per iteration cost ten times the fit), and one in a
    forked child whatever the rows."""
    from gaussmix import _threading
    # conftest lowers the rule's threshold to 1; put it between the two data
    # sets' work per pass (272 and 40000 rows of about 100 flops each)
    monkeypatch.setattr(_threading, "MIN_FLOPS_PER_THREAD", 100_000)
    calls = []
    cell_em = suffstats.cell_em

    class Spy:   # the compiled module's attributes are read-only: wrap it
        def __getattr__(self, name):
            return getattr(suffstats, name)

        def cell_em(self, *args):
            calls.append(args[-1])
            return cell_em(*args)

    monkeypatch.setattr(_selection_em, "suffstats", Spy())
    small = _data(faithful_X, False)
    rng = np.random.default_rng(0)
    large = _selection_em.GridData(rng.normal(size=(40000, 3)) + rng.integers(0, 3, (40000, 1)))
    for data in (small, large):
        _selection_em.em(data, "VVI", _start(data, 3, "VVI"), **dict(SETTINGS, max_iter=3),
                         n_threads=2)
    assert calls == [1, 2]
    monkeypatch.setattr(_threading._ForkState, "serial", True)
    _selection_em.em(large, "VVI", _start(large, 3, "VVI"), **dict(SETTINGS, max_iter=3),
                     n_threads=2)
    assert calls[-1] == 1
