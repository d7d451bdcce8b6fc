"""The ``gaussmix`` command-line interface.

Commands
--------
fit
    Fit a Gaussian mixture to a .csv or .npy file (a fixed number of
    components, or the best number by BIC), report it, save it, plot it.
    With ``--bayesian``, fit a BayesianGaussianMixture instead: the number
    of components is an upper bound, and the report gives the effective
    components (see below) instead of BIC and AIC.
predict
    Label the rows of a data file (or give their component probabilities)
    with a model saved by ``fit --output``.
score
    Print the log-density of each row of a data file under a saved model.
info
    Report a saved model (parameters, fit diagnostics, components) without data.
demo
    Fit the Old Faithful data shipped with gaussmix, print the model and
    (when matplotlib is installed) write a density contour plot.

Results go to stdout; progress, warnings and errors go to stderr. Expected
failures (bad files, bad arguments, a fit that cannot run) end with one line
``gaussmix: error: <message>`` and exit status 1 (2 for usage errors).

A model fitted from a CSV file with a header keeps its column names
(``feature_names_in_``, saved with it); ``predict`` and ``score`` then match
the columns of a CSV file with a header by name, and take a file without
names by position.

The effective components of a BayesianGaussianMixture are those whose
expected count N_k (``mean_precision_ - mean_precision_prior_``, the data's
share of the posterior) is at least one sample: components the data do not
use keep N_k near zero, whatever the weight prior gives them. Reports list
only those; ``predict`` may still name the others.
"""
import argparse
import contextlib
import csv
import io
import json
import os
import re
import sys
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import BayesianGaussianMixture, GaussianMixture, load, select_model
from . import _covariance, _variational
from ._bayesian_mixture import COVARIANCE_TYPES as BAYESIAN_COVARIANCE_TYPES
from ._covariance import COVARIANCE_TYPES
from ._missing import NAN_POLICIES

PROG = "gaussmix"
# --covariance-type all: every mclust model (with --select only)
ALL_MODELS = "all"
DEFAULT_PLOT_PATH = "gaussmix_demo.png"
MATPLOTLIB_HINT = 'pip install "gaussmix[plot]"   (or: pip install matplotlib)'
# Rows checked per step when looking for NaN/inf (bounded memory on memory-mapped files).
_CHECK_ROWS = 1 << 16
# At most this many points are drawn in a scatter plot.
_MAX_PLOT_POINTS = 20_000


# --------------------------------------------------------------------------- #
# argument types and parser
# --------------------------------------------------------------------------- #
def _positive_int(text):
    """argparse type: an int >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _non_negative_float(text):
    """argparse type: a finite float >= 0."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < np.inf:
        raise argparse.ArgumentTypeError(f"must be a non-negative number, got {text!r}")
    return value


def _positive_float(text):
    """argparse type: a finite float > 0."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < np.inf:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def _column_list(text):
    """argparse type: comma-separated column names or 0-based indices."""
    columns = [field.strip() for field in text.split(",")]
    if not all(columns):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated column names or 0-based indices, got {text!r}")
    if len(set(columns)) != len(columns):
        raise argparse.ArgumentTypeError(f"a column is named twice in {text!r}")
    return columns


# Spellings of a tab that survive a shell without $'\t'.
_TAB_NAMES = ("\\t", "tab")


def _delimiter(text):
    """argparse type: the one character separating the fields of a CSV file."""
    value = "\t" if text.lower() in _TAB_NAMES else text
    if len(value) != 1 or value.isalnum() or value in '"\r\n.+-':
        raise argparse.ArgumentTypeError(
            f"expected one character such as ',', ';' or '\\t', got {text!r}")
    return value


def _component_range(text):
    """argparse type: ``LO..HI`` with 1 <= LO <= HI, as a range."""
    match = re.fullmatch(r"\s*(\d+)\s*\.\.\s*(\d+)\s*", text)
    if match is None or not 1 <= int(match[1]) <= int(match[2]):
        raise argparse.ArgumentTypeError(
            f"expected LO..HI with 1 <= LO <= HI (e.g. 1..6), got {text!r}")
    return range(int(match[1]), int(match[2]) + 1)


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors are a single ``gaussmix: error:`` line."""

    def error(self, message):
        self.exit(2, f"{PROG}: error: {message}\n")


class _DeprecatedAlias(argparse.Action):
    """A hidden old spelling of an option: stores its value, with a warning."""

    def __init__(self, option_strings, dest, replacement, **kwargs):
        super().__init__(option_strings, dest, help=argparse.SUPPRESS, **kwargs)
        self.replacement = replacement

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{PROG}: warning: {option_string} is deprecated; use {self.replacement}",
              file=sys.stderr)
        setattr(namespace, self.dest, values)


def _add_data_options(parser):
    """--columns, --delimiter and --n-threads: how to read DATA and how to run."""
    parser.add_argument("--columns", "--usecols", metavar="COLS", type=_column_list,
                        help="use only these columns of DATA, in this order: comma-separated "
                             "header names or 0-based indices (e.g. 'a,c' or '0,2')")
    parser.add_argument("--delimiter", metavar="CHAR", type=_delimiter, default=",",
                        help="field separator of a CSV file, e.g. ';' or '\\t' "
                             "(default: ',')")
    parser.add_argument("--n-threads", metavar="N", type=_positive_int,
                        help="threads for the compiled kernels (default: chosen by "
                             "gaussmix)")


def _add_demo_parser(sub):
    demo = sub.add_parser(
        "demo",
        help="fit a mixture to the Old Faithful data and plot it",
        description=(
            "Fit gaussmix.GaussianMixture to the Old Faithful geyser data shipped with "
            "gaussmix, print the fitted parameters and write a density contour plot "
            "(needs matplotlib: pip install \"gaussmix[plot]\")."
        ),
    )
    demo.add_argument("--n-components", metavar="K", type=_positive_int, default=2,
                      help="number of mixture components (default: 2)")
    demo.add_argument("--components", dest="n_components", type=_positive_int,
                      action=_DeprecatedAlias, replacement="--n-components")
    demo.add_argument("--covariance-type", choices=COVARIANCE_TYPES, default="full",
                      help="covariance parameterisation (default: full)")
    demo.add_argument("--plot", metavar="PATH", default=DEFAULT_PLOT_PATH,
                      help=f"where to write the plot (default: {DEFAULT_PLOT_PATH})")
    demo.add_argument("--no-plot", action="store_true", help="do not write a plot")
    demo.add_argument("--seed", type=int, default=0, help="random_state (default: 0)")
    demo.set_defaults(func=cmd_demo)


def _add_fit_parser(sub):
    fit = sub.add_parser(
        "fit",
        help="fit a mixture to a .csv or .npy file",
        description=(
            "Fit gaussmix.GaussianMixture (with --bayesian, "
            "gaussmix.BayesianGaussianMixture) to DATA and print the fitted model. DATA is "
            "a .npy file holding a 2-D numeric array (memory-mapped, not read into "
            "RAM, unless --columns copies the chosen columns) or a .csv file with one "
            "sample per line, its fields separated by commas or by --delimiter, and "
            "an optional header line of feature names, which the saved model keeps. "
            "An unnamed first column holding 0, 1, ..., n-1 (the row index pandas "
            "writes) is dropped. Progress is shown on stderr when stderr is a "
            "terminal, or with --progress."
        ),
        epilog="example: gaussmix fit data.csv --select 1..6 --output model.npz",
    )
    fit.add_argument("data", metavar="DATA", help="training data (.csv or .npy)")
    size = fit.add_mutually_exclusive_group(required=True)
    size.add_argument("--n-components", metavar="K", type=_positive_int,
                      help="number of mixture components")
    size.add_argument("--select", metavar="LO..HI", type=_component_range,
                      help="fit every K in LO..HI (e.g. 1..6) with gaussmix.select_model "
                           "and keep the best BIC (mclust's convention: larger is "
                           "better)")
    fit.add_argument("--covariance-type", choices=COVARIANCE_TYPES + (ALL_MODELS,),
                     default="full", metavar="TYPE",
                     help="covariance model: full, tied, diag, spherical or an mclust name "
                          "(EII, VII, EEI, VEI, EVI, VVI, EEE, VEE, EVE, VVE, EEV, VEV, EVV, "
                          "VVV); with --select, 'all' compares the 14 mclust models "
                          "(default: full)")
    fit.add_argument("--seed", metavar="INT", type=int, default=0,
                     help="random_state (default: 0)")
    fit.add_argument("--max-iter", metavar="N", type=_positive_int, default=100,
                     help="EM iterations per initialisation (default: 100)")
    fit.add_argument("--n-init", metavar="N", type=_positive_int, default=1,
                     help="initialisations, the best is kept (default: 1)")
    fit.add_argument("--tol", metavar="TOL", type=_non_negative_float, default=1e-3,
                     help="convergence threshold on the mean log-likelihood (with "
                          "--bayesian: on the evidence lower bound) (default: 0.001)")
    bayes = fit.add_argument_group(
        "variational Bayes",
        "With --bayesian, --n-components is an upper bound: the prior switches off the "
        "components the data do not need. The other priors (mean_precision_prior, "
        "mean_prior, degrees_of_freedom_prior, covariance_prior) keep scikit-learn's "
        "defaults (from the data); set them from Python.")
    bayes.add_argument("--bayesian", action="store_true",
                       help="fit gaussmix.BayesianGaussianMixture (full, tied, diag or "
                            "spherical; not with --select)")
    bayes.add_argument("--weight-concentration-prior-type", metavar="TYPE",
                       choices=_variational.PRIOR_TYPES, default=None,
                       help="dirichlet_process (stick-breaking, the default) or "
                            "dirichlet_distribution")
    bayes.add_argument("--weight-concentration-prior", metavar="GAMMA",
                       type=_positive_float, default=None,
                       help="concentration of the weight prior: small values leave fewer "
                            "components in use (default: 1 / n_components)")
    fit.add_argument("--nan-policy", choices=NAN_POLICIES, default="raise",
                     help="'marginalize': empty CSV fields, NA and nan are values missing "
                          "at random, fitted by EM over each row's observed values; the "
                          "saved model then predicts and scores rows with holes too "
                          "(not with --select) (default: raise, an error)")
    fit.add_argument("--output", metavar="MODEL",
                     help="save the fitted model to MODEL (.npz; read it back with "
                          "'gaussmix predict' or gaussmix.load)")
    fit.add_argument("--plot", metavar="PNG",
                     help="write a plot: density contours for 2 features, a histogram "
                          "for 1, the first two features coloured by label for more. "
                          "Needs matplotlib; without it the command stops with an "
                          "error before fitting")
    fit.add_argument("--json", action="store_true",
                     help="print the result as one JSON object")
    _add_data_options(fit)
    chatter = fit.add_mutually_exclusive_group()
    chatter.add_argument("--progress", action="store_true",
                         help="print 'Iteration i of MAX_ITER' lines on stderr even when "
                              "it is not a terminal (for logs)")
    chatter.add_argument("--quiet", action="store_true",
                         help="no progress and no warnings on stderr")
    fit.set_defaults(func=cmd_fit)


_MATCHING = (
    "A CSV file with a header is matched to the model's columns by name (in any "
    "order); a file without names is taken by position."
)


def _add_predict_parser(sub):
    predict = sub.add_parser(
        "predict",
        help="label data with a saved model",
        description=(
            "Print the most probable component of each row of DATA, one per line "
            "(or, with --proba, the component probabilities as one CSV line per row), "
            "using a model saved by 'gaussmix fit --output'. " + _MATCHING
        ),
    )
    predict.add_argument("model", metavar="MODEL", help="model file written by fit --output")
    predict.add_argument("data", metavar="DATA", help="data to label (.csv or .npy)")
    predict.add_argument("--proba", action="store_true",
                         help="print component probabilities instead of labels")
    predict.add_argument("--json", action="store_true",
                         help='print {"labels": [...]} or {"proba": [[...], ...]}')
    _add_data_options(predict)
    predict.set_defaults(func=cmd_predict)


def _add_score_parser(sub):
    score = sub.add_parser(
        "score",
        help="log-density of each row under a saved model",
        description=(
            "Print the log-density of each row of DATA under MODEL (score_samples), "
            "one per line, using a model saved by 'gaussmix fit --output'. " + _MATCHING
        ),
    )
    score.add_argument("model", metavar="MODEL", help="model file written by fit --output")
    score.add_argument("data", metavar="DATA", help="data to score (.csv or .npy)")
    score.add_argument("--json", action="store_true", help='print {"log_density": [...]}')
    _add_data_options(score)
    score.set_defaults(func=cmd_score)


def _add_info_parser(sub):
    info = sub.add_parser(
        "info",
        help="report a saved model",
        description=(
            "Print what a model file written by 'gaussmix fit --output' (or save()) "
            "holds: its estimator and parameters, the fit diagnostics and every "
            "component (for a Bayesian mixture, the effective ones)."
        ),
    )
    info.add_argument("model", metavar="MODEL", help="model file written by fit --output")
    info.add_argument("--json", action="store_true", help="print the report as one JSON object")
    info.set_defaults(func=cmd_info)


def build_parser():
    """The argument parser of the ``gaussmix`` command.

    Returns
    -------
    argparse.ArgumentParser
    """
    parser = _Parser(
        prog=PROG,
        description="Fast EM for Gaussian mixture models (scikit-learn compatible).",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_fit_parser(sub)
    _add_predict_parser(sub)
    _add_score_parser(sub)
    _add_info_parser(sub)
    _add_demo_parser(sub)
    return parser


# --------------------------------------------------------------------------- #
# data files
# --------------------------------------------------------------------------- #
class Table(NamedTuple):
    """The numbers of a data file and, for a CSV file with a header, its column names."""

    X: np.ndarray
    header: list | None

    @property
    def names(self):
        """The header's names, else ``x0, x1, ...``."""
        if self.header is not None:
            return self.header
        return [f"x{i}" for i in range(self.X.shape[1])]


def load_data(path, delimiter=",", columns=None, allow_nan=False):
    """Read a data file for ``fit``, ``predict`` or ``score``.

    Parameters
    ----------
    path : str
        A ``.npy`` file (memory-mapped) or a ``.csv`` file, with a header
        line of feature names when its first line is not all numbers.
    delimiter : str, default=","
        Field separator of a CSV file.
    columns : list of str, optional
        The columns to keep, in order: header names or 0-based indices.
        Without it, an unnamed first CSV column holding 0, 1, ..., n-1 (the
        row index pandas writes) is dropped with a warning.

    Returns
    -------
    Table

    Raises
    ------
    ValueError
        Unsupported, empty or malformed file, unknown or unnamed columns, or
        NaN/infinite values.
    """
    suffix = Path(path).suffix.lower()
    if suffix == ".npy":
        X, header = _read_npy(path, columns), None
    elif suffix == ".csv":
        X, header = _read_csv(path, delimiter, columns, allow_nan)
    else:
        raise ValueError(f"{path}: unsupported data file (expected .csv or .npy)")
    _check_data(X, path, allow_nan)
    return Table(X, header)


def _read_npy(path, columns):
    """Memory-map a .npy file (never unpickles); keep ``columns`` (indices) only."""
    with open(path, "rb") as file:
        magic = file.read(len(np.lib.format.MAGIC_PREFIX))
    if magic != np.lib.format.MAGIC_PREFIX:
        raise ValueError(f"{path}: not a .npy file")
    try:
        X = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, EOFError) as exc:
        raise ValueError(f"{path}: not a readable .npy array ({exc})") from None
    if columns is None or X.ndim != 2:
        return X
    return X[:, _column_indices(columns, None, X.shape[1], path)]


def _read_csv(path, delimiter, columns, allow_nan=False):
    """Numbers of a CSV file and the names of their columns (None without a header);
    with ``allow_nan``, an empty field or NA is NaN."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as file:
            first = file.readline()
            fields = _csv_fields(first, delimiter, f"{path}: the first line")
            if _all_floats(fields):
                header, text = None, first + file.read()
            else:
                header, text = [field.strip() for field in fields], file.read()
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a UTF-8 text file") from None
    if not text.strip():
        raise ValueError(f"{path}: no data rows")
    first_row = _first_line(text)
    n_columns = len(_csv_fields(first_row, delimiter, f"{path}: the first data row"))
    if header is not None and len(header) != n_columns:
        raise ValueError(f"{path}: the header has {len(header)} names but the rows "
                         f"have {n_columns} values{_delimiter_hint(first, delimiter)}")
    used = None if columns is None else _column_indices(columns, header, n_columns, path)
    try:
        X = np.loadtxt(io.StringIO(text), delimiter=delimiter, quotechar='"', comments=None,
                       dtype=np.float64, ndmin=2, usecols=used,
                       converters=_missing_as_nan if allow_nan else None)
    except ValueError as exc:
        hint = _delimiter_hint(first_row, delimiter)
        if not allow_nan and re.search(r"string '(NA)?' to float", str(exc)):
            hint += " (missing values: fit with --nan-policy marginalize)"
        raise ValueError(f"{path}: {exc}{hint}") from None
    if header is None:
        return X, None
    if used is None:
        used = range(n_columns)
        if _is_row_index(X, header):
            warnings.warn(f"{path}: dropped the first column, an unnamed row index "
                          f"0..{X.shape[0] - 1} (as pandas writes it); choose the columns "
                          "with --columns to keep it")
            X, used = X[:, 1:], used[1:]
    return X, _column_names(header, used, path)


def _csv_fields(line, delimiter, where):
    """The fields of one CSV ``line``; csv's errors (a field over its size limit) become
    a ValueError that says ``where`` the line is."""
    try:
        return next(csv.reader([line], delimiter=delimiter), [])
    except csv.Error as exc:
        raise ValueError(f"{where} is not valid CSV ({exc})") from None


def _first_line(text):
    end = text.find("\n")
    return text if end < 0 else text[:end]


def _delimiter_hint(line, delimiter):
    """A hint to use --delimiter when ``line`` looks separated by another character."""
    if delimiter in line:
        return ""
    for other in ";\t|":
        if other in line:
            return f" (the file looks {other!r}-separated: use --delimiter {other!r})"
    return ""


def _column_indices(columns, header, n_columns, path):
    """0-based indices of the ``--columns`` selection; names are looked up in ``header``."""
    indices = []
    for column in columns:
        if header is not None and column in header:
            indices.append(header.index(column))
        elif re.fullmatch(r"\d+", column) and int(column) < n_columns:
            indices.append(int(column))
        elif header is None and not re.fullmatch(r"\d+", column):
            raise ValueError(f"{path} has no header, so --columns takes 0-based indices, "
                             f"got {column!r}")
        else:
            known = "" if header is None else f": {', '.join(map(repr, header))}"
            raise ValueError(f"{path} has no column {column!r} (it has {n_columns} "
                             f"columns{known})")
    if len(set(indices)) != len(indices):
        raise ValueError(f"--columns names a column of {path} twice")
    return indices


def _unnamed(name):
    """True for an empty header field, or pandas' name for one when it reads it back."""
    return name == "" or re.fullmatch(r"Unnamed: \d+", name) is not None


def _is_row_index(X, header):
    """True when the first column is unnamed and holds 0, 1, ..., n-1: the index
    pandas' ``to_csv`` writes by default."""
    return (len(header) > 1 and _unnamed(header[0])
            and np.array_equal(X[:, 0], np.arange(X.shape[0])))


def _column_names(header, used, path):
    """The names of the columns ``used``; each must be named, and only once."""
    names = [header[i] for i in used]
    for i in used:
        if _unnamed(header[i]):
            raise ValueError(f"{path}: column {i} has no name in the header; name it, or "
                             "choose the columns to use with --columns")
    seen = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{path}: the header names column {name!r} more than once; "
                             "rename one, or choose the columns with --columns")
        seen.add(name)
    return names


def _all_floats(fields):
    """True when every field parses as a float (so the line is not a header)."""
    try:
        [float(field) for field in fields]
    except ValueError:
        return False
    return True


def _missing_as_nan(field):
    """A CSV field as a float, NaN for an empty field or NA."""
    field = field.strip()
    return np.nan if field in ("", "NA") else float(field)


def _check_data(X, path, allow_nan=False):
    """Raise ValueError unless X is a non-empty 2-D array of finite numbers
    (or NaN, with ``allow_nan``)."""
    if X.dtype.kind not in "biuf":
        raise ValueError(f"{path}: the array must hold numbers, got dtype {X.dtype}")
    if X.ndim != 2:
        hint = " (use shape (n, 1) for one feature)" if X.ndim == 1 else ""
        raise ValueError(f"{path}: expected a 2-D array (n_samples, n_features), got "
                         f"shape {X.shape}{hint}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{path}: no data (shape {X.shape})")
    if X.dtype.kind != "f":
        return
    for start in range(0, X.shape[0], _CHECK_ROWS):
        block = X[start:start + _CHECK_ROWS]
        bad = np.isinf(block).any(axis=1) if allow_nan else ~np.isfinite(block).all(axis=1)
        if bad.any():
            hint = "" if allow_nan else (" (missing values: fit with --nan-policy marginalize, "
                                         "and predict with that model)")
            raise ValueError(f"{path}: sample {start + int(np.argmax(bad))} (counting "
                             f"from 0) has {'infinite' if allow_nan else 'NaN or infinite'} "
                             f"values; gaussmix needs finite values{hint}")


# --------------------------------------------------------------------------- #
# fitting
# --------------------------------------------------------------------------- #
def _show_progress(args):
    """True when EM progress should be printed (--progress, or stderr is a
    terminal; never with --quiet)."""
    return not args.quiet and (args.progress or sys.stderr.isatty())


class _IterationProgress(io.TextIOBase):
    """Where the estimator's verbose output goes: copied to stderr line by line,
    with ``of MAX_ITER`` after each iteration number."""

    def __init__(self, max_iter):
        super().__init__()
        self._max_iter = max_iter
        self._partial_line = ""

    def writable(self):
        return True

    def write(self, text):
        lines = (self._partial_line + text).split("\n")
        self._partial_line = lines.pop()
        for line in lines:
            line = re.sub(r"^(\s*Iteration \d+)", rf"\1 of {self._max_iter}", line)
            print(line, file=sys.stderr, flush=True)
        return len(text)


def _check_bayesian_options(args):
    """ValueError for options that do not go with --bayesian (or need it)."""
    if not args.bayesian:
        for option in ("weight_concentration_prior_type", "weight_concentration_prior"):
            if getattr(args, option) is not None:
                raise ValueError(f"--{option.replace('_', '-')} needs --bayesian")
        return
    if args.select is not None:
        raise ValueError("--bayesian takes --n-components (an upper bound: the prior "
                         "switches unused components off), not --select (BIC)")
    if args.covariance_type not in BAYESIAN_COVARIANCE_TYPES:
        raise ValueError(f"--bayesian fits covariance types "
                         f"{', '.join(BAYESIAN_COVARIANCE_TYPES)}, not "
                         f"{args.covariance_type!r}")


def _estimator(n_components, args):
    """The estimator ``fit`` makes from its options."""
    shared = dict(n_components=n_components, covariance_type=args.covariance_type,
                  random_state=args.seed, max_iter=args.max_iter, n_init=args.n_init,
                  tol=args.tol, n_threads=args.n_threads, nan_policy=args.nan_policy)
    if not args.bayesian:
        return GaussianMixture(**shared)
    priors = {name: getattr(args, name) for name in ("weight_concentration_prior_type",
                                                     "weight_concentration_prior")
              if getattr(args, name) is not None}
    return BayesianGaussianMixture(**shared, **priors)


def _fit(X, n_components, args):
    """Fit one mixture with the options of ``fit``."""
    gm = _estimator(n_components, args)
    if not _show_progress(args):
        return gm.fit(X)
    # The estimator prints its progress with print(): send it to stderr, and
    # restore the verbosity so the saved model does not depend on the terminal.
    quiet = {name: gm.get_params()[name] for name in ("verbose", "verbose_interval")}
    gm.set_params(verbose=2, verbose_interval=1)
    try:
        with contextlib.redirect_stdout(_IterationProgress(args.max_iter)):
            return gm.fit(X)
    finally:
        gm.set_params(**quiet)


def _select(X, candidates, args):
    """Choose the number of components (and model) by BIC with ``select_model``.

    Returns
    -------
    best : GaussianMixture
    selection : ModelSelection
    """
    types = None if args.covariance_type == ALL_MODELS else [args.covariance_type]
    progress = _show_progress(args)
    if progress:
        print(f"selecting among {len(candidates)} x {14 if types is None else 1} models",
              file=sys.stderr)
    with contextlib.redirect_stdout(sys.stderr):  # the cells done, with the time left
        selection = select_model(X, n_components=candidates, covariance_types=types,
                                 random_state=args.seed, tol=args.tol,
                                 max_iter=args.max_iter, n_threads=args.n_threads,
                                 verbose=int(progress))
    return selection.best_estimator_, selection


# --------------------------------------------------------------------------- #
# reports
# --------------------------------------------------------------------------- #
def _full_covariances(gm):
    """The fitted covariances as an (n_components, d, d) array, whatever the
    covariance_type."""
    k, d = gm.means_.shape
    layout = _covariance.model(gm.covariance_type).layout
    return layout.matrices(np.asarray(gm.covariances_), k, d)


def _numbers(values, width):
    """``values`` (any shape) right-aligned in ``width``, flattened, all in one
    format: fixed-point with 4 decimals, or scientific when the largest
    magnitude is too small or too large for fixed-point."""
    largest = float(np.max(np.abs(values)))
    spec = ".4f" if largest == 0 or 1e-2 <= largest < 1e5 else ".3e"
    return [f"{v:>{width}{spec}}" for v in np.ravel(values)]


def _is_bayesian(gm):
    return isinstance(gm, BayesianGaussianMixture)


def _effective_components(gm):
    """Indices of the components a report lists: for a Bayesian mixture, those
    whose expected count is at least one sample (module docstring); else all."""
    if not _is_bayesian(gm):
        return np.arange(gm.n_components)
    counts = np.asarray(gm.mean_precision_, dtype=np.float64) - gm.mean_precision_prior_
    return np.flatnonzero(counts >= 1.0)


def _estimator_line(gm):
    """The estimator and the parameters a report shows, as its repr would."""
    names = ["n_components", "covariance_type"]
    if _is_bayesian(gm):
        names += ["weight_concentration_prior_type", "weight_concentration_prior"]
    shown = ", ".join(f"{name}={getattr(gm, name)!r}" for name in names + ["random_state"])
    return f"{type(gm).__name__}({shown})"


def _diagnostics(gm, X):
    """The fit diagnostics as (label, value) pairs; BIC and AIC need X."""
    lines = [("converged_", f"{gm.converged_}"), ("n_iter_", f"{gm.n_iter_}")]
    if _is_bayesian(gm):
        lines += [("lower_bound_", f"{gm.lower_bound_:.6f}  (evidence lower bound, up to a "
                                   "constant)"),
                  ("components used", f"{len(_effective_components(gm))} of "
                                      f"{gm.n_components}  (expected count >= 1 sample)")]
        return lines
    lines.append(("lower_bound_", f"{gm.lower_bound_:.6f}  (mean log-likelihood per sample)"))
    if X is not None:
        lines += [("BIC", f"{gm.bic(X):.3f}  (lower is better)"), ("AIC", f"{gm.aic(X):.3f}")]
    return lines


def _print_report(gm, X, title, feature_names, units=None):
    """Print a fitted model: data, fit diagnostics, then every component (the
    effective ones of a Bayesian mixture).

    Parameters
    ----------
    gm : GaussianMixture or BayesianGaussianMixture
        Fitted on X.
    X : ndarray of shape (n_samples, n_features) or None
        Without data (a saved model), no BIC, AIC or counts are shown.
    title : str
        First line (describes the data).
    feature_names : sequence of str
    units : sequence of str, optional
        Unit of each feature, shown next to its values.
    """
    d = gm.means_.shape[1]
    units = [""] * d if units is None else list(units)
    suffixes = [f" {unit}" if unit else "" for unit in units]
    name_w = max(len(name) for name in feature_names) + 2
    col_w = max(12, name_w)

    print(title)
    for name, unit in zip(feature_names, units):
        print(f"  - {name} [{unit}]" if unit else f"  - {name}")
    print()
    print(_estimator_line(gm))
    for label, value in _diagnostics(gm, X):
        print(f"  {label:<17}: {value}")
    print()

    covs = _full_covariances(gm)
    counts = None if X is None else np.bincount(gm.predict(X), minlength=gm.n_components)
    shown = _effective_components(gm)
    # show the components in order of increasing first-feature mean so the
    # report reads naturally (e.g. short eruptions first); the index printed is
    # still the fitted component index used by predict().
    for j in shown[np.argsort(gm.means_[shown, 0], kind="stable")]:
        assigned = "" if counts is None else f"  ({counts[j]} points assigned)"
        print(f"Component {j}: weight = {gm.weights_[j]:.4f}{assigned}")
        print("  mean:")
        for name, suffix, mu in zip(feature_names, suffixes, _numbers(gm.means_[j], 10)):
            print(f"    {name:<{name_w}}{mu}{suffix}")
        shared = " (shared by all components)" if gm.covariance_type == "tied" else ""
        cov_unit = f" [{units[0]}^2]" if units[0] and len(set(units)) == 1 else ""
        print(f"  covariance{cov_unit}{shared}:")
        print(" " * (4 + name_w) + "".join(f"{name:>{col_w}}" for name in feature_names))
        cells = _numbers(covs[j], col_w)
        for r, name in enumerate(feature_names):
            print(f"    {name:<{name_w}}" + "".join(cells[r * d:(r + 1) * d]))
        std = np.sqrt(np.diag(covs[j]))
        print("  std. dev.: " + ", ".join(
            f"{name} {s}{suffix}"
            for name, suffix, s in zip(feature_names, suffixes, _numbers(std, 1))))
        if d == 2:
            print(f"  correlation: {covs[j][0, 1] / (std[0] * std[1]):+.4f}")
        print()
    hidden = gm.n_components - len(shown)
    if hidden:
        print(f"({hidden} components with an expected count below one sample not shown)")


def _report_dict(gm, X, feature_names):
    """The content of the text report as JSON-ready values (fitted component
    order, every component); X None: a saved model without data."""
    report = {
        "estimator": type(gm).__name__,
        "n_features": int(gm.means_.shape[1]),
        "feature_names": list(feature_names),
        "n_components": int(gm.n_components),
        "covariance_type": gm.covariance_type,
        "random_state": gm.random_state,
        "converged_": bool(gm.converged_),
        "n_iter_": int(gm.n_iter_),
        "lower_bound_": float(gm.lower_bound_),
    }
    if _is_bayesian(gm):
        report.update(weight_concentration_prior_type=gm.weight_concentration_prior_type,
                      weight_concentration_prior_=float(gm.weight_concentration_prior_),
                      effective_components=_effective_components(gm).tolist())
    if X is not None:
        report["n_samples"] = int(X.shape[0])
        if not _is_bayesian(gm):
            report.update(bic=float(gm.bic(X)), aic=float(gm.aic(X)))
        report["counts"] = np.bincount(gm.predict(X), minlength=gm.n_components).tolist()
    report.update({name: np.asarray(getattr(gm, name), dtype=np.float64).tolist()
                   for name in ("weights_", "means_", "covariances_")})
    return report


def _selection_dict(selection):
    """The criterion table of a ModelSelection as JSON-ready rows."""
    rows = []
    for i, k in enumerate(selection.n_components):
        for j, covariance_type in enumerate(selection.covariance_types):
            bic, loglik = selection.table_[i, j], selection.log_likelihood_[i, j]
            rows.append({"n_components": int(k), "covariance_type": covariance_type,
                         "bic": float(bic) if np.isfinite(bic) else None,
                         "log_likelihood": float(loglik) if np.isfinite(loglik) else None})
    return {"criterion": "bic", "larger_is_better": True, "table": rows}


# --------------------------------------------------------------------------- #
# plots
# --------------------------------------------------------------------------- #
def _matplotlib_available():
    """True when matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _axis_label(name, unit):
    return f"{name} [{unit}]" if unit else name


def _plot_density(fig, ax, gm, X):
    """Filled log-density contours of a 2-feature model over the range of X."""
    from matplotlib.colors import Normalize

    pad = 0.1 * (X.max(axis=0) - X.min(axis=0))
    lo, hi = X.min(axis=0) - pad, X.max(axis=0) + pad
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 250), np.linspace(lo[1], hi[1], 250))
    grid = np.column_stack([gx.ravel(), gy.ravel()]).astype(X.dtype, copy=False)
    logdens = gm.score_samples(grid).reshape(gx.shape)

    # contour levels in log-density, from the densest point down ~12 nats
    top = float(logdens.max())
    levels = np.linspace(top - 12.0, top, 13)
    filled = ax.contourf(gx, gy, logdens, levels=levels, cmap="Greys", alpha=0.45,
                         norm=Normalize(levels[0], levels[-1]), extend="min")
    ax.contour(gx, gy, logdens, levels=levels, colors="0.25", linewidths=0.6,
               linestyles="solid")
    fig.colorbar(filled, ax=ax, label="log density (score_samples)")
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])


def _plot_points(ax, gm, X):
    """Scatter of the first two features coloured by label (the effective
    components of a Bayesian mixture), with the means."""
    import matplotlib

    labels = gm.predict(X)
    cmap = matplotlib.colormaps["tab10"]
    for j in _effective_components(gm):
        pts = X[labels == j]
        ax.scatter(pts[:, 0], pts[:, 1], s=14, color=cmap(j % 10), edgecolor="white",
                   linewidth=0.3, label=f"component {j} (w={gm.weights_[j]:.2f})", zorder=3)
    ax.scatter(gm.means_[:, 0], gm.means_[:, 1], marker="X", s=120, color="black",
               edgecolor="white", linewidth=1.0, label="means", zorder=4)


def _plot_histogram(ax, gm, X):
    """Histogram of a single feature with the mixture density over it."""
    x = X[:, 0]
    ax.hist(x, bins="auto", density=True, color="0.8", edgecolor="white", label="data")
    grid = np.linspace(x.min(), x.max(), 500).reshape(-1, 1).astype(X.dtype, copy=False)
    ax.plot(grid[:, 0], np.exp(gm.score_samples(grid)), color="black",
            label="mixture density")
    ax.set_ylabel("density")


def _write_plot(gm, X, data_name, feature_names, units, path):
    """Plot ``gm`` over ``X`` to ``path`` (matplotlib must be importable).

    One feature: histogram and mixture density. Two: log-density contours
    under the points coloured by label. More: the first two features
    coloured by label, with the means.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    d = X.shape[1]
    units = [""] * d if units is None else list(units)
    fig = Figure(figsize=(7.5, 6.0), dpi=120)
    FigureCanvasAgg(fig)  # explicit Agg canvas: no display / global backend needed
    ax = fig.add_subplot(1, 1, 1)
    if d == 1:
        _plot_histogram(ax, gm, X)
    else:
        if d == 2:
            _plot_density(fig, ax, gm, X)
        step = -(-X.shape[0] // _MAX_PLOT_POINTS)
        _plot_points(ax, gm, np.asarray(X[::step]))
        ax.set_ylabel(_axis_label(feature_names[1], units[1]))
    ax.set_xlabel(_axis_label(feature_names[0], units[0]))
    ax.set_title(
        f"gaussmix: {data_name}, {gm.n_components} components, "
        f"covariance_type={gm.covariance_type!r}"
    )
    ax.legend(loc="upper left", fontsize="small", framealpha=0.9)
    fig.tight_layout()
    fig.savefig(path)


# --------------------------------------------------------------------------- #
# commands
# --------------------------------------------------------------------------- #
def cmd_demo(args):
    """``gaussmix demo``: fit, report and plot the Old Faithful data."""
    from ._datasets import FAITHFUL_FEATURE_NAMES, FAITHFUL_UNITS, load_faithful

    X = load_faithful()
    gm = GaussianMixture(
        n_components=args.n_components,
        covariance_type=args.covariance_type,
        random_state=args.seed,
    )
    gm.fit(X)
    n, d = X.shape
    _print_report(gm, X, f"Old Faithful geyser data: {n} eruptions x {d} features",
                  FAITHFUL_FEATURE_NAMES, FAITHFUL_UNITS)

    if args.no_plot:
        return 0
    if not _matplotlib_available():
        print(f"matplotlib is not installed, so no plot was written.\n"
              f"Install it with:  {MATPLOTLIB_HINT}")
        return 0
    _write_plot(gm, X, "Old Faithful", FAITHFUL_FEATURE_NAMES, FAITHFUL_UNITS, args.plot)
    print(f"Density contour plot written to {args.plot}")
    return 0


def cmd_fit(args):
    """``gaussmix fit``: fit DATA, report, and optionally save and plot the model."""
    if args.plot and not _matplotlib_available():
        raise ValueError(f"--plot needs matplotlib, which is not installed; "
                         f"{MATPLOTLIB_HINT}")
    _check_bayesian_options(args)
    marginalize = args.nan_policy == "marginalize"
    if marginalize and args.select is not None:
        raise ValueError("--select does not take --nan-policy marginalize yet; fit a "
                         "chosen --n-components")
    X, header = load_data(args.data, args.delimiter, args.columns, allow_nan=marginalize)
    names = Table(X, header).names
    if args.select is None:
        if args.covariance_type == ALL_MODELS:
            raise ValueError("--covariance-type all needs --select")
        gm, selection = _fit(X, args.n_components, args), None
    else:
        gm, selection = _select(X, args.select, args)
    if header is not None:
        gm.feature_names_in_ = np.asarray(header, dtype=object)
    if args.output:
        gm.save(args.output)
    if args.plot:
        _write_plot(gm, X, args.data, names, None, args.plot)

    if args.json:
        report = {"data": args.data, **_report_dict(gm, X, names)}
        if selection is not None:
            report["selection"] = _selection_dict(selection)
        print(json.dumps(report))
        return 0
    if selection is not None:
        print(selection)
        print()
    n, d = X.shape
    _print_report(gm, X, f"{args.data}: {n} samples x {d} features", names)
    if args.output:
        print(f"Model written to {args.output}")
    if args.plot:
        print(f"Plot written to {args.plot}")
    return 0


def cmd_info(args):
    """``gaussmix info``: report a saved model."""
    gm = load(args.model)
    d = gm.means_.shape[1]
    names = getattr(gm, "feature_names_in_", None)
    names = [f"x{i}" for i in range(d)] if names is None else [str(n) for n in names]
    if args.json:
        print(json.dumps({"model": args.model, **_report_dict(gm, None, names)}))
    else:
        _print_report(gm, None, f"{args.model}: a model of {d} features", names)
    return 0


def _model_and_data(args):
    """The model of ``predict``/``score`` and DATA with its columns in the model's order."""
    gm = load(args.model)
    if args.n_threads is not None:
        gm.set_params(n_threads=args.n_threads)
    X, header = load_data(args.data, args.delimiter, args.columns,
                          allow_nan=getattr(gm, "nan_policy", "raise") == "marginalize")
    fitted_names = getattr(gm, "feature_names_in_", None)
    if header is not None and fitted_names is not None:
        return gm, _match_columns(X, header, list(fitted_names), args)
    n_features = gm.means_.shape[1]
    if X.shape[1] != n_features:
        raise ValueError(f"{args.data} has {X.shape[1]} features but the model in "
                         f"{args.model} expects {n_features}")
    return gm, X


def _match_columns(X, header, fitted_names, args):
    """The columns of X named ``fitted_names``, in that order, or a ValueError
    naming the missing and unexpected ones."""
    if header == fitted_names:
        return X
    missing = [name for name in fitted_names if name not in header]
    unexpected = [name for name in header if name not in fitted_names]
    if missing or unexpected:
        problems = [f"{label} {', '.join(map(repr, names))}"
                    for label, names in (("missing", missing), ("unexpected", unexpected))
                    if names]
        hint = " (choose the columns with --columns)" if unexpected else ""
        raise ValueError(f"the columns of {args.data} do not match the model in {args.model}: "
                         f"{'; '.join(problems)}{hint}")
    return X[:, [header.index(name) for name in fitted_names]]


def cmd_predict(args):
    """``gaussmix predict``: labels or probabilities of DATA under MODEL."""
    gm, X = _model_and_data(args)
    if args.proba:
        proba = gm.predict_proba(X)
        if args.json:
            print(json.dumps({"proba": proba.tolist()}))
        else:
            np.savetxt(sys.stdout, proba, fmt="%.6g", delimiter=",")
    else:
        labels = gm.predict(X)
        if args.json:
            print(json.dumps({"labels": labels.tolist()}))
        else:
            np.savetxt(sys.stdout, labels, fmt="%d")
    return 0


def cmd_score(args):
    """``gaussmix score``: the log-density of each row of DATA under MODEL."""
    gm, X = _model_and_data(args)
    log_density = gm.score_samples(X).tolist()
    if args.json:
        print(json.dumps({"log_density": log_density}))
    else:
        sys.stdout.write("".join(f"{value!r}\n" for value in log_density))
    return 0


def _print_version():
    from importlib.metadata import PackageNotFoundError, version

    try:
        print(f"{PROG} {version('gaussmix')}")
    except PackageNotFoundError:
        print(f"{PROG} (not installed)")


def _one_line(exc):
    """The message of an expected exception, on one line."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        return f"{exc.filename}: {exc.strerror}"
    return " ".join(str(exc).split()) or type(exc).__name__


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """warnings.showwarning replacement: one ``gaussmix: warning:`` line."""
    print(f"{PROG}: warning: {' '.join(str(message).split())}", file=sys.stderr)


def _run(args):
    """Run the chosen command with warnings shown as single lines (or silenced
    by --quiet)."""
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        # The commands match columns by name themselves and give the estimator
        # plain arrays, which it would warn about when it has feature names.
        warnings.filterwarnings("ignore", message="X does not have valid feature names",
                                category=UserWarning)
        if getattr(args, "quiet", False):
            warnings.simplefilter("ignore")
        return args.func(args)


def main(argv=None):
    """Run the ``gaussmix`` command line.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        Exit status: 0 on success, 1 on an expected error (reported on one
        line), 2 on a usage error, 130 when interrupted.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.version:
            _print_version()
            return 0
        if getattr(args, "func", None) is None:
            parser.print_help()
            return 2
        return _run(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # stdout was closed early (e.g. piped into `head`): stop quietly, and
        # point stdout at devnull so the interpreter's final flush cannot fail.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (ValueError, TypeError, OSError, MemoryError) as exc:
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return 1
