"""mclust models in the estimator, and model selection against R's mclust.

tests/data/mclust_<name>_loglik.csv holds mclust 6.0.0's fit of every cell
(1-9 components x 14 models) of Old Faithful, diabetes and iris (the data
sets as tests/data/<name>.csv), made by tools/mclust_reference.R.
"""
import csv
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from gaussmix import GaussianMixture, ModelSelection, _selection, _selection_em, select_model
from gaussmix._covariance import model


def layout(covariance_type):
    return model(covariance_type).layout.name
from gaussmix._parsimonious import MODELS

from conftest import (FITTED_ARRAYS, assert_clear_error, assert_sane_model, blobs_5d,
                      fit_or_reject, hand_init_kwargs, two_blobs)

DATA = Path(__file__).parent / "data"
REFERENCE = DATA / "mclust_faithful_loglik.csv"
ALIASES = {"full": "VVV", "tied": "EEE", "diag": "VVI", "spherical": "VII"}


@pytest.fixture(scope="module")
def mclust_reference():
    with open(REFERENCE) as file:
        return {(int(row["n_components"]), row["model"]): row for row in csv.DictReader(file)}


@pytest.fixture(scope="module")
def faithful_selection(faithful_X):
    return select_model(faithful_X, n_jobs=2)


# ------------------------------------------------------------ the estimator


@pytest.mark.parametrize("sklearn_name, mclust_name", ALIASES.items())
@pytest.mark.parametrize("init_params", ["kmeans", "random"])
def test_alias_models_equal_core_types_exactly(blobs5d_X, sklearn_name, mclust_name,
                                               init_params):
    a = GaussianMixture(3, covariance_type=sklearn_name, init_params=init_params,
                        random_state=0).fit(blobs5d_X)
    b = GaussianMixture(3, covariance_type=mclust_name, init_params=init_params,
                        random_state=0).fit(blobs5d_X)
    for name in FITTED_ARRAYS:
        assert_array_equal(getattr(b, name), getattr(a, name), err_msg=name)
    assert b.covariance_type == mclust_name  # kept as given
    assert b.bic(blobs5d_X) == a.bic(blobs5d_X)


@pytest.mark.parametrize("model", MODELS)
def test_every_model_fits_with_documented_shapes_and_monotone_em(blobs5d_X, model):
    k, d = 4, blobs5d_X.shape[1]
    gm = GaussianMixture(k, covariance_type=model, tol=0, max_iter=40,
                         **hand_init_kwargs(blobs5d_X, k, layout(model)))
    with pytest.warns(UserWarning):  # did not converge: tol=0
        gm.fit(blobs5d_X)
    expected = {"EII": (k,), "VII": (k,), "EEI": (k, d), "VEI": (k, d), "EVI": (k, d),
                "VVI": (k, d), "EEE": (d, d)}.get(model, (k, d, d))
    assert gm.covariances_.shape == expected
    assert np.all(np.diff(gm.lower_bounds_) >= -1e-9 * np.abs(gm.lower_bounds_[1:]))
    assert np.all(np.isfinite(gm.score_samples(blobs5d_X)))


def test_model_constraints_hold_in_the_fit(blobs5d_X):
    """Spot checks of the structure: EII equal spheres, EEV equal eigenvalues,
    VVE one orientation."""
    def fit(model):
        return GaussianMixture(4, covariance_type=model, random_state=0).fit(blobs5d_X)

    eii = fit("EII").covariances_
    assert_allclose(eii, eii[0])
    eev = fit("EEV").covariances_
    eigenvalues = np.linalg.eigvalsh(eev)
    assert_allclose(eigenvalues, np.broadcast_to(eigenvalues[0], eigenvalues.shape), rtol=1e-8)
    vve = fit("VVE").covariances_
    # one orientation: the matrices commute
    assert_allclose(vve[0] @ vve[1], vve[1] @ vve[0], atol=1e-8 * np.abs(vve).max() ** 2)


def test_parameter_counts_match_mclust(mclust_reference):
    for (k, model), row in mclust_reference.items():
        gm = GaussianMixture(k, covariance_type=model)
        gm.means_ = np.zeros((k, 2))
        assert gm._n_parameters() == int(row["n_parameters"]), (k, model)


def test_bic_is_the_negative_of_mclust_bic(faithful_X, mclust_reference):
    gm = GaussianMixture(3, covariance_type="EEE", random_state=0, tol=1e-8).fit(faithful_X)
    n = faithful_X.shape[0]
    mclust_bic = 2 * gm.score(faithful_X) * n - gm._n_parameters() * math.log(n)
    assert gm.bic(faithful_X) == pytest.approx(-mclust_bic)
    assert mclust_bic == pytest.approx(float(mclust_reference[(3, "EEE")]["bic"]), abs=0.05)


# ------------------------------------------------------------ select_model


@pytest.mark.slow
def test_faithful_selection_picks_mclust_model(faithful_selection):
    sel = faithful_selection
    assert isinstance(sel, ModelSelection)
    assert sel.best_params_ == {"n_components": 3, "covariance_type": "EEE"}
    assert sel.log_likelihood_[2, sel.covariance_types.index("EEE")] == pytest.approx(
        -1126.3, abs=0.05)
    assert sel.best_estimator_.covariance_type == "EEE"
    assert sel.table_.shape == (9, 14) and sel.covariance_types == MODELS


@pytest.mark.slow
def test_every_cell_reaches_mclust_likelihood(faithful_selection, mclust_reference):
    sel = faithful_selection
    below = []
    for i, k in enumerate(sel.n_components):
        for j, model in enumerate(sel.covariance_types):
            reference = float(mclust_reference[(int(k), model)]["loglik"])
            if not sel.log_likelihood_[i, j] >= reference - 1e-3:
                below.append((int(k), model, sel.log_likelihood_[i, j] - reference))
    assert below == []


@pytest.mark.slow
def test_criteria_follow_mclust_convention(faithful_selection, faithful_X):
    sel = faithful_selection
    n = faithful_X.shape[0]
    assert_allclose(sel.table_, 2 * sel.log_likelihood_ - sel.n_parameters_ * math.log(n))
    assert_allclose(sel.criterion_table("aic"), 2 * sel.log_likelihood_ - 2 * sel.n_parameters_)
    best = sel.best_estimator_
    log_max = np.log(best.predict_proba(faithful_X).max(axis=1)).sum()
    i = list(sel.n_components).index(3)
    j = sel.covariance_types.index("EEE")
    assert sel.criterion_table("icl")[i, j] == pytest.approx(sel.table_[i, j] + 2 * log_max)
    assert np.nanmax(sel.table_) == sel.best_score_
    text = str(sel)
    assert "EEE with 3 components" in text and "larger is better" in text


def test_failed_cells_are_missing_not_raised(faithful_X):
    # every row tied in pairs: 200 components must collapse onto the duplicates
    X = np.repeat(faithful_X[:150], 2, axis=0)
    sel = select_model(X, n_components=[2, 150], covariance_types=["VVV", "EII"], n_jobs=1,
                       n_kmeans_starts=1, cross_starts=False)
    assert np.isnan(sel.table_[1, 0])
    assert (150, "VVV") in sel.errors_
    assert np.isfinite(sel.table_[0]).all()


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_components=[0, 2]), "positive"),
    (dict(covariance_types=["VVV", "XYZ"]), "unknown"),
    (dict(criterion="bic2"), "criterion"),
    (dict(cross_starts=-1), "cross_starts"),
    (dict(cross_starts=2.5), "cross_starts"),
    (dict(merge_starts=-1), "merge_starts"),
    (dict(merge_starts=True), "merge_starts"),
    (dict(merge_starts=1.0), "merge_starts"),
])
def test_select_model_rejects_bad_arguments(faithful_X, kwargs, message):
    with pytest.raises(ValueError, match=message):
        select_model(faithful_X, **kwargs)


def test_cross_starts_come_from_the_best_optima(faithful_X, monkeypatch):
    """cross_starts=n: every model also starts from the partitions of the n
    best optima of the number of components; True: from all of them."""
    X = faithful_X
    grid = dict(n_components=[4], covariance_types=["EII", "VVI", "VVV"], n_kmeans_starts=0)
    alone = select_model(X, cross_starts=0, **grid)
    order = np.argsort(-alone.log_likelihood_[0])
    starts = []
    original = _selection._best_fit

    def spy(data, k, covariance_type, keyed, settings, tried, incumbent=None, **kwargs):
        if incumbent is not None:
            starts.append([key for key, _ in keyed])
        return original(data, k, covariance_type, keyed, settings, tried, incumbent, **kwargs)

    monkeypatch.setattr(_selection, "_best_fit", spy)
    select_model(X, cross_starts=1, merge_starts=0, **grid)
    data = _selection_em.GridData(X)
    best = alone.covariance_types[order[0]]
    # refit the best cell alone: its optimum's partition is the one cross start
    fit = select_model(X, covariance_types=[best], n_components=[4], n_kmeans_starts=0,
                       cross_starts=0).best_estimator_
    assert starts == [[_selection._partition_key(fit.predict(data.X))]] * 3
    starts.clear()
    select_model(X, cross_starts=True, merge_starts=0, **grid)
    assert all(len(s) == len({*s}) for s in starts) and max(map(len, starts)) == 3


def test_merged_partitions_join_the_cheapest_pair_first():
    """Three clusters on a line at 0, 1 and 10 (spread 0.3): joining the two
    near ones costs the least classification likelihood, the two farthest
    apart the most; each merge relabels to 0..k-2."""
    rng = np.random.default_rng(0)
    labels = np.repeat([2, 0, 1], 100)         # any label values
    X = np.column_stack([np.repeat([0.0, 1.0, 10.0], 100), np.zeros(300)])
    X += rng.normal(scale=0.3, size=X.shape)
    merged = _selection._merged_partitions(_selection_em.GridData(X), labels, 3)
    joined = [{frozenset(np.flatnonzero(m == c) // 100) for c in range(2)} for m in merged]
    assert joined == [{frozenset({0, 1}), frozenset({2})}, {frozenset({1, 2}), frozenset({0})},
                      {frozenset({0, 2}), frozenset({1})}]
    assert all(np.array_equal(np.unique(m), [0, 1]) for m in merged)
    assert len(_selection._merged_partitions(_selection_em.GridData(X), labels, 1)) == 1


def test_merge_starts_reach_the_best_merge_of_the_next_optimum(blobs5d_X):
    """Four clusters, k = 2: the hierarchical and k-means starts merge the
    wrong pairs. EM from each pair of the k = 3 optimum's clusters merged,
    run here on its own, reaches more, and so do the cells with
    merge_starts (three: every pair)."""
    grid = dict(n_components=[2, 3], covariance_types=["EEI", "VVV"])
    without = select_model(blobs5d_X, merge_starts=0, **grid)
    merged = select_model(blobs5d_X, merge_starts=3, **grid)
    three = merged.best_estimator_
    assert merged.best_params_ == {"n_components": 3, "covariance_type": "VVV"}
    data = _selection_em.GridData(blobs5d_X)
    labels = three.predict(blobs5d_X)
    for j, model in enumerate(grid["covariance_types"]):
        best = -np.inf
        for a, b in [(0, 1), (0, 2), (1, 2)]:
            pair = np.where(labels == b, a, labels)
            start = _selection_em.partition_parameters(
                data, np.unique(pair, return_inverse=True)[1], 2, model, 1e-6)
            fit = _selection_em.em(data, model, start, tol=1e-5, reg_covar=1e-6, max_iter=1000)
            best = max(best, fit.lower_bound * data.total_weight)
        assert merged.log_likelihood_[0, j] >= best - 1e-6 * abs(best)
        assert without.log_likelihood_[0, j] < best - 50.0
    assert_allclose(merged.log_likelihood_[1], without.log_likelihood_[1])


def test_selection_is_the_same_serial_and_parallel():
    X = blobs_5d()
    grid = dict(n_components=[2, 3, 4], covariance_types=["VVV", "EEV", "VEI"])
    serial = select_model(X, n_jobs=1, **grid)
    parallel = select_model(X, n_jobs=2, **grid)
    assert_allclose(parallel.log_likelihood_, serial.log_likelihood_, rtol=1e-10)
    assert parallel.best_params_ == serial.best_params_


@pytest.mark.slow
def test_plot_draws_one_line_per_model(faithful_selection):
    pytest.importorskip("matplotlib")
    ax = faithful_selection.plot()
    assert len(ax.get_lines()) == 14


@pytest.mark.slow
@pytest.mark.parametrize("name", ["diabetes", "iris"])
def test_other_data_sets_pick_mclust_model_at_its_optima(name):
    X = np.loadtxt(DATA / f"{name}.csv", delimiter=",", skiprows=1)
    with open(DATA / f"mclust_{name}_loglik.csv") as file:
        rows = list(csv.DictReader(file))
    reference = {(int(r["n_components"]), r["model"]): float(r["loglik"]) for r in rows}
    bic = {(int(r["n_components"]), r["model"]): float(r["bic"]) for r in rows}
    sel = select_model(X)
    k, covariance_type = max(bic, key=bic.get)
    assert sel.best_params_ == {"n_components": k, "covariance_type": covariance_type}
    below = {(int(k), t) for i, k in enumerate(sel.n_components)
             for j, t in enumerate(sel.covariance_types)
             if (int(k), t) in reference
             and not sel.log_likelihood_[i, j] >= reference[(int(k), t)] - 1e-3}
    assert below == set()


def test_grid_em_is_the_estimators_em(blobs5d_X):
    """The lean loop of the grid runs GaussianMixture.fit's iterations; for the
    iterative mclust models a generalised EM (fewer inner steps) to the same
    optimum."""
    data = _selection_em.GridData(blobs5d_X)
    labels = np.arange(blobs5d_X.shape[0]) % 3
    for covariance_type in ["VVV", "EEE", "VEI", "EVE", "EII"]:
        start = _selection_em.partition_parameters(data, labels, 3, covariance_type, 1e-6)
        fit = _selection_em.em(data, covariance_type, start, tol=1e-8, reg_covar=1e-6,
                               max_iter=100)
        gm = GaussianMixture(3, covariance_type=covariance_type, tol=1e-8, max_iter=100,
                             weights_init=start.weights, means_init=start.means,
                             precisions_init=model(covariance_type).layout.precisions_from_cholesky(
                                 start.precisions_cholesky))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gm.fit(blobs5d_X)
        if covariance_type in ("VEI", "EVE"):
            assert np.all(np.diff(fit.lower_bounds) >= -1e-12)
            assert fit.lower_bound == pytest.approx(gm.lower_bound_, abs=1e-7)
            continue
        assert fit.n_iter == gm.n_iter_
        assert_allclose(fit.lower_bounds, gm.lower_bounds_, rtol=1e-9)
        assert_allclose(fit.params.means, gm.means_, rtol=1e-7, atol=1e-9)


def test_large_data_search_on_a_subsample_then_refit_on_all_rows(monkeypatch):
    X = blobs_5d()
    grid = dict(n_components=[3, 4], covariance_types=["VVV", "EEI"], n_kmeans_starts=1)
    everything = select_model(X, **grid)
    monkeypatch.setattr(_selection, "SEARCH_ROWS", 200)
    sel = select_model(X, **grid)
    assert sel.best_params_ == everything.best_params_
    best = sel.best_estimator_
    # a fit to all rows: the log-likelihood of X, and EM from it moves it by < tol
    assert best.score(X) == pytest.approx(best.lower_bound_, abs=1e-4)
    again = GaussianMixture(best.n_components, covariance_type=best.covariance_type,
                            tol=1e-5, max_iter=1000, weights_init=best.weights_,
                            means_init=best.means_, precisions_init=best.precisions_).fit(X)
    assert again.lower_bound_ == pytest.approx(best.lower_bound_, abs=1e-4)


def test_refit_on_all_rows_keeps_the_best_of_the_candidates(blobs5d_X):
    """Each cell refines its subsample winner and its fit from mclust's start
    on all rows, and keeps the higher log-likelihood."""
    settings = dict(tol=1e-5, reg_covar=1e-6, max_iter=1000)
    data, subsample = _selection_em.GridData(blobs5d_X), _selection_em.GridData(blobs5d_X[::4])
    first = subsample.X[:, 0]
    by_first_feature = np.searchsorted(np.quantile(first, [1 / 3, 2 / 3]), first)
    fits = [_selection_em.em(subsample, "EEE", _selection_em.partition_parameters(
        subsample, labels, 3, "EEE", 1e-6), **settings)
        for labels in (by_first_feature, np.arange(subsample.n_samples) % 3)]
    refits = [_selection_em.em(data, "EEE", fit.params, **settings) for fit in fits]
    refits = [fit.lower_bound for fit in refits
              if not _selection_em.degenerate("EEE", fit.params, 1e-6)]
    assert len(refits) == 2 and refits[0] < refits[1]
    best, problem = _selection._refined(data, subsample, "EEE", fits + [None], None, settings)
    assert problem is None and best.lower_bound == pytest.approx(max(refits), rel=1e-12)


def test_weights_scale_the_likelihood_table(faithful_X):
    grid = dict(n_components=[1, 2], covariance_types=["EEE", "VII"], n_kmeans_starts=1)
    plain = select_model(faithful_X, **grid)
    doubled = select_model(faithful_X, sample_weight=np.full(len(faithful_X), 2.0), **grid)
    assert_allclose(doubled.log_likelihood_, 2 * plain.log_likelihood_, rtol=1e-9)


def test_verbose_prints_cells_done_and_time_left(faithful_X, capsys):
    select_model(faithful_X, n_components=[1, 2], covariance_types=["EEE", "VII"],
                 n_kmeans_starts=1, verbose=1)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4
    assert "0/4 cells done (2 searched)" in lines[0] and "(4 searched)" in lines[1]
    assert "2/4 cells done" in lines[2] and "4/4 cells done" in lines[3]
    assert all("left" in line for line in lines)


# ----------------------------------- parsimonious models at extreme scales


@pytest.mark.parametrize("covariance_type", ["EVE", "VVE", "EEV", "VEV", "VEE", "EVV"])
def test_huge_weights_parsimonious(covariance_type):
    """Was a bug (fixed in commit cab5ead, by normalising the weights):
    _parsimonious._component_covariances symmetrises with
    (scatter + scatter^T) / (2 nk), whose sum overflowed past ~9e307: LinAlgError
    'Eigenvalues did not converge' or a misleading 'singular' scatter."""
    X = np.random.default_rng(0).normal(size=(200, 3))
    X[17] = 1e4
    ref = GaussianMixture(1, covariance_type=covariance_type, max_iter=3).fit(X)
    gm = GaussianMixture(1, covariance_type=covariance_type, max_iter=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm.fit(X, sample_weight=np.full(len(X), 1e300))
    assert_allclose(gm.lower_bound_, ref.lower_bound_, rtol=1e-9)


@pytest.mark.parametrize("case", ["EVI_max_iter_0", "EVI_partial_fit"])
def test_evi_with_large_variances_is_finite(case):
    """max_iter=0 must fit (variances 1e160 are representable); partial_fit of a
    batch at 1e150 may refuse clearly (it gave covariances_ = inf before)."""
    X = two_blobs(120, d=2)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        if case == "EVI_max_iter_0":
            gm = GaussianMixture(2, covariance_type="EVI", random_state=0, max_iter=0)
            assert fit_or_reject(gm, X * 1e80) is not None  # variances 1e160: no overflow
            return
        gm = GaussianMixture(1, covariance_type="EVI", random_state=0).partial_fit(X)
        try:
            gm.partial_fit(X * 1e150)  # variances 1e300: representable
        except ValueError as exc:
            assert_clear_error(exc)
            return
    assert_sane_model(gm, X * 1e150)

