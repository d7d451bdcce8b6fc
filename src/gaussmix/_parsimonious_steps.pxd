# The covariance M-steps of the 14 mclust models (gaussmix._parsimonious) in C,
# for compiled EM loops: the model codes, covariance_step's error codes, and
# covariance_step itself.

cpdef enum:
    # Model codes: the positions of the names in _parsimonious.MODELS (the
    # tests check it), the six diagonal models first.
    EII = 0
    VII = 1
    EEI = 2
    VEI = 3
    EVI = 4
    VVI = 5
    EEE = 6
    VEE = 7
    EVE = 8
    VVE = 9
    EEV = 10
    VEV = 11
    EVV = 12
    VVV = 13

cpdef enum:
    # covariance_step's return codes besides 0 (success) and -1 (out of memory):
    # one per ValueError of _parsimonious.covariances.
    ZERO_TRACE = 1                  # EII, VII
    ZERO_VARIANCE = 2               # EEI, VEI, EVI, VVI
    NOT_POSITIVE_DEFINITE = 3       # EEE, VEE, EVV, VVV: failed _nonsingular
    UNRESOLVED = 4                  # EVE, VVE, EEV, VEV: failed _resolved
    PREVIOUS_NOT_POSITIVE_DEFINITE = 5
    BAD_ARGUMENT = 6                # unknown model, k or d < 1, max_iter < 1, tol < 0
    EIGH_FAILED = 7                 # LAPACK dsyevd did not converge


cdef inline bint diagonal_layout(int model) noexcept nogil:
    """Whether `model` stores (k, d) diagonals rather than (k, d, d) matrices."""
    return model <= VVI


# _parsimonious.covariances(MODELS[model], ...) given the mass fractions w and
# the regularised S_k, without the GIL (documented in the .pyx).
cdef int covariance_step(int model, Py_ssize_t k, Py_ssize_t d, const double *w,
                         const double *S, const double *previous, double *out,
                         int max_iter, double tol) noexcept nogil


# Row-major lower Cholesky factor L of A (lower triangle read), False where a
# pivot is not > 0; and L := L^{-1} in place.
cdef bint cholesky(Py_ssize_t d, const double *A, double *L) noexcept nogil
cdef void invert_lower(Py_ssize_t d, double *L) noexcept nogil
