"""BayesianGaussianMixture on Dask arrays: the same posterior as in memory."""
import numpy as np
import pytest
from numpy.testing import assert_allclose

da = pytest.importorskip("dask.array")

from gaussmix import BayesianGaussianMixture  # noqa: E402

from conftest import make_blobs  # noqa: E402

# a run that stops at max_iter compares as well as a converged one
pytestmark = pytest.mark.filterwarnings("ignore::gaussmix.ConvergenceWarning")

POSTERIOR = ("weights_", "means_", "covariances_", "precisions_cholesky_", "mean_precision_",
             "degrees_of_freedom_", "mean_prior_", "covariance_prior_")


@pytest.fixture(scope="module")
def X():
    centers = np.array([[0.0, 0, 0], [5, 4, 0], [0, 5, 5]])
    return make_blobs(6_000, centers, [1.0, 1.4, 0.7], seed=4)


def fit(X, sample_weight=None, **params):
    # Dask initialises from all rows below its sample size, so both start alike.
    model = BayesianGaussianMixture(n_components=4, init_params="random_from_data",
                                    random_state=0, max_iter=200, **params)
    return model.fit(X, sample_weight=sample_weight)


def assert_same_posterior(remote, local):
    for name in POSTERIOR:
        assert_allclose(np.asarray(getattr(remote, name)), np.asarray(getattr(local, name)),
                        rtol=1e-9, atol=1e-12, err_msg=name)
    assert_allclose(np.asarray(remote.weight_concentration_),
                    np.asarray(local.weight_concentration_), rtol=1e-9)
    assert remote.lower_bound_ == pytest.approx(local.lower_bound_, rel=1e-10)
    assert remote.n_iter_ == local.n_iter_


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("prior_type", ["dirichlet_process", "dirichlet_distribution"])
def test_a_dask_fit_equals_the_in_memory_fit(X, covariance_type, prior_type):
    # the default priors need the whole array's mean and covariance (not a sample's)
    params = dict(covariance_type=covariance_type, weight_concentration_prior_type=prior_type)
    assert_same_posterior(fit(da.from_array(X, chunks=1_000), **params), fit(X, **params))


def test_weighted_dask_fit_counts_the_weights_sum(X):
    weights = np.random.default_rng(0).integers(1, 5, X.shape[0]).astype(float)
    local = fit(X, weights)
    remote = fit(da.from_array(X, chunks=1_000), da.from_array(weights, chunks=1_000))
    assert_same_posterior(remote, local)
    # the posterior counts sum(weights) samples, not n rows: beta_k = beta_0 + N_k
    assert local.mean_precision_.sum() == pytest.approx(4 * 1.0 + weights.sum(), rel=1e-12)
