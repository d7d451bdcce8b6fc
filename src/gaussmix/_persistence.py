"""Pickle-free persistence of fitted mixture estimators.

File format (version 1): a NumPy ``.npz`` archive (a zip file) of plain
numeric arrays, read with ``allow_pickle=False`` so loading never runs code.

- ``header``: UTF-8 JSON as a uint8 array: ``format`` (the estimator class's
  ``_saved_format``: "gaussmix.GaussianMixture" or
  "gaussmix.BayesianGaussianMixture"), ``format_version``,
  ``gaussmix_version``, ``params`` (constructor parameters), ``attributes``
  (scalar fitted attributes), ``arrays`` (name -> dtype and shape of every
  other entry) and ``sha256``, the digest of the header without it followed
  by every array's bytes in name order.
- one entry per fitted array every mixture has (``weights_``, ``means_``,
  ``covariances_``, ``precisions_cholesky_``), per running statistic of
  ``partial_fit`` (``stream.mass``, ...), per array-valued constructor
  parameter (``param.means_init``, ...; one holding a number or None is kept
  in ``params``) and per further fitted attribute of the estimator class
  (``BayesianGaussianMixture``: ``weight_concentration_``,
  ``mean_precision_``, ``degrees_of_freedom_``, its ``*_prior_`` values...;
  numbers as 0-d arrays, a pair of arrays stacked).

What a class saves beyond what every mixture has is its ``_saved_state``
(a ``SavedState``): its array-valued parameters, the form of each further
attribute (type, shape, bounds) given its parameters, and the private state
a loaded estimator rebuilds from them. ``load`` checks every value it reads
against that declaration.

The digest detects truncated or corrupted files and edits that do not
recompute it; it is not a signature, so only load files from sources you
trust to give you correct models.

The format is versioned by ``format_version`` alone: a file written by any
gaussmix version loads in any version that reads its format version (its
``gaussmix_version`` is informational), because the file holds only the
public parameters and fitted arrays, not the estimator's internals. Pickles
do hold the internals, so unpickling warns on a version mismatch instead
(``InconsistentVersionWarning``, see ``BaseMixture.__setstate__``).

Bytes appended after the archive are ignored when ``zipfile`` still finds the
archive's end record (it looks in the last 64 KiB): the digest has verified
every byte that makes up the model, so the model loaded is the one saved.
Longer trailing data hides the end record, and the file is refused.
"""
import hashlib
import io
import json
import lzma
import numbers
import os
import zipfile
import zlib
from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import _covariance
from ._streaming import RunningStatistics

# Estimator classes by the format name their files carry: filled as the
# estimator modules are imported (BaseMixture.__init_subclass__), so this
# module never imports them.
_ESTIMATOR_CLASSES = {}


def register(cls):
    """Make ``load`` build a ``cls`` from files whose format is ``cls._saved_format``."""
    _ESTIMATOR_CLASSES[cls._saved_format] = cls


def estimator_class(saved_format):
    """The registered estimator class for ``saved_format``, or None."""
    return _ESTIMATOR_CLASSES.get(saved_format)


@dataclass(frozen=True)
class AttributeForm:
    """The form of a fitted attribute an estimator class saves (as float64).

    kind : np.ndarray, tuple, np.float64 or float
        Its type: an array, a tuple of arrays (saved stacked on a first
        axis), a numpy or a Python float (saved as a 0-d array).
    shape : tuple
        Its shape as saved.
    above : float or None
        Every value must exceed it (None: any finite value).
    definite : bool
        The values are (d, d) matrices that must be symmetric positive
        definite, or positive diagonals or variances.
    """

    kind: type
    shape: tuple
    above: float | None = None
    definite: bool = False

    def problem(self, array):
        """Why ``array`` (float64, finite) cannot hold the attribute, or None."""
        if array.shape != self.shape:
            return f"has shape {array.shape}, expected {self.shape}"
        if self.above is not None and not np.all(array > self.above):
            return f"has values not above {self.above}"
        if self.definite and array.ndim < 2 and not np.all(array > 0):
            return "is not positive"
        if self.definite and array.ndim >= 2 and not _symmetric_positive_definite(array):
            return "is not symmetric positive definite"
        return None

    def value(self, array):
        """The attribute from its saved ``array``."""
        if self.kind is tuple:
            return tuple(array)
        if self.kind is float:
            return float(array)
        return array[()] if self.kind is np.float64 else array


def _symmetric_positive_definite(matrices):
    if not np.allclose(matrices, np.swapaxes(matrices, -1, -2)):
        return False
    try:
        np.linalg.cholesky(matrices)
    except np.linalg.LinAlgError:
        return False
    return True


def _no_attributes(estimator, n_components, n_features):
    return {}


def _no_private_state(estimator):
    return {}


@dataclass(frozen=True)
class SavedState:
    """What an estimator class saves beyond what every mixture has (the
    fitted arrays, the scalar attributes of ``fit`` and ``partial_fit``,
    feature names and ``partial_fit``'s running statistics).

    array_params : tuple of str
        Constructor parameters that may hold arrays (saved as entries;
        numbers and None stay in the header).
    attributes : callable (estimator, n_components, n_features) -> dict
        Its further fitted attributes: name -> ``AttributeForm``, given the
        estimator's parameters.
    private_state : callable (estimator) -> dict
        The private attributes a loaded estimator needs, rebuilt from its
        loaded parameters and attributes.
    """

    array_params: tuple = ()
    attributes: Callable = _no_attributes
    private_state: Callable = _no_private_state


FORMAT_VERSION = 1

_FITTED_ARRAYS = ("weights_", "means_", "covariances_", "precisions_cholesky_")
_STREAM_ARRAYS = ("mass", "means", "scatter")
_SCALAR_ATTRIBUTES = {"converged_": bool, "n_iter_": int, "lower_bound_": float,
                      "n_features_in_": int, "n_steps_": int, "n_samples_seen_": float}
_FLOAT_DTYPES = ("float32", "float64")
# Largest header we parse: bounds the work a hostile file can cause.
_MAX_HEADER_BYTES = 1 << 20
# What opening a damaged archive or reading one of its entries raises besides
# ModelFileError: zipfile raises BadZipFile for a broken structure,
# NotImplementedError for a compression method, zip version or flag it does not
# support and RuntimeError for an entry flagged as encrypted; the
# decompressors raise zlib.error, lzma.LZMAError, EOFError or OSError (bz2);
# numpy's .npy reader raises ValueError (bad header, short data, object
# arrays). Caught only around those calls, so nothing else is hidden, and
# MemoryError and KeyboardInterrupt pass through.
_DAMAGED_ARCHIVE_ERRORS = (zipfile.BadZipFile, NotImplementedError, RuntimeError,
                           zlib.error, lzma.LZMAError, EOFError, OSError, ValueError)


class ModelFileError(ValueError):
    """A model file that is not a valid gaussmix file (truncated, altered or foreign)."""


def _digest(header, arrays):
    """SHA-256 over the header (without its digest) and the arrays' bytes."""
    h = hashlib.sha256(json.dumps({k: v for k, v in header.items() if k != "sha256"},
                                  sort_keys=True).encode())
    for name in sorted(header["arrays"]):
        h.update(name.encode() + b"\0")
        h.update(np.ascontiguousarray(arrays[name]).tobytes())
    return h.hexdigest()


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _json_scalar(value):
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return value


def save(estimator, file):
    """Write a fitted ``estimator`` to ``file`` (see the module docstring).

    Parameters
    ----------
    estimator : GaussianMixture or BayesianGaussianMixture
        A fitted estimator.
    file : str, os.PathLike or binary file object
        Destination. A path is written as given (no ``.npz`` suffix is
        added); a file object opened for binary writing (an open file,
        ``io.BytesIO``) is written from its current position and left open.
    """
    from . import __version__

    estimator._check_is_fitted()
    state = estimator._saved_state
    arrays = {name: np.asarray(getattr(estimator, name)) for name in _FITTED_ARRAYS}
    for name in state.attributes(estimator, *estimator.means_.shape):
        arrays[name] = np.asarray(getattr(estimator, name), dtype=np.float64)
    params = {}
    for name, value in estimator.get_params().items():
        if name in state.array_params and not (value is None or _is_number(value)):
            arrays[f"param.{name}"] = np.asarray(value, dtype=np.float64)
            value = "<array>"
        elif name == "random_state" and not (value is None or isinstance(value, numbers.Integral)):
            value = None  # a RandomState instance is not saved
        params[name] = _json_scalar(value)
    stream = getattr(estimator, "_stream", None)
    if stream is not None:
        for name in _STREAM_ARRAYS:
            arrays[f"stream.{name}"] = np.asarray(getattr(stream, name), dtype=np.float64)
    attributes = {name: _json_scalar(getattr(estimator, name))
                  for name in _SCALAR_ATTRIBUTES if hasattr(estimator, name)}
    attributes["lower_bounds_"] = [float(v) for v in getattr(estimator, "lower_bounds_", [])]
    names = getattr(estimator, "feature_names_in_", None)
    attributes["feature_names_in_"] = None if names is None else [str(n) for n in names]
    header = {
        "format": estimator._saved_format, "format_version": FORMAT_VERSION,
        "gaussmix_version": __version__,
        "params": params, "attributes": attributes,
        "arrays": {name: {"dtype": str(a.dtype), "shape": list(a.shape)}
                   for name, a in arrays.items()},
    }
    header["sha256"] = _digest(header, arrays)
    arrays["header"] = np.frombuffer(json.dumps(header, sort_keys=True).encode(), np.uint8)
    if _is_path(file):
        with open(os.fspath(file), "wb") as opened:
            np.savez(opened, **arrays)
    else:
        np.savez(file, **arrays)


def _is_path(file):
    return isinstance(file, (str, bytes, os.PathLike))


def _read_archive(file, name):
    """The header and the declared arrays of the archive in the open ``file``."""
    start = file.tell()
    if file.read(4) != b"PK\x03\x04":
        raise ModelFileError(f"{name} is not a gaussmix model file (not an .npz archive).")
    file.seek(start)
    try:
        archive = np.load(file, allow_pickle=False)
    except _DAMAGED_ARCHIVE_ERRORS as exc:
        raise ModelFileError(f"{name} is not a readable gaussmix model file "
                             f"({type(exc).__name__}: {exc}).") from exc
    with archive:
        if "header" not in archive.files:
            raise ModelFileError(f"{name} is not a gaussmix model file (no header).")
        raw = _read_entry(archive, "header", name)
        if raw.dtype != np.uint8 or raw.ndim != 1 or raw.size > _MAX_HEADER_BYTES:
            raise ModelFileError(f"{name}: malformed header.")
        try:
            header = json.loads(raw.tobytes().decode("utf-8"))
        except (ValueError, RecursionError) as exc:  # bad UTF-8 or JSON, or absurd nesting
            raise ModelFileError(f"{name}: the header is not valid JSON "
                                 f"({type(exc).__name__}: {exc}).") from exc
        if not isinstance(header, dict) or not _known_format(header.get("format")):
            raise ModelFileError(f"{name} is not a gaussmix model file.")
        declared = header.get("arrays")
        if not isinstance(declared, dict) or set(declared) != set(archive.files) - {"header"}:
            raise ModelFileError(f"{name}: the arrays do not match the header.")
        arrays = {entry: _read_entry(archive, entry, name) for entry in declared}
    return header, arrays


def _known_format(saved_format):
    return isinstance(saved_format, str) and estimator_class(saved_format) is not None


def _read_entry(archive, entry, name):
    try:
        return archive[entry]
    except _DAMAGED_ARCHIVE_ERRORS as exc:
        raise ModelFileError(f"{name}: entry {entry!r} is unreadable "
                             f"({type(exc).__name__}: {exc}).") from exc


def _check_arrays(path, header, arrays):
    for name, spec in header["arrays"].items():
        a = arrays[name]
        if (not isinstance(spec, dict) or spec.get("dtype") != str(a.dtype)
                or spec.get("shape") != list(a.shape)):
            raise ModelFileError(f"{path}: array {name!r} does not match the header.")
        if a.dtype.name not in _FLOAT_DTYPES:
            raise ModelFileError(f"{path}: array {name!r} has dtype {a.dtype}, expected float.")
        if not np.isfinite(a).all():
            raise ModelFileError(f"{path}: array {name!r} holds NaN or infinity.")
    if header.get("sha256") != _digest(header, arrays):
        raise ModelFileError(f"{path}: checksum mismatch (the file was altered or corrupted).")


def load(file):
    """Read an estimator written by its ``save`` method.

    Parameters
    ----------
    file : str, os.PathLike or binary file object
        A path, or a file object opened for binary reading (an open file,
        ``io.BytesIO``), read from its current position and left open. A
        stream that cannot seek (a pipe, a socket) is read into memory first.
        To load bytes, wrap them: ``load(io.BytesIO(data))``.

    Returns
    -------
    GaussianMixture or BayesianGaussianMixture
        Fitted, with the saved parameters and attributes (the class the file
        names), ready to predict and to continue ``partial_fit``. A file written by
        another gaussmix version loads as long as this version reads its
        format version.

    Raises
    ------
    ModelFileError (a ValueError)
        The file is damaged (truncated, corrupted, altered), of another
        format or of a newer format version. No code from the file is ever
        executed.
    OSError
        The path cannot be opened (missing file, no permission).
    TypeError
        ``file`` is bytes: a path or a binary file object is expected.
    """
    if isinstance(file, (bytes, bytearray, memoryview)):
        raise TypeError("load takes a path or a binary file object, not bytes; "
                        "to load a model held in bytes, pass io.BytesIO(data)")
    if _is_path(file):
        with open(os.fspath(file), "rb") as opened:
            return _load(opened, os.fsdecode(file))
    name = getattr(file, "name", None) or "file object"
    if not _is_seekable(file):
        file = io.BytesIO(file.read())  # an .npz is a zip file: reading it needs seeks
    return _load(file, name)


def _is_seekable(file):
    seekable = getattr(file, "seekable", None)
    return seekable is not None and seekable()


def _load(file, path):
    header, arrays = _read_archive(file, path)
    version = header.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFileError(f"{path}: format version {version!r} is not supported by this "
                             f"gaussmix (reads up to {FORMAT_VERSION}); upgrade gaussmix.")
    _check_arrays(path, header, arrays)
    params, attributes = header.get("params"), header.get("attributes")
    if not isinstance(params, dict) or not isinstance(attributes, dict):
        raise ModelFileError(f"{path}: malformed header.")
    estimator = _unfitted_estimator(estimator_class(header["format"]), params, arrays, path)
    layout, d = _check_mixture_arrays(estimator, arrays, path)
    _set_scalar_attributes(estimator, attributes, d, path)
    state = estimator._saved_state
    for name, form in state.attributes(estimator, estimator.n_components, d).items():
        array = arrays.get(name)
        problem = ("is missing" if array is None else "is not float64"
                   if array.dtype != np.float64 else form.problem(array))
        if problem is not None:
            raise ModelFileError(f"{path}: {name} {problem}.")
        setattr(estimator, name, form.value(array))
    with np.errstate(over="ignore"):
        precisions = layout.precisions_from_cholesky(arrays["precisions_cholesky_"])
    if not np.isfinite(precisions).all():  # a fit never stores such factors
        raise ModelFileError(f"{path}: the precisions overflow {precisions.dtype}.")
    for name in _FITTED_ARRAYS:
        setattr(estimator, name, arrays[name])
    estimator.precisions_ = precisions
    estimator._stream = None
    if all(f"stream.{name}" in arrays for name in _STREAM_ARRAYS):
        estimator._stream = RunningStatistics(*(arrays[f"stream.{name}"]
                                                for name in _STREAM_ARRAYS))
    for name, value in state.private_state(estimator).items():
        setattr(estimator, name, value)
    return estimator


def _unfitted_estimator(cls, params, arrays, path):
    """A ``cls`` with the saved constructor parameters, checked."""
    for name in cls._saved_state.array_params:
        if params.get(name) == "<array>":
            params[name] = arrays.get(f"param.{name}")
    if not (params.get("random_state") is None or type(params["random_state"]) is int):
        raise ModelFileError(f"{path}: invalid parameters (random_state).")
    estimator = cls()
    try:
        estimator.set_params(**params)
        estimator._check_parameters()
    except (ValueError, TypeError) as exc:
        raise ModelFileError(f"{path}: invalid parameters ({exc}).") from exc
    return estimator


def _check_mixture_arrays(estimator, arrays, path):
    """Check the arrays every mixture saves (and the parameters a fit on their
    number of features would check); return their layout and that number."""
    missing = [name for name in _FITTED_ARRAYS if name not in arrays]
    if missing:
        raise ModelFileError(f"{path}: missing fitted arrays {missing}.")
    weights, means = arrays["weights_"], arrays["means_"]
    k, d = estimator.n_components, means.shape[-1] if means.ndim == 2 else -1
    cov_type = estimator.covariance_type
    layout = _covariance.model(cov_type).layout
    cov_shape = layout.shape(k, d)
    expected = {"weights_": (k,), "means_": (k, d), "covariances_": cov_shape,
                "precisions_cholesky_": cov_shape, "stream.mass": (k,),
                "stream.means": (k, d),
                "stream.scatter": (k, d, d) if layout.full_scatter else (k, d)}
    for name, shape in expected.items():
        if name in arrays and arrays[name].shape != shape:
            raise ModelFileError(f"{path}: {name} has shape {arrays[name].shape}, "
                                 f"expected {shape} for {cov_type!r} with {k} components.")
    if (np.any(layout.diagonals(arrays["precisions_cholesky_"]) <= 0)
            or np.any(layout.diagonals(arrays["covariances_"]) <= 0)):
        raise ModelFileError(f"{path}: the covariances are not positive definite.")
    if len({arrays[name].dtype for name in _FITTED_ARRAYS}) != 1:
        raise ModelFileError(f"{path}: fitted arrays have mixed dtypes.")
    if np.any(weights < 0) or not np.isclose(weights.sum(), 1.0, rtol=0, atol=1e-4):
        raise ModelFileError(f"{path}: weights_ are not a probability vector.")
    if "stream.mass" in arrays and np.any(arrays["stream.mass"] < 0):
        raise ModelFileError(f"{path}: stream.mass is negative.")
    try:
        estimator._check_initial_parameters(d, weights.dtype)
    except (ValueError, TypeError) as exc:
        raise ModelFileError(f"{path}: invalid parameters ({exc}).") from exc
    return layout, d


def _set_scalar_attributes(estimator, attributes, n_features, path):
    """Set the header's attributes: scalars, ``lower_bounds_`` and feature names."""
    for name, kind in _SCALAR_ATTRIBUTES.items():
        if name in attributes:
            setattr(estimator, name, _scalar(attributes[name], kind, name, path))
    if attributes.get("n_features_in_", n_features) != n_features:
        raise ModelFileError(f"{path}: n_features_in_ does not match means_.")
    # what partial_fit's step size and the Bayesian prior's weight are computed from
    in_range = {"n_steps_": lambda n: n >= 1, "n_samples_seen_": lambda n: 0 < n < np.inf}
    for name, valid in in_range.items():
        if hasattr(estimator, name) and not valid(getattr(estimator, name)):
            raise ModelFileError(f"{path}: attribute {name} has the wrong type or value.")
    estimator.lower_bounds_ = _lower_bounds(attributes.get("lower_bounds_", []), path)
    names = attributes.get("feature_names_in_")
    if names is not None:
        if not (isinstance(names, list) and len(names) == n_features
                and all(isinstance(n, str) for n in names)):
            raise ModelFileError(f"{path}: feature_names_in_ is malformed.")
        estimator.feature_names_in_ = np.asarray(names, dtype=object)


def _scalar(value, kind, name, path):
    """A saved scalar attribute as ``kind`` (bool, int or float: infinities
    allowed, NaN not), or ModelFileError."""
    allowed = {bool: (bool,), int: (int,), float: (int, float)}[kind]
    if type(value) in allowed:
        try:
            converted = kind(value)
        except OverflowError:  # an integer beyond float range
            converted = None
        if converted is not None and converted == converted:  # not NaN
            return converted
    raise ModelFileError(f"{path}: attribute {name} has the wrong type or value.")


def _lower_bounds(value, path):
    """``value`` as a list of floats (infinities allowed, NaN not), or ModelFileError."""
    if isinstance(value, list) and all(type(v) in (int, float) for v in value):
        try:
            bounds = [float(v) for v in value]
        except OverflowError:  # an integer beyond float range
            bounds = None
        if bounds is not None and not np.isnan(bounds).any():
            return bounds
    raise ModelFileError(f"{path}: lower_bounds_ is not a list of numbers.")

