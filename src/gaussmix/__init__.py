"""gaussmix: fast Gaussian mixture models fitted by EM and variational Bayes,
drop-ins for scikit-learn's GaussianMixture and BayesianGaussianMixture on a
compiled, multi-threaded core."""
# First: sets how OpenMP threads wait before any compiled module loads the runtime.
from . import _threading  # noqa: F401  isort: skip
from ._bayesian_mixture import BayesianGaussianMixture
from ._datasets import load_faithful
from ._exceptions import ConvergenceWarning, InconsistentVersionWarning, NotFittedError
from ._gaussian_mixture import GaussianMixture
from ._imputer import GaussianMixtureImputer
from ._persistence import ModelFileError, load
from ._selection import ModelSelection, select_model

__all__ = ["GaussianMixture", "BayesianGaussianMixture", "ConvergenceWarning", "InconsistentVersionWarning",
           "NotFittedError", "load_faithful", "load", "ModelFileError", "ModelSelection",
           "select_model", "GaussianMixtureImputer"]
__version__ = "0.1.0"
