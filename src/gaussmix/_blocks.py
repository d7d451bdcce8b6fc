"""Row ranges over X that keep a memory-mapped X out of resident memory.

Every pass over X walks it through ``row_ranges``. For an array in memory
that is one range (or ranges of at most ``max_rows``). For an array backed by
a file mapping (``numpy.memmap``, ``np.load(..., mmap_mode=...)``), the pages
of each range are released after it has been processed (``MADV_DONTNEED``),
so resident memory stays at about one block however large the file is; the
data stay in the operating system's page cache.
"""
import mmap

import numpy as np

# Bytes of a memory-mapped X visited between two page releases.
RELEASE_BYTES = 32 << 20


def _file_mapping(X):
    """The mmap under X when its pages can be dropped without losing data.

    Copy-on-write maps (mode 'c') hold private changes that dropping would
    discard, and a bare mmap does not say its mode: neither is released.
    """
    base = X
    while base is not None:
        if isinstance(base, np.memmap):
            mapping = getattr(base, "_mmap", None)
            if mapping is None or base.mode not in ("r", "r+", "w+"):
                return None
            return mapping if hasattr(mapping, "madvise") else None
        base = getattr(base, "base", None)
    return None


class _Releaser:
    """Drops the pages of rows of X from this process's resident set."""

    def __init__(self, X, mapping):
        self.mapping = mapping
        self.origin = np.frombuffer(mapping, dtype=np.uint8).ctypes.data
        self.X = X

    def release(self, start, stop):
        if stop <= start:
            return
        rows = self.X[start:stop]
        begin = rows.ctypes.data - self.origin
        end = min(begin + rows.nbytes, len(self.mapping))
        begin -= begin % mmap.PAGESIZE
        if end > begin:
            self.mapping.madvise(mmap.MADV_DONTNEED, begin, end - begin)


def _releaser(X):
    mapping = _file_mapping(X)
    if mapping is None or not hasattr(mmap, "MADV_DONTNEED") or mapping.closed:
        return None
    return _Releaser(X, mapping)


def row_ranges(X, max_rows=None):
    """Yield ``(start, stop)`` ranges covering the rows of X in order.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    max_rows : int, optional
        Longest range; a memory-mapped X is also cut every ``RELEASE_BYTES``.
    """
    n = X.shape[0]
    releaser = _releaser(X)
    step = n if max_rows is None else max_rows
    if releaser is not None:
        row_bytes = max(X.strides[0], 1)
        step = min(step, max(256, RELEASE_BYTES // row_bytes))
    step = max(step, 1)
    for start in range(0, n, step):
        stop = min(start + step, n)
        yield start, stop
        if releaser is not None:
            releaser.release(start, stop)


def take_rows(X, rows):
    """``X[rows]`` as a new C-contiguous array; a memory-mapped X is read
    range by range (random page faults would map whole neighbourhoods of the
    file at once)."""
    rows = np.asarray(rows, dtype=np.intp)
    if _releaser(X) is None:
        return np.ascontiguousarray(X[rows])
    order = np.argsort(rows, kind="stable")
    sorted_rows = rows[order]
    out = np.empty((rows.shape[0], X.shape[1]), dtype=X.dtype)
    for start, stop in row_ranges(X):
        lo, hi = np.searchsorted(sorted_rows, (start, stop))
        if hi > lo:
            out[order[lo:hi]] = X[sorted_rows[lo:hi]]
    return out
