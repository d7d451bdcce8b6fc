"""Shape checks run at the top of every compiled entry point.

Typed memoryviews already enforce dtype, dimensionality and contiguity; these
checks add the agreements between arguments (k, d, n, thread slots, kernel
mode) that the nogil loops rely on, so a wrong call raises ValueError instead
of reading or writing out of bounds. Layouts are documented in _chunks.pxd.
"""
from ._parallel import DIAG_GEMM, DIAG_LOOPS, FULL_BLAS, FULL_GEMM, FULL_LOOPS, FULL_LOOPS_MAX_DIM

_MODES = (FULL_LOOPS, FULL_GEMM, FULL_BLAS, DIAG_GEMM, DIAG_LOOPS)
_DIAGONAL = (DIAG_GEMM, DIAG_LOOPS)


def expect_shape(name, array, shape):
    if tuple(array.shape[:len(shape)]) != tuple(shape):
        raise ValueError(f"gaussmix kernel: {name} has shape {tuple(array.shape[:len(shape)])}, "
                         f"expected {tuple(shape)}")


def optional_shape(name, array, shape):
    """An argument that is either empty (not wanted) or of ``shape``."""
    if array.shape[0] != 0:
        expect_shape(name, array, shape)


def check_parameters(X, shift, prec, coef, exact, offsets, mode):
    """Kernel parameters of ``_models.kernel_parameters`` for rows X."""
    if mode not in _MODES:
        raise ValueError(f"gaussmix kernel: unknown kernel mode {mode}")
    d, k = X.shape[1], offsets.shape[0]
    if k < 1 or d < 1:
        raise ValueError("gaussmix kernel: need at least one component and one feature")
    check_mode_dim(mode, d)
    expect_shape("shift", shift, (k, d))
    prec_shape = {FULL_LOOPS: (k, d * d), FULL_BLAS: (k, d * d),
                  DIAG_LOOPS: (k, d)}.get(mode)
    if prec_shape is not None:
        expect_shape("prec", prec, prec_shape)
    if mode == FULL_GEMM:
        optional_shape("prec", prec, (k, d * d))   # the far components' factors
        expect_shape("coef", coef, (d + d * (d + 1) // 2, k))
        if coef.itemsize == 4:      # single-precision GEMM: the components it refines
            optional_shape("exact", exact, (k, 1 + d + d * d))
    elif mode == DIAG_GEMM:
        optional_shape("prec", prec, (k, d))       # the far components' scales
        expect_shape("coef", coef, (2 * d, k))


def check_mode_dim(mode, d):
    """FULL_LOOPS has a loop for each d up to FULL_LOOPS_MAX_DIM."""
    if mode == FULL_LOOPS and d > FULL_LOOPS_MAX_DIM:
        raise ValueError(f"gaussmix kernel: FULL_LOOPS runs up to {FULL_LOOPS_MAX_DIM} "
                         f"features, got {d}")


def check_accumulators(N, S, W, k, d, mode):
    """Accumulator slots (per thread, or one shared) for k components of d features."""
    slots = N.shape[0]
    if slots < 1:
        raise ValueError("gaussmix kernel: accumulators need at least one slot")
    expect_shape("N", N, (slots, k))
    expect_shape("S", S, (slots, k, d))
    expect_shape("W", W, (slots, k, d if mode in _DIAGONAL else d * d))


def check_rows(name, array, n, optional=False):
    """A per-row array: length n (or empty when ``optional``)."""
    if optional:
        optional_shape(name, array, (n,))
    else:
        expect_shape(name, array, (n,))
