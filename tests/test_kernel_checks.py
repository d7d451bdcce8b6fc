"""Compiled entry points refuse inconsistent arguments instead of reading out of bounds."""
import numpy as np
import pytest

from gaussmix import GaussianMixture, _models
from gaussmix._kernels import estep, kmeans, suffstats

from conftest import make_blobs


def grow(array):
    """The same array with one more row (or a 1-element array for an empty one)."""
    if array.shape[0] == 0:
        return np.zeros((1,) + array.shape[1:], dtype=array.dtype)
    return np.ascontiguousarray(np.concatenate([array, array[:1]]))


def shrink_last(array):
    return np.ascontiguousarray(array[..., :-1]) if array.ndim > 1 else array[:-1]


@pytest.fixture(scope="module", params=["full", "diag"])
def kernel_args(request):
    d = 10  # full: the one-GEMM mode; diag: DIAG_GEMM
    X = make_blobs(600, np.eye(3, d) * 6, [1.0, 1.0, 1.0], seed=0)
    gm = GaussianMixture(3, covariance_type=request.param, random_state=0).fit(X)
    kp = _models.kernel_parameters(np.log(gm.weights_), gm.means_, gm.precisions_cholesky_,
                                   gm.covariance_type, X.dtype)
    full = kp.mode not in _models.DIAGONAL_MODES
    k, threads, n = 3, 2, X.shape[0]
    accumulators = dict(N=np.zeros((threads, k)), S=np.zeros((threads, k, d)),
                        W=np.zeros((threads, k, d * d if full else d)))
    return X, kp, accumulators, n, k


def em_pass_args(kernel_args):
    X, kp, acc, n, k = kernel_args
    return dict(X=X, sample_weight=np.ones(n), shift=kp.shift, prec=kp.prec, coef=kp.coef,
                exact=kp.exact, offsets=kp.offsets, mode=kp.mode, **{name: a.copy() for name, a in acc.items()},
                loglik=np.zeros(2))


def run_em_pass(args):
    suffstats.em_pass(*[args[name] for name in (
        "X", "sample_weight", "shift", "prec", "coef", "exact", "offsets", "mode", "N", "S",
        "W", "loglik")])


def test_em_pass_accepts_consistent_arguments(kernel_args):
    args = em_pass_args(kernel_args)
    run_em_pass(args)
    assert args["N"].sum() == pytest.approx(kernel_args[3])


@pytest.mark.parametrize("name", ["sample_weight", "shift", "prec", "coef", "exact", "offsets",
                                  "N", "S", "W", "loglik"])
@pytest.mark.parametrize("change", [grow, shrink_last])
def test_em_pass_rejects_any_inconsistent_argument(kernel_args, name, change):
    args = em_pass_args(kernel_args)
    # an empty argument the mode never reads may take any shape; prec of the
    # GEMM modes is optional: empty (no far components) or (k, d*d or d)
    optional = name == "prec" and args["mode"] in (_models.FULL_GEMM, _models.DIAG_GEMM)
    unused = args[name].size == 0 and not optional
    args[name] = change(args[name])
    if unused or args[name].shape[0] == 0:
        run_em_pass(args)
        return
    with pytest.raises(ValueError, match="gaussmix kernel"):
        run_em_pass(args)


def test_em_pass_rejects_unknown_mode(kernel_args):
    args = em_pass_args(kernel_args)
    args["mode"] = 7
    with pytest.raises(ValueError, match="mode"):
        run_em_pass(args)


@pytest.mark.parametrize("change", [grow, shrink_last])
def test_single_precision_pass_rejects_inconsistent_refinement(monkeypatch, change):
    """float32 X in FULL_GEMM: ``exact`` (what refines the single-precision
    log-densities) is empty or (k, 1 + d + d*d)."""
    d, k = 10, 3
    monkeypatch.setattr(_models, "SINGLE_REFINED_MIN_DIM", d)
    X = make_blobs(600, np.eye(k, d) * 6, [1.0] * k, seed=0).astype(np.float32)
    means = np.eye(k, d) * 6
    means[0, 0] += 200.0                    # past SINGLE_PRECISION_REACH from the centre
    kp = _models.kernel_parameters(np.log(np.full(k, 1 / k)), means,
                                   np.stack([np.eye(d)] * k), "full", np.float32)
    assert kp.coef.dtype == np.float32 and kp.exact.shape == (k, 1 + d + d * d)
    args = dict(X=X, sample_weight=np.empty(0, np.float32), shift=kp.shift, prec=kp.prec,
                coef=kp.coef, exact=kp.exact, offsets=kp.offsets, mode=kp.mode,
                N=np.zeros((1, k)), S=np.zeros((1, k, d)), W=np.zeros((1, k, d * d)),
                loglik=np.zeros(1))
    run_em_pass(args)
    args["exact"] = change(args["exact"])
    with pytest.raises(ValueError, match="exact"):
        run_em_pass(args)


@pytest.mark.parametrize("output", ["log_norm", "labels", "proba"])
def test_e_step_rejects_wrong_output_sizes(kernel_args, output):
    X, kp, _, n, k = kernel_args
    outputs = dict(log_norm=np.empty(0), labels=np.empty(0, np.intp), proba=np.empty((0, k)))
    outputs[output] = {"log_norm": np.empty(n - 1), "labels": np.empty(n + 1, np.intp),
                       "proba": np.empty((n, k + 1))}[output]
    with pytest.raises(ValueError, match="gaussmix kernel"):
        estep.e_step(X, kp.shift, kp.prec, kp.coef, kp.exact, kp.offsets, kp.mode,
                     outputs["log_norm"],
                     outputs["labels"], outputs["proba"], 2)


def test_kmeans_kernels_reject_wrong_sizes(kernel_args):
    X, _, _, n, k = kernel_args
    centers = np.ascontiguousarray(X[:k])
    with pytest.raises(ValueError, match="gaussmix kernel"):
        kmeans._lloyd_step(X, np.empty(0), centers, np.empty(n - 1, np.intp), np.empty(n),
                           np.zeros((2, k, X.shape[1])), np.zeros((2, k)))
    with pytest.raises(ValueError, match="gaussmix kernel: pots"):
        kmeans._seeding_pass(X, np.zeros(n), np.ones(n), centers, np.full(n, np.inf),
                             np.empty((n, k)), np.zeros((2, k + 1)))
    with pytest.raises(ValueError, match="gaussmix kernel: dist"):
        kmeans._seeding_pass(X, np.zeros(n), np.ones(n), centers, np.full(n, np.inf),
                             np.empty((n - 1, k)), np.zeros((2, k)))
    with pytest.raises(ValueError, match="gaussmix kernel"):
        suffstats.accumulate_responsibilities(X, np.ones((n, k + 1)), centers,
                                              _models.FULL_BLAS, np.zeros((2, k)),
                                              np.zeros((2, k, X.shape[1])),
                                              np.zeros((2, k, X.shape[1] ** 2)))
