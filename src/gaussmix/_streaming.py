"""Running sufficient statistics for ``partial_fit`` (stepwise EM).

Each batch's statistics are put in central form per unit of weight and
blended into the running ones with the step size of the update; the
estimator's M-step then turns the blend into parameters.
"""
from dataclasses import dataclass

import numpy as np

from . import _covariance
from ._em import Statistics


@dataclass
class RunningStatistics:
    """Statistics per unit of sample weight, as ``partial_fit`` carries them.

    ``mass`` (k,) sums to one; ``means`` (k, d); ``scatter`` is each
    component's weighted covariance about its mean, without ``reg_covar``:
    (k, d, d) for full/tied, its diagonal (k, d) for diag/spherical.
    Keeping central moments (not raw sums) makes blending exact and stable
    however far the data sit from the origin.
    """

    mass: np.ndarray
    means: np.ndarray
    scatter: np.ndarray

    @classmethod
    def from_statistics(cls, stats, total_weight):
        """Central form of reduced ``Statistics`` of data of ``total_weight``."""
        present = stats.N > 0
        N = np.where(present, stats.N, 1.0)
        offset = stats.S / N[:, None]
        if stats.full:
            W = np.tril(stats.W) + np.swapaxes(np.tril(stats.W, -1), 1, 2)
            scatter = W / N[:, None, None] - offset[:, :, None] * offset[:, None, :]
        else:
            scatter = stats.W / N[:, None] - offset * offset
        scatter[~present] = 0.0
        return cls(stats.N / total_weight, stats.shift + offset, scatter)

    @classmethod
    def from_parameters(cls, params, covariance_type, reg_covar):
        """Statistics that reproduce ``params`` (``_em.Parameters``) through the M-step."""
        k, d = params.means.shape
        layout = _covariance.model(covariance_type).layout
        scatter = layout.scatter_per_mass(params.covariances, k, d, reg_covar)
        return cls(np.asarray(params.weights, dtype=np.float64),
                   np.asarray(params.means, dtype=np.float64), scatter)

    def blend(self, batch, step):
        """``(1 - step) * self + step * batch``, as pooled central moments."""
        a, b = (1.0 - step) * self.mass, step * batch.mass
        mass = a + b
        total = np.where(mass > 0, mass, 1.0)
        fa, fb = a / total, b / total
        delta = batch.means - self.means
        if self.scatter.ndim == 3:
            spread = delta[:, :, None] * delta[:, None, :]
            fa, fb, f = fa[:, None, None], fb[:, None, None], (fa * fb)[:, None, None]
        else:
            spread = delta * delta
            fa, fb, f = fa[:, None], fb[:, None], (fa * fb)[:, None]
        means = self.means + (b / total)[:, None] * delta
        return RunningStatistics(mass, means, fa * self.scatter + fb * batch.scatter
                                 + f * spread)

    def statistics(self):
        """The running statistics as reduced ``Statistics`` (around the means),
        ready for an M-step."""
        full = self.scatter.ndim == 3
        W = self.scatter * self.mass[:, None, None] if full else self.scatter * self.mass[:, None]
        return Statistics(self.mass, np.zeros_like(self.means), W, self.means, full)
