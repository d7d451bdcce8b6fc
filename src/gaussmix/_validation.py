"""Input checks at the Python boundary: everything the compiled core trusts."""
import numbers

import numpy as np

from ._blocks import row_ranges

# Rows checked per step, so validation needs no n_samples x n_features temporary.
_CHECK_ROWS = 1 << 15


def _is_sparse(X):
    return hasattr(X, "tocsr") or hasattr(X, "toarray") and hasattr(X, "nnz")


def feature_names(X):
    """Column names of a DataFrame-like X when they are all strings, else None."""
    columns = getattr(X, "columns", None)
    if columns is None or isinstance(X, np.ndarray):
        return None
    names = np.asarray(list(columns), dtype=object)
    if len(names) and all(isinstance(name, str) for name in names):
        return names
    return None


def check_feature_names(estimator, X):
    """Compare X's feature names with those seen in fit, as scikit-learn does."""
    names = feature_names(X)
    fitted = getattr(estimator, "feature_names_in_", None)
    name = type(estimator).__name__
    if fitted is None and names is not None:
        import warnings
        warnings.warn(f"X has feature names, but {name} was fitted without feature names",
                      UserWarning)
    elif fitted is not None and names is None:
        import warnings
        warnings.warn(f"X does not have valid feature names, but {name} was fitted with "
                      "feature names", UserWarning)
    elif fitted is not None and (len(fitted) != len(names) or np.any(fitted != names)):
        raise ValueError("The feature names should match those that were passed during fit.\n"
                         f"Fitted with: {list(fitted)}\nGot: {list(names)}")


def as_float_array(X, name="X", min_samples=1, parse_strings=True, allow_nan=False):
    """X as a finite, 2-D, C-contiguous float32/float64 array (no copy when it
    already is one; read-only and memory-mapped arrays are kept as they are).
    With ``allow_nan``, NaN (a missing value) passes; infinity never does.

    Strings and bytes that spell numbers are parsed, as scikit-learn's ``fit``
    does; with ``parse_strings=False`` a string or bytes array is refused, as
    its predictions do (they ask for a numeric dtype). Objects, strings among
    them, are converted either way. ValueError for anything not a number.
    """
    if _is_sparse(X):
        raise TypeError(f"{name} is a sparse matrix; gaussmix needs dense input "
                        "(convert with X.toarray()).")
    X = np.asarray(X)
    if np.iscomplexobj(X):
        raise ValueError(f"Complex data not supported: {name} has dtype {X.dtype}.")
    if X.dtype not in (np.float32, np.float64):
        if X.dtype.kind in "SU" and not parse_strings:
            raise ValueError(f"{name} is an array of strings (dtype {X.dtype}); convert it "
                             f"to numbers first, e.g. np.asarray({name}, dtype=float).")
        if X.dtype.kind not in "biufSUO":
            raise TypeError(f"{name} must hold numbers, got dtype {X.dtype}.")
        try:
            X = X.astype(np.float64)
        except OverflowError as exc:
            raise ValueError(f"{name} holds a number beyond float64's range: {exc}") from None
        except ValueError as exc:
            raise ValueError(f"{name} must hold numbers ({str(exc).rstrip('.')}).") from None
    if X.ndim != 2:
        hint = (" Reshape your data either using array.reshape(-1, 1) if your data has a "
                "single feature or array.reshape(1, -1) if it contains a single sample."
                if X.ndim < 2 else "")
        raise ValueError(f"Expected 2D array for {name}, got {X.ndim}D array of shape "
                         f"{X.shape} instead.{hint}")
    n, d = X.shape
    if n < min_samples:
        raise ValueError(f"Found array with {n} sample(s) (shape={X.shape}) while a "
                         f"minimum of {min_samples} is required.")
    if d == 0:
        raise ValueError(f"Found array with 0 feature(s) (shape={X.shape}) while a "
                         "minimum of 1 is required.")
    X = np.ascontiguousarray(X)
    for start, stop in row_ranges(X, _CHECK_ROWS):
        block = X[start:stop]
        # A finite sum proves every entry finite; only otherwise look closer
        # (the sum of large finite values may overflow).
        if np.isfinite(block.sum(dtype=np.float64)):
            continue
        if np.isinf(block).any():
            raise infinity_error(name)
        if not allow_nan and np.isnan(block).any():
            raise nan_error(name)
    return X


def infinity_error(name):
    """The ValueError for an input ``name`` holding infinity."""
    return ValueError(f"Input {name} contains infinity; gaussmix needs finite values.")


def nan_error(name):
    """The ValueError for an input ``name`` holding NaN without nan_policy='marginalize'."""
    return ValueError(f"Input {name} contains NaN; gaussmix needs finite values: "
                      "GaussianMixture(nan_policy='marginalize') fits and predicts "
                      "with missing values, or drop or impute them first.")


def parse_text_array(X):
    """A string or bytes array X (nested lists of strings included) parsed to
    numbers, any other X as given: scikit-learn's ``fit_predict`` labels the
    numbers its fit parsed, where its ``predict`` would refuse the strings."""
    if not isinstance(X, (np.ndarray, list, tuple)):
        return X
    try:
        array = np.asarray(X)
    except ValueError:
        return X  # ragged: left to the fit to report
    return as_float_array(array) if array.dtype.kind in "SU" else X


def all_rows_equal(X):
    """True when every row of X equals the first (stops at the first block
    that differs, so ordinary data costs one small comparison)."""
    first = X[0].copy()
    return not any((X[start:stop] != first).any()
                   for start, stop in row_ranges(X, _CHECK_ROWS))


def check_sample_weight(sample_weight, n_samples, dtype):
    """Non-negative finite weights of shape (n_samples,) in ``dtype``, or None."""
    if sample_weight is None:
        return None
    if isinstance(sample_weight, numbers.Number):
        sample_weight = np.full(n_samples, sample_weight)
    w = np.asarray(sample_weight)
    if w.dtype.kind not in "biuf":
        raise TypeError(f"sample_weight must hold numbers, got dtype {w.dtype}.")
    if w.shape != (n_samples,):
        raise ValueError(f"sample_weight has shape {w.shape}, expected ({n_samples},).")
    w = np.ascontiguousarray(w, dtype=dtype)
    if not np.isfinite(w).all():
        raise ValueError("sample_weight contains NaN or infinity.")
    if (w < 0).any():
        raise ValueError("sample_weight must be non-negative.")
    if not w.sum() > 0:
        raise ValueError("sample_weight sums to zero: at least one sample needs weight.")
    return w


def check_random_state(seed):
    """A numpy RandomState from None, an int or a RandomState."""
    if seed is None or seed is np.random:
        return np.random.mtrand._rand
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        return np.random.RandomState(seed)
    if isinstance(seed, np.random.RandomState):
        return seed
    raise ValueError(f"random_state must be None, an int or a numpy RandomState, "
                     f"got {seed!r}.")


def check_array_param(value, name, shape, dtype):
    """A user-given initial parameter as a finite float64 array of ``shape``
    whose values fit in ``dtype``, the dtype of X."""
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an array of numbers.") from None
    if arr.shape != shape:
        raise ValueError(f"The parameter '{name}' should have the shape of {shape}, "
                         f"but got {arr.shape}.")
    if not np.isfinite(arr).all():
        raise ValueError(f"The parameter '{name}' contains NaN or infinity.")
    check_param_range(name, np.abs(arr), dtype)
    return arr


def check_param_range(name, magnitudes, dtype, what="its values"):
    """Raise unless the ``magnitudes`` of initial parameter ``name`` fit in
    ``dtype``, the dtype of X."""
    dtype = np.dtype(dtype)
    largest = np.finfo(dtype).max
    if not np.all(magnitudes <= largest):
        wider = "" if dtype == np.float64 else " or pass X as float64"
        raise ValueError(f"The parameter '{name}' is out of {dtype}'s range for {dtype} X: "
                         f"{what} must not exceed {largest:.3g} in magnitude. Rescale X "
                         f"and the initial parameters together{wider}.")
