"""Model selection over numbers of components and covariance models (as mclust).

Every cell (k, model) of the grid is fitted by EM from several starting
partitions of the data, shared by all models with k components:

- a hierarchical (Ward) agglomeration of the standardised data, cut at k
  clusters; on at most ``HIERARCHICAL_ROWS`` rows, the others joining the
  nearest cluster centre (mclust starts from a model-based agglomeration;
  Ward's criterion is the agglomeration of its EII model);
- k-means partitions from ``n_kmeans_starts`` seeds (k-means++ seeding, then
  Lloyd iterations: gaussmix's 'kmeans' initialisation).

The cell keeps the start that reaches the highest log-likelihood. Criteria use
mclust's sign convention: larger is better.

    BIC = 2 log L - p log n        AIC = 2 log L - 2 p
    ICL = BIC + 2 sum_i log max_k p(k | x_i)

(scikit-learn's ``GaussianMixture.bic`` is the negative of this BIC.)
"""
import math
import multiprocessing
import warnings
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from . import _covariance, _hierarchical, _kmeans, _parsimonious
from ._gaussian_mixture import GaussianMixture
from ._threading import effective_n_threads, single_threaded_blas
from ._validation import as_float_array, check_random_state, check_sample_weight

CRITERIA = ("bic", "aic", "icl")
# Rows the hierarchical agglomeration runs on (its cost grows as rows^2).
HIERARCHICAL_ROWS = 1000


class ModelSelection:
    """Result of ``select_model``: the criterion table and the best model.

    Attributes
    ----------
    criterion : str
    n_components : ndarray of int
        Row labels of the tables.
    covariance_types : tuple of str
        Column labels of the tables.
    table_ : ndarray of shape (len(n_components), len(covariance_types))
        The criterion (larger is better); NaN where every start failed.
    log_likelihood_, n_parameters_ : ndarray, same shape
        Total log-likelihood and free parameters of each cell's best fit.
    errors_ : dict
        (n_components, covariance_type) -> message, for the failed cells.
    best_estimator_ : GaussianMixture
        The fitted model of the best cell.
    best_params_ : dict
        Its ``n_components`` and ``covariance_type``.
    best_score_ : float
    """

    def __init__(self, criterion, n_components, covariance_types, log_likelihood,
                 n_parameters, map_log_proba, n_samples, errors, estimator):
        self.criterion = criterion
        self.n_components = np.asarray(n_components)
        self.covariance_types = tuple(covariance_types)
        self.log_likelihood_ = log_likelihood
        self.n_parameters_ = n_parameters
        self._map_log_proba = map_log_proba
        self._n_samples = n_samples
        self.errors_ = errors
        self.table_ = self.criterion_table(criterion)
        self.best_estimator_ = estimator
        self.best_params_ = {"n_components": estimator.n_components,
                             "covariance_type": estimator.covariance_type}
        self.best_score_ = float(np.nanmax(self.table_))

    def criterion_table(self, criterion):
        """The table of ``criterion`` ('bic', 'aic' or 'icl'), larger is better."""
        ll, p = self.log_likelihood_, self.n_parameters_
        if criterion == "bic":
            return 2 * ll - p * math.log(self._n_samples)
        if criterion == "aic":
            return 2 * ll - 2 * p
        if criterion == "icl":
            return 2 * ll - p * math.log(self._n_samples) + 2 * self._map_log_proba
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")

    def to_frame(self):
        """``table_`` as a pandas DataFrame (needs pandas)."""
        import pandas as pd

        return pd.DataFrame(self.table_, index=pd.Index(self.n_components, name="n_components"),
                            columns=list(self.covariance_types))

    def __str__(self):
        width = max(10, max(len(t) for t in self.covariance_types) + 1)
        lines = [f"{self.criterion.upper()} (larger is better)",
                 "k  " + "".join(f"{t:>{width}}" for t in self.covariance_types)]
        for k, row in zip(self.n_components, self.table_):
            lines.append(f"{k:<3d}" + "".join(f"{v:>{width}.2f}" if np.isfinite(v)
                                               else f"{'-':>{width}}" for v in row))
        best = self.best_params_
        lines.append(f"best: {best['covariance_type']} with {best['n_components']} components "
                     f"({self.criterion.upper()} {self.best_score_:.3f})")
        return "\n".join(lines)

    def plot(self, ax=None):
        """Criterion against the number of components, one line per model.

        Needs matplotlib; returns the Axes.
        """
        if ax is None:
            from matplotlib.figure import Figure

            ax = Figure(figsize=(7.5, 5.0)).add_subplot(1, 1, 1)
        markers = "os^vD<>ph*xP+Xd"
        for j, name in enumerate(self.covariance_types):
            ax.plot(self.n_components, self.table_[:, j], marker=markers[j % len(markers)],
                    label=name, linewidth=1)
        ax.set_xlabel("number of components")
        ax.set_ylabel(f"{self.criterion.upper()} (larger is better)")
        ax.legend(ncol=2, fontsize="small")
        return ax


def _check_grid(n_components, covariance_types, criterion):
    components = np.atleast_1d(np.asarray(list(n_components) if not np.isscalar(n_components)
                                          else [n_components]))
    if components.size == 0 or components.dtype.kind not in "iu" or np.any(components < 1):
        raise ValueError(f"n_components must be positive integers, got {n_components!r}")
    types = _parsimonious.MODELS if covariance_types is None else (
        (covariance_types,) if isinstance(covariance_types, str) else tuple(covariance_types))
    unknown = [t for t in types if t not in _covariance.COVARIANCE_TYPES]
    if not types or unknown:
        raise ValueError(f"unknown covariance types {unknown}; choose from "
                         f"{list(_covariance.COVARIANCE_TYPES)}")
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    return components, types


def _hierarchical_labels(X, components, random_state):
    """Labels of every row of X for each k in ``components``, from two
    agglomerations of (a subset of) the rows: Ward's on the standardised data
    and the model-based one (``_hierarchical``)."""
    from scipy.cluster.hierarchy import fcluster, linkage

    n = X.shape[0]
    rows = (np.arange(n) if n <= HIERARCHICAL_ROWS
            else np.sort(random_state.choice(n, HIERARCHICAL_ROWS, replace=False)))
    Z = _hierarchical.svd_transform(X[rows])
    scale = X[rows].std(axis=0)
    ward = linkage(X[rows] / np.where(scale > 0, scale, 1.0), method="ward")
    model_based = _hierarchical.agglomerate(Z)
    labels = {}
    for k in components:
        if k > rows.size:
            continue
        cuts = [fcluster(ward, t=k, criterion="maxclust") - 1,
                _hierarchical.cut(model_based, rows.size, k)]
        if n > rows.size:  # the other rows join the nearest cluster mean
            cuts = [_kmeans._labels(X, np.empty(0, X.dtype), np.stack(
                [X[rows][subset == j].mean(axis=0) for j in range(k)]), 1) for subset in cuts]
        labels[k] = cuts
    return labels


def _partition_start(X, labels, k, covariance_type, reg_covar, sample_weight):
    """weights_init, means_init, precisions_init from a hard partition."""
    w = np.ones(X.shape[0]) if sample_weight is None else sample_weight.astype(np.float64)
    resp = np.zeros((X.shape[0], k))
    resp[np.arange(X.shape[0]), labels] = w
    N = resp.sum(axis=0)
    if np.any(N <= 0):
        raise ValueError("a starting partition has an empty cluster")
    means = resp.T @ X / N[:, None]
    W = np.einsum("nk,nkd,nke->kde", resp, X[:, None, :] - means, X[:, None, :] - means)
    entry = _covariance.model(covariance_type)
    weights, means, covariances = entry.m_step(N, np.zeros_like(means), W, means, reg_covar)
    prec_chol = entry.layout.precision_cholesky(covariances)
    return dict(weights_init=weights, means_init=means,
                precisions_init=entry.layout.precisions_from_cholesky(prec_chol))


def select_model(X, n_components=range(1, 10), covariance_types=None, criterion="bic", *,
                 sample_weight=None, n_kmeans_starts=3, random_state=0, tol=1e-5,
                 reg_covar=1e-6, max_iter=1000, cross_starts=True, n_jobs=1,
                 n_threads=None):
    """Fit a grid of mixtures and pick the best by an information criterion.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    n_components : int or iterable of int, default=range(1, 10)
    covariance_types : str or iterable of str, default=None
        mclust model names or scikit-learn names; None means all 14 mclust models.
    criterion : {'bic', 'aic', 'icl'}, default='bic'
        mclust's convention: larger is better (see module docstring).
    sample_weight : array-like of shape (n_samples,), default=None
    n_kmeans_starts : int, default=3
        k-means starts per number of components, besides the hierarchical one.
    random_state : int, RandomState or None, default=0
    tol, reg_covar, max_iter
        Passed to every ``GaussianMixture``.
    cross_starts : bool, default=True
        Also start every model from the partitions the other models reached
        with the same number of components (about triples the work; without
        it 6 of mclust's 126 Old Faithful optima were missed).
    n_jobs : int or None, default=1
        Worker processes, one number of components each (None: one per
        core); each fit then runs single-threaded. This pays on small and
        medium data, where Python overhead, not the kernels, dominates
        (Old Faithful: 1.7x on 2 cores). Workers are started with "spawn",
        so a script calling this needs the ``if __name__ == "__main__":``
        guard, as for any multiprocessing code.
    n_threads : int or None, default=None
        OpenMP threads per fit when ``n_jobs`` is 1, and of the returned model.

    Returns
    -------
    ModelSelection
    """
    components, types = _check_grid(n_components, covariance_types, criterion)
    X = as_float_array(X, min_samples=2)
    X = np.asarray(X, dtype=np.float64)
    sample_weight = check_sample_weight(sample_weight, X.shape[0], np.float64)
    random_state = check_random_state(random_state)
    threads = effective_n_threads(n_threads)
    n_jobs = effective_n_threads(n_jobs)
    partitions = {k: [] for k in components}
    for k, labels in _hierarchical_labels(X, components, random_state).items():
        partitions[k].extend(labels)
    with single_threaded_blas():
        for k in components:
            if k <= X.shape[0]:
                for _ in range(n_kmeans_starts):
                    partitions[k].append(_kmeans.kmeans(X, int(k), random_state, sample_weight,
                                                        threads)[0])

    settings = dict(tol=tol, reg_covar=reg_covar, max_iter=max_iter,
                    n_threads=1 if n_jobs > 1 else n_threads)
    tasks = [(int(k), types, partitions[k], settings, cross_starts) for k in components]
    if n_jobs > 1 and len(tasks) > 1:
        # spawn, not fork: a forked child of a process that ran OpenMP can hang
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(n_jobs, len(tasks)), mp_context=context,
                                 initializer=_share_data, initargs=(X, sample_weight)) as pool:
            results = list(pool.map(_fit_components, tasks))
    else:
        _share_data(X, sample_weight)
        results = [_fit_components(task) for task in tasks]
        _share_data(None, None)

    shape = (len(components), len(types))
    log_likelihood, map_log_proba = np.full(shape, np.nan), np.full(shape, np.nan)
    n_parameters = np.zeros(shape)
    total = X.shape[0] if sample_weight is None else float(sample_weight.sum())
    errors, best, best_score = {}, None, -np.inf
    for i, (k, fits) in enumerate(zip(components, results)):
        for j, covariance_type in enumerate(types):
            n_parameters[i, j] = _covariance.model(covariance_type).n_parameters(
                int(k), X.shape[1])
            model, problem = fits[covariance_type]
            if model is None:
                errors[(int(k), covariance_type)] = problem
                continue
            model.set_params(n_threads=n_threads)
            log_likelihood[i, j] = model.lower_bound_ * total
            log_max = np.log(model.predict_proba(X).max(axis=1))
            map_log_proba[i, j] = (log_max.sum() if sample_weight is None
                                   else sample_weight @ log_max)
            score = _cell_score(criterion, log_likelihood[i, j], n_parameters[i, j],
                                map_log_proba[i, j], total)
            if score > best_score:
                best, best_score = model, score
    if best is None:
        raise ValueError("every fit of the grid failed: " + "; ".join(
            f"{k} {t}: {m}" for (k, t), m in errors.items()))
    return ModelSelection(criterion, components, types, log_likelihood, n_parameters,
                          map_log_proba, total, errors, best)


_DATA = {}


def _share_data(X, sample_weight):
    """Make the data visible to ``_fit_components`` (in this or a worker process)."""
    _DATA.update(X=X, sample_weight=sample_weight)


def _fit_components(task):
    """Fits of every covariance type with k components: {type: (model, problem)}."""
    k, types, partitions, settings, cross_starts = task
    X, sample_weight = _DATA["X"], _DATA["sample_weight"]
    fits = {t: _fit_cell(X, k, t, partitions, sample_weight, settings) for t in types}
    if cross_starts:  # every model also starts from the other models' optima
        optima = _unique_partitions([model.predict(X) for model, _ in fits.values()
                                     if model is not None])
        for t in types:
            model, problem = _fit_cell(X, k, t, optima, sample_weight, settings,
                                       incumbent=fits[t][0])
            fits[t] = (model, problem or fits[t][1])
    return fits


def _unique_partitions(labelings):
    """Distinct partitions (label permutations count as equal)."""
    unique, seen = [], set()
    for labels in labelings:
        _, canonical = np.unique(labels, return_inverse=True)
        order = np.unique(canonical, return_index=True)[1]
        relabel = np.empty_like(order)
        relabel[np.argsort(order)] = np.arange(order.size)
        key = relabel[canonical].tobytes()
        if key not in seen:
            seen.add(key)
            unique.append(labels)
    return unique


def _fit_cell(X, k, covariance_type, partitions, sample_weight, settings, incumbent=None):
    """Best non-degenerate fit of one grid cell from the given starting partitions.

    Returns
    -------
    (GaussianMixture or None, message of the last failure or None)
        ``incumbent`` when no start beats it.
    """
    best, problem = incumbent, None
    for labels in partitions:
        if np.unique(labels).size != k:
            continue
        try:
            start = _partition_start(X, labels, k, covariance_type, settings["reg_covar"],
                                     sample_weight)
            model = GaussianMixture(k, covariance_type=covariance_type, **settings, **start)
            _quiet_fit(model, X, sample_weight)
        except (ValueError, np.linalg.LinAlgError) as exc:
            problem = str(exc)
            continue
        if _degenerate(model):
            problem = ("every start let a component collapse: a covariance eigenvalue "
                       "is within reg_covar of zero")
            continue
        if best is None or model.lower_bound_ > best.lower_bound_:
            best = model
    return best, problem


def _degenerate(model):
    """True when a fitted covariance is singular but for reg_covar.

    Such spurious maxima (a component on a few tied rows) have an unbounded
    likelihood as reg_covar -> 0; mclust reports them as missing, so do we.
    """
    covariances = np.asarray(model.covariances_, dtype=np.float64)
    if not _covariance.model(model.covariance_type).layout.diagonal:
        covariances = np.linalg.eigvalsh(covariances)
    return bool(np.min(covariances) <= 2 * model.reg_covar)


def _quiet_fit(model, X, sample_weight):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, sample_weight=sample_weight)


def _cell_score(criterion, log_likelihood, n_parameters, map_log_proba, n_samples):
    penalty = n_parameters * (2.0 if criterion == "aic" else math.log(n_samples))
    return 2 * log_likelihood - penalty + (2 * map_log_proba if criterion == "icl" else 0.0)
