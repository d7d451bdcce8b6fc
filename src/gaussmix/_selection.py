"""Model selection over numbers of components and covariance models (as mclust).

Every cell (k, model) of the grid is fitted by EM from several starting
partitions of the data, shared by all models with k components:

- a hierarchical (Ward) agglomeration of the standardised data, and the
  model-based one mclust starts from (``_hierarchical``), cut at k clusters;
  on at most ``HIERARCHICAL_ROWS`` rows, the others joining the nearest
  cluster centre;
- k-means partitions from ``n_kmeans_starts`` seeds (k-means++ seeding, then
  Lloyd iterations: gaussmix's 'kmeans' initialisation);
- then the partitions of the best ``cross_starts`` optima (highest
  log-likelihood, distinct partitions) the models reached;
- then, once every k is searched, the best optimum with k + 1 components
  with one pair of its clusters merged: the ``merge_starts`` pairs whose
  merge costs the least classification likelihood (mclust's VVV criterion).
  The k-cluster partitions above rarely hold the best way to merge k + 1
  clusters into k (5000 x 5 of three clusters: every start of k = 2 merged
  the wrong pair, 3204 below the right merge's log-likelihood).

The fits run in ``_selection_em``'s lean EM loop; the starts of a cell race
to a loose tolerance and only those near the leader run on to ``tol``. On
more than ``SEARCH_ROWS`` rows all of this runs on a random subsample, and
each cell's winner (and the winner before the merge starts), and its fit
from mclust's start, are then refined by EM on all rows (mclust refines only
the latter).

The cell keeps the start that reaches the highest log-likelihood. Criteria use
mclust's sign convention: larger is better.

    BIC = 2 log L - p log n        AIC = 2 log L - 2 p
    ICL = BIC + 2 sum_i log max_k p(k | x_i)

(scikit-learn's ``GaussianMixture.bic`` is the negative of this BIC.)
"""
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import _covariance, _hierarchical, _kmeans, _parsimonious, _selection_em
from ._gaussian_mixture import GaussianMixture
from ._threading import effective_n_threads, single_threaded_blas
from ._validation import as_float_array, check_random_state, check_sample_weight

CRITERIA = ("bic", "aic", "icl")
# Rows the hierarchical agglomeration runs on (its cost grows as rows^2): as
# mclust's subset (1000 left 9 cells of 5000 x 5 below mclust, 2000 two).
HIERARCHICAL_ROWS = 2000
# Rows the starts are raced on; beyond it each cell's winner is refined on all rows.
SEARCH_ROWS = 2000
# Rows per block when the criterion's ICL term is computed.
PROBA_ROWS = 1 << 16
# Starts first run to this tolerance; those then more than RACE_MARGIN (total
# log-likelihood) behind the leader stop there (benchmarks/README.md). On more
# than SEARCH_ROWS rows the margin is as much per row: a race to RACE_TOL stops
# further from its optimum in total there (20000 x 5: a fit 5.3 behind on the
# subsample, dropped at 5 on all rows, ended 11 above the leader).
RACE_TOL = 3e-4
RACE_MARGIN = 5.0
# Merged pairs are ranked with this ridge (times the mean feature variance)
# on each cluster's covariance: a cluster on fewer rows than features has none.
MERGE_RIDGE = 1e-6
DEGENERATE = ("every start let a component collapse: a covariance eigenvalue is within "
              "reg_covar of zero")


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


def _check_cross_starts(cross_starts):
    """``cross_starts`` as a count or None (all)."""
    if cross_starts is None or cross_starts is True:
        return None
    if cross_starts is False:
        return 0
    if not isinstance(cross_starts, (int, np.integer)) or cross_starts < 0:
        raise ValueError(f"cross_starts must be a non-negative int, a bool or None, "
                         f"got {cross_starts!r}")
    return int(cross_starts)


def _check_merge_starts(merge_starts):
    if (isinstance(merge_starts, bool) or not isinstance(merge_starts, (int, np.integer))
            or merge_starts < 0):
        raise ValueError(f"merge_starts must be a non-negative int, got {merge_starts!r}")
    return int(merge_starts)


def _hierarchical_labels(X, components, random_state):
    """Labels of every row of X for each k in ``components``, from two
    agglomerations of (a subset of) the rows: the model-based one mclust
    starts from (``_hierarchical``), then Ward's on the standardised data."""
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
        cuts = [_hierarchical.cut(model_based, rows.size, k),
                fcluster(ward, t=k, criterion="maxclust") - 1]
        if n > rows.size:  # the other rows join the nearest cluster mean
            cuts = [_kmeans._labels(X, np.empty(0, X.dtype), np.stack(
                [X[rows][subset == j].mean(axis=0) for j in range(k)]), 1) for subset in cuts]
        labels[k] = cuts
    return labels


def select_model(X, n_components=range(1, 10), covariance_types=None, criterion="bic", *,
                 sample_weight=None, n_kmeans_starts=3, random_state=0, tol=1e-5,
                 reg_covar=1e-6, max_iter=1000, cross_starts=3, merge_starts=3, n_jobs=None,
                 n_threads=None, verbose=0):
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
        k-means starts per number of components, besides the hierarchical ones.
    random_state : int, RandomState or None, default=0
    tol, reg_covar, max_iter
        As for ``GaussianMixture``: every fit stops when its mean
        log-likelihood changes by less than ``tol`` and, as mclust's EM,
        its total log-likelihood by less than ``tol`` (1 + |total|).
    cross_starts : int, bool or None, default=3
        Also start every model from the partitions of the best
        ``cross_starts`` optima (by log-likelihood, distinct partitions) the
        models reached with the same number of components; None or True:
        from all of them, 0 or False: none. All took twice the time of 3 and
        found no optimum of mclust's more on Old Faithful, diabetes and iris
        (benchmarks/README.md).
    merge_starts : int, default=3
        Also start every k from the best optimum with k + 1 components (on
        the search rows) with one pair of its clusters merged, for the
        ``merge_starts`` cheapest merges (mclust's VVV criterion); 0: none.
    n_jobs : int or None, default=None
        Threads fitting numbers of components side by side (None: one per
        core); each fit then runs single-threaded. Threads need no
        ``if __name__ == "__main__":`` guard, and the fits on up to
        ``_selection_em.SMALL_ROWS`` rows run without the GIL: on 2 cores
        2 threads took 0.55-0.75x the time of 1 (benchmarks/README.md). The
        results agree to rounding whatever ``n_jobs``. With 1, the passes
        over X of every fit use ``n_threads`` threads instead.
    n_threads : int or None, default=None
        OpenMP threads per fit when ``n_jobs`` is 1, and of the returned model.
    verbose : int, default=0
        1 prints the cells done, the time spent and an estimate of the time left.

    Returns
    -------
    ModelSelection

    Notes
    -----
    On more than ``SEARCH_ROWS`` rows the starts are raced on a random
    subsample of that many rows; each cell's winner (and the winner before
    the merge starts), and its fit from mclust's start, are then refined by
    EM on all rows. Memory stays that of a single fit.
    """
    components, types = _check_grid(n_components, covariance_types, criterion)
    cross_starts = _check_cross_starts(cross_starts)
    merge_starts = _check_merge_starts(merge_starts)
    X = as_float_array(X, min_samples=2)
    sample_weight = check_sample_weight(sample_weight, X.shape[0], np.float64)
    random_state = check_random_state(random_state)
    n_jobs = effective_n_threads(n_jobs)
    fit_threads = 1 if n_jobs > 1 else effective_n_threads(n_threads)
    data = _selection_em.GridData(X, sample_weight)
    search = data
    if data.n_samples > SEARCH_ROWS:
        rows = np.sort(random_state.choice(data.n_samples, SEARCH_ROWS, replace=False))
        search = _selection_em.GridData(data.X[rows], None if sample_weight is None
                                        else sample_weight[rows])
    partitions = _starting_partitions(search, components, n_kmeans_starts, random_state,
                                      fit_threads)

    settings = dict(tol=tol, reg_covar=reg_covar, max_iter=max_iter, n_threads=fit_threads)
    # a cell's search against its merge starts (about a quarter as many fits)
    # and its refinement, by rows
    finish_rows = search.n_samples / 4 + (data.n_samples if search is not data else 0)
    progress = _Progress(len(components) * len(types), verbose,
                         search.n_samples / (search.n_samples + finish_rows))

    def search_components(k):
        searched = _search_cells(search, k, types, partitions[k], settings, cross_starts)
        progress.advance(searched=len(types))
        return searched

    def finish_components(k):
        searched_fits, mclust_starts, tried = searched[k]
        # a copy: searched[k] stays the source of k - 1's merges, whatever the threads' order
        fits = dict(searched_fits)
        if merge_starts and k + 1 in searched:
            merged = _merged_partitions(search, _best_optimum_labels(search, searched[k + 1][0]),
                                        merge_starts)
            _restart(search, k, _starts(merged, k), settings, tried, fits)
        if search is data:
            progress.advance(done=len(types))
            return fits
        for t, (fit, problem) in fits.items():
            # mclust refines its own start's fit: so do we, besides the winner
            # (and the winner before the merges, should they have beaten it)
            first = mclust_starts[t]
            if first is not None:
                first, _ = _finished(search, t, first, settings)
            fits[t] = _refined(data, search, t, [fit, searched_fits[t][0], first], problem,
                               settings)
            progress.advance(done=1)
        return fits

    order = sorted(components, reverse=True)  # the largest first: the threads end together
    with single_threaded_blas(), ThreadPoolExecutor(min(n_jobs, len(order))) as pool:
        run = pool.map if n_jobs > 1 and len(order) > 1 else map
        searched = dict(zip(order, run(search_components, order)))
        results = dict(zip(order, run(finish_components, order)))
    return _tabulate(data, criterion, components, types, results, settings, n_threads)


class _Progress:
    """Cells searched and done out of ``total``, printed with the time left
    at verbose >= 1. ``search_share``: the part of a cell's work its search
    takes (the rest: its merge starts and its refinement on all rows)."""

    def __init__(self, total, verbose, search_share):
        self.total, self.searched, self.done, self.verbose = total, 0, 0, verbose
        self.search_share = search_share
        self.start, self.lock = time.perf_counter(), threading.Lock()

    def advance(self, searched=0, done=0):
        with self.lock:
            self.searched += searched
            self.done += done
            if self.verbose:
                elapsed = time.perf_counter() - self.start
                share = (self.searched * self.search_share
                         + self.done * (1 - self.search_share)) / self.total
                print(f"select_model: {self.done}/{self.total} cells done ({self.searched} "
                      f"searched), {elapsed:.1f} s, about {elapsed * (1 - share) / share:.1f} s "
                      f"left", flush=True)


def _starting_partitions(data, components, n_kmeans_starts, random_state, n_threads):
    """Starting labels of the rows of ``data`` for each k (hierarchical, then k-means)."""
    partitions = {k: [] for k in components}
    for k, labels in _hierarchical_labels(data.X, components, random_state).items():
        partitions[k].extend(labels)
    with single_threaded_blas():
        for k in components:
            if k <= data.n_samples:
                for _ in range(n_kmeans_starts):
                    partitions[k].append(_kmeans.kmeans(data.X, int(k), random_state,
                                                        data.sample_weight, n_threads)[0])
    return partitions


def _search_cells(data, k, types, partitions, settings, cross_starts):
    """Best fit of every covariance type with k components.

    Returns
    -------
    fits : dict
        {type: (Fit or None, problem)}
    mclust_starts : dict
        {type: the fit from ``partitions[0]`` (mclust's start) raced to
        ``RACE_TOL``, or None}
    tried : dict
        {type: the keys of the partitions it started from}
    """
    tried = {t: set() for t in types}
    raced = {t: {} for t in types}
    starts = _starts(partitions, k)
    fits = {t: _best_fit(data, k, t, starts, settings, tried[t], race_fits=raced[t])
            for t in types}
    first = _partition_key(partitions[0]) if partitions else None
    mclust_starts = {t: raced[t].get(first) for t in types}
    if cross_starts != 0:  # every model also starts from the best optima's partitions
        ranked = sorted((fit.lower_bound, t) for t, (fit, _) in fits.items() if fit is not None)
        optima = {}
        for _, t in reversed(ranked):
            labels = data.labels(t, fits[t][0].params)
            tried[t].add(_partition_key(labels))  # its own optimum is no new start
            optima.setdefault(_partition_key(labels), labels)
        _restart(data, k, _starts(list(optima.values())[:cross_starts], k), settings, tried, fits)
    return fits, mclust_starts, tried


def _restart(data, k, starts, settings, tried, fits):
    """Start every type of ``fits`` ({type: (Fit or None, problem)}, updated
    in place) from those of ``starts`` (``_starts``) it has not ``tried``; a
    better fit replaces the cell's."""
    for t, (incumbent, problem) in fits.items():
        fit, failure = _best_fit(data, k, t, starts, settings, tried[t], incumbent=incumbent)
        fits[t] = (fit, problem if fit is not None else failure)


def _best_optimum_labels(data, fits):
    """The rows' labels under the highest-likelihood fit of ``fits``, or None."""
    found = [(fit.lower_bound, t) for t, (fit, _) in fits.items() if fit is not None]
    if not found:
        return None
    _, t = max(found)
    return data.labels(t, fits[t][0].params)


def _merged_partitions(data, labels, count):
    """Up to ``count`` partitions with one cluster fewer than ``labels``, each
    merging one pair of its clusters, the cheapest first: by the
    classification likelihood the merge loses, the change in
    sum_c n_c log det(W_c / n_c) (W_c a cluster's scatter: mclust's VVV
    agglomeration criterion without its trace term)."""
    if labels is None or count == 0:
        return []
    _, labels = np.unique(labels, return_inverse=True)
    k, d = labels.max() + 1, data.n_features
    if k < 2:
        return []
    weights = np.ones(data.n_samples) if data.sample_weight is None else data.sample_weight
    n = np.bincount(labels, weights=weights, minlength=k)
    if np.any(n <= 0):         # a cluster of zero-weight rows: no start to merge from
        return []
    means, scatter = np.empty((k, d)), np.empty((k, d, d))
    for c in range(k):
        rows, w = data.X[labels == c], weights[labels == c, None]
        means[c] = (w * rows).sum(axis=0) / n[c]
        scatter[c] = (w * (rows - means[c])).T @ (rows - means[c])
    ridge = MERGE_RIDGE * np.mean(np.var(data.X, axis=0)) * np.eye(d)

    def cost(n_c, W):
        sign, log_det = np.linalg.slogdet(W / n_c + ridge)
        return n_c * log_det if sign > 0 else np.inf

    own = [cost(n[c], scatter[c]) for c in range(k)]
    pairs = []
    for a in range(k):
        for b in range(a + 1, k):
            delta = means[a] - means[b]
            W = scatter[a] + scatter[b] + n[a] * n[b] / (n[a] + n[b]) * np.outer(delta, delta)
            pairs.append((cost(n[a] + n[b], W) - own[a] - own[b], a, b))
    merged = []
    for _, a, b in sorted(pairs)[:count]:
        joined = np.where(labels == b, a, labels)
        merged.append(np.where(joined > b, joined - 1, joined))
    return merged


def _starts(partitions, k):
    """(key, labels) of the partitions into exactly k clusters, keyed once
    for every model that starts from them."""
    return [(_partition_key(labels), labels) for labels in partitions
            if np.unique(labels).size == k]


def _partition_key(labels):
    """Bytes equal for equal partitions (label permutations count as equal)."""
    _, first, canonical = np.unique(labels, return_index=True, return_inverse=True)
    relabel = np.empty(first.size, dtype=np.intp)
    relabel[np.argsort(first)] = np.arange(first.size)
    return relabel[canonical].tobytes()


def _best_fit(data, k, covariance_type, starts, settings, tried, incumbent=None,
              race_fits=None):
    """Best non-degenerate fit of one cell from the ``starts`` (``_starts``)
    not ``tried`` yet.

    The starts race to the looser tolerance ``RACE_TOL`` first; then, best
    first, those within ``RACE_MARGIN`` of the leading log-likelihood (of
    the incumbent or the best start that ended non-degenerate) run on to
    ``tol``. ``race_fits``, a dict, receives the raced fits by partition key.

    Returns
    -------
    (Fit or None, message of the last failure or None)
        ``incumbent`` when no start beats it.
    """
    race = dict(settings, tol=max(settings["tol"], RACE_TOL))
    runners, problem = [], None
    for key, labels in starts:
        if key in tried:
            continue
        tried.add(key)
        try:
            start = _selection_em.partition_parameters(data, labels, k, covariance_type,
                                                       settings["reg_covar"])
            runners.append(_selection_em.em(data, covariance_type, start, **race))
            if race_fits is not None:
                race_fits[key] = runners[-1]
        except (ValueError, np.linalg.LinAlgError) as exc:
            problem = str(exc)
    return _run_on(data, covariance_type, runners, settings, incumbent, problem)


def _run_on(data, covariance_type, runners, settings, incumbent=None, problem=None,
            resume=None):
    """Best first, the raced ``runners`` within ``RACE_MARGIN`` of the leading
    log-likelihood (of the incumbent or the best runner that ended
    non-degenerate) run on to ``tol`` (``_finished``): (the best of them and
    the incumbent, or None; the message of the last failure, else ``problem``)."""
    best, lead = incumbent, None if incumbent is None else incumbent.lower_bound
    margin = RACE_MARGIN / min(data.total_weight, SEARCH_ROWS)  # per unit of weight
    for fit in sorted(runners, key=lambda fit: -fit.lower_bound):
        if lead is not None and lead - fit.lower_bound > margin:
            break
        raced = fit.lower_bound
        fit, failure = _finished(data, covariance_type, fit, settings, resume)
        if fit is None:
            problem = failure
            continue
        lead = raced if lead is None else max(lead, raced)
        if best is None or fit.lower_bound > best.lower_bound:
            best = fit
    return best, problem


def _finished(data, covariance_type, fit, settings, resume=None):
    """A raced fit run on to ``tol`` and kept unless degenerate: (Fit, None),
    or (None, the problem). ``resume`` None: only when the race stopped short
    of ``tol`` (RACE_TOL above it)."""
    if resume is None:
        resume = RACE_TOL > settings["tol"]
    try:
        if resume:
            fit = _selection_em.resume(data, covariance_type, fit, **settings)
    except (ValueError, np.linalg.LinAlgError) as exc:
        return None, str(exc)
    if _selection_em.degenerate(covariance_type, fit.params, settings["reg_covar"]):
        return None, DEGENERATE
    return fit, None


def _refined(data, search, covariance_type, fits, problem, settings):
    """EM on all rows from fits found on the subsample ``search``: (best Fit
    or None, problem).

    Fits that classify the subsample alike start once (the first of them):
    on 5000 x 5 and 20000 x 5 that left every cell's optimum as it was and
    took a fifth less time. As the starts of a cell, the fits race to
    ``RACE_TOL`` first; those within ``RACE_MARGIN`` of the leader run on to
    ``tol`` (the leader alone left a 20000 x 5 cell 11 below its runner-up).
    """
    race = dict(settings, tol=max(settings["tol"], RACE_TOL))
    runners, tried = [], set()
    for fit in fits:
        if fit is None:
            continue
        key = _partition_key(search.labels(covariance_type, fit.params))
        if key in tried:
            continue
        tried.add(key)
        try:
            runners.append(_selection_em.em(data, covariance_type, fit.params, **race))
        except (ValueError, np.linalg.LinAlgError) as exc:
            problem = str(exc)
    best, problem = _run_on(data, covariance_type, runners, settings, problem=problem,
                            resume=True)
    return best, None if best is not None else problem


def _tabulate(data, criterion, components, types, results, settings, n_threads):
    """The ModelSelection of the grid's fits."""
    shape = (len(components), len(types))
    log_likelihood, map_log_proba = np.full(shape, np.nan), np.full(shape, np.nan)
    n_parameters = np.zeros(shape)
    total = data.total_weight
    errors, best, best_score = {}, None, -np.inf
    for i, k in enumerate(components):
        for j, covariance_type in enumerate(types):
            n_parameters[i, j] = _covariance.model(covariance_type).n_parameters(
                int(k), data.n_features)
            fit, problem = results[k][covariance_type]
            if fit is None:
                errors[(int(k), covariance_type)] = problem
                continue
            model = _estimator(int(k), covariance_type, fit, settings, n_threads)
            log_likelihood[i, j] = fit.lower_bound * total
            # the weights are scaled to mean 1: their sum is n_samples
            map_log_proba[i, j] = _map_log_proba(model, data) * total / data.n_samples
            score = _cell_score(criterion, log_likelihood[i, j], n_parameters[i, j],
                                map_log_proba[i, j], total)
            if score > best_score:
                best, best_score = model, score
    if best is None:
        raise ValueError("every fit of the grid failed: " + "; ".join(
            f"{k} {t}: {m}" for (k, t), m in errors.items()))
    return ModelSelection(criterion, components, types, log_likelihood, n_parameters,
                          map_log_proba, total, errors, best)


def _estimator(k, covariance_type, fit, settings, n_threads):
    """A fitted GaussianMixture holding ``fit``."""
    model = GaussianMixture(k, covariance_type=covariance_type, tol=settings["tol"],
                            reg_covar=settings["reg_covar"], max_iter=settings["max_iter"],
                            n_threads=n_threads)
    model._set_parameters(fit.params, None)
    model.n_iter_, model.lower_bounds_, model.lower_bound_ = (fit.n_iter, fit.lower_bounds,
                                                              fit.lower_bound)
    model.converged_, model._stream = fit.converged, None
    return model


def _map_log_proba(model, data):
    """sum_i w_i log max_k p(k | x_i), a block of rows at a time."""
    total = 0.0
    for start in range(0, data.n_samples, PROBA_ROWS):
        rows = slice(start, start + PROBA_ROWS)
        log_max = np.log(model.predict_proba(data.X[rows]).max(axis=1))
        total += log_max.sum() if data.sample_weight is None else data.sample_weight[rows] @ log_max
    return total


def _cell_score(criterion, log_likelihood, n_parameters, map_log_proba, n_samples):
    penalty = n_parameters * (2.0 if criterion == "aic" else math.log(n_samples))
    return 2 * log_likelihood - penalty + (2 * map_log_proba if criterion == "icl" else 0.0)
