"""nan_policy='marginalize': EM over each row's observed coordinates."""
import numpy as np
import pytest
from scipy import optimize, stats
from scipy.special import logsumexp

from gaussmix import GaussianMixture

TYPES = ["full", "tied", "diag", "spherical", "VEV", "EEI", "EII"]


def blobs(n=600, d=3, k=3, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(k, d))
    mixing = [rng.normal(size=(d, d)) * 0.6 + np.eye(d) for _ in range(k)]
    labels = rng.integers(k, size=n)
    X = np.stack([centres[j] + rng.normal(size=d) @ mixing[j] for j in labels])
    return X, centres, np.stack([m.T @ m for m in mixing])


def with_holes(X, share, seed=1):
    rng = np.random.default_rng(seed)
    X = X.copy()
    X[rng.random(X.shape) < share] = np.nan
    return X


def marginal_log_densities(gm, X):
    """Hand-written log p(x_O) and p(k | x_O), with scipy's normal density."""
    k, d = gm.means_.shape
    covariances = {"full": lambda c: c, "tied": lambda c: np.broadcast_to(c, (k, d, d)),
                   "diag": lambda c: c[:, :, None] * np.eye(d),
                   "spherical": lambda c: c[:, None, None] * np.eye(d)}
    layout = {"VEV": "full", "EEI": "diag", "EII": "spherical"}.get(gm.covariance_type,
                                                                    gm.covariance_type)
    covs = covariances[layout](np.asarray(gm.covariances_, dtype=np.float64))
    log_norm, proba = np.empty(len(X)), np.empty((len(X), k))
    for i, x in enumerate(np.asarray(X, dtype=np.float64)):
        seen = ~np.isnan(x)
        joint = np.log(gm.weights_.astype(np.float64)) + np.array([
            stats.multivariate_normal(gm.means_[j, seen], covs[j][np.ix_(seen, seen)]).logpdf(
                x[seen]) if seen.any() else 0.0 for j in range(k)])
        log_norm[i] = logsumexp(joint)
        proba[i] = np.exp(joint - log_norm[i])
    return log_norm, proba


def test_nan_raises_naming_the_parameter():
    X = with_holes(blobs()[0], 0.1)
    with pytest.raises(ValueError, match="nan_policy"):
        GaussianMixture(2).fit(X)
    fitted = GaussianMixture(2, random_state=0).fit(blobs()[0])
    with pytest.raises(ValueError, match="nan_policy"):
        fitted.predict(X)
    with pytest.raises(ValueError, match="nan_policy"):
        GaussianMixture(2, nan_policy="drop").fit(X)


def test_infinity_still_raises():
    X = blobs()[0]
    X[3, 1] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        GaussianMixture(2, nan_policy="marginalize").fit(X)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_without_nan_nothing_changes(covariance_type):
    X = blobs()[0]
    fits = [GaussianMixture(3, covariance_type=covariance_type, random_state=0,
                            nan_policy=policy).fit(X) for policy in ("raise", "marginalize")]
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_array_equal(getattr(fits[0], name), getattr(fits[1], name))
    assert fits[0].lower_bounds_ == fits[1].lower_bounds_
    np.testing.assert_array_equal(fits[0].score_samples(X), fits[1].score_samples(X))
    np.testing.assert_array_equal(fits[0].predict_proba(X), fits[1].predict_proba(X))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("covariance_type", TYPES)
def test_predictions_are_the_marginals(covariance_type, dtype):
    X = with_holes(blobs()[0], 0.25).astype(dtype)
    X[5] = np.nan                                   # nothing observed
    gm = GaussianMixture(3, covariance_type=covariance_type, random_state=0,
                         nan_policy="marginalize").fit(X)
    log_norm, proba = marginal_log_densities(gm, X)
    rtol = 1e-10 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(gm.score_samples(X), log_norm, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(gm.predict_proba(X), proba, atol=10 * rtol)
    np.testing.assert_array_equal(gm.predict(X), np.argmax(proba, axis=1))
    assert gm.score_samples(X)[5] == 0.0
    np.testing.assert_allclose(gm.predict_proba(X)[5], gm.weights_, rtol=1e-6)
    np.testing.assert_allclose(gm.score(X), log_norm.mean(), rtol=rtol)
    assert np.isfinite(gm.bic(X)) and np.isfinite(gm.aic(X))


def test_one_component_is_the_observed_data_maximum():
    rng = np.random.default_rng(3)
    d = 3
    A = rng.normal(size=(d, d)) + 2 * np.eye(d)
    X = with_holes(rng.normal(size=(80, d)) @ A + [1.0, -2.0, 0.5], 0.3, seed=4)
    seen = ~np.isnan(X)
    tril = np.tril_indices(d)

    def negative_log_likelihood(theta):
        mean = theta[:d]
        L = np.zeros((d, d))
        L[tril] = theta[d:]
        L[np.diag_indices(d)] = np.exp(np.diag(L))
        cov = L @ L.T + 1e-12 * np.eye(d)
        return -sum(stats.multivariate_normal(mean[s], cov[np.ix_(s, s)]).logpdf(x[s])
                    for x, s in zip(X, seen) if s.any())

    imputed = np.where(seen, X, np.nanmean(X, axis=0))
    L0 = np.linalg.cholesky(np.cov(imputed.T))
    L0[np.diag_indices(d)] = np.log(np.diag(L0))
    start = np.concatenate([np.nanmean(X, axis=0), L0[tril]])
    best = optimize.minimize(negative_log_likelihood, start, method="BFGS",
                             options={"gtol": 1e-9, "maxiter": 5000})
    L = np.zeros((d, d))
    L[tril] = best.x[d:]
    L[np.diag_indices(d)] = np.exp(np.diag(L))
    gm = GaussianMixture(1, reg_covar=0.0, tol=1e-12, max_iter=5000,
                         nan_policy="marginalize").fit(X)
    np.testing.assert_allclose(gm.means_[0], best.x[:d], atol=1e-4)
    np.testing.assert_allclose(gm.covariances_[0], L @ L.T, atol=1e-4)
    n_rows = seen.any(axis=1).sum()
    assert gm.score(X) * len(X) >= -best.fun - 1e-6 * n_rows


@pytest.mark.parametrize("covariance_type", TYPES)
def test_observed_likelihood_is_monotone(covariance_type):
    X = with_holes(blobs(n=800, seed=5)[0], 0.3)
    gm = GaussianMixture(3, covariance_type=covariance_type, init_params="random",
                         reg_covar=0.0, tol=0.0, max_iter=40, random_state=1,
                         nan_policy="marginalize")
    with pytest.warns(Warning):       # tol=0 never converges
        gm.fit(X)
    bounds = np.array(gm.lower_bounds_)
    assert np.all(np.diff(bounds) >= -1e-12 * np.abs(bounds[1:])), np.diff(bounds).min()
    # the bound of iteration t is the likelihood of the parameters it started from
    assert gm.score(X) >= bounds[-1] - 1e-12 * abs(bounds[-1])


def test_all_missing_rows_are_ignored_by_fit():
    X = with_holes(blobs()[0], 0.2)
    padded = np.vstack([X, np.full((50, X.shape[1]), np.nan)])
    kwargs = dict(n_components=3, means_init=blobs()[1], random_state=0,
                  nan_policy="marginalize")
    a, b = GaussianMixture(**kwargs).fit(X), GaussianMixture(**kwargs).fit(padded)
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-10)
    np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=1e-10)
    np.testing.assert_allclose(a.lower_bound_, b.lower_bound_, rtol=1e-12)


def test_sample_weight_acts_as_repeated_rows():
    X = with_holes(blobs(n=300)[0], 0.2)
    counts = np.random.default_rng(2).integers(0, 4, size=len(X))
    kwargs = dict(n_components=3, means_init=blobs()[1], weights_init=np.full(3, 1 / 3),
                  precisions_init=np.stack([np.eye(3)] * 3), tol=0.0, max_iter=15,
                  nan_policy="marginalize")
    with pytest.warns(Warning):
        a = GaussianMixture(**kwargs).fit(X, sample_weight=counts)
        b = GaussianMixture(**kwargs).fit(np.repeat(X, counts, axis=0))
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-8)
    np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=1e-8)


def test_initialisation_when_every_row_has_a_hole():
    X = blobs()[0]
    X[np.arange(len(X)), np.arange(len(X)) % X.shape[1]] = np.nan
    gm = GaussianMixture(3, random_state=0, nan_policy="marginalize").fit(X)
    assert np.all(np.isfinite(gm.means_)) and gm.converged_


def test_float32_close_to_float64():
    X = with_holes(blobs()[0], 0.2)
    kwargs = dict(n_components=3, random_state=0, nan_policy="marginalize")
    a = GaussianMixture(**kwargs).fit(X)
    b = GaussianMixture(**kwargs).fit(X.astype(np.float32))
    assert b.means_.dtype == np.float32
    np.testing.assert_allclose(b.means_, a.means_, atol=1e-3)


def test_partial_fit_with_holes():
    X = with_holes(blobs(n=3000)[0], 0.2)
    gm = GaussianMixture(3, random_state=0, nan_policy="marginalize")
    for batch in np.array_split(X, 10):
        gm.partial_fit(batch)
    full = GaussianMixture(3, random_state=0, nan_policy="marginalize").fit(X)
    assert np.all(np.isfinite(gm.means_))
    assert gm.score(X) > full.score(X) - 0.1


def _match(estimated, truth):
    from scipy.optimize import linear_sum_assignment
    cost = ((estimated[:, None] - truth[None]) ** 2).sum(axis=2)
    return linear_sum_assignment(cost)[1]


def simulation(seed=0, n=4000, d=4, k=3, share=0.2):
    """Errors of the means and covariances: (marginalize, mean imputation, complete rows)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(k, d))
    factors = [rng.normal(size=(d, d)) * 0.5 + np.eye(d) for _ in range(k)]
    labels = rng.integers(k, size=n)
    X = np.stack([centres[j] + rng.normal(size=d) @ factors[j] for j in labels])
    covs = np.stack([f.T @ f for f in factors])
    holes = with_holes(X, share, seed=seed + 100)
    imputed = np.where(np.isnan(holes), np.nanmean(holes, axis=0), holes)
    complete = holes[~np.isnan(holes).any(axis=1)]
    errors = {}
    for name, data, policy in (("marginalize", holes, "marginalize"),
                               ("mean imputation", imputed, "raise"),
                               ("complete rows", complete, "raise")):
        gm = GaussianMixture(k, n_init=3, random_state=seed, nan_policy=policy).fit(data)
        order = np.argsort(_match(gm.means_, centres))
        means, fitted_covs = gm.means_[order], gm.covariances_[order]
        errors[name] = (np.sqrt(((means - centres) ** 2).sum(axis=1)).mean(),
                        np.mean([np.linalg.norm(c - t) / np.linalg.norm(t)
                                 for c, t in zip(fitted_covs, covs)]))
    return errors


def test_marginalizing_beats_imputation_and_dropping():
    for seed in range(3):
        errors = simulation(seed)
        print(seed, {name: tuple(round(float(v), 4) for v in e) for name, e in errors.items()})
        ours = errors["marginalize"]
        for other in ("mean imputation", "complete rows"):
            assert ours[0] < errors[other][0] and ours[1] < errors[other][1], (other, errors)


def filled_pass_arguments(X, precision, mean):
    """em_pass_filled's arguments for X (one pattern per row) under one full component."""
    from gaussmix._missing import Patterns, PartialRows
    patterns = Patterns(X)
    table = PartialRows(patterns, range(len(patterns)))
    U = np.ascontiguousarray(np.linalg.cholesky(precision[::-1, ::-1])[::-1, ::-1])  # P = U U^T
    d = X.shape[1]
    return table, [X, np.empty(0), table.rows, table.pattern, table.obs_ptr, table.obs_idx,
                   table.miss_ptr, table.miss_idx, np.log(np.diag(U)).sum(keepdims=True), mean[None],
                   precision.reshape(1, -1), U.reshape(1, -1), False, np.zeros((1, 1)),
                   np.zeros((1, 1, d)), np.zeros((1, 1, d * d)), np.zeros(1), np.empty(0),
                   np.empty((0, 1))]


def test_filled_pass_is_the_conditional_expectation():
    """One component: the statistics are the rows with their missing values at
    the conditional mean, plus the conditional covariance, by hand."""
    from gaussmix._kernels import suffstats
    rng = np.random.default_rng(5)
    A = rng.normal(size=(4, 4)) + 2 * np.eye(4)
    covariance, mean = A @ A.T, rng.normal(size=4)
    X = with_holes(rng.normal(size=(300, 4)) @ A.T + mean, 0.3, seed=6)
    X = X[np.isnan(X).any(axis=1) & ~np.isnan(X).all(axis=1)]
    table, args = filled_pass_arguments(X, np.linalg.inv(covariance), mean)
    suffstats.em_pass_filled(*args)
    N, S, W, loglik = args[13], args[14], args[15], args[16]
    S_ref, W_ref, loglik_ref = np.zeros(4), np.zeros((4, 4)), 0.0
    for x in X:
        o, m = ~np.isnan(x), np.isnan(x)
        gain = covariance[np.ix_(m, o)] @ np.linalg.inv(covariance[np.ix_(o, o)])
        z = np.zeros(4)
        z[o] = x[o] - mean[o]
        z[m] = gain @ z[o]
        S_ref += z
        W_ref += np.outer(z, z)
        W_ref[np.ix_(m, m)] += covariance[np.ix_(m, m)] - gain @ covariance[np.ix_(o, m)]
        loglik_ref += stats.multivariate_normal(mean[o], covariance[np.ix_(o, o)]).logpdf(x[o])
    assert N[0, 0] == len(X)
    np.testing.assert_allclose(S[0, 0], S_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(np.tril(W[0, 0].reshape(4, 4)), np.tril(W_ref), rtol=1e-10)
    np.testing.assert_allclose(loglik[0], loglik_ref, rtol=1e-12)


def test_filled_pass_refills_what_its_scratch_does_not_keep():
    """Components past the kept filled rows are filled again for the
    statistics: the same numbers as with every component kept."""
    from gaussmix._kernels import suffstats
    from gaussmix._missing import Mixture, PartialRows, Patterns
    X = with_holes(blobs(n=500, d=5)[0], 0.3)
    gm = GaussianMixture(4, nan_policy="marginalize", random_state=0).fit(X)
    patterns = Patterns(X)
    table = PartialRows(patterns, [p for p in range(len(patterns))
                                   if patterns.observed[p].any() and not patterns.observed[p].all()])
    mixture = Mixture(np.log(gm.weights_), gm.means_, gm.precisions_cholesky_, "full")
    results = []
    for fill_bytes in (1 << 30, 1):
        out = [np.zeros((2, 4)), np.zeros((2, 4, 5)), np.zeros((2, 4, 25)), np.zeros(2)]
        suffstats.em_pass_filled(X, np.empty(0), table.rows, table.pattern, table.obs_ptr,
                                 table.obs_idx, table.miss_ptr, table.miss_idx,
                                 mixture.log_weights + mixture.log_det_factors, mixture.means,
                                 mixture.precisions.reshape(4, 25), mixture.factors, False,
                                 *out, np.empty(0), np.empty((0, 4)), fill_bytes)
        results.append(out)
    for kept, refilled in zip(*results):
        np.testing.assert_array_equal(kept, refilled)
    assert results[0][0].sum() == pytest.approx(len(table))


def test_filled_pass_checks_its_tables():
    from gaussmix._kernels import suffstats
    X = with_holes(blobs(n=40)[0], 0.3)
    X = X[np.isnan(X).any(axis=1) & ~np.isnan(X).all(axis=1)]
    table, args = filled_pass_arguments(X, np.eye(3), np.zeros(3))
    breakages = {"row": (2, lambda rows: rows + len(X)),
                 "pattern": (3, lambda pattern: pattern - 1),
                 "obs_ptr": (4, lambda ptr: ptr[::-1].copy()),
                 "miss_idx": (7, lambda idx: idx + 3),
                 "add up": (6, lambda ptr: np.minimum(ptr, 0))}
    for name, (place, breakage) in breakages.items():
        broken = list(args)
        broken[place] = breakage(args[place]).astype(np.intp)
        with pytest.raises(ValueError, match="gaussmix kernel"):
            suffstats.em_pass_filled(*broken)
    not_positive = list(args)
    not_positive[10] = -np.eye(3).reshape(1, -1)
    assert suffstats.em_pass_filled(*not_positive)        # reported, not trusted
    assert not suffstats.em_pass_filled(*args)


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_one_m_step_by_hand(covariance_type):
    """An M-step from given parameters equals the conditional-expectation EM
    step written out in numpy (Ghahramani & Jordan), with sample weights."""
    X = with_holes(blobs(n=300)[0], 0.25, seed=9)
    X[:3] = np.nan
    w = 1.0 + np.arange(300) % 3
    start = GaussianMixture(3, covariance_type=covariance_type, random_state=0,
                            nan_policy="marginalize", max_iter=3)
    with pytest.warns(Warning):
        start.fit(X)
    step = GaussianMixture(3, covariance_type=covariance_type, max_iter=1, reg_covar=0.0,
                           weights_init=start.weights_, means_init=start.means_,
                           precisions_init=start.precisions_, nan_policy="marginalize")
    with pytest.warns(Warning):
        step.fit(X, sample_weight=w)
    covs = start.covariances_ if covariance_type == "full" else np.stack(
        [np.diag(c) for c in start.covariances_])
    _, proba = marginal_log_densities(start, X)
    N, S, W = np.zeros(3), np.zeros((3, 3)), np.zeros((3, 3, 3))
    for i, x in enumerate(X):
        o, m = ~np.isnan(x), np.isnan(x)
        if not o.any():
            continue
        for k in range(3):
            C = covs[k]
            gain = C[np.ix_(m, o)] @ np.linalg.inv(C[np.ix_(o, o)])
            x_hat = x.copy()
            x_hat[m] = start.means_[k, m] + gain @ (x[o] - start.means_[k, o])
            r = w[i] * proba[i, k]
            N[k] += r
            S[k] += r * x_hat
            W[k] += r * np.outer(x_hat, x_hat)
            W[k][np.ix_(m, m)] += r * (C[np.ix_(m, m)] - gain @ C[np.ix_(o, m)])
    means = S / N[:, None]
    covariances = W / N[:, None, None] - means[:, :, None] * means[:, None, :]
    np.testing.assert_allclose(step.weights_, N / N.sum(), rtol=1e-9)
    np.testing.assert_allclose(step.means_, means, rtol=1e-9, atol=1e-9)
    expected = covariances if covariance_type == "full" else np.diagonal(covariances, axis1=1,
                                                                           axis2=2)
    np.testing.assert_allclose(step.covariances_, expected, rtol=1e-8, atol=1e-10)


def test_imputer_fills_conditional_expectations():
    from gaussmix import GaussianMixtureImputer

    X = with_holes(blobs()[0], 0.2)
    X[7] = np.nan
    imputer = GaussianMixtureImputer(3, random_state=0).fit(X)
    filled = imputer.transform(X)
    assert not np.isnan(filled).any()
    np.testing.assert_array_equal(filled[~np.isnan(X)], X[~np.isnan(X)])
    gm = imputer.mixture_
    proba = gm.predict_proba(X)
    for i in (0, 1, 2, 3, 7, 11):     # by hand: sum_k p(k | x_O) (mu_M + S_MO S_OO^-1 (x_O - mu_O))
        seen = ~np.isnan(X[i])
        expected = sum(proba[i, j] * (gm.means_[j, ~seen] + gm.covariances_[j][np.ix_(~seen, seen)]
                                      @ np.linalg.solve(gm.covariances_[j][np.ix_(seen, seen)],
                                                        X[i, seen] - gm.means_[j, seen]))
                       for j in range(3))
        np.testing.assert_allclose(filled[i, ~seen], expected, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(filled[7], gm.weights_ @ gm.means_)


def test_imputer_beats_mean_imputation_and_draws_spread():
    from gaussmix import GaussianMixtureImputer

    X, _, _ = blobs(n=2000, seed=7)
    holes = with_holes(X, 0.2, seed=8)
    missing = np.isnan(holes)
    ours = GaussianMixtureImputer(3, random_state=0).fit_transform(holes)
    column_means = np.where(missing, np.nanmean(holes, axis=0), holes)
    error = lambda filled: np.sqrt(np.mean((filled[missing] - X[missing]) ** 2))
    assert error(ours) < 0.7 * error(column_means), (error(ours), error(column_means))
    draws = GaussianMixtureImputer(3, random_state=0, sample_posterior=True).fit_transform(holes)
    # draws keep the spread that conditional means shrink
    assert np.var(draws[missing]) > np.var(ours[missing])
    assert error(draws) < error(column_means) * 1.5


def test_imputer_in_a_pipeline():
    pytest.importorskip("sklearn")
    pd = pytest.importorskip("pandas")
    from sklearn.base import clone
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from gaussmix import GaussianMixtureImputer

    frame = pd.DataFrame(with_holes(blobs()[0], 0.2), columns=["a", "b", "c"])
    pipe = make_pipeline(GaussianMixtureImputer(2, random_state=0), StandardScaler())
    out = pipe.fit_transform(frame)
    assert out.shape == frame.shape and not np.isnan(out).any()
    assert list(pipe.get_feature_names_out()) == ["a", "b", "c"]
    assert clone(pipe[0]).get_params() == pipe[0].get_params()


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_threads_and_blocks_give_one_fit(monkeypatch, covariance_type):
    """One or two threads (patterns split across their chunks and slots), and
    complete rows in blocks of any size: one result."""
    from gaussmix import _em, _missing

    X = with_holes(blobs(n=1500)[0], 0.25)
    X[:300, 0] = np.nan          # one pattern over several chunks
    kwargs = dict(n_components=3, covariance_type=covariance_type, random_state=0,
                  tol=0.0, max_iter=10, nan_policy="marginalize")
    weights = np.arange(1500) % 3
    with pytest.warns(Warning):
        reference = GaussianMixture(n_threads=1, **kwargs).fit(X, sample_weight=weights)
    monkeypatch.setattr(_em, "BLOCK_ROWS", 7)         # complete rows (fit, predictions)
    monkeypatch.setattr(_missing, "BLOCK_ROWS", 7)     # incomplete rows (predictions)
    with pytest.warns(Warning):
        other = GaussianMixture(n_threads=2, **kwargs).fit(X, sample_weight=weights)
    np.testing.assert_allclose(other.means_, reference.means_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(other.covariances_, reference.covariances_, rtol=1e-9)
    np.testing.assert_allclose(other.lower_bounds_, reference.lower_bounds_, rtol=1e-11)
    np.testing.assert_allclose(other.predict_proba(X), reference.predict_proba(X), atol=1e-12)


def test_dask_predictions_and_saved_models_keep_the_policy(tmp_path):
    import gaussmix

    X = with_holes(blobs()[0], 0.2)
    gm = GaussianMixture(3, random_state=0, nan_policy="marginalize").fit(X)
    gm.save(tmp_path / "model.gmx")
    loaded = gaussmix.load(tmp_path / "model.gmx")
    assert loaded.nan_policy == "marginalize"
    np.testing.assert_array_equal(loaded.score_samples(X), gm.score_samples(X))
    da = pytest.importorskip("dask.array")
    np.testing.assert_array_equal(gm.predict(da.from_array(X, chunks=100)).compute(),
                                  gm.predict(X))



@pytest.mark.parametrize("covariance_type", ["full", "diag", "VEV"])
def test_dask_fit_equals_the_in_memory_fit(covariance_type):
    """Each block runs the marginal pass where it lives (a block with nothing
    observed included); the summed statistics give the in-memory fit."""
    da = pytest.importorskip("dask.array")
    X = with_holes(blobs(n=2100)[0], 0.2, seed=11)
    X[700:1400:2] = np.nan          # half of the second block observes nothing
    X[1400:1500] = np.nan
    w = 1.0 + np.arange(len(X)) % 4
    kwargs = dict(n_components=3, covariance_type=covariance_type, random_state=0,
                  tol=1e-8, max_iter=60, nan_policy="marginalize")
    local = GaussianMixture(**kwargs).fit(X, sample_weight=w)
    remote = GaussianMixture(**kwargs).fit(da.from_array(X, chunks=700),
                                           sample_weight=da.from_array(w, chunks=700))
    assert remote.n_iter_ == local.n_iter_
    np.testing.assert_allclose(remote.means_, local.means_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(remote.covariances_, local.covariances_, rtol=1e-10)
    np.testing.assert_allclose(remote.lower_bound_, local.lower_bound_, rtol=1e-12)
    with pytest.raises(ValueError, match="nan_policy"):
        GaussianMixture(3).fit(da.from_array(X, chunks=700))
    with pytest.raises(ValueError, match="Every value of X is missing"):
        GaussianMixture(2, nan_policy="marginalize").fit(
            da.from_array(np.full((50, 3), np.nan), chunks=20))


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_bayesian_mixture_with_holes(covariance_type):
    """Variational inference with the missing values as latent variables: the
    bound never decreases, Dask gives the in-memory posterior, X without NaN
    gives today's fit, and the dominant components find the clusters."""
    from gaussmix import BayesianGaussianMixture
    da = pytest.importorskip("dask.array")
    X, centres, _ = blobs(n=1800, seed=12)
    holes = with_holes(X, 0.2, seed=13)
    holes[:5] = np.nan
    kwargs = dict(n_components=5, covariance_type=covariance_type, random_state=0,
                  max_iter=500, tol=1e-7, nan_policy="marginalize")
    model = BayesianGaussianMixture(**kwargs).fit(holes)
    bounds = np.array(model.lower_bounds_)
    assert np.all(np.diff(bounds) >= -1e-9 * np.abs(bounds[1:])), np.diff(bounds).min()
    assert np.all(np.isfinite(model.means_)) and np.isfinite(model.lower_bound_)
    assert np.linalg.norm(model.weights_ @ model.means_ - X.mean(axis=0)) < 0.15
    if covariance_type == "full":      # the model of the data: three components, found
        big = np.argsort(model.weights_)[-3:]
        assert model.weights_[big].sum() > 0.97
        distance = np.linalg.norm(model.means_[big][:, None] - centres[None], axis=2)
        assert distance.min(axis=0).max() < 0.3, distance
    remote = BayesianGaussianMixture(**kwargs).fit(da.from_array(holes, chunks=600))
    np.testing.assert_allclose(remote.means_, model.means_, rtol=1e-9, atol=1e-10)
    assert remote.n_iter_ == model.n_iter_
    np.testing.assert_allclose(model.score_samples(holes[5:]),
                               remote.score_samples(holes[5:]), rtol=1e-10)
    plain = BayesianGaussianMixture(**dict(kwargs, nan_policy="raise", max_iter=20)).fit(X)
    same = BayesianGaussianMixture(**dict(kwargs, max_iter=20)).fit(X)
    np.testing.assert_array_equal(plain.means_, same.means_)
    assert plain.lower_bounds_ == same.lower_bounds_
    with pytest.raises(ValueError, match="nan_policy"):
        BayesianGaussianMixture(n_components=2).fit(holes)
