"""Streaming fits: partial_fit (stepwise EM) and memory-mapped data.

References: a full-batch fit, scipy.stats posteriors blended by hand, and the
same data held in memory.
"""
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.stats import multivariate_normal

from gaussmix import GaussianMixture

from conftest import (ALL_COVARIANCE_TYPES, COVARIANCE_TYPES, FITTED_ARRAYS, INIT_PARAMS,
                      assert_clear_error, assert_sane_model, fit_quiet, hand_init_kwargs,
                      make_blobs, two_blobs)


def overlapping_blobs(n=12_000, seed=3):
    centers = [[0, 0, 0], [3, 1, 0], [0, 3, 2], [4, 4, 4]]
    return make_blobs(n, np.array(centers, float), [1.0, 1.2, 0.8, 1.5], seed=seed)


def shuffled_batches(X, n_batches, rng):
    return np.array_split(X[rng.permutation(X.shape[0])], n_batches)


# ---------------------------------------------------------------- partial_fit


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_partial_fit_reaches_full_batch_likelihood(covariance_type):
    X = overlapping_blobs()
    full = GaussianMixture(4, covariance_type=covariance_type, n_init=2,
                           random_state=0).fit(X)
    online = GaussianMixture(4, covariance_type=covariance_type, random_state=0)
    rng = np.random.default_rng(0)
    online.partial_fit(shuffled_batches(X, 30, rng)[0])
    after_first_batch = online.score(X)
    for _ in range(3):
        for batch in shuffled_batches(X, 30, rng):
            online.partial_fit(batch)
    reference = full.score(X)
    assert online.score(X) > after_first_batch
    assert abs(online.score(X) - reference) <= 0.01 * abs(reference)
    assert online.n_steps_ == 91


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("init_params", INIT_PARAMS)
def test_first_partial_fit_is_initialisation_plus_one_em_step(covariance_type, init_params):
    X = overlapping_blobs(n=2_000)
    kwargs = dict(n_components=3, covariance_type=covariance_type,
                  init_params=init_params, random_state=5)
    online = GaussianMixture(**kwargs).partial_fit(X)
    batch = fit_quiet(GaussianMixture(max_iter=1, **kwargs), X)
    for name in FITTED_ARRAYS:
        assert_allclose(getattr(online, name), getattr(batch, name), rtol=1e-10, atol=1e-12,
                        err_msg=name)
    assert online.lower_bound_ == pytest.approx(batch.lower_bound_, rel=1e-12)


def _posterior(X, weights, means, covariances):
    log_p = np.column_stack([np.log(w) + multivariate_normal(m, c).logpdf(X)
                             for w, m, c in zip(weights, means, covariances)])
    log_p -= log_p.max(axis=1, keepdims=True)
    resp = np.exp(log_p)
    return resp / resp.sum(axis=1, keepdims=True)


def test_partial_fit_blends_statistics_with_the_documented_step():
    """Second step with learning_decay=1, learning_offset=1 has step 1/2:
    the new parameters come from half the first batch's statistics (under the
    initial parameters) plus half the second's (under the first update)."""
    X = overlapping_blobs(n=3_000)
    first, second = X[:1_000], X[1_000:]
    init = hand_init_kwargs(X, 3, "full", seed=1)
    gm = GaussianMixture(3, learning_decay=1.0, learning_offset=1.0, reg_covar=1e-4, **init)
    gm.partial_fit(first)
    theta1 = (gm.weights_.copy(), gm.means_.copy(), gm.covariances_.copy())
    gm.partial_fit(second)

    theta0 = (init["weights_init"], init["means_init"],
              np.linalg.inv(init["precisions_init"]))
    parts = [(0.5 / len(first), first, _posterior(first, *theta0)),
             (0.5 / len(second), second, _posterior(second, *theta1))]
    mass = sum(scale * resp.sum(axis=0) for scale, _, resp in parts)
    means = sum(scale * resp.T @ data for scale, data, resp in parts) / mass[:, None]
    covariances = []
    for j in range(3):
        scatter = sum(scale * (resp[:, j, None] * (data - means[j])).T @ (data - means[j])
                      for scale, data, resp in parts)
        covariances.append(scatter / mass[j] + 1e-4 * np.eye(3))
    assert_allclose(gm.weights_, mass / mass.sum(), rtol=1e-10)
    assert_allclose(gm.means_, means, rtol=1e-10, atol=1e-12)
    assert_allclose(gm.covariances_, covariances, rtol=1e-9, atol=1e-12)
    assert gm.n_steps_ == 2


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_partial_fit_after_fit_continues_from_the_fit(covariance_type):
    X = overlapping_blobs(n=4_000)
    gm = GaussianMixture(4, covariance_type=covariance_type, tol=1e-8, max_iter=500,
                         random_state=0).fit(X)
    before = {name: getattr(gm, name).copy() for name in FITTED_ARRAYS}
    score = gm.score(X)
    gm.partial_fit(X)  # a converged fit is a fixed point of a full-data step
    for name, value in before.items():
        assert_allclose(getattr(gm, name), value, rtol=1e-4, atol=1e-4, err_msg=name)
    assert gm.score(X) == pytest.approx(score, abs=1e-6)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_partial_fit_integer_weights_equal_repeated_rows(covariance_type):
    X = overlapping_blobs(n=600)
    counts = np.random.default_rng(2).integers(0, 4, size=X.shape[0])
    init = hand_init_kwargs(X, 3, covariance_type)
    weighted = GaussianMixture(3, covariance_type=covariance_type, **init)
    repeated = GaussianMixture(3, covariance_type=covariance_type, **init)
    for part in np.array_split(np.arange(X.shape[0]), 3):
        weighted.partial_fit(X[part], sample_weight=counts[part])
        repeated.partial_fit(np.repeat(X[part], counts[part], axis=0))
    for name in FITTED_ARRAYS:
        assert_allclose(getattr(weighted, name), getattr(repeated, name), rtol=1e-9,
                        atol=1e-12, err_msg=name)


def test_partial_fit_keeps_float32_and_converts_batches():
    X = overlapping_blobs(n=2_000)
    gm = GaussianMixture(3, random_state=0).partial_fit(X[:1000].astype(np.float32))
    gm.partial_fit(X[1000:])  # float64 batch, float32 model
    assert gm.means_.dtype == np.float32 and gm.covariances_.dtype == np.float32
    assert np.all(np.isfinite(gm.covariances_))


def test_partial_fit_rejects_bad_batches_without_changing_the_model():
    X = overlapping_blobs(n=1_000)
    with pytest.raises(ValueError, match="n_samples >= n_components"):
        GaussianMixture(5).partial_fit(X[:3])
    gm = GaussianMixture(3, random_state=0).partial_fit(X)
    means = gm.means_.copy()
    with pytest.raises(ValueError, match="features"):
        gm.partial_fit(X[:, :2])
    with pytest.raises(ValueError, match="NaN"):
        gm.partial_fit(np.where(X > 3, np.nan, X))
    with pytest.raises(ValueError, match="non-negative"):
        gm.partial_fit(X, sample_weight=-np.ones(X.shape[0]))
    assert_array_equal(gm.means_, means)
    assert gm.n_steps_ == 1
    gm.partial_fit(X[:1])  # later batches may be a single row
    assert gm.n_steps_ == 2


@pytest.mark.parametrize("decay", [0.5, 1.5, "0.7", None, True])
def test_learning_decay_is_checked(decay):
    with pytest.raises(ValueError, match="learning_decay"):
        GaussianMixture(2, learning_decay=decay).partial_fit(overlapping_blobs(n=100))


def test_fit_after_partial_fit_starts_afresh():
    X = overlapping_blobs(n=2_000)
    gm = GaussianMixture(3, random_state=0)
    gm.partial_fit(X[:500]).fit(X)
    fresh = GaussianMixture(3, random_state=0).fit(X)
    for name in FITTED_ARRAYS:
        assert_array_equal(getattr(gm, name), getattr(fresh, name))


# ------------------------------------------------------------------- memmap


@pytest.fixture(scope="module")
def memmapped(tmp_path_factory):
    X = overlapping_blobs(n=20_000)
    path = tmp_path_factory.mktemp("mm") / "X.npy"
    np.save(path, X)
    return X, path


@pytest.mark.parametrize("init_params", INIT_PARAMS)
@pytest.mark.parametrize("mode", ["r", "c"])
def test_memmap_fit_equals_in_memory_fit(memmapped, init_params, mode, monkeypatch):
    import gaussmix._blocks

    monkeypatch.setattr(gaussmix._blocks, "RELEASE_BYTES", 1 << 16)  # many blocks
    X, path = memmapped
    kwargs = dict(n_components=4, covariance_type="full", init_params=init_params,
                  random_state=0, tol=1e-5)
    mapped = np.load(path, mmap_mode=mode)
    on_disk = GaussianMixture(**kwargs).fit(mapped)
    in_memory = GaussianMixture(**kwargs).fit(X)
    for name in FITTED_ARRAYS:
        assert_allclose(getattr(on_disk, name), getattr(in_memory, name), rtol=1e-9,
                        atol=1e-12, err_msg=name)
    assert_array_equal(on_disk.predict(mapped), in_memory.predict(X))
    assert_allclose(on_disk.predict_proba(mapped), in_memory.predict_proba(X), atol=1e-12)
    assert_array_equal(mapped, X)  # the file is untouched


def test_memmap_float32_file_with_float64_model(memmapped, tmp_path):
    X, _ = memmapped
    path = tmp_path / "X32.npy"
    np.save(path, X.astype(np.float32))
    gm = GaussianMixture(4, random_state=0).fit(X)
    mapped = np.load(path, mmap_mode="r")
    assert_allclose(gm.score_samples(mapped), gm.score_samples(X.astype(np.float32)),
                    rtol=1e-12)


@pytest.mark.slow
def test_memmap_fit_keeps_resident_memory_far_below_the_file(tmp_path):
    """Fit + predict on a 256 MiB file: peak RSS grows by a fraction of it."""
    path = tmp_path / "big.npy"
    rng = np.random.default_rng(0)
    rows, d = 1_000_000, 32
    mapped = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=(rows, d))
    for start in range(0, rows, 100_000):
        block = rng.normal(size=(100_000, d))
        block[:, 0] += 6.0 * (np.arange(start, start + 100_000) % 3)
        mapped[start:start + 100_000] = block
    mapped.flush()
    del mapped
    file_mib = path.stat().st_size / 2**20
    script = textwrap.dedent(f"""
        import resource, numpy as np
        from gaussmix import GaussianMixture
        X = np.load({str(path)!r}, mmap_mode="r")
        def peak_mib():
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        GaussianMixture(1, max_iter=1).fit(X[:1000])  # load everything lazily imported
        base = peak_mib()
        gm = GaussianMixture(3, covariance_type="diag", max_iter=3, tol=0,
                             random_state=0).fit(X)
        labels = gm.predict(X)
        print(peak_mib() - base)
    """)
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", script],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    growth_mib = float(result.stdout.strip())
    # labels of the kmeans init and of predict: 2 x 8 MB; the rest is one block
    assert growth_mib < file_mib / 4, (growth_mib, file_mib)


# ---------------------------------------------- hostile partial_fit batches


@pytest.mark.parametrize("covariance_type", ALL_COVARIANCE_TYPES)
def test_partial_fit_single_row_batches(covariance_type):
    X = two_blobs(100)
    gm = GaussianMixture(2, covariance_type=covariance_type, random_state=0)
    with pytest.raises(ValueError, match=r"(?i)sample"):
        gm.partial_fit(X[:1])  # a first batch of one row cannot initialise
    assert not hasattr(gm, "means_")
    gm.partial_fit(X)
    for row in range(0, 100, 7):
        fit_ok = True
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            try:
                gm.partial_fit(X[row:row + 1])
            except ValueError as exc:
                assert_clear_error(exc)
                fit_ok = False
        if fit_ok:
            assert_sane_model(gm, X)


@pytest.mark.parametrize("covariance_type", ALL_COVARIANCE_TYPES)
@pytest.mark.parametrize("k", [1, 2])
def test_partial_fit_batches_of_equal_rows_after_the_first(covariance_type, k):
    X = two_blobs(100)
    gm = GaussianMixture(k, covariance_type=covariance_type, random_state=0).partial_fit(X)
    for repeat in range(20):
        batch = np.tile(X[repeat % 3], (25, 1))
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            try:
                gm.partial_fit(batch)
            except ValueError as exc:
                assert_clear_error(exc)
                continue
        assert_sane_model(gm, batch)
        assert_sane_model(gm, X)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical", "EVE"])
def test_partial_fit_first_batch_all_equal_rows(covariance_type):
    batch = np.tile([[1.0, 2.0, 3.0]], (20, 1))
    with pytest.raises(ValueError, match=r"(?i)equal"):
        GaussianMixture(2, covariance_type=covariance_type).partial_fit(batch)
    gm = GaussianMixture(1, covariance_type=covariance_type).partial_fit(batch)
    assert_sane_model(gm, batch)
    gm.partial_fit(two_blobs(50))
    assert_sane_model(gm, batch)


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical", "tied"])
def test_partial_fit_of_an_astronomically_far_batch(covariance_type):
    """Was a bug (fixed in commit cab5ead): the batch
    was silently ignored (zero responsibilities), n_steps_ advanced and
    lower_bound_ = -inf."""
    X = two_blobs(60, d=1)
    gm = GaussianMixture(2, covariance_type=covariance_type, random_state=0).partial_fit(X)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            gm.partial_fit(X[:22] * 1e300)
        except ValueError as exc:
            assert_clear_error(exc)
            return
    assert np.isfinite(gm.lower_bound_)
    assert_sane_model(gm, X[:22] * 1e300)
