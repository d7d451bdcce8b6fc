"""The ``gaussmix`` command-line interface.

Commands
--------
fit
    Fit a Gaussian mixture to a .csv or .npy file (a fixed number of
    components, or the best number by BIC), report it, save it, plot it.
predict
    Label the rows of a data file (or give their component probabilities)
    with a model saved by ``fit --output``.
demo
    Fit the Old Faithful data shipped with gaussmix, print the model and
    (when matplotlib is installed) write a density contour plot.

Results go to stdout; progress, warnings and errors go to stderr. Expected
failures (bad files, bad arguments, a fit that cannot run) end with one line
``gaussmix: error: <message>`` and exit status 1 (2 for usage errors).
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

import numpy as np

from . import GaussianMixture, load, select_model
from . import _covariance
from ._covariance import COVARIANCE_TYPES

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
    demo.add_argument("--components", type=_positive_int, default=2,
                      help="number of mixture components (default: 2)")
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
            "Fit gaussmix.GaussianMixture to DATA and print the fitted model. DATA is "
            "a .npy file holding a 2-D numeric array (memory-mapped, not read into "
            "RAM) or a comma-separated .csv file with one sample per line and an "
            "optional header line of feature names. Progress is shown on stderr "
            "when stderr is a terminal."
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
                     help="convergence threshold on the mean log-likelihood "
                          "(default: 0.001)")
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
    fit.add_argument("--quiet", action="store_true",
                     help="no progress and no warnings on stderr")
    fit.set_defaults(func=cmd_fit)


def _add_predict_parser(sub):
    predict = sub.add_parser(
        "predict",
        help="label data with a saved model",
        description=(
            "Print the most probable component of each row of DATA, one per line "
            "(or, with --proba, the component probabilities as one CSV line per row), "
            "using a model saved by 'gaussmix fit --output'."
        ),
    )
    predict.add_argument("model", metavar="MODEL", help="model file written by fit --output")
    predict.add_argument("data", metavar="DATA", help="data to label (.csv or .npy)")
    predict.add_argument("--proba", action="store_true",
                         help="print component probabilities instead of labels")
    predict.add_argument("--json", action="store_true",
                         help='print {"labels": [...]} or {"proba": [[...], ...]}')
    predict.set_defaults(func=cmd_predict)


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
    _add_demo_parser(sub)
    return parser


# --------------------------------------------------------------------------- #
# data files
# --------------------------------------------------------------------------- #
def load_data(path):
    """Read a data file for ``fit`` or ``predict``.

    Parameters
    ----------
    path : str
        A ``.npy`` file (memory-mapped) or a comma-separated ``.csv`` file,
        with a header line of feature names when its first line is not all
        numbers.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    feature_names : list of str
        From the CSV header, else ``x0, x1, ...``.

    Raises
    ------
    ValueError
        Unsupported, empty or malformed file, or NaN/infinite values.
    """
    suffix = Path(path).suffix.lower()
    if suffix == ".npy":
        X, names = _read_npy(path), None
    elif suffix == ".csv":
        X, names = _read_csv(path)
    else:
        raise ValueError(f"{path}: unsupported data file (expected .csv or .npy)")
    _check_data(X, path)
    if names is None:
        names = [f"x{i}" for i in range(X.shape[1])]
    elif len(names) != X.shape[1]:
        raise ValueError(f"{path}: the header has {len(names)} names but the rows "
                         f"have {X.shape[1]} values")
    return X, names


def _read_npy(path):
    """Memory-map a .npy file; never unpickles."""
    with open(path, "rb") as file:
        magic = file.read(len(np.lib.format.MAGIC_PREFIX))
    if magic != np.lib.format.MAGIC_PREFIX:
        raise ValueError(f"{path}: not a .npy file")
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, EOFError) as exc:
        raise ValueError(f"{path}: not a readable .npy array ({exc})") from None


def _read_csv(path):
    """Numbers of a comma-separated file and its header names (or None)."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as file:
            first = file.readline()
            fields = next(csv.reader([first]), [])
            if _all_floats(fields):
                names, text = None, first + file.read()
            else:
                names, text = [field.strip() for field in fields], file.read()
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a UTF-8 text file") from None
    if not text.strip():
        raise ValueError(f"{path}: no data rows")
    try:
        X = np.loadtxt(io.StringIO(text), delimiter=",", quotechar='"', comments=None,
                       dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    return X, names


def _all_floats(fields):
    """True when every field parses as a float (so the line is not a header)."""
    try:
        [float(field) for field in fields]
    except ValueError:
        return False
    return True


def _check_data(X, path):
    """Raise ValueError unless X is a non-empty 2-D array of finite numbers."""
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
        bad = ~np.isfinite(X[start:start + _CHECK_ROWS]).all(axis=1)
        if bad.any():
            raise ValueError(f"{path}: sample {start + int(np.argmax(bad))} (counting "
                             "from 0) has NaN or infinite values; gaussmix needs finite "
                             "values")


# --------------------------------------------------------------------------- #
# fitting
# --------------------------------------------------------------------------- #
def _show_progress(args):
    """True when EM progress should be printed (stderr is a terminal, no --quiet)."""
    return not args.quiet and sys.stderr.isatty()


def _fit(X, n_components, args):
    """Fit one GaussianMixture with the options of ``fit``."""
    gm = GaussianMixture(n_components=n_components, covariance_type=args.covariance_type,
                         random_state=args.seed, max_iter=args.max_iter,
                         n_init=args.n_init, tol=args.tol)
    if not _show_progress(args):
        return gm.fit(X)
    # The estimator prints its progress with print(): send it to stderr, and
    # restore the verbosity so the saved model does not depend on the terminal.
    quiet = {name: gm.get_params()[name] for name in ("verbose", "verbose_interval")}
    gm.set_params(verbose=2, verbose_interval=1)
    try:
        with contextlib.redirect_stdout(sys.stderr):
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
    if _show_progress(args):
        print(f"selecting among {len(candidates)} x {14 if types is None else 1} models",
              file=sys.stderr)
    selection = select_model(X, n_components=candidates, covariance_types=types,
                             random_state=args.seed, tol=args.tol, max_iter=args.max_iter)
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


def _print_report(gm, X, title, feature_names, units=None):
    """Print a fitted model: data, fit diagnostics, then every component.

    Parameters
    ----------
    gm : GaussianMixture
        Fitted on X.
    X : ndarray of shape (n_samples, n_features)
    title : str
        First line (describes the data).
    feature_names : sequence of str
    units : sequence of str, optional
        Unit of each feature, shown next to its values.
    """
    d = X.shape[1]
    k = gm.n_components
    units = [""] * d if units is None else list(units)
    suffixes = [f" {unit}" if unit else "" for unit in units]
    name_w = max(len(name) for name in feature_names) + 2
    col_w = max(12, name_w)

    print(title)
    for name, unit in zip(feature_names, units):
        print(f"  - {name} [{unit}]" if unit else f"  - {name}")
    print()
    print(
        f"GaussianMixture(n_components={k}, covariance_type={gm.covariance_type!r}, "
        f"random_state={gm.random_state!r})"
    )
    print(f"  converged_       : {gm.converged_}")
    print(f"  n_iter_          : {gm.n_iter_}")
    print(f"  lower_bound_     : {gm.lower_bound_:.6f}  (mean log-likelihood per sample)")
    print(f"  BIC              : {gm.bic(X):.3f}  (lower is better)")
    print(f"  AIC              : {gm.aic(X):.3f}")
    print()

    covs = _full_covariances(gm)
    counts = np.bincount(gm.predict(X), minlength=k)
    # show the components in order of increasing first-feature mean so the
    # report reads naturally (e.g. short eruptions first); the index printed is
    # still the fitted component index used by predict().
    order = np.argsort(gm.means_[:, 0], kind="stable")
    for j in order:
        print(f"Component {j}: weight = {gm.weights_[j]:.4f}  ({counts[j]} points assigned)")
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


def _report_dict(gm, X, data_name, feature_names):
    """The content of the text report as JSON-ready values (fitted component order)."""
    return {
        "data": data_name,
        "n_samples": int(X.shape[0]),
        "n_features": int(X.shape[1]),
        "feature_names": list(feature_names),
        "n_components": int(gm.n_components),
        "covariance_type": gm.covariance_type,
        "random_state": gm.random_state,
        "converged_": bool(gm.converged_),
        "n_iter_": int(gm.n_iter_),
        "lower_bound_": float(gm.lower_bound_),
        "bic": float(gm.bic(X)),
        "aic": float(gm.aic(X)),
        "counts": np.bincount(gm.predict(X), minlength=gm.n_components).tolist(),
        "weights_": np.asarray(gm.weights_, dtype=np.float64).tolist(),
        "means_": np.asarray(gm.means_, dtype=np.float64).tolist(),
        "covariances_": np.asarray(gm.covariances_, dtype=np.float64).tolist(),
    }


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
    """Scatter of the first two features coloured by label, with the means."""
    import matplotlib

    labels = gm.predict(X)
    cmap = matplotlib.colormaps["tab10"]
    for j in range(gm.n_components):
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
        n_components=args.components,
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
    X, names = load_data(args.data)
    if args.select is None:
        if args.covariance_type == ALL_MODELS:
            raise ValueError("--covariance-type all needs --select")
        gm, selection = _fit(X, args.n_components, args), None
    else:
        gm, selection = _select(X, args.select, args)
    if args.output:
        gm.save(args.output)
    if args.plot:
        _write_plot(gm, X, args.data, names, None, args.plot)

    if args.json:
        report = _report_dict(gm, X, args.data, names)
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


def cmd_predict(args):
    """``gaussmix predict``: labels or probabilities of DATA under MODEL."""
    gm = load(args.model)
    X, _ = load_data(args.data)
    n_features = gm.means_.shape[1]
    if X.shape[1] != n_features:
        raise ValueError(f"{args.data} has {X.shape[1]} features but the model in "
                         f"{args.model} expects {n_features}")
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
