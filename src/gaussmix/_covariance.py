"""The table of covariance models: one entry per covariance type.

A covariance type is one of scikit-learn's four names (full, tied, diag,
spherical) or one of mclust's 14 model names (``_parsimonious.MODELS``).
Each is a ``CovarianceModel`` entry of ``MODELS``, found by ``model(name)``.
An entry knows its mclust name, its M-step and its free-parameter count; it
stores its parameters in one of four ``Layout``s, which know the array
shapes, the precision Cholesky parameterisation, the per-component factors
the kernels and samplers use, and how given or saved arrays are checked.
VVV=full, EEE=tied, VVI=diag and VII=spherical are those types exactly
(scikit-learn's closed-form M-step); EII is stored as spherical,
EEI/VEI/EVI as diag, the other six as full (M-step in ``_parsimonious``).

Statistics are accumulated around a shift c_k (see ``_em``):
N_k = sum r_ik, S_k = sum r_ik (x_i - c_k), W_k = sum r_ik (x_i - c_k)(x_i - c_k)^T
(d x d per component when the layout's ``full_scatter``; else its diagonal).

Adding a covariance model
-------------------------
1. Write its M-step: a function of the mass fractions and the regularised
   scatters in ``_parsimonious`` (registered in ``_CLOSED_FORM`` or
   ``_ITERATIVE``), and its count in ``_parsimonious.n_covariance_parameters``
   if its name is not of mclust's three-letter form.
2. Add one line to ``MODELS`` below: ``CovarianceModel(name, mclust_name,
   LAYOUT)``, with the smallest layout that stores it (SPHERICAL, DIAG, TIED
   or FULL). Everything else (kernels, sampling, initialisation, BIC,
   persistence, model selection) follows from the layout.
3. Add its name to the parametrised tests in tests/test_covariance_models.py.
"""
from dataclasses import dataclass

import numpy as np
from scipy import linalg

from . import _parsimonious, _parsimonious_steps

FIT_FAILED = (
    "Fitting the mixture model failed because some components have ill-defined "
    "empirical covariance (for instance caused by singleton or collapsed samples). "
    "Try to decrease the number of components, increase reg_covar, or scale the "
    "input data."
)


class Layout:
    """How a covariance model's arrays are stored (a scikit-learn type's shapes).

    ``full_scatter``: the M-step reads d x d scatters (else their diagonals);
    ``diagonal``: the covariances are diagonal, so kernels use (k, d) scales.
    """

    name = None
    full_scatter = False
    diagonal = True

    def shape(self, n_components, n_features):
        """Shape of covariances_, precisions_ and precisions_cholesky_."""
        raise NotImplementedError

    def per_component(self, array, n_components, n_features):
        """A stored array as one (d, d) matrix or (d,) diagonal per component (a view)."""
        raise NotImplementedError

    def diagonals(self, array):
        """The diagonal entries of stored covariances or factors (positive when valid)."""
        return array

    def scatter_per_mass(self, covariances, n_components, n_features, reg_covar):
        """W_k / N_k (float64, one per component) whose M-step gives ``covariances``:
        what ``_em.RunningStatistics.from_parameters`` stores."""
        scatter = np.array(self.per_component(np.asarray(covariances, dtype=np.float64),
                                              n_components, n_features))
        if scatter.ndim == 3:
            scatter[:, np.arange(n_features), np.arange(n_features)] -= reg_covar
        else:
            scatter -= reg_covar
        return scatter

    def core_covariances(self, nk, S, mean_offset, W, reg_covar):
        """scikit-learn's M-step: the regularised scatter about the new means over N_k."""
        raise NotImplementedError

    def precision_cholesky(self, covariances):
        """Upper-triangular U with U U^T = inv(covariance), as scikit-learn stores it."""
        if not (np.all(covariances > 0) and np.all(np.isfinite(covariances))):
            raise ValueError(FIT_FAILED)
        return 1.0 / np.sqrt(covariances)

    def precision_cholesky_from_precisions(self, precisions):
        """Upper-triangular U with U U^T = precision."""
        return np.sqrt(precisions)

    def precisions_from_cholesky(self, prec_chol):
        return prec_chol ** 2

    def covariances_from_cholesky(self, prec_chol):
        return 1.0 / prec_chol ** 2

    def matrices(self, array, n_components, n_features):
        """Stored covariances, precisions or factors as (k, d, d) matrices."""
        per = self.per_component(array, n_components, n_features)
        return per[:, :, None] * np.eye(n_features)

    def checked_precision_eigenvalues(self, precisions, covariance_type):
        """Eigenvalues of user-given precisions (``precisions_init``), already
        checked for shape; ValueError unless they are valid precisions."""
        if np.any(precisions <= 0):
            raise ValueError(f"'{covariance_type} precision' should be positive.")
        return precisions

    def check_representable(self, params):
        """Raise the fit-failed ValueError unless the parameters, in their final
        dtype, are finite with positive variances and factor diagonals (a float32
        model whose float64 M-step over- or underflows float32 fails here)."""
        with np.errstate(over="ignore"):
            precisions = self.precisions_from_cholesky(params.precisions_cholesky)
        finite = all(np.all(np.isfinite(a)) for a in (params.weights, params.means,
                                                       params.covariances,
                                                       params.precisions_cholesky, precisions))
        if not (finite and np.all(self.diagonals(params.precisions_cholesky) > 0)
                and np.all(self.diagonals(params.covariances) > 0)):
            raise ValueError(FIT_FAILED)

    def sample(self, rng, means, covariances, counts):
        """counts[j] draws x = mu_j + noise per component j, as a list of (count_j, d) arrays."""
        d = means.shape[1]
        scales = np.sqrt(self.per_component(covariances, len(counts), d))
        return [mean + rng.standard_normal(size=(count, d)) * scale
                for mean, scale, count in zip(means, scales, counts)]


class _Matrices(Layout):
    """Shared by full and tied: d x d matrices, stacked or one for all."""

    full_scatter = True
    diagonal = False

    def diagonals(self, array):
        return np.diagonal(array, axis1=-2, axis2=-1)

    def _stack(self, array):
        return array[None] if self.name == "tied" else array

    def _unstack(self, stack):
        return stack[0] if self.name == "tied" else stack

    def core_covariances(self, nk, S, mean_offset, W, reg_covar):
        scatter = symmetric_scatter(W, S, mean_offset)
        d = S.shape[1]
        if self.name == "full":
            covariances = scatter / nk[:, None, None]
            covariances[:, np.arange(d), np.arange(d)] += reg_covar
        else:
            covariances = scatter.sum(axis=0) / nk.sum()
            covariances.flat[:: d + 1] += reg_covar
        return covariances

    def precision_cholesky(self, covariances):
        stack = self._stack(covariances)
        if not np.all(np.isfinite(stack)):
            raise ValueError(FIT_FAILED)
        try:
            lower = np.linalg.cholesky(stack)
        except np.linalg.LinAlgError:
            raise ValueError(FIT_FAILED) from None
        # inv(L)^T by LAPACK's triangular inverse, called directly: the scipy
        # wrappers' input checks cost more than the work at small d
        trtri = linalg.get_lapack_funcs("trtri", (lower,))
        factors = np.empty_like(lower)
        for k, factor in enumerate(lower):
            inverse, info = trtri(factor, lower=1)
            if info != 0:
                raise ValueError(FIT_FAILED)
            factors[k] = inverse.T
        return self._unstack(factors)

    def precision_cholesky_from_precisions(self, precisions):
        # the Cholesky factor of the reversed matrix, reversed, is upper triangular
        return self._unstack(np.stack([
            linalg.cholesky(p[::-1, ::-1], lower=True)[::-1, ::-1]
            for p in self._stack(precisions)]))

    def precisions_from_cholesky(self, prec_chol):
        stack = self._stack(prec_chol)
        return self._unstack(np.einsum("kij,klj->kil", stack, stack))

    def covariances_from_cholesky(self, prec_chol):
        # inv(U U^T) = U^-T U^-1
        stack = self._stack(prec_chol)
        eye = np.eye(stack.shape[-1])
        inv = np.stack([linalg.solve_triangular(u, eye, lower=False) for u in stack])
        return self._unstack(np.swapaxes(inv, 1, 2) @ inv)

    def matrices(self, array, n_components, n_features):
        return self.per_component(array, n_components, n_features)

    def checked_precision_eigenvalues(self, precisions, covariance_type):
        stack = self._stack(precisions)
        eigenvalues = np.linalg.eigvalsh(stack)
        if not np.allclose(stack, np.swapaxes(stack, 1, 2)) or np.any(eigenvalues <= 0):
            raise ValueError(f"'{covariance_type} precision' should be symmetric, "
                             "positive-definite.")
        return eigenvalues

    def sample(self, rng, means, covariances, counts):
        covs = self.per_component(covariances, len(counts), means.shape[1])
        return [rng.multivariate_normal(mean, cov, int(count))
                for mean, cov, count in zip(means, covs, counts)]


class _Full(_Matrices):
    name = "full"

    def shape(self, n_components, n_features):
        return (n_components, n_features, n_features)

    def per_component(self, array, n_components, n_features):
        return array


class _Tied(_Matrices):
    name = "tied"

    def shape(self, n_components, n_features):
        return (n_features, n_features)

    def per_component(self, array, n_components, n_features):
        return np.broadcast_to(array, (n_components, n_features, n_features))

    def precisions_from_cholesky(self, prec_chol):
        return prec_chol @ prec_chol.T


class _Diag(Layout):
    name = "diag"

    def shape(self, n_components, n_features):
        return (n_components, n_features)

    def per_component(self, array, n_components, n_features):
        return array

    def core_covariances(self, nk, S, mean_offset, W, reg_covar):
        return (W - S * mean_offset) / nk[:, None] + reg_covar


class _Spherical(Layout):
    name = "spherical"

    def shape(self, n_components, n_features):
        return (n_components,)

    def per_component(self, array, n_components, n_features):
        return np.broadcast_to(np.asarray(array)[:, None], (n_components, n_features))

    def core_covariances(self, nk, S, mean_offset, W, reg_covar):
        return ((W - S * mean_offset) / nk[:, None] + reg_covar).mean(axis=1)


FULL, TIED, DIAG, SPHERICAL = _Full(), _Tied(), _Diag(), _Spherical()
LAYOUTS = {layout.name: layout for layout in (FULL, TIED, DIAG, SPHERICAL)}


def symmetric_scatter(W, S, mean_offset):
    """W's lower triangles mirrored, about the new means: W - S S^T / N_k
    (S is small: the shift c_k is near the mean)."""
    scatter = np.tril(W) + np.swapaxes(np.tril(W, -1), 1, 2)
    scatter -= S[:, :, None] * mean_offset[:, None, :]
    return scatter


@dataclass(frozen=True)
class CovarianceModel:
    """One covariance type: its names, its storage layout, its M-step and count.

    ``core``: the model is one of scikit-learn's four, whose M-step the
    layout computes in closed form; the others go through ``_parsimonious``.
    """

    name: str
    mclust: str
    layout: Layout
    core: bool = False

    def m_step(self, N, S, W, shift, reg_covar, previous=None, inner_max_iter=100):
        """Weights, means and covariances (float64) from summed statistics.

        Parameters
        ----------
        N : ndarray of shape (k,)
        S : ndarray of shape (k, d)
        W : ndarray of shape (k, d, d) or (k, d)
            Only the lower triangle of each d x d block is read (its diagonal
            when the layout's scatter is not full).
        shift : ndarray of shape (k, d)
        reg_covar : float
        previous : ndarray, optional
            The covariances being replaced: a warm start for the iterative
            mclust models.
        inner_max_iter : int, default=100
            Iterations of the iterative mclust models' M-steps (from a warm
            start, even one never lowers the likelihood).

        Returns
        -------
        weights, means, covariances : ndarrays
            ``weights`` is N_k normalised to sum to one; covariances in the
            model's layout.
        """
        nk = N + 10 * np.finfo(np.float64).eps
        mean_offset = S / nk[:, None]
        means = shift + mean_offset
        if not self.layout.full_scatter and W.ndim == 3:
            W = np.diagonal(W, axis1=1, axis2=2)
        if self.core:
            covariances = self.layout.core_covariances(nk, S, mean_offset, W, reg_covar)
        else:
            covariances = self._constrained_covariances(nk, S, mean_offset, W, reg_covar,
                                                        previous, inner_max_iter)
        return nk / nk.sum(), means, covariances

    def _constrained_covariances(self, nk, S, mean_offset, W, reg_covar, previous, max_iter):
        """The mclust M-step on the scatter about the new means (compiled,
        ``_parsimonious_steps``; the numpy ``_parsimonious`` where it fails)."""
        k, d = S.shape
        if self.layout.full_scatter:
            scatter = symmetric_scatter(W, S, mean_offset)
        else:
            scatter = W - S * mean_offset
        if previous is not None:
            previous = np.array(self.layout.per_component(
                np.asarray(previous, dtype=np.float64), k, d))
        try:
            covariances = _parsimonious_steps.covariances(self.mclust, nk, scatter, reg_covar,
                                                          previous=previous, max_iter=max_iter)
        except ValueError:
            # numpy's M-step names the failing components in its error (or,
            # should rounding let it pass, gives the covariances)
            try:
                covariances = _parsimonious.covariances(self.mclust, nk, scatter, reg_covar,
                                                        previous=previous, max_iter=max_iter)
            except ValueError as exc:  # say what to do, as the core models do
                raise ValueError(f"{FIT_FAILED} ({self.mclust}: {exc})") from None
        return covariances[:, 0] if self.layout is SPHERICAL else covariances

    def n_parameters(self, n_components, n_features):
        """Free parameters of the mixture (for BIC/AIC), counted as mclust does."""
        k, d = n_components, n_features
        cov_params = _parsimonious.n_covariance_parameters(self.mclust, k, d)
        return int(cov_params + k * d + k - 1)


MODELS = (
    CovarianceModel("full", "VVV", FULL, core=True),
    CovarianceModel("tied", "EEE", TIED, core=True),
    CovarianceModel("diag", "VVI", DIAG, core=True),
    CovarianceModel("spherical", "VII", SPHERICAL, core=True),
    CovarianceModel("EII", "EII", SPHERICAL),
    CovarianceModel("VII", "VII", SPHERICAL, core=True),
    CovarianceModel("EEI", "EEI", DIAG),
    CovarianceModel("VEI", "VEI", DIAG),
    CovarianceModel("EVI", "EVI", DIAG),
    CovarianceModel("VVI", "VVI", DIAG, core=True),
    CovarianceModel("EEE", "EEE", TIED, core=True),
    CovarianceModel("VEE", "VEE", FULL),
    CovarianceModel("EVE", "EVE", FULL),
    CovarianceModel("VVE", "VVE", FULL),
    CovarianceModel("EEV", "EEV", FULL),
    CovarianceModel("VEV", "VEV", FULL),
    CovarianceModel("EVV", "EVV", FULL),
    CovarianceModel("VVV", "VVV", FULL, core=True),
)
_BY_NAME = {entry.name: entry for entry in MODELS}
COVARIANCE_TYPES = tuple(_BY_NAME)


def model(covariance_type):
    """The table entry of a covariance type (scikit-learn or mclust name, exact case)."""
    try:
        return _BY_NAME[covariance_type]
    except (KeyError, TypeError):
        raise ValueError(f"unknown covariance type {covariance_type!r}; valid types are "
                         f"{', '.join(COVARIANCE_TYPES)}") from None
