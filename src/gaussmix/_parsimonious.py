"""Covariance M-steps of the 14 parsimonious Gaussian mixture models of mclust.

Each component covariance is written Sigma_k = lambda_k D_k A_k D_k^T
(Celeux & Govaert 1995): volume lambda_k = det(Sigma_k)^(1/d), shape A_k
(diagonal, det 1) and orientation D_k (orthogonal).  The three letters of a
model name say whether volume, shape and orientation are Equal across
components, Variable, or the Identity.

Every M-step maximises, over covariances of the model's structure,

    Q(Sigma) = -1/2 sum_k [n_k log det Sigma_k + tr(Sigma_k^{-1} W_k)].

The code works with the regularised component covariances
S_k = W_k / n_k + reg_covar I and the mass fractions w_k = n_k / n, so that
Q / n = -1/2 sum_k w_k [log det Sigma_k + tr(Sigma_k^{-1} S_k)]; a component of
tiny mass then only gets a tiny weight.

References
----------
Celeux, G. and Govaert, G. (1995). Gaussian parsimonious clustering models.
Pattern Recognition 28(5), 781-793.

Browne, R. P. and McNicholas, P. D. (2014). Estimating common principal
components in high dimensions. Advances in Data Analysis and Classification
8(2), 217-226.

Flury, B. N. and Gautschi, W. (1986). An algorithm for simultaneous
orthogonal transformation of several positive definite symmetric matrices to
nearly diagonal form. SIAM J. Sci. Stat. Comput. 7(1), 169-184.

Scrucca, L., Fop, M., Murphy, T. B. and Raftery, A. E. (2016). mclust 5:
clustering, classification and density estimation using Gaussian finite
mixture models. The R Journal 8(1), 289-317.
"""
import functools

import numpy as np

MODELS = ("EII", "VII", "EEI", "VEI", "EVI", "VVI",
          "EEE", "VEE", "EVE", "VVE", "EEV", "VEV", "EVV", "VVV")
DIAGONAL_MODELS = ("EII", "VII", "EEI", "VEI", "EVI", "VVI")


def covariances(model, nk, scatter, reg_covar, previous=None, max_iter=100, tol=1e-8):
    """M-step for the covariance structure of `model`.

    Parameters
    ----------
    model : str
        One of `MODELS`.
    nk : array-like of shape (k,)
        Component masses (sums of responsibilities), all > 0.
    scatter : array-like of shape (k, d, d), or (k, d) for `DIAGONAL_MODELS`
        W_k = sum_i r_ik (x_i - mu_k)(x_i - mu_k)^T about the new means (its
        diagonal for the diagonal models).
    reg_covar : float
        Non-negative; W_k + reg_covar * nk_k * I is maximised over, so VVV,
        EEE, VVI and VII give scikit-learn's 'full', 'tied', 'diag' and
        'spherical' covariances.
    previous : array-like, optional
        Covariances of the previous EM iteration, in the layout returned: the
        starting point of the iterative models (VEI, VEE, EVE, VVE, VEV), which
        then never end at a lower Q than a `previous` of the model's structure
        (up to rounding).  Ignored by the closed-form models.
    max_iter : int, default=100
        Iterations of the iterative models.
    tol : float, default=1e-8
        The iterative models stop once an iteration raises Q / n by at most
        tol * (1 + |Q / n|), with the S_k in units of their weighted mean
        volume: the rule, like the result, does not depend on the units of X.

    Returns
    -------
    ndarray of shape (k, d, d), or (k, d) diagonals for `DIAGONAL_MODELS`
        Symmetric positive definite covariances Sigma_k.

    Raises
    ------
    ValueError
        On an unknown model, malformed input, or when a regularised scatter
        is (numerically) singular where the model needs it nonsingular
        (increase reg_covar).
    """
    model, w, S, previous = checked_inputs(model, nk, scatter, reg_covar, previous)
    if model in _CLOSED_FORM:
        return _CLOSED_FORM[model](w, S)
    if int(max_iter) < 1 or not tol >= 0:
        raise ValueError(f"need max_iter >= 1 and tol >= 0, got {max_iter} and {tol}")
    # Q / n moves by -log |det A| when X becomes X A: with the S_k in units of
    # their mean volume it does not, nor does its rounding, nor the stopping rule.
    unit = _mean_volume(w, S)
    if previous is not None:
        previous = previous / unit
    return unit * _ITERATIVE[model](w, S / unit, previous, int(max_iter), tol)


def n_covariance_parameters(model, k, d):
    """Free covariance parameters of `model` with `k` components in `d` dimensions.

    The counts of mclust's ``nVarParams``: volumes (1 or k), shapes (d - 1
    each, 1 or k of them), orientations (d (d - 1) / 2 each, 1 or k of them).
    """
    model = _check_model(model)
    k, d = int(k), int(d)
    counts = {"E": 1, "V": k, "I": 0}
    volume, shape, orientation = model
    return (counts[volume] + counts[shape] * (d - 1)
            + counts[orientation] * (d * (d - 1) // 2))


# --------------------------------------------------------------------------- input


def checked_inputs(model, nk, scatter, reg_covar, previous):
    """``covariances``' arguments checked: (model, w, S, previous), with the
    mass fractions w, the regularised S_k (``_component_covariances``) and
    ``previous`` as a C-contiguous float64 array of S's shape, or None."""
    model = _check_model(model)
    w, S = _component_covariances(model, nk, scatter, reg_covar)
    if previous is not None:
        previous = np.ascontiguousarray(previous, dtype=np.float64)
        if previous.shape != S.shape or not np.all(np.isfinite(previous)):
            raise ValueError(f"previous must be a finite array of shape {S.shape}, "
                             f"got shape {previous.shape}")
    return model, w, S, previous


def _check_model(model):
    if not isinstance(model, str) or model not in MODELS:
        raise ValueError(f"unknown covariance model {model!r}; valid models are "
                         f"{', '.join(MODELS)}")
    return model


def _component_covariances(model, nk, scatter, reg_covar):
    """Mass fractions w_k and regularised S_k = W_k / n_k + reg_covar I."""
    nk = np.asarray(nk, dtype=np.float64)
    scatter = np.asarray(scatter, dtype=np.float64)
    if nk.ndim != 1 or nk.size == 0 or not np.all(np.isfinite(nk) & (nk > 0)):
        raise ValueError("nk must be a non-empty 1-d array of finite values > 0")
    if np.ndim(reg_covar) != 0 or not (np.isfinite(reg_covar) and reg_covar >= 0):
        raise ValueError(f"reg_covar must be a finite number >= 0, got {reg_covar!r}")
    k = nk.size
    if model in DIAGONAL_MODELS:
        good_shape = scatter.ndim == 2 and scatter.shape[0] == k
        layout = "(k, d) diagonals"
    else:
        good_shape = (scatter.ndim == 3 and scatter.shape[0] == k
                      and scatter.shape[1] == scatter.shape[2])
        layout = "(k, d, d) matrices"
    if not good_shape or scatter.shape[1] == 0:
        raise ValueError(f"{model} needs scatter as {layout} with k = {k}, "
                         f"got shape {scatter.shape}")
    if not np.all(np.isfinite(scatter)):
        raise ValueError("scatter must be finite")
    d = scatter.shape[1]
    if model in DIAGONAL_MODELS:
        S = scatter / nk[:, None] + reg_covar
    else:
        S = (scatter + np.swapaxes(scatter, 1, 2)) / (2.0 * nk[:, None, None])
        S[:, np.arange(d), np.arange(d)] += reg_covar
    return nk / nk.sum(), S


def _require(ok, model, what):
    """Raise unless `ok` (a bool or one per component) holds."""
    ok = np.asarray(ok)
    if not ok.all():
        where = (f" of component(s) {np.flatnonzero(~ok).tolist()}" if ok.ndim else
                 " pooled over the components")
        raise ValueError(f"{model} M-step: the regularised scatter{where} is {what}: "
                         "no maximum likelihood covariance can be computed; increase "
                         "reg_covar")


def _nonsingular(S):
    """Per matrix of S (..., d, d): numerically positive definite.

    Its Cholesky factorisation must succeed (as scikit-learn requires) with
    every pivot above d eps times its diagonal entry, a test unchanged by
    rescaling the features.
    """
    d = S.shape[-1]
    try:
        L = np.linalg.cholesky(S)
    except np.linalg.LinAlgError:
        return np.array([_nonsingular(s) for s in S]) if S.ndim > 2 else np.asarray(False)
    pivots = np.diagonal(L, axis1=-2, axis2=-1) ** 2
    diagonal = np.diagonal(S, axis1=-2, axis2=-1)
    return np.all(pivots > d * np.finfo(np.float64).eps * diagonal, axis=-1)


def _resolved(eigenvalues):
    """Whether all eigenvalues exceed the rounding error d eps max(eigenvalues).

    For the models built from eigenvectors or rotations of S_k, whose
    variances are only accurate to that error.
    """
    eps = np.finfo(np.float64).eps * eigenvalues.shape[-1]
    return eigenvalues.min(axis=-1) > eps * eigenvalues.max(axis=-1)


_UNRESOLVED = ("numerically singular (an eigenvalue below d * eps times the largest; "
               "rescaling the features may also help)")


# --------------------------------------------------------------------------- helpers


def _geomean(x):
    return np.exp(np.log(x).mean(axis=-1))


def _sandwich(D, b):
    """D diag(b) D^T for (..., d, d) orientations and (..., d) diagonals, symmetric."""
    sigma = (D * b[..., None, :]) @ np.swapaxes(D, -1, -2)
    return (sigma + np.swapaxes(sigma, -1, -2)) / 2.0


def _mean_volume(w, S):
    """exp(sum_k w_k log det(S_k) / d); 1 when an S_k is singular (which every
    model that uses it rejects)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        log_dets = np.log(S).sum(axis=1) if S.ndim == 2 else np.linalg.slogdet(S)[1]
        volume = np.exp(w @ log_dets / S.shape[1])
    return volume if 0 < volume < np.inf else 1.0


def _volumes(previous):
    """det(Sigma_k)^(1/d) of the previous covariances (by Cholesky factors:
    a fifth of an eigendecomposition's time in the compiled M-steps)."""
    if previous.ndim == 2:
        if not np.all(previous > 0):
            raise ValueError("previous covariances must be positive definite")
        return _geomean(previous)
    try:
        L = np.linalg.cholesky(previous)
    except np.linalg.LinAlgError:
        raise ValueError("previous covariances must be positive definite") from None
    return np.exp(2.0 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum(axis=1) / previous.shape[1])


# --------------------------------------------------------------------------- closed forms
# Celeux & Govaert (1995), section 3; EVV as in mclust 5 (Scrucca et al. 2016).


def _eii(w, s):
    lam = w @ s.mean(axis=1)
    _require(lam > 0, "EII", "singular (zero trace)")
    return np.full_like(s, lam)


def _vii(w, s):
    lam = s.mean(axis=1)
    _require(lam > 0, "VII", "singular (zero trace)")
    return np.repeat(lam[:, None], s.shape[1], axis=1)


def _eei(w, s):
    pooled = w @ s
    _require(np.all(pooled > 0), "EEI", "singular (a zero variance)")
    return np.repeat(pooled[None], s.shape[0], axis=0)


def _evi(w, s):
    # Sigma_k = lambda B_k / |B_k|^(1/d), B_k = diag(S_k), lambda = sum_k w_k |B_k|^(1/d).
    _require(np.all(s > 0, axis=1), "EVI", "singular (a zero variance)")
    g = _geomean(s)
    return ((w @ g) / g)[:, None] * s  # ratio first: a product of variances overflows


def _vvi(w, s):
    _require(np.all(s > 0, axis=1), "VVI", "singular (a zero variance)")
    return s.copy()


def _eee(w, S):
    pooled = np.einsum("k,kij->ij", w, S)
    _require(_nonsingular(pooled), "EEE", "singular (not positive definite)")
    return np.repeat(pooled[None], S.shape[0], axis=0)


def _eev(w, S):
    # S_k = L_k diag(omega_k) L_k^T with eigenvalues sorted alike: D_k = L_k, and
    # lambda A = sum_k w_k diag(omega_k) (Celeux & Govaert 1995, section 3.2).
    omega, L = np.linalg.eigh(S)
    pooled = w @ omega
    _require(_resolved(pooled), "EEV", _UNRESOLVED)
    return _sandwich(L, np.broadcast_to(pooled, omega.shape))


def _evv(w, S):
    # Sigma_k = lambda S_k / |S_k|^(1/d), lambda = sum_k w_k |S_k|^(1/d).
    _require(_nonsingular(S), "EVV", "singular (not positive definite)")
    g = np.exp(np.linalg.slogdet(S)[1] / S.shape[1])
    return ((w @ g) / g)[:, None, None] * S


def _vvv(w, S):
    _require(_nonsingular(S), "VVV", "singular (not positive definite)")
    return S.copy()


# --------------------------------------------------------------------------- iterative


def _common_shape(w, b, lam, max_iter, tol):
    """Maximise Q for Sigma_k = lam_k diag(a) on diagonals b_k, prod(a) = 1.

    Coordinate ascent of Celeux & Govaert (1995), model [lambda_k B]:
    a proportional to sum_k w_k b_k / lam_k, then lam_k = mean_j(b_kj / a_j).
    Starts from the volumes `lam`; returns (lam, a).
    """
    d = b.shape[1]
    q_old = -np.inf
    for _ in range(max_iter):
        a = w / lam @ b
        a /= _geomean(a)
        lam = (b / a).mean(axis=1)
        # After the lam update every trace term equals d.
        q = -0.5 * d * (w @ (np.log(lam) + 1.0))
        if q - q_old <= tol * (1.0 + abs(q)):
            break
        q_old = q
    return lam, a


def _vei(w, s, previous, max_iter, tol):
    # Unlike for EEI, the likelihood can be unbounded if one component is singular.
    _require(np.all(s > 0, axis=1), "VEI", "singular (a zero variance)")
    lam = np.ones(s.shape[0]) if previous is None else _volumes(previous)
    lam, a = _common_shape(w, s, lam, max_iter, tol)
    return lam[:, None] * a


def _vev(w, S, previous, max_iter, tol):
    # The eigenvectors of S_k are the optimal D_k for any shape A whose entries
    # are sorted like the eigenvalues, which the shape update preserves; this
    # leaves the VEI problem on the eigenvalues (Celeux & Govaert 1995, 3.2).
    omega, L = np.linalg.eigh(S)
    _require(_resolved(omega), "VEV", _UNRESOLVED)
    lam = np.ones(S.shape[0]) if previous is None else _volumes(previous)
    lam, a = _common_shape(w, omega, lam, max_iter, tol)
    return _sandwich(L, lam[:, None] * a)


def _vee(w, S, previous, max_iter, tol):
    """Sigma_k = lam_k C, det C = 1: coordinate ascent (Celeux & Govaert 1995, 3.1).

    C proportional to sum_k w_k S_k / lam_k, then lam_k = tr(C^{-1} S_k) / d.
    """
    d = S.shape[1]
    _require(_nonsingular(S), "VEE", "singular (not positive definite)")
    lam = np.ones(S.shape[0]) if previous is None else _volumes(previous)
    q_old = -np.inf
    for _ in range(max_iter):
        C = np.einsum("k,kij->ij", w / lam, S)
        C /= np.exp(np.linalg.slogdet(C)[1] / d)
        lam = np.einsum("ij,kji->k", np.linalg.inv(C), S) / d
        q = -0.5 * d * (w @ (np.log(lam) + 1.0))
        if q - q_old <= tol * (1.0 + abs(q)):
            break
        q_old = q
    sigma = lam[:, None, None] * C
    return (sigma + np.swapaxes(sigma, 1, 2)) / 2.0


def _eve(w, S, previous, max_iter, tol):
    return _common_orientation(w, S, previous, max_iter, tol, "EVE")


def _vve(w, S, previous, max_iter, tol):
    return _common_orientation(w, S, previous, max_iter, tol, "VVE")


def _common_orientation(w, S, previous, max_iter, tol, model):
    """Sigma_k = D diag(B_k) D^T with one orientation D (EVE, VVE).

    Block coordinate ascent in the manner of Flury & Gautschi's FG algorithm
    for common principal components: each iteration is a sweep of Jacobi
    rotations over all pairs of columns of D, disjoint pairs at once.  A
    pair's angle alternates between the closed-form diagonals given D (EVI or
    VVI on diag(D^T S_k D)) and the exactly optimal angle given the diagonals.
    (The MM updates of D of Browne & McNicholas (2014), which mclust uses,
    can need thousands of iterations where this needs about ten sweeps.)
    """
    k, d = S.shape[:2]
    _require(_resolved(np.linalg.eigvalsh(S)), model, _UNRESOLVED)

    def diagonals(b):
        """The optimal B given b = diag(D^T S_k D), and Q / n there."""
        if model == "VVE":
            return b, -0.5 * (w @ (np.log(b).sum(axis=1) + d))
        g = _geomean(b)
        lam = w @ g
        return (lam / g)[:, None] * b, -0.5 * d * (np.log(lam) + 1.0)

    if previous is None:
        D = np.linalg.eigh(np.einsum("k,kij->ij", w, S))[1]
    else:
        # A generic positive combination of D B_k D^T has the eigenvectors D.
        D = np.linalg.eigh(np.einsum("k,kij->ij", 1.0 / (np.arange(k) + np.sqrt(2.0)),
                                     previous))[1]
    M = D.T @ S @ D
    q_old = diagonals(np.diagonal(M, axis1=1, axis2=2))[1]
    rounds = _round_robin(d)
    for _ in range(max_iter):
        for I, J in rounds:
            theta = _pair_angles(w, M, I, J, diagonals)
            R = np.eye(d)
            R[I, I] = R[J, J] = np.cos(theta)
            R[J, I] = np.sin(theta)
            R[I, J] = -R[J, I]
            D = D @ R
            M = R.T @ M @ R
        B, q = diagonals(np.diagonal(M, axis1=1, axis2=2))
        if q - q_old <= tol * (1.0 + abs(q)):
            break
        q_old = q
    return _sandwich(D, B)


def _pair_angles(w, M, I, J, diagonals):
    """Rotation angles for the disjoint column pairs (I, J) of D, M_k = D^T S_k D.

    Rotating columns i, j by theta only changes the 2 x 2 blocks
    [[a, x], [x, b]] of the M_k.  Given the diagonals B_k, Q / n is
    const - 1/2 sum_k (w_k / B_k) . diag(M_k), and a further rotation by phi
    of the block as rotated so far changes that sum by
    P (cos 2 phi - 1) + R sin 2 phi, which 2 phi = atan2(-R, -P) minimises.
    """
    a, b, x = M[:, I, I], M[:, J, J], M[:, I, J]
    diagonal = np.diagonal(M, axis1=1, axis2=2).copy()
    theta = np.zeros(I.size)
    for _ in range(2):  # a third alternation costs more time than it saves sweeps
        c, s = np.cos(theta), np.sin(theta)
        diagonal[:, I] = c * c * a + s * s * b + 2.0 * c * s * x
        diagonal[:, J] = s * s * a + c * c * b - 2.0 * c * s * x
        off = (c * c - s * s) * x + c * s * (b - a)
        weights = w[:, None] / diagonals(diagonal)[0]
        dw = weights[:, I] - weights[:, J]
        P = np.einsum("kp,kp->p", dw, diagonal[:, I] - diagonal[:, J]) / 2.0
        R = np.einsum("kp,kp->p", dw, off)
        theta += np.where(np.hypot(P, R) > 0, np.arctan2(-R, -P), 0.0) / 2.0
    return theta


@functools.lru_cache(maxsize=None)
def _round_robin(d):
    """Rounds of disjoint pairs (I, J) of 0..d-1 that meet every pair once
    (circle method), as read-only arrays: every M-step of dimension d shares them."""
    m = d + d % 2
    order = np.arange(m)
    rounds = []
    for _ in range(m - 1):
        I, J = order[: m // 2], order[::-1][: m // 2]
        keep = (I < d) & (J < d)
        I, J = I[keep], J[keep]
        I.flags.writeable = J.flags.writeable = False
        rounds.append((I, J))
        order = np.concatenate(([0], np.roll(order[1:], 1)))
    return tuple(rounds)


_CLOSED_FORM = {"EII": _eii, "VII": _vii, "EEI": _eei, "EVI": _evi, "VVI": _vvi,
                "EEE": _eee, "EEV": _eev, "EVV": _evv, "VVV": _vvv}
_ITERATIVE = {"VEI": _vei, "VEE": _vee, "EVE": _eve, "VVE": _vve, "VEV": _vev}
