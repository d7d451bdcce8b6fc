"""Warnings and errors, interoperable with scikit-learn's when it is in use."""
import sys


class ConvergenceWarning(UserWarning):
    """EM stopped at max_iter before the lower bound changed by less than tol."""


class NotFittedError(ValueError, AttributeError):
    """A method that needs fitted parameters was called before fit."""


class InconsistentVersionWarning(UserWarning):
    """An estimator was unpickled by another gaussmix version than pickled it.

    A pickle holds the estimator's internal attributes, which may change
    between versions; refit, or move models between versions with
    ``save`` / ``gaussmix.load``, whose file format is versioned.

    Attributes
    ----------
    estimator_name : str
    original_version : str or None
        The version that pickled the estimator; None for a pickle made before
        gaussmix recorded its version.
    current_version : str
        The version that unpickled it.
    """

    def __init__(self, estimator_name, original_version, current_version):
        super().__init__(estimator_name, original_version, current_version)
        self.estimator_name = estimator_name
        self.original_version = original_version
        self.current_version = current_version

    def __str__(self):
        original = ("an unknown gaussmix version" if self.original_version is None
                    else f"gaussmix {self.original_version}")
        return (f"{self.estimator_name} was pickled by {original} and is unpickled by "
                f"gaussmix {self.current_version}: it may not work. Refit it, or use "
                f"save / gaussmix.load, whose file format does not depend on the version.")


class InvalidParameterError(ValueError, TypeError):
    """A constructor parameter has an invalid type or value."""


def _with_sklearn_base(ours, name):
    # When the caller already imported scikit-learn, raise/warn a class that is
    # also scikit-learn's, so its filters and `except` clauses see ours.
    # (gaussmix itself never imports scikit-learn.)
    sk = sys.modules.get("sklearn.exceptions")
    theirs = getattr(sk, name, None) if sk is not None else None
    if theirs is None or issubclass(ours, theirs):
        return ours
    cache = _with_sklearn_base.__dict__.setdefault("cache", {})
    if name not in cache:
        cache[name] = type(name, (ours, theirs), {"__module__": ours.__module__})
    return cache[name]


def convergence_warning():
    return _with_sklearn_base(ConvergenceWarning, "ConvergenceWarning")


def not_fitted_error():
    return _with_sklearn_base(NotFittedError, "NotFittedError")
