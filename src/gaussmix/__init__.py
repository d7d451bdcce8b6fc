"""gaussmix: fast Gaussian mixture models fitted by EM, a drop-in for
scikit-learn's GaussianMixture on a compiled, multi-threaded core."""
from ._datasets import load_faithful
from ._exceptions import ConvergenceWarning, NotFittedError
from ._gaussian_mixture import GaussianMixture
from ._persistence import ModelFileError, load

__all__ = ["GaussianMixture", "ConvergenceWarning", "NotFittedError", "load_faithful", "load",
           "ModelFileError"]
__version__ = "0.1.0"
