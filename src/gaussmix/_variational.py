"""Variational Bayes for Gaussian mixtures: the posterior update from
sufficient statistics, the E-step's per-component constants and the evidence
lower bound (Bishop, PRML 10.2; Blei & Jordan 2006 for the Dirichlet process).

The model: weights from a Dirichlet distribution (or a truncated
stick-breaking Dirichlet process), each component's precision from a Wishart
distribution W(nu, Psi^-1) and its mean from N(m, (beta Lambda)^-1). The
parameterisation is scikit-learn's: ``covariances`` is Psi_k / nu_k and the
precision Cholesky factor U_k its inverse's, so nu_k U_k U_k^T = E[Lambda_k].

Everything here is float64 numpy on k x d x d arrays; the pass over X is the
maximum-likelihood one, fed other constants (``log_weights``).
"""
from dataclasses import dataclass

import numpy as np
from scipy.special import betaln, digamma, gammaln

from . import _covariance
from ._em import Parameters
from ._streaming import RunningStatistics

PRIOR_TYPES = ("dirichlet_process", "dirichlet_distribution")


@dataclass(frozen=True)
class Priors:
    """The prior of one fit, every value resolved (float64).

    ``covariance`` has the covariance type's shape for one component:
    (d, d) for full and tied, (d,) for diag, a float for spherical.
    """

    weight_concentration_type: str
    weight_concentration: float
    mean_precision: float
    mean: np.ndarray
    degrees_of_freedom: float
    covariance: object


@dataclass
class VariationalParameters(Parameters):
    """Posterior parameters: the mixture's arrays (in the model's dtype; the
    weights are the posterior mean weights) and the posterior's own, float64.

    ``weight_concentration`` is a pair of (k,) arrays (the Beta parameters of
    each stick) for the Dirichlet process, else the (k,) Dirichlet parameters;
    ``degrees_of_freedom`` is a float for tied covariances, else (k,).
    """

    weight_concentration: object = None
    mean_precision: np.ndarray = None
    degrees_of_freedom: object = None


def posterior(nk, xk, sk, priors, covariance_type, dtype):
    """The variational posterior given the expected statistics.

    Parameters
    ----------
    nk : ndarray of shape (k,)
        Expected counts (with scikit-learn's 10 eps added).
    xk : ndarray of shape (k, d)
        Weighted means.
    sk : ndarray
        Regularised covariances about them, in the layout of ``covariance_type``.
    priors : Priors
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    dtype : numpy dtype of the mixture's arrays

    Returns
    -------
    VariationalParameters
    """
    k, d = xk.shape
    p = priors
    if p.weight_concentration_type == "dirichlet_process":
        # stick j's Beta(1 + N_j, alpha + sum_{l > j} N_l)
        later = np.concatenate([np.cumsum(nk[::-1])[-2::-1], [0.0]])
        concentration = (1.0 + nk, p.weight_concentration + later)
    else:
        concentration = p.weight_concentration + nk
    beta = p.mean_precision + nk
    means = (p.mean_precision * p.mean + nk[:, None] * xk) / beta[:, None]
    diff = xk - p.mean
    shrink = nk * p.mean_precision / beta     # N_k beta_0 / beta_k
    if covariance_type == "full":
        nu = p.degrees_of_freedom + nk
        scale = (p.covariance + nk[:, None, None] * sk
                 + shrink[:, None, None] * diff[:, :, None] * diff[:, None, :])
        covariances = scale / nu[:, None, None]
    elif covariance_type == "tied":
        nu = p.degrees_of_freedom + nk.sum() / k
        scale = p.covariance + sk * nk.sum() / k + (shrink * diff.T) @ diff / k
        covariances = scale / nu
    elif covariance_type == "diag":
        nu = p.degrees_of_freedom + nk
        covariances = (p.covariance + nk[:, None] * sk
                       + shrink[:, None] * diff ** 2) / nu[:, None]
    else:
        nu = p.degrees_of_freedom + nk
        covariances = (p.covariance + nk * sk + shrink * (diff ** 2).mean(axis=1)) / nu
    layout = _covariance.model(covariance_type).layout
    prec_chol = layout.precision_cholesky(covariances)
    params = VariationalParameters(
        mean_weights(concentration, p.weight_concentration_type).astype(dtype),
        means.astype(dtype), covariances.astype(dtype), prec_chol.astype(dtype),
        concentration, beta, nu)
    layout.check_representable(params)
    return params


def statistics_of_posterior(params, priors, covariance_type, reg_covar):
    """``posterior`` inverted: ``RunningStatistics`` of the
    counts N_k, the means x_k and the scatters about them.

    N_k from the weights' concentrations (1 + N_k for the Dirichlet process's
    sticks, gamma + N_k for the Dirichlet distribution) or from
    beta_k = beta_0 + N_k, whichever prior is smaller (least rounding).
    From beta_k m_k = beta_0 m_0 + N_k x_k: x_k = m_0 + beta_k / N_k (m_k - m_0);
    from Psi_k = Psi_0 + N_k S_k + beta_0 N_k / beta_k (x_k - m_0)(x_k - m_0)^T,
    Psi_k = nu_k ``covariances``, the scatter S_k less ``reg_covar`` (tied:
    the sums over k divided by k, and every component holds the pooled
    scatter; spherical: the features' mean). Counts within rounding of zero
    are zero: those components keep their posterior means and no scatter.
    """
    p = priors
    k, d = params.means.shape
    eps = np.finfo(np.float64).eps
    beta = np.asarray(params.mean_precision, dtype=np.float64)
    if p.weight_concentration_type == "dirichlet_process":
        posterior, prior = np.asarray(params.weight_concentration[0]), 1.0
    else:
        posterior, prior = np.asarray(params.weight_concentration), p.weight_concentration
    if p.mean_precision < prior:
        posterior, prior = beta, p.mean_precision
    # N_k + 10 eps, as the posterior took it (not below, whatever the rounding)
    nk = np.maximum(posterior - prior, 10 * eps)
    counts = nk - 10 * eps
    present = counts > 64 * eps * posterior
    if not np.any(present):
        raise ValueError("The fitted posterior's counts are lost in rounding against its "
                         "priors (weight_concentration_prior and mean_precision_prior): "
                         "partial_fit cannot continue from it.")
    ratio = np.divide(beta, nk, out=np.zeros(k), where=present)
    m = np.asarray(params.means, dtype=np.float64)
    diff = ratio[:, None] * (m - p.mean)   # x_k - m_0
    means = np.where(present[:, None], p.mean + diff, m)
    shrink = nk * p.mean_precision / beta
    nu = np.asarray(params.degrees_of_freedom, dtype=np.float64)
    cov = np.asarray(params.covariances, dtype=np.float64)
    if covariance_type == "full":
        outer = diff[:, :, None] * diff[:, None, :]
        scatter = (nu[:, None, None] * cov - p.covariance - shrink[:, None, None] * outer
                   ) / nk[:, None, None]
    elif covariance_type == "tied":
        pooled = (k * (nu * cov - p.covariance) - (shrink * diff.T) @ diff) / nk.sum()
        scatter = np.repeat(pooled[None], k, axis=0)
    elif covariance_type == "diag":
        scatter = (nu[:, None] * cov - p.covariance - shrink[:, None] * diff ** 2) / nk[:, None]
    else:
        spherical = (nu * cov - p.covariance - shrink * (diff ** 2).mean(axis=1)) / nk
        scatter = np.repeat(spherical[:, None], d, axis=1)
    if scatter.ndim == 3:
        scatter[:, np.arange(d), np.arange(d)] -= reg_covar
    else:
        scatter -= reg_covar
    scatter[~present] = 0.0
    counts = np.where(present, counts, 0.0)
    return RunningStatistics(counts / counts.sum(), means, scatter)


def mean_weights(concentration, prior_type):
    """Posterior mean of the weights (normalised, as scikit-learn's ``weights_``)."""
    if prior_type == "dirichlet_process":
        a, b = concentration
        stick = a / (a + b)
        rest = np.concatenate([[1.0], np.cumprod(b / (a + b))[:-1]])
        weights = stick * rest
    else:
        weights = np.asarray(concentration, dtype=np.float64)
    return weights / weights.sum()


def expected_log_weights(concentration, prior_type):
    """E[log pi_k] under the posterior of the weights."""
    if prior_type == "dirichlet_process":
        a, b = concentration
        total = digamma(a + b)
        return digamma(a) - total + np.concatenate([[0.0], np.cumsum(digamma(b) - total)[:-1]])
    concentration = np.asarray(concentration, dtype=np.float64)
    return digamma(concentration) - digamma(concentration.sum())


def log_weights(params, prior_type, n_features):
    """Each component's additive constant in the variational E-step.

    log rho_ik = E[log pi_k] + 1/2 E[log |Lambda_k|] - d/2 log 2 pi
                 - 1/2 (d / beta_k + nu_k (x_i - m_k)^T W_k (x_i - m_k)),
    and the kernels add log |U_k| - d/2 log 2 pi - 1/2 |(x - m_k) U_k|^2 with
    U_k U_k^T = nu_k W_k; what is left is this constant:
    E[log pi_k] - d/2 log nu_k + 1/2 (d log 2 + sum_j psi((nu_k - j) / 2) - d / beta_k).
    """
    d = n_features
    nu = np.asarray(params.degrees_of_freedom, dtype=np.float64)
    log_lambda = d * np.log(2.0) + digamma(0.5 * (nu[..., None] - np.arange(d))).sum(axis=-1)
    return (expected_log_weights(params.weight_concentration, prior_type)
            - 0.5 * d * np.log(nu) + 0.5 * (log_lambda - d / params.mean_precision))


def log_det_cholesky(prec_chol, covariance_type, n_features):
    """log |U_k| per component (a float for tied)."""
    U = np.asarray(prec_chol, dtype=np.float64)
    if covariance_type in ("full", "tied"):
        return np.log(np.diagonal(U, axis1=-2, axis2=-1)).sum(axis=-1)
    if covariance_type == "diag":
        return np.log(U).sum(axis=1)
    return n_features * np.log(U)


def bound_without_entropy(params, prior_type, covariance_type):
    """The evidence lower bound less the responsibilities' entropy term, up
    to constants (scikit-learn's ``_compute_lower_bound``): minus the
    Wishart and weight normalisers and d/2 sum_k log beta_k."""
    k, d = params.means.shape
    nu = params.degrees_of_freedom
    log_det = (log_det_cholesky(params.precisions_cholesky, covariance_type, d)
               - 0.5 * d * np.log(nu))
    # log normaliser of each Wishart, less its log(pi) term
    log_wishart = -(nu * log_det + nu * d * 0.5 * np.log(2.0)
                    + gammaln(0.5 * (np.asarray(nu)[..., None] - np.arange(d))).sum(axis=-1))
    log_wishart = k * log_wishart if covariance_type == "tied" else log_wishart.sum()
    if prior_type == "dirichlet_process":
        log_norm_weight = -betaln(*params.weight_concentration).sum()
    else:
        alpha = params.weight_concentration
        log_norm_weight = gammaln(alpha.sum()) - gammaln(alpha).sum()
    return float(-log_wishart - log_norm_weight - 0.5 * d * np.log(params.mean_precision).sum())


def responsibility_entropy(stats, log_likelihood, previous, prior_type, covariance_type):
    """-sum_i w_i sum_k r_ik log r_ik of a pass, from its statistics.

    log r_ik = log rho_ik - log p(x_i) with log rho_ik = c_k - 1/2 D_ik, so
    sum_ik w_i r_ik log r_ik = sum_k (N_k c_k - 1/2 tr(P_k C_k)) - sum_i w_i log p(x_i),
    P_k = U_k U_k^T and C_k = sum_i w_i r_ik (x_i - m_k)(x_i - m_k)^T, which
    the statistics give about their shift: C_k = W_k - S_k e_k^T - e_k S_k^T
    + N_k e_k e_k^T, e_k = m_k - c_k. Exact algebra, O(k d^2) after the pass:
    no n x k array and no change to the kernels.
    """
    k, d = previous.means.shape
    layout = _covariance.model(covariance_type).layout
    U = layout.per_component(np.asarray(previous.precisions_cholesky, dtype=np.float64), k, d)
    offsets = (log_weights(previous, prior_type, d)
               + log_det_cholesky(previous.precisions_cholesky, covariance_type, d)
               - 0.5 * d * np.log(2 * np.pi))
    e = np.asarray(previous.means, dtype=np.float64) - stats.shift.astype(np.float64)
    N, S = stats.N, stats.S
    if stats.full:
        W = np.tril(stats.W) + np.swapaxes(np.tril(stats.W, -1), 1, 2)
        C = (W - S[:, :, None] * e[:, None, :] - e[:, :, None] * S[:, None, :]
             + N[:, None, None] * e[:, :, None] * e[:, None, :])
        if U.ndim == 2:       # diagonal factors, full statistics
            U = U[:, :, None] * np.eye(d)
        trace = np.einsum("kij,kil,klj->k", U, C, U)     # tr(U^T C U)
    else:
        W = stats.W if stats.W.ndim == 2 else np.diagonal(stats.W, axis1=1, axis2=2)
        trace = (U ** 2 * (W - 2 * S * e + N[:, None] * e ** 2)).sum(axis=1)
    return float(log_likelihood - (N @ offsets - 0.5 * trace.sum()))
