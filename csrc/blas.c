/* blas.c -- the BLAS function table and row-major GEMM/GEMV wrappers.
 * See blas.h. Compiled once (not per dtype/ISA). */
#include "blas.h"
#include "gradcore.h"

#include <limits.h>

static gc_blas_table g_blas;
static int g_ready = 0;

int gc_blas_set(const gc_blas_table *table) {
    if (!table || !table->sgemm || !table->dgemm || !table->sgemv || !table->dgemv)
        return GC_ERR_BLAS;
    g_blas = *table;
    g_ready = 1;
    return GC_OK;
}

int gc_blas_ready(void) { return g_ready; }

static int fits(int64_t v) { return v >= 0 && v <= INT_MAX; }

/* One definition per dtype, generated from the same text. */
#define GC_DEFINE_GEMM(NAME, T, FN)                                                    \
    int NAME(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, T alpha,       \
             const T *A, int64_t lda, const T *B, int64_t ldb, T beta, T *C,           \
             int64_t ldc) {                                                            \
        if (!g_ready) return GC_ERR_BLAS;                                              \
        if (!fits(M) || !fits(N) || !fits(K) || !fits(lda) || !fits(ldb) || !fits(ldc)) \
            return GC_ERR_BLAS;                                                        \
        if (M == 0 || N == 0) return GC_OK;                                            \
        if (K == 0) { /* C = beta * C */                                               \
            for (int64_t i = 0; i < M; i++)                                            \
                for (int64_t j = 0; j < N; j++)                                        \
                    C[i * ldc + j] = beta == (T)0 ? (T)0 : beta * C[i * ldc + j];      \
            return GC_OK;                                                              \
        }                                                                              \
        /* column-major view: C^T (N x M) = op(B)^T (N x K) * op(A)^T (K x M) */       \
        char tb = trans_b ? 'T' : 'N', ta = trans_a ? 'T' : 'N';                       \
        int m = (int)N, n = (int)M, k = (int)K;                                        \
        int ilda = (int)lda, ildb = (int)ldb, ildc = (int)ldc;                         \
        g_blas.FN(&tb, &ta, &m, &n, &k, &alpha, B, &ildb, A, &ilda, &beta, C, &ildc);  \
        return GC_OK;                                                                  \
    }

GC_DEFINE_GEMM(gc_sgemm_rm, float, sgemm)
GC_DEFINE_GEMM(gc_dgemm_rm, double, dgemm)

#define GC_DEFINE_GEMV(NAME, T, FN)                                                    \
    int NAME(int trans, int64_t M, int64_t N, T alpha, const T *A, int64_t lda,        \
             const T *x, T beta, T *y) {                                               \
        if (!g_ready) return GC_ERR_BLAS;                                              \
        if (!fits(M) || !fits(N) || !fits(lda)) return GC_ERR_BLAS;                    \
        int64_t ylen = trans ? N : M;                                                  \
        if (ylen == 0) return GC_OK;                                                   \
        if ((trans ? M : N) == 0) {                                                    \
            for (int64_t i = 0; i < ylen; i++) y[i] = beta == (T)0 ? (T)0 : beta * y[i]; \
            return GC_OK;                                                              \
        }                                                                              \
        /* row-major A (M x N) is column-major A^T (N x M) */                          \
        char t = trans ? 'N' : 'T';                                                    \
        int m = (int)N, n = (int)M, ilda = (int)lda, one = 1;                          \
        g_blas.FN(&t, &m, &n, &alpha, A, &ilda, x, &one, &beta, y, &one);             \
        return GC_OK;                                                                  \
    }

GC_DEFINE_GEMV(gc_sgemv_rm, float, sgemv)
GC_DEFINE_GEMV(gc_dgemv_rm, double, dgemv)
