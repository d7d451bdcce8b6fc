# Row-major wrappers over scipy.linalg.cython_blas, fused over float32/float64.
#
# BLAS is column-major: a row-major m x n array is, in the same memory, the
# column-major n x m transpose. Every wrapper below does that swap once, here,
# so call sites read as the row-major math they compute.
from cython cimport floating
from scipy.linalg.cython_blas cimport dsyrk, ssyrk, dtrmm, strmm, dgemm, sgemm


cdef inline void trmm_right_upper(int m, int n, const floating *U, int ldu,
                                  floating *B, int ldb) noexcept nogil:
    """B[m, n] := B @ U for an upper-triangular row-major U[n, n]."""
    # Column-major: B^T := U^T B^T, and U's memory read column-major is the
    # lower-triangular U^T itself.
    cdef char side = b'L', uplo = b'L', trans = b'N', diag = b'N'
    cdef floating one = 1.0
    if floating is double:
        dtrmm(&side, &uplo, &trans, &diag, &n, &m, &one, <double *> U, &ldu, B, &ldb)
    else:
        strmm(&side, &uplo, &trans, &diag, &n, &m, &one, <float *> U, &ldu, B, &ldb)


cdef inline void syrk_lower_ata(int n, int k, const floating *A, int lda,
                                floating *C, int ldc) noexcept nogil:
    """Lower triangle (j <= i) of the row-major C[n, n] := A^T A, A row-major [k, n]."""
    # Column-major: A's memory is A^T (n x k), so C = A^T (A^T)^T with trans='N';
    # column-major 'U' is the row-major lower triangle.
    cdef char uplo = b'U', trans = b'N'
    cdef floating one = 1.0, zero = 0.0
    if floating is double:
        dsyrk(&uplo, &trans, &n, &k, &one, <double *> A, &lda, &zero, C, &ldc)
    else:
        ssyrk(&uplo, &trans, &n, &k, &one, <float *> A, &lda, &zero, C, &ldc)


cdef inline void gemm_abt(int m, int n, int k, const floating *A, int lda,
                          const floating *B, int ldb, floating *C, int ldc) noexcept nogil:
    """Row-major C[m, n] := A @ B^T with A [m, k] and B [n, k]."""
    # Column-major: C^T = B A^T; B's memory is B^T (k x n), so transpose it back.
    cdef char transb = b'T', transa = b'N'
    cdef floating one = 1.0, zero = 0.0
    if floating is double:
        dgemm(&transb, &transa, &n, &m, &k, &one, <double *> B, &ldb,
              <double *> A, &lda, &zero, C, &ldc)
    else:
        sgemm(&transb, &transa, &n, &m, &k, &one, <float *> B, &ldb,
              <float *> A, &lda, &zero, C, &ldc)


cdef inline void gemm_ab(int m, int n, int k, const floating *A, int lda,
                         const floating *B, int ldb, floating *C, int ldc) noexcept nogil:
    """Row-major C[m, n] := A @ B with A [m, k] and B [k, n]."""
    # Column-major: C^T = B^T A^T, and the memories of B and A are B^T and A^T.
    cdef char trans = b'N'
    cdef floating one = 1.0, zero = 0.0
    if floating is double:
        dgemm(&trans, &trans, &n, &m, &k, &one, <double *> B, &ldb,
              <double *> A, &lda, &zero, C, &ldc)
    else:
        sgemm(&trans, &trans, &n, &m, &k, &one, <float *> B, &ldb,
              <float *> A, &lda, &zero, C, &ldc)
