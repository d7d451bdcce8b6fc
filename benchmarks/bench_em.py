"""Benchmark gaussmix's EM against scikit-learn and daal4py (oneDAL).

One process run measures, for every case (n_samples, n_features, n_components,
covariance_type) in float64 and float32:

* seconds per EM iteration, initialisation excluded: every library fits the
  same data from the same initial parameters with max_iter=1 and with
  max_iter=1+N (tol=0, so exactly that many iterations run); the time per
  iteration is (t[1+N] - t[1]) / N, each t the best of --repeats runs;
* the ratios sklearn/gaussmix and daal4py/gaussmix of that time;
* the mean per-sample log-likelihood of each library's parameters after 1+N
  iterations, re-scored by one float64 numpy/scipy scorer, and the library's
  own reported value (lower_bound_, or daal4py's goalFunction / n_samples);
  'MISMATCH' is printed when they disagree by more than 1e-6 relative
  (1e-3 for float32);
* for full covariance: gaussmix's achieved GFLOP/s, with the flop model
  2 * n * k * d^2 per iteration (E-step triangular multiply n*k*d^2 plus
  M-step symmetric rank-k update n*k*d^2), next to the DGEMM/SGEMM rate of
  np.dot on 2000x2000 matrices measured in the same run;
* the cost of gaussmix's own initialisation (init_params='kmeans' and
  'k-means++') in units of its EM iteration: (t_fit(max_iter=1) - t_iter) / t_iter;
* peak resident memory of one fit, per library, in a fresh subprocess,
  reported as MiB above the RSS once data and initial parameters exist.

``--estimator bayesian`` times BayesianGaussianMixture (gaussmix against
scikit-learn; daal4py has none) the same way. It takes no *_init, so both
start from init_params='random_from_data' with one seed (the same rows); the
reported value is the evidence lower bound per sample.

All libraries run with their default threading (all cores). Environment
variables that change BLAS behaviour (OPENBLAS_CORETYPE, OPENBLAS_L2_SIZE,
*_NUM_THREADS, ...) are reported in the header, never changed.

Usage:
    python benchmarks/bench_em.py                      # full run
    python benchmarks/bench_em.py --quick              # smoke run, n / 20
    python benchmarks/bench_em.py --cases full --dtypes float64 --repeats 5
    python benchmarks/bench_em.py --cases round,separated,anisotropic,correlated
    python benchmarks/bench_em.py --estimator bayesian --cases 1,3 --reg-covar 1e-6
    python benchmarks/bench_em.py --json results.json
Run with --help for all options. Works without daal4py (its columns are
skipped) and without a built gaussmix (sklearn/daal4py only).
"""

import argparse
import gc
import json
import os
import platform
import re
import subprocess
import sys
import threading
import time
import warnings
from collections import namedtuple

import numpy as np
from scipy import linalg
from scipy.special import logsumexp
from threadpoolctl import threadpool_info

# data: the shape of the clusters, see make_data ("mixed" unless named).
Case = namedtuple("Case", "n d k cov data", defaults=("mixed",))
DATA_SHAPES = ("mixed", "round", "separated", "anisotropic", "correlated")

CASES = [
    Case(1_000_000, 2, 3, "full"),
    Case(200_000, 16, 16, "full"),
    Case(100_000, 64, 32, "full"),
    Case(100_000, 64, 32, "diag"),
    Case(200_000, 16, 16, "tied"),
    Case(200_000, 16, 16, "spherical"),
    # issue 17: no per-iteration cliff on separated, anisotropic or correlated
    # clusters against the round, overlapping ones
    Case(200_000, 16, 16, "full", "round"),
    Case(200_000, 16, 16, "full", "separated"),
    Case(200_000, 16, 16, "full", "anisotropic"),
    Case(200_000, 16, 16, "full", "correlated"),
    Case(1_000_000, 2, 3, "full", "anisotropic"),
    Case(100_000, 64, 32, "diag", "anisotropic"),
    # the same shapes for the other kernel modes: d = 2 loops, 64-d full and
    # diagonal GEMMs, tied and spherical
    Case(1_000_000, 2, 3, "full", "round"),
    Case(1_000_000, 2, 3, "full", "separated"),
    Case(100_000, 64, 32, "full", "round"),
    Case(100_000, 64, 32, "full", "anisotropic"),
    Case(100_000, 64, 32, "diag", "round"),
    Case(100_000, 64, 32, "diag", "separated"),
    Case(200_000, 16, 16, "tied", "round"),
    Case(200_000, 16, 16, "tied", "anisotropic"),
    Case(200_000, 16, 16, "spherical", "round"),
    Case(200_000, 16, 16, "spherical", "separated"),
    # low-dimensional tables: the full row loops (d^2 k <= _models.LOOPS_MAX_WORK)
    Case(500_000, 5, 5, "full", "anisotropic"),
    Case(500_000, 8, 6, "full", "correlated"),
    Case(500_000, 5, 5, "diag", "anisotropic"),
]
DTYPES = {"float64": np.float64, "float32": np.float32}
LIBS = ("gaussmix", "sklearn", "daal4py")
RTOL = {"float64": 1e-6, "float32": 1e-3}
# init_params='k-means++' starts from one-point clusters: zero covariance without
# reg_covar, so initialisation is timed with scikit-learn's default reg_covar.
INIT_REG_COVAR = 1e-6
QUICK_DIVISOR = 20
QUICK_MIN_N = 20_000  # below this, 32 components in 64-d collapse without reg_covar
MiB = 2.0**20
ENV_PREFIXES = ("OPENBLAS", "GOTO", "OMP_", "KMP_", "MKL", "BLIS", "NVPL", "DAAL", "ONEDAL",
                "SCIPY_", "NUMPY_", "GAUSSMIX")
SLOW_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def case_name(case):
    name = f"n{case.n}_d{case.d}_k{case.k}_{case.cov}"
    return name if case.data == "mixed" else f"{name}_{case.data}"


def scaled(case, quick):
    return case._replace(n=max(case.n // QUICK_DIVISOR, QUICK_MIN_N)) if quick else case


# --------------------------------------------------------------------------- data


def make_data(n, d, k, dtype, seed=0, shape="mixed"):
    """A reproducible mixture of k Gaussians in d dimensions, near-balanced
    weights (Dirichlet(50)). ``shape``:

    * "mixed": centres N(0, 3^2), covariances with random axes and eigenvalues
      in [0.3, 3];
    * "round": centres N(0, 4^2), identity covariances (overlapping blobs);
    * "separated": as "round" with centres N(0, 40^2);
    * "anisotropic": centres N(0, 4^2), covariances A A^T with A entries
      N(0, 1/d) (condition numbers in the hundreds to tens of thousands);
    * "correlated": as "round" then every row mixed by one shared matrix
      I + 0.9 (ones / d), so the features are correlated."""
    if shape not in DATA_SHAPES:
        raise ValueError(f"unknown data shape {shape!r}; one of {DATA_SHAPES}")
    rng = np.random.default_rng(seed)
    spread = {"mixed": 3.0, "separated": 40.0}.get(shape, 4.0)
    centers = rng.normal(scale=spread, size=(k, d))
    weights = rng.dirichlet(np.full(k, 50.0))
    labels = rng.choice(k, size=n, p=weights)
    X = np.empty((n, d), dtype=np.float64)
    for c in range(k):
        if shape == "mixed":
            q, _ = np.linalg.qr(rng.normal(size=(d, d)))
            factor = q * np.sqrt(rng.uniform(0.3, 3.0, size=d))  # cov_c = factor @ factor.T
        elif shape == "anisotropic":
            factor = rng.normal(scale=1.0 / np.sqrt(d), size=(d, d))
        else:
            factor = np.eye(d)
        idx = np.flatnonzero(labels == c)
        X[idx] = centers[c] + rng.standard_normal((idx.size, d)) @ factor.T
    if shape == "correlated":
        X = X @ (np.eye(d) + 0.9 / d).T
    return np.ascontiguousarray(X, dtype=dtype)


def make_init(X, k, cov, seed=1):
    """Initial parameters shared by every library (no k-means): means are k
    random rows, every component gets the data covariance, weights are uniform.
    Computed in float64, handed over in X's dtype.

    Returns a dict with 'weights' (k,), 'means' (k, d), 'precisions' in
    scikit-learn's precisions_init shape for `cov`, and 'covariances_full'
    (k, d, d) / 'variances' (k, d) for daal4py."""
    rng = np.random.default_rng(seed)
    n, d = X.shape
    means = X[rng.choice(n, size=k, replace=False)].astype(np.float64)
    data_cov = np.atleast_2d(np.cov(X, rowvar=False, dtype=np.float64))
    variances = np.diag(data_cov).copy()
    if cov == "full":
        precisions = np.repeat(np.linalg.inv(data_cov)[None], k, axis=0)
        cov_full = np.repeat(data_cov[None], k, axis=0)
    elif cov == "tied":
        precisions = np.linalg.inv(data_cov)
        cov_full = np.repeat(data_cov[None], k, axis=0)
    elif cov == "diag":
        precisions = np.repeat(1.0 / variances[None], k, axis=0)
        cov_full = np.repeat(np.diag(variances)[None], k, axis=0)
    elif cov == "spherical":
        precisions = np.full(k, 1.0 / variances.mean())
        cov_full = np.repeat(np.eye(d)[None] * variances.mean(), k, axis=0)
    else:
        raise ValueError(cov)
    dt = X.dtype
    return {
        "weights": np.full(k, 1.0 / k, dtype=dt),
        "means": np.ascontiguousarray(means, dtype=dt),
        "precisions": np.ascontiguousarray(precisions, dtype=dt),
        "covariances_full": np.ascontiguousarray(cov_full, dtype=dt),
        "variances": np.ascontiguousarray(np.repeat(variances[None], k, axis=0), dtype=dt),
    }


# --------------------------------------------------------------------------- scoring


def to_full_covariances(covariances, cov, k, d):
    """scikit-learn's covariances_ of any covariance_type -> (k, d, d) float64."""
    c = np.asarray(covariances, dtype=np.float64)
    if cov == "full":
        return c.reshape(k, d, d)
    if cov == "tied":
        return np.repeat(c.reshape(1, d, d), k, axis=0)
    if cov == "diag":
        return np.stack([np.diag(v) for v in c.reshape(k, d)])
    if cov == "spherical":
        return c.reshape(k, 1, 1) * np.eye(d)[None]
    raise ValueError(cov)


def mean_log_likelihood(X, weights, means, cov_full, block=65536):
    """Mean per-sample log-likelihood of X under a mixture, in float64, with
    plain scipy (Cholesky + triangular solve + logsumexp)."""
    weights = np.asarray(weights, dtype=np.float64).ravel()
    means = np.asarray(means, dtype=np.float64)
    n, d = X.shape
    k = weights.size
    chols = [linalg.cholesky(cov_full[c], lower=True) for c in range(k)]
    log_norm = np.array([np.log(weights[c]) - np.log(np.diag(L)).sum()
                         - 0.5 * d * np.log(2 * np.pi) for c, L in enumerate(chols)])
    total = 0.0
    for start in range(0, n, block):
        Xb = np.asarray(X[start:start + block], dtype=np.float64)
        logp = np.empty((Xb.shape[0], k))
        for c, L in enumerate(chols):
            z = linalg.solve_triangular(L, (Xb - means[c]).T, lower=True, check_finite=False)
            logp[:, c] = log_norm[c] - 0.5 * np.einsum("ij,ij->j", z, z)
        total += logsumexp(logp, axis=1).sum()
    return total / n


# --------------------------------------------------------------------------- libraries

FitResult = namedtuple("FitResult", "weights means cov_full reported_ll n_iter")


class SklearnLike:
    """gaussmix and scikit-learn share one constructor and fitted attributes."""

    def __init__(self, name, cls, reg_covar, extra=None):
        self.name, self.cls, self.reg_covar = name, cls, reg_covar
        self.extra = dict(extra or {})

    def supports(self, cov, dtype):
        return True

    def _estimator(self, case, init, max_iter):
        return self.cls(
            n_components=case.k, covariance_type=case.cov, tol=0.0, reg_covar=self.reg_covar,
            max_iter=max_iter, n_init=1, init_params="random_from_data", random_state=0,
            weights_init=init["weights"], means_init=init["means"],
            precisions_init=init["precisions"], **self.extra)

    def fit(self, X, case, init, max_iter):
        est = self._estimator(case, init, max_iter)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X)
        return est

    def result(self, est, case):
        return FitResult(est.weights_, est.means_,
                         to_full_covariances(est.covariances_, case.cov, case.k, case.d),
                         float(est.lower_bound_), int(est.n_iter_))

    def fit_init(self, X, case, init_params, max_iter=1):
        """Fit with the library's own initialisation (no *_init)."""
        est = self.cls(n_components=case.k, covariance_type=case.cov, tol=0.0,
                       reg_covar=max(self.reg_covar, INIT_REG_COVAR), max_iter=max_iter, n_init=1,
                       init_params=init_params, random_state=0, **self.extra)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X)
        return est


class BayesianLike(SklearnLike):
    """gaussmix and scikit-learn's BayesianGaussianMixture: no *_init, so the
    same rows start both (init_params='random_from_data', one seed)."""

    def _estimator(self, case, init, max_iter):
        return self.cls(n_components=case.k, covariance_type=case.cov, tol=0.0,
                        reg_covar=self.reg_covar, max_iter=max_iter, n_init=1,
                        init_params="random_from_data", random_state=0, **self.extra)

    def result(self, est, case):
        return FitResult(est.weights_, est.means_,
                         to_full_covariances(est.covariances_, case.cov, case.k, case.d),
                         float(np.ravel(est.lower_bound_)[0]) / case.n, int(est.n_iter_))


class Daal4py:
    """daal4py.em_gmm: full and diagonal covariance; fptype follows X's dtype.
    accuracyThreshold=0 and maxIterations=N make it run exactly N iterations.
    goalFunction is the total log-likelihood at the last E-step (the parameters
    before the last M-step, as scikit-learn's lower_bound_), divided here by n."""

    STORAGE = {"full": "full", "diag": "diagonal"}

    def __init__(self, module, reg_covar):
        self.name, self.d4p = "daal4py", module
        # regularizationFactor is applied only to ill-conditioned covariances;
        # 0 keeps the iteration identical to reg_covar=0 elsewhere.
        self.reg = float(reg_covar)

    def supports(self, cov, dtype):
        return cov in self.STORAGE

    def fit(self, X, case, init, max_iter):
        k = case.k
        if case.cov == "full":
            covs = [init["covariances_full"][c] for c in range(k)]
        else:
            covs = [init["variances"][c:c + 1] for c in range(k)]
        alg = self.d4p.em_gmm(
            nComponents=k, fptype="float" if X.dtype == np.float32 else "double",
            maxIterations=max_iter, accuracyThreshold=0.0, regularizationFactor=self.reg,
            covarianceStorage=self.STORAGE[case.cov])
        return alg.compute(X, init["weights"].reshape(1, k), init["means"], covs), X.shape[0]

    def result(self, fitted, case):
        res, n_samples = fitted
        k, d = case.k, case.d
        if case.cov == "full":
            cov_full = np.stack([np.asarray(c, dtype=np.float64).reshape(d, d)
                                 for c in res.covariances])
        else:
            cov_full = np.stack([np.diag(np.asarray(c, dtype=np.float64).ravel())
                                 for c in res.covariances])
        return FitResult(np.asarray(res.weights).ravel(), np.asarray(res.means), cov_full,
                         float(np.asarray(res.goalFunction).ravel()[0]) / n_samples,
                         int(np.asarray(res.nIterations).ravel()[0]))


def load_libraries(names, reg_covar, gaussmix_threads=None, estimator="gmm"):
    """Import what is available. Returns ({name: runner}, {name: reason skipped})."""
    runners, skipped = {}, {}
    bayesian = estimator == "bayesian"
    runner, class_name = ((BayesianLike, "BayesianGaussianMixture") if bayesian
                          else (SklearnLike, "GaussianMixture"))
    for name in names:
        try:
            if name == "gaussmix":
                import gaussmix
                extra = {} if gaussmix_threads is None else {"n_threads": gaussmix_threads}
                runners[name] = runner(name, getattr(gaussmix, class_name), reg_covar, extra)
            elif name == "sklearn":
                import sklearn.mixture
                runners[name] = runner(name, getattr(sklearn.mixture, class_name), reg_covar)
            elif bayesian:
                skipped[name] = "no variational mixture"
            elif name == "daal4py":
                import daal4py
                runners[name] = Daal4py(daal4py, reg_covar)
            else:
                skipped[name] = "unknown library"
        except Exception as exc:  # ImportError, or a half-built extension
            skipped[name] = f"{type(exc).__name__}: {exc}"
    return runners, skipped


def library_versions():
    out = {"python": platform.python_version()}
    for mod in ("numpy", "scipy", "sklearn", "threadpoolctl", "gaussmix"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:
            out[mod] = None
    try:
        import daal4py
        v = daal4py._get__version__()  # a tuple, or its repr: (2026, 2, 0, '"P"')
        parts = v if isinstance(v, tuple) else re.findall(r"\d+", str(v))
        out["daal4py"] = ".".join(str(x) for x in parts[:3])
        out["daal4py_threads"] = daal4py.num_threads()
    except Exception:
        out["daal4py"] = None
    return out


# --------------------------------------------------------------------------- machine


def machine_info():
    info = {"platform": platform.platform(), "cpu_count": os.cpu_count()}
    try:
        info["affinity"] = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        info["cpu"] = platform.processor()
    try:
        import psutil
        info["mem_total_gib"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    info["env"] = {k: v for k, v in sorted(os.environ.items())
                   if k.startswith(ENV_PREFIXES) or k.endswith("_NUM_THREADS")}
    return info


def threadpool_summary():
    keys = ("user_api", "internal_api", "prefix", "version", "num_threads",
            "architecture", "threading_layer", "filepath")
    return [{k: p.get(k) for k in keys} for p in threadpool_info()]


def gemm_rates(size=2000, repeats=5):
    """GFLOP/s of np.dot (numpy's BLAS) and scipy.linalg.blas ?gemm (the BLAS
    gaussmix links through scipy.linalg.cython_blas), all cores, best of repeats."""
    from scipy.linalg import blas
    rng = np.random.default_rng(0)
    out = {}
    for dt, name, fn in ((np.float64, "dgemm", blas.dgemm), (np.float32, "sgemm", blas.sgemm)):
        a = np.asfortranarray(rng.random((size, size)), dtype=dt)
        b = np.asfortranarray(rng.random((size, size)), dtype=dt)
        for label, call in (("numpy", lambda: np.dot(a, b)), ("scipy", lambda: fn(1.0, a, b))):
            call()
            best = min(_timeit(call) for _ in range(repeats))
            out[f"{name}_{label}"] = 2.0 * size**3 / best / 1e9
    return out


def _timeit(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# --------------------------------------------------------------------------- timing


def time_em(runners, X, case, init, n_iter, repeats):
    """Best-of-repeats time of fits with max_iter=1 and 1+n_iter for each library
    (repeats interleaved across libraries so drift hits them alike).
    Returns {lib: {...}} with per-iteration seconds and the fitted result."""
    out = {name: {"t1": np.inf, "tN": np.inf} for name in runners}
    last = {}
    for _ in range(repeats):
        for name, runner in runners.items():
            if "error" in out[name]:
                continue
            try:
                for key, it in (("t1", 1), ("tN", 1 + n_iter)):
                    gc.collect()
                    t0 = time.perf_counter()
                    fitted = runner.fit(X, case, init, it)
                    out[name][key] = min(out[name][key], time.perf_counter() - t0)
                    if key == "tN":
                        last[name] = fitted
                    del fitted
            except Exception as exc:
                out[name]["error"] = f"{type(exc).__name__}: {exc}"
    for name, runner in runners.items():
        r = out[name]
        if "error" in r:
            continue
        r["per_iter"] = (r["tN"] - r["t1"]) / n_iter
        res = runner.result(last.pop(name), case)
        r["n_iter"] = res.n_iter
        r["reported_ll"] = res.reported_ll
        try:
            r["ll"] = mean_log_likelihood(X, res.weights, res.means, res.cov_full)
        except np.linalg.LinAlgError as exc:  # a collapsed component
            r["ll_error"] = f"re-scoring failed: {exc}"
    return out


def time_init(runner, X, case, per_iter, repeats, init_params=("kmeans", "k-means++")):
    """Cost of the library's own initialisation in EM iterations:
    (best t of fit(init_params=p, max_iter=1) - per_iter) / per_iter."""
    out = {}
    for p in init_params:
        best = np.inf
        try:
            for _ in range(repeats):
                gc.collect()
                best = min(best, _timeit(lambda: runner.fit_init(X, case, p)))
        except Exception as exc:
            out[p] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        out[p] = {"t_fit1": best, "iters": (best - per_iter) / per_iter}
    return out


def full_cov_flops(case):
    """Flop model, one EM iteration, full covariance: E-step triangular multiply
    n*k*d^2 + M-step symmetric rank-k update n*k*d^2."""
    return 2.0 * case.n * case.k * case.d**2


# --------------------------------------------------------------------------- memory


def _status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _reset_peak_rss():
    """Reset VmHWM (Linux >= 4.0). Returns False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _current_rss():
    try:
        return _status_kib("VmRSS") * 1024
    except (OSError, KeyError):
        import psutil
        return psutil.Process().memory_info().rss


def _ru_maxrss():
    import resource
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r if sys.platform == "darwin" else r * 1024


class _RssSampler(threading.Thread):
    """Fallback when the kernel peak cannot be reset: poll RSS every ms."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak, self._stop_evt = 0, threading.Event()

    def run(self):
        while not self._stop_evt.is_set():
            self.peak = max(self.peak, _current_rss())
            time.sleep(0.001)

    def stop(self):
        self._stop_evt.set()
        self.join()
        self.peak = max(self.peak, _current_rss())


def memory_child(args):
    """Runs in a fresh process: build data and init, warm the library up on a
    tiny fit (thread pools, BLAS buffers), then measure one fit's peak RSS."""
    case = Case(args.n, args.d, args.k, args.cov, args.data)
    dtype = DTYPES[args.dtype]
    runners, skipped = load_libraries([args.lib], args.reg_covar, args.gaussmix_threads,
                                      args.estimator)
    if args.lib not in runners:
        print("MEMORY_RESULT " + json.dumps({"error": skipped.get(args.lib)}))
        return
    runner = runners[args.lib]
    X = make_data(case.n, case.d, case.k, dtype, shape=case.data)
    init = make_init(X, case.k, case.cov)
    small = make_data(max(20 * case.k, 2000), case.d, case.k, dtype, seed=2, shape=case.data)
    try:
        runner.fit(small, case._replace(n=small.shape[0]), make_init(small, case.k, case.cov), 2)
    except Exception:
        pass
    del small
    gc.collect()
    baseline = _current_rss()
    exact = sys.platform.startswith("linux") and _reset_peak_rss()
    sampler = None
    if not exact:
        maxrss_before = _ru_maxrss()
        sampler = _RssSampler()
        sampler.start()
    try:
        fitted = runner.fit(X, case, init, args.memory_iter)
    except Exception as exc:
        if sampler:
            sampler.stop()
        print("MEMORY_RESULT " + json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        return
    if exact:
        peak, method = _status_kib("VmHWM") * 1024, "VmHWM reset via /proc/self/clear_refs"
    else:
        sampler.stop()
        after = _ru_maxrss()
        peak = after if after > maxrss_before else sampler.peak
        method = "ru_maxrss / 1 ms psutil sampling"
    del fitted
    print("MEMORY_RESULT " + json.dumps({
        "peak_mib": (peak - baseline) / MiB, "baseline_mib": baseline / MiB,
        "data_mib": X.nbytes / MiB, "method": method}))


def measure_memory(lib, case, dtype_name, args):
    cmd = [sys.executable, os.path.abspath(__file__), "--memory-child", "--lib", lib,
           "--n", str(case.n), "--d", str(case.d), "--k", str(case.k), "--cov", case.cov,
           "--data", case.data,
           "--dtype", dtype_name, "--memory-iter", str(args.memory_iter),
           "--reg-covar", repr(args.reg_covar), "--estimator", args.estimator]
    if args.gaussmix_threads is not None:
        cmd += ["--gaussmix-threads", str(args.gaussmix_threads)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.memory_timeout)
    except subprocess.TimeoutExpired:
        return {"error": "timeout"}
    for line in proc.stdout.splitlines():
        if line.startswith("MEMORY_RESULT "):
            return json.loads(line[len("MEMORY_RESULT "):])
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": f"exit {proc.returncode}: {tail}"}


# --------------------------------------------------------------------------- reporting


def fmt(x, spec):
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "-"
    return format(x, spec)


def print_table(title, headers, rows):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h))
              for i, h in enumerate(headers)]
    line = "  ".join("-" * w for w in widths)
    print(f"\n{title}\n{line}")
    print("  ".join(str(h).rjust(w) if i else str(h).ljust(w)
                    for i, (h, w) in enumerate(zip(headers, widths))))
    print(line)
    for r in rows:
        print("  ".join(str(c).rjust(w) if i else str(c).ljust(w)
                        for i, (c, w) in enumerate(zip(r, widths))))
    print(line)


def print_header(report):
    m, v = report["machine"], report["versions"]
    print("gaussmix EM benchmark")
    print(f"  machine : {m.get('cpu')}, {m['cpu_count']} logical CPUs "
          f"(affinity {m.get('affinity')}), {m.get('mem_total_gib')} GiB, {m['platform']}")
    print("  versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if k != "daal4py_threads"))
    print(f"  threads : gaussmix n_threads={report['config']['gaussmix_threads']} "
          f"(None = all cores), sklearn/daal4py defaults"
          + (f" (daal4py.num_threads()={v['daal4py_threads']})" if v.get("daal4py_threads") else ""))
    for name, why in report["skipped"].items():
        print(f"  SKIPPED : {name} ({why}); its columns show '-'")
    env = m["env"]
    print("  env     : " + (", ".join(f"{k}={val}" for k, val in env.items()) or "(no BLAS/OpenMP variables set)"))
    for k in SLOW_ENV:
        if k in env:
            print(f"  WARNING : {k}={env[k]} is set; it slows numpy's OpenBLAS. "
                  "Left as is (not changed by this script).")
    print("  threadpools (threadpoolctl.threadpool_info()):")
    for p in report["threadpools"]:
        print(f"    {p['internal_api']:<9} {str(p['version']):<14} num_threads={p['num_threads']:<3} "
              f"arch={p.get('architecture') or '-':<10} {p['prefix']} ({os.path.basename(p['filepath'] or '')})")
    g = report["gemm"]
    print(f"  GEMM 2000x2000, all cores: DGEMM numpy {g['dgemm_numpy']:.1f} / scipy "
          f"{g['dgemm_scipy']:.1f} GFLOP/s; SGEMM numpy {g['sgemm_numpy']:.1f} / scipy "
          f"{g['sgemm_scipy']:.1f} GFLOP/s")
    c = report["config"]
    print(f"  protocol: s/iter = (t[max_iter={1 + c['iters']}] - t[max_iter=1]) / {c['iters']}, "
          f"best of {c['repeats']}; tol=0, reg_covar={c['reg_covar']}, same data and initial "
          f"parameters for all libraries{'; QUICK (n / %d, >= %d)' % (QUICK_DIVISOR, QUICK_MIN_N) if c['quick'] else ''}")
    print("  flop model (full covariance): 2*n*k*d^2 per EM iteration "
          "(E-step triangular multiply n*k*d^2 + M-step symmetric rank-k update n*k*d^2)")


def add_gemm_fraction(report):
    """gaussmix GFLOP/s as % of np.dot GEMM (DGEMM for float64, SGEMM for float32),
    taking the better of the start and end measurements as the machine's rate."""
    for r in report["results"]:
        g = r.get("gflops", {})
        if "gaussmix" in g:
            key = "dgemm_numpy" if r["dtype"] == "float64" else "sgemm_numpy"
            rate = max(report["gemm"][key], report["gemm_end"][key])
            g["gemm_gflops"] = rate
            g["gaussmix_pct_gemm"] = 100.0 * g["gaussmix"] / rate


def print_results(report):
    rows_t, rows_ll, rows_m, rows_i, notes = [], [], [], [], []
    libs = LIBS
    for r in report["results"]:
        label, dt = r["case"], r["dtype"]
        em = r["em"]
        per = {lib: em.get(lib, {}).get("per_iter") for lib in libs}
        gm = per["gaussmix"]
        ratio = {lib: (per[lib] / gm if per[lib] and gm else None) for lib in ("sklearn", "daal4py")}
        gflops = r.get("gflops", {})
        rows_t.append([label, dt] + [fmt(per[l], ".4f") for l in libs]
                      + [fmt(ratio["sklearn"], ".2f"), fmt(ratio["daal4py"], ".2f"),
                         fmt(gflops.get("gaussmix"), ".1f"), fmt(gflops.get("gaussmix_pct_gemm"), ".0f")])
        ll = {l: em.get(l, {}).get("ll") for l in libs}
        rep = {l: em.get(l, {}).get("reported_ll") for l in libs}
        for l in libs:
            for key in ("error", "ll_error"):
                if key in em.get(l, {}):
                    notes.append(f"{label} {dt} {l}: " + " ".join(em[l][key].split())[:200])
        rows_ll.append([label, dt] + [fmt(ll[l], ".8f") for l in libs]
                       + [fmt(r["ll_max_rel"], ".1e"), fmt(r["reported_max_rel"], ".1e"),
                          r["ll_status"]])
        if "memory" in r:
            mem = r["memory"]
            rows_m.append([label, dt, fmt(r["data_mib"], ".1f"), fmt(r["resp_mib"], ".1f")]
                          + [fmt(mem.get(l, {}).get("peak_mib"), ".1f") if "error" not in mem.get(l, {})
                             else "err" for l in libs])
        if "init" in r:
            ini = r["init"]
            rows_i.append([label, dt] + [fmt(ini.get(p, {}).get("iters"), ".2f")
                                         for p in ("kmeans", "k-means++")]
                          + [fmt(ini.get(p, {}).get("t_fit1"), ".3f") for p in ("kmeans", "k-means++")])
    print_table("Seconds per EM iteration (best of repeats), ratios > 1 mean gaussmix is faster",
                ["case", "dtype", "gaussmix", "sklearn", "daal4py", "skl/gm", "d4p/gm",
                 "gm GFLOP/s", "% GEMM"], rows_t)
    print("  GFLOP/s = 2*n*k*d^2 / (s/iter), full covariance only; % GEMM relative to np.dot "
          "DGEMM (float64) / SGEMM (float32), the better of the start and end measurements. daal4py: full/diag only.")
    print_table("Mean log-likelihood per sample after the timed fit, re-scored in float64 "
                "(MISMATCH if max rel diff > 1e-6 float64 / 1e-3 float32)",
                ["case", "dtype", "gaussmix", "sklearn", "daal4py", "max rel", "reported rel",
                 "status"], rows_ll)
    print("  'reported rel': the libraries' own values (lower_bound_; daal4py goalFunction / n).")
    for note in notes:
        print(f"  error: {note}")
    init_notes = [f"{r['case']} {r['dtype']} {p}: " + " ".join(e["error"].split())[:200]
                  for r in report["results"] for p, e in r.get("init", {}).items() if "error" in e]
    if rows_m:
        print_table("Peak RSS of one fit above data + initial parameters, MiB (fresh subprocess "
                    "each, after a warm-up fit)",
                    ["case", "dtype", "data", "n*k resp", "gaussmix", "sklearn", "daal4py"], rows_m)
    if rows_i:
        print_table("gaussmix initialisation cost in EM iterations: "
                    "(t fit(init_params, max_iter=1) - t_iter) / t_iter  (target <= ~3)",
                    ["case", "dtype", "kmeans", "k-means++", "t kmeans s", "t k-means++ s"], rows_i)
        print(f"  timed with reg_covar={INIT_REG_COVAR} (k-means++ seeds are single points).")
    for note in init_notes:
        print(f"  init error: {note}")


def compare_ll(em, dtype_name):
    """Max pairwise relative difference of the re-scored and of the reported
    values; the status names each library that differs from scikit-learn (the
    reference) by more than the dtype's tolerance."""
    def rel(a, b):
        return abs(a - b) / max(abs(a), abs(b), 1e-300)

    def max_rel(key):
        vals = [e[key] for e in em.values() if e.get(key) is not None]
        return max((rel(a, b) for a in vals for b in vals), default=None) if len(vals) > 1 else None

    ll_rel, rep_rel = max_rel("ll"), max_rel("reported_ll")
    tol = RTOL[dtype_name]
    if ll_rel is None:
        return ll_rel, rep_rel, "n/a"
    if ll_rel <= tol and (rep_rel is None or rep_rel <= tol):
        return ll_rel, rep_rel, "ok"
    ref = em.get("sklearn")
    off = []
    for name, e in em.items():
        if ref is None or name == "sklearn":
            continue
        bad = [key for key in ("ll", "reported_ll") if e.get(key) is not None
               and ref.get(key) is not None and rel(e[key], ref[key]) > tol]
        if bad:
            off.append(name + ("" if "ll" in bad else " reported"))
    return ll_rel, rep_rel, "MISMATCH" + (f" ({', '.join(off)} vs sklearn)" if off else "")


# --------------------------------------------------------------------------- main


def select_cases(spec):
    if not spec:
        return list(CASES)
    keys = [s.strip() for s in spec.split(",") if s.strip()]
    chosen = [c for i, c in enumerate(CASES)
              if any(key == str(i) if key.isdigit() else key in case_name(c) for key in keys)]
    if not chosen:
        sys.exit(f"--cases {spec!r} matches none of: "
                 + ", ".join(f"{i}:{case_name(c)}" for i, c in enumerate(CASES)))
    return chosen


def run(args):
    cases = select_cases(args.cases)
    dtypes = [d.strip() for d in args.dtypes.split(",")]
    runners, skipped = load_libraries(args.libs.split(","), args.reg_covar,
                                      args.gaussmix_threads, args.estimator)
    report = {
        "machine": machine_info(), "versions": library_versions(),
        "threadpools": threadpool_summary(), "skipped": skipped,
        "config": {"estimator": args.estimator, "repeats": args.repeats, "iters": args.iters, "quick": args.quick,
                   "reg_covar": args.reg_covar, "gaussmix_threads": args.gaussmix_threads,
                   "memory_iter": args.memory_iter},
        "gemm": gemm_rates(),
        "results": [],
    }
    print_header(report)
    sys.stdout.flush()
    for base in cases:
        case = scaled(base, args.quick)
        for dt_name in dtypes:
            t_case = time.perf_counter()
            X = make_data(case.n, case.d, case.k, DTYPES[dt_name], shape=case.data)
            init = make_init(X, case.k, case.cov)
            active = {n: r for n, r in runners.items() if r.supports(case.cov, dt_name)}
            em = time_em(active, X, case, init, args.iters, args.repeats)
            for n in runners:
                if n not in active:
                    em[n] = {"skipped": f"{case.cov} not supported"}
            rel, rep, status = compare_ll({n: e for n, e in em.items() if "ll" in e}, dt_name)
            r = {"case": case_name(case), "n": case.n, "d": case.d, "k": case.k, "cov": case.cov,
                 "dtype": dt_name, "em": em, "ll_max_rel": rel, "reported_max_rel": rep,
                 "ll_status": status, "data_mib": X.nbytes / MiB,
                 "resp_mib": case.n * case.k * X.itemsize / MiB}
            if case.cov == "full":
                r["gflops"] = {}
                for n, e in em.items():
                    if e.get("per_iter"):
                        r["gflops"][n] = full_cov_flops(case) / e["per_iter"] / 1e9
            gm_iter = em.get("gaussmix", {}).get("per_iter")
            if not args.skip_init and gm_iter and gm_iter > 0:
                r["init"] = time_init(runners["gaussmix"], X, case, gm_iter,
                                      min(args.repeats, 3))
            del X, init
            gc.collect()
            if not args.skip_memory:
                r["memory"] = {n: measure_memory(n, case, dt_name, args) for n in active}
            r["wall_s"] = time.perf_counter() - t_case
            report["results"].append(r)
            print(f"  done {case_name(case)} {dt_name} in {r['wall_s']:.0f}s: "
                  + ", ".join(f"{n} {fmt(e.get('per_iter'), '.4f')} s/it" + (" (error)" if "error" in e else "")
                              for n, e in em.items() if "skipped" not in e)
                  + f"; loglik {status}", flush=True)
    report["gemm_end"] = gemm_rates()
    add_gemm_fraction(report)
    print_results(report)
    g0, g1 = report["gemm"], report["gemm_end"]
    print(f"\n  GEMM re-measured at the end: DGEMM numpy {g1['dgemm_numpy']:.1f} "
          f"(start {g0['dgemm_numpy']:.1f}), SGEMM numpy {g1['sgemm_numpy']:.1f} "
          f"(start {g0['sgemm_numpy']:.1f}) GFLOP/s; a large change means a noisy machine.")
    if any(r["ll_status"].startswith("MISMATCH") for r in report["results"]):
        print("  MISMATCH in at least one case (see the log-likelihood table).")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1, default=_json_default)
        print(f"  raw results written to {args.json}")
    return report


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, float) and not np.isfinite(o):
        return None
    raise TypeError(type(o))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Cases: " + ", ".join(f"{i}:{case_name(c)}"
                                                             for i, c in enumerate(CASES)))
    p.add_argument("--repeats", type=int, default=None,
                   help="best-of repeats per timing (default 3, 1 with --quick)")
    p.add_argument("--iters", type=int, default=10,
                   help="N: time fits of 1 and 1+N iterations (default 10)")
    p.add_argument("--quick", action="store_true",
                   help=f"smoke run: n / {QUICK_DIVISOR} (at least {QUICK_MIN_N})")
    p.add_argument("--cases", default="",
                   help="comma-separated case indices or substrings of case names, e.g. 'full' or '0,3'")
    p.add_argument("--dtypes", default="float64,float32")
    p.add_argument("--libs", default=",".join(LIBS))
    p.add_argument("--estimator", choices=("gmm", "bayesian"), default="gmm",
                   help="GaussianMixture (default) or BayesianGaussianMixture")
    p.add_argument("--reg-covar", type=float, default=0.0,
                   help="reg_covar for gaussmix/sklearn (default 0, so all libraries run "
                        "the same iteration; daal4py regularizationFactor gets the same value)")
    p.add_argument("--gaussmix-threads", type=int, default=None,
                   help="n_threads for gaussmix (default None = all cores)")
    p.add_argument("--skip-memory", action="store_true", help="no peak-RSS subprocesses")
    p.add_argument("--skip-init", action="store_true", help="no initialisation timing")
    p.add_argument("--memory-iter", type=int, default=3, help="max_iter of the memory fit")
    p.add_argument("--memory-timeout", type=float, default=900.0)
    p.add_argument("--json", metavar="PATH", help="save raw results as JSON")
    # internal: one memory measurement in a fresh process
    p.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--lib", help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)
    p.add_argument("--d", type=int, help=argparse.SUPPRESS)
    p.add_argument("--k", type=int, help=argparse.SUPPRESS)
    p.add_argument("--cov", help=argparse.SUPPRESS)
    p.add_argument("--data", default="mixed", help=argparse.SUPPRESS)
    p.add_argument("--dtype", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if args.repeats < 1 or args.iters < 1:
        p.error("--repeats and --iters must be >= 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.memory_child:
        memory_child(args)
    else:
        run(args)


if __name__ == "__main__":
    main()
