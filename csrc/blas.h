/* blas.h -- BLAS function table (filled at import time from
 * scipy.linalg.cython_blas, so gradcore links no BLAS of its own) and
 * row-major wrappers. Fortran BLAS is column-major: a row-major product
 * C = op(A) op(B) is computed as C^T = op(B)^T op(A)^T by swapping operands. */
#ifndef GC_BLAS_H
#define GC_BLAS_H

#include <stdint.h>

typedef void (*gc_sgemm_t)(const char *ta, const char *tb, const int *m, const int *n,
                           const int *k, const float *alpha, const float *a, const int *lda,
                           const float *b, const int *ldb, const float *beta, float *c,
                           const int *ldc);
typedef void (*gc_dgemm_t)(const char *ta, const char *tb, const int *m, const int *n,
                           const int *k, const double *alpha, const double *a, const int *lda,
                           const double *b, const int *ldb, const double *beta, double *c,
                           const int *ldc);
typedef void (*gc_sgemv_t)(const char *t, const int *m, const int *n, const float *alpha,
                           const float *a, const int *lda, const float *x, const int *incx,
                           const float *beta, float *y, const int *incy);
typedef void (*gc_dgemv_t)(const char *t, const int *m, const int *n, const double *alpha,
                           const double *a, const int *lda, const double *x, const int *incx,
                           const double *beta, double *y, const int *incy);

typedef struct {
    gc_sgemm_t sgemm;
    gc_dgemm_t dgemm;
    gc_sgemv_t sgemv;
    gc_dgemv_t dgemv;
} gc_blas_table;

/* Install the table (called once by the binding). Returns GC_OK or GC_ERR_BLAS. */
int gc_blas_set(const gc_blas_table *table);
int gc_blas_ready(void);

/* Row-major GEMM: C(M,N) = alpha * op(A) op(B) + beta * C, op(X) = X or X^T
 * (trans_a/trans_b nonzero), lda/ldb/ldc are row strides in elements.
 * Returns GC_OK, or GC_ERR_BLAS when the table is missing or a size does not
 * fit a BLAS int. M, N or K == 0 is handled without calling BLAS. */
int gc_sgemm_rm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                float *C, int64_t ldc);
int gc_dgemm_rm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, double alpha,
                const double *A, int64_t lda, const double *B, int64_t ldb, double beta,
                double *C, int64_t ldc);

/* Row-major GEMV: y(M') = alpha * op(A) x + beta * y with A (M, N) row-major,
 * op(A) = A (y has M entries) or A^T (trans nonzero, y has N entries). */
int gc_sgemv_rm(int trans, int64_t M, int64_t N, float alpha, const float *A, int64_t lda,
                const float *x, float beta, float *y);
int gc_dgemv_rm(int trans, int64_t M, int64_t N, double alpha, const double *A, int64_t lda,
                const double *x, double beta, double *y);

#endif /* GC_BLAS_H */
