"""Warnings and errors, interoperable with scikit-learn's when it is in use."""
import sys


class ConvergenceWarning(UserWarning):
    """EM stopped at max_iter before the lower bound changed by less than tol."""


class NotFittedError(ValueError, AttributeError):
    """A method that needs fitted parameters was called before fit."""


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
