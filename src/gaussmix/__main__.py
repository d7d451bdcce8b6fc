"""Command-line entry point: ``python -m gaussmix <command>`` (or ``gaussmix <command>``).

Commands
--------
demo
    Fit a Gaussian mixture to the Old Faithful data set shipped with gaussmix,
    print the fitted model and (when matplotlib is installed) write a density
    contour plot.
"""

import argparse
import sys

import numpy as np

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
DEFAULT_PLOT_PATH = "gaussmix_demo.png"


# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #
def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _full_covariances(gm):
    """Return the fitted covariances as an (n_components, d, d) array,
    whatever the covariance_type."""
    cov = np.asarray(gm.covariances_)
    k, d = gm.means_.shape
    ctype = gm.covariance_type
    if ctype == "full":
        return cov
    if ctype == "tied":
        return np.broadcast_to(cov, (k, d, d))
    if ctype == "diag":
        return np.stack([np.diag(c) for c in cov])
    if ctype == "spherical":
        return cov[:, None, None] * np.eye(d)[None, :, :]
    raise ValueError(f"unknown covariance_type {ctype!r}")


def _fmt_row(values, width=10, prec=4):
    return "".join(f"{v:>{width}.{prec}f}" for v in values)


def _print_report(gm, X, feature_names, units, file=None):
    file = sys.stdout if file is None else file

    def out(line=""):
        print(line, file=file)

    n, d = X.shape
    k = gm.n_components
    labels = [f"{name} [{unit}]" for name, unit in zip(feature_names, units)]
    name_w = max(len(name) for name in feature_names) + 2

    out(f"Old Faithful geyser data: {n} eruptions x {d} features")
    for label in labels:
        out(f"  - {label}")
    out()
    out(
        f"GaussianMixture(n_components={k}, covariance_type={gm.covariance_type!r}, "
        f"random_state={gm.random_state!r})"
    )
    out(f"  converged_       : {gm.converged_}")
    out(f"  n_iter_          : {gm.n_iter_}")
    out(f"  lower_bound_     : {gm.lower_bound_:.6f}  (mean log-likelihood per sample)")
    out(f"  BIC              : {gm.bic(X):.3f}  (lower is better)")
    out(f"  AIC              : {gm.aic(X):.3f}")
    out()

    covs = _full_covariances(gm)
    counts = np.bincount(gm.predict(X), minlength=k)
    # show the components in order of increasing first-feature mean so the
    # report reads naturally (e.g. short eruptions first); the index printed is
    # still the fitted component index used by predict().
    order = np.argsort(gm.means_[:, 0], kind="stable")
    for j in order:
        out(f"Component {j}: weight = {gm.weights_[j]:.4f}  ({counts[j]} points assigned)")
        out("  mean:")
        for name, unit, mu in zip(feature_names, units, gm.means_[j]):
            out(f"    {name:<{name_w}}{mu:>10.4f} {unit}")
        suffix = " (shared by all components)" if gm.covariance_type == "tied" else ""
        cov_unit = f" [{units[0]}^2]" if len(set(units)) == 1 else ""
        out(f"  covariance{cov_unit}{suffix}:")
        out(" " * (4 + name_w) + "".join(f"{name:>12}" for name in feature_names))
        for name, row in zip(feature_names, covs[j]):
            out(f"    {name:<{name_w}}" + _fmt_row(row, width=12))
        std = np.sqrt(np.diag(covs[j]))
        corr = covs[j] / np.outer(std, std)
        out("  std. dev.: " + ", ".join(
            f"{name} {s:.4f} {unit}" for name, unit, s in zip(feature_names, units, std)))
        if d == 2:
            out(f"  correlation: {corr[0, 1]:+.4f}")
        out()


def _write_plot(gm, X, feature_names, units, path):
    """Write a density-contour plot of ``gm`` over the scatter of ``X``.

    Returns True on success, False when matplotlib is not installed."""
    try:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.colors import Normalize
        from matplotlib.figure import Figure
    except ImportError:
        return False

    if X.shape[1] != 2:
        raise ValueError("the demo plot needs exactly two features")

    pad = 0.1 * (X.max(axis=0) - X.min(axis=0))
    lo, hi = X.min(axis=0) - pad, X.max(axis=0) + pad
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 250), np.linspace(lo[1], hi[1], 250))
    grid = np.column_stack([gx.ravel(), gy.ravel()]).astype(X.dtype, copy=False)
    logdens = gm.score_samples(grid).reshape(gx.shape)

    # contour levels in log-density, from the densest point down ~12 nats
    top = float(logdens.max())
    levels = np.linspace(top - 12.0, top, 13)

    fig = Figure(figsize=(7.5, 6.0), dpi=120)
    FigureCanvasAgg(fig)  # explicit Agg canvas: no display / global backend needed
    ax = fig.add_subplot(1, 1, 1)
    filled = ax.contourf(gx, gy, logdens, levels=levels, cmap="Greys", alpha=0.45,
                         norm=Normalize(levels[0], levels[-1]), extend="min")
    ax.contour(gx, gy, logdens, levels=levels, colors="0.25", linewidths=0.6,
               linestyles="solid")
    fig.colorbar(filled, ax=ax, label="log density (score_samples)")

    labels = gm.predict(X)
    cmap = matplotlib.colormaps["tab10"]
    for j in range(gm.n_components):
        pts = X[labels == j]
        ax.scatter(pts[:, 0], pts[:, 1], s=14, color=cmap(j % 10), edgecolor="white",
                   linewidth=0.3, label=f"component {j} (w={gm.weights_[j]:.2f})", zorder=3)
    ax.scatter(gm.means_[:, 0], gm.means_[:, 1], marker="X", s=120, color="black",
               edgecolor="white", linewidth=1.0, label="means", zorder=4)

    ax.set_xlabel(f"{feature_names[0]} [{units[0]}]")
    ax.set_ylabel(f"{feature_names[1]} [{units[1]}]")
    ax.set_title(
        f"gaussmix: Old Faithful, {gm.n_components} components, "
        f"covariance_type={gm.covariance_type!r}"
    )
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.legend(loc="upper left", fontsize="small", framealpha=0.9)
    fig.tight_layout()
    fig.savefig(path)
    return True


# --------------------------------------------------------------------------- #
# commands
# --------------------------------------------------------------------------- #
def cmd_demo(args):
    from gaussmix import GaussianMixture
    from gaussmix._datasets import FAITHFUL_FEATURE_NAMES, FAITHFUL_UNITS, load_faithful

    X = load_faithful()
    gm = GaussianMixture(
        n_components=args.components,
        covariance_type=args.covariance_type,
        random_state=args.seed,
    )
    gm.fit(X)
    _print_report(gm, X, FAITHFUL_FEATURE_NAMES, FAITHFUL_UNITS)

    if args.no_plot:
        return 0
    if _write_plot(gm, X, FAITHFUL_FEATURE_NAMES, FAITHFUL_UNITS, args.plot):
        print(f"Density contour plot written to {args.plot}")
    else:
        print(
            "matplotlib is not installed, so no plot was written.\n"
            'Install it with:  pip install "gaussmix[plot]"   (or: pip install matplotlib)'
        )
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="gaussmix",
        description="Fast EM for Gaussian mixture models (scikit-learn compatible).",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

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
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"gaussmix {version('gaussmix')}")
        except PackageNotFoundError:
            print("gaussmix (not installed)")
        return 0
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
