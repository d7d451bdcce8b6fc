"""Rows too far from every component for the compiled kernels.

The kernels' squared Mahalanobis distances overflow for a row astronomically
far from every component, leaving its log-normaliser non-finite. Such rows
are found after the kernel pass and recomputed here with scaled arithmetic.
"""
import numpy as np

from . import _covariance

# Elements of the (rows, n_components, n_features) temporaries of one ``far_rows`` call.
FAR_CHUNK = 1 << 18


def far_rows_limit(means, prec_chol, dtype):
    """A magnitude below which no value of a row can make the kernels' squared
    Mahalanobis distances overflow ``dtype`` (1e-4: a margin for their sums
    and expansions)."""
    d = means.shape[1]
    reach = np.sqrt(np.finfo(dtype).max) * 1e-4 / (d * np.abs(prec_chol).max())
    return reach - np.abs(means).max()


def far_rows(X, log_weights, means, prec_chol, covariance_type):
    """log p(x) and p(k | x) (float64) of rows too far for the kernels.

    The squared Mahalanobis distances D_k = |z_k|^2, z_k = (x - mu_k) U_k,
    overflow for a row astronomically far from every component. Here the row
    and the means are scaled by 2^-e and z by 2^-f, so D_k = 4^(e + f) m_k
    with m_k of order one, and differences D_k - D_0 are taken as
    (z_k - z_0) . (z_k + z_0), z_k - z_0 = (x U_k - x U_0) - (mu_k U_k -
    mu_0 U_0): with equal factors (tied) the first term is exactly zero and
    the means decide, although each D_k alone rounds them away. The
    posterior concentrates on the nearest component, as it does in the
    limit; log-weights and log-determinants count only between equal
    distances. log p(x) is -inf below float64's range.

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
    log_weights, means, prec_chol : ndarrays
        The fitted parameters (``log_weights`` as ``_models.kernel_parameters``
        takes them); ``covariance_type`` says their layout.

    Returns
    -------
    log_norm : ndarray of shape (n_rows,)
    proba : ndarray of shape (n_rows, n_components)
    """
    X = np.asarray(X, dtype=np.float64)
    means = np.asarray(means, dtype=np.float64)
    U = np.asarray(prec_chol, dtype=np.float64)
    k, d = means.shape
    U = _covariance.model(covariance_type).layout.per_component(U, k, d)
    offsets = np.array(log_weights, dtype=np.float64)
    diagonal = U if U.ndim == 2 else np.diagonal(U, axis1=1, axis2=2)
    offsets += np.log(diagonal).sum(axis=1) - 0.5 * d * np.log(2 * np.pi)

    def times_factors(rows):  # rows (n_rows, k, d) times each U_k
        return rows * U if U.ndim == 2 else np.einsum("rkd,kde->rke", rows, U)

    n = X.shape[0]
    e = np.frexp(np.maximum(np.abs(X).max(axis=1), np.abs(means).max()))[1][:, None, None]
    y = times_factors(np.broadcast_to(np.ldexp(X[:, None, :], -e), (n, k, d)))
    q = times_factors(np.ldexp(means, -e))
    f = np.frexp((np.abs(y) + np.abs(q)).max(axis=(1, 2)))[1][:, None, None]
    y, q = np.ldexp(y, -f), np.ldexp(q, -f)  # now |y| + |q| < 1: nothing below overflows
    z = y - q
    power = 2 * (e + f)[:, :, 0]  # D_k = 2^power m_k
    # m_k - m_0, then relative to the nearest component j (zero-weight ones excluded)
    rel = (((y - y[:, :1]) - (q - q[:, :1])) * (z + z[:, :1])).sum(axis=2)
    rel[:, offsets == -np.inf] = np.inf
    j = np.argmin(rel, axis=1)
    rows = np.arange(n)
    rel -= rel[rows, j][:, None]
    with np.errstate(over="ignore"):
        log_ratio = offsets - offsets[j][:, None] - np.ldexp(0.5 * rel, power)
    top = log_ratio.max(axis=1)
    proba = np.exp(log_ratio - top[:, None])
    total = proba.sum(axis=1)
    proba /= total[:, None]
    nearest = np.square(z[rows, j]).sum(axis=1)
    with np.errstate(over="ignore"):
        log_norm = offsets[j] - np.ldexp(0.5 * nearest, power[:, 0]) + top + np.log(total)
    return log_norm, proba


def redo_far_rows(X, out_norm, out_labels, out_proba, log_weights, means, prec_chol,
                  covariance_type):
    """Overwrite the outputs of the rows of X whose ``out_norm`` is not finite.

    ``out_labels`` / ``out_proba`` may be empty (not asked for); the rows are
    redone by ``far_rows`` in chunks of at most ``FAR_CHUNK`` elements.
    """
    far = np.flatnonzero(~np.isfinite(out_norm))
    k, d = means.shape
    step = max(1, FAR_CHUNK // (k * d))
    for i in range(0, far.size, step):
        rows = far[i:i + step]
        norm, proba = far_rows(X[rows], log_weights, means, prec_chol, covariance_type)
        proba = proba.astype(out_norm.dtype)
        with np.errstate(over="ignore"):  # float32: log p(x) below its range is -inf
            out_norm[rows] = norm
        if out_labels.size:
            out_labels[rows] = np.argmax(proba, axis=1)
        if out_proba.size:
            out_proba[rows] = proba
