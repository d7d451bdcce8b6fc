"""Small data sets shipped with gaussmix."""

import csv
import io
from importlib import resources

import numpy as np

__all__ = ["load_faithful"]

FAITHFUL_FEATURE_NAMES = ("eruptions", "waiting")
FAITHFUL_UNITS = ("min", "min")


def _read_faithful_text():
    path = resources.files("gaussmix").joinpath("data").joinpath("faithful.csv")
    return path.read_text(encoding="utf-8")


def load_faithful(as_frame=False):
    """Load the Old Faithful geyser data set (272 eruptions).

    Each row is one eruption of the Old Faithful geyser in Yellowstone
    National Park: the eruption duration and the waiting time until that
    eruption, both in minutes.  The two clearly separated clusters (short
    eruptions after short waits, long eruptions after long waits) make it the
    classic two-component Gaussian mixture example.

    Parameters
    ----------
    as_frame : bool, default=False
        If True, return a ``pandas.DataFrame`` with columns
        ``"eruptions"`` and ``"waiting"`` (needs pandas, which is not a
        dependency of gaussmix).

    Returns
    -------
    X : ndarray of shape (272, 2), dtype float64, or pandas.DataFrame
        Column 0 is the eruption duration in minutes, column 1 the waiting
        time in minutes.
    """
    reader = csv.reader(io.StringIO(_read_faithful_text()))
    header = [name.strip() for name in next(reader)]
    if tuple(header) != FAITHFUL_FEATURE_NAMES:
        raise ValueError(f"unexpected header in faithful.csv: {header!r}")
    X = np.array([[float(v) for v in row] for row in reader if row], dtype=np.float64)

    if as_frame:
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - depends on environment
            raise ImportError(
                "load_faithful(as_frame=True) requires pandas; "
                "install it with `pip install pandas`."
            ) from exc
        return pd.DataFrame(X, columns=list(FAITHFUL_FEATURE_NAMES))
    return X
