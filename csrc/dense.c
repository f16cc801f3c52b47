/* dense.c -- dense layer forward and backward (template: see kernel.h).
 *
 * Contract (W (O, I) row-major like PyTorch, all arrays C-contiguous):
 *   forward:  y (B, O) = act(x w^T + b): one GEMM into y, then the bias add
 *             and the activation fused in one pass over y. b may be NULL.
 *   backward: dz (B, O) = dy * act'(y) (dz may equal dy), fused with the
 *             column sums of dz into db (db += ..., NULL: no bias);
 *             dw += dz^T x (GEMM, beta = 1); dx = dz w (GEMM, NULL: skip).
 * Returns GC_ERR_ARG for bad sizes/act/slope (before any write) and
 * GC_ERR_BLAS when BLAS is unavailable or a size exceeds the BLAS int range.
 */
#include "kernel.h"
#include "act_inline.h"

#include <limits.h>

/* Columns per block of the fused dz / db pass (the db accumulators stay in L1). */
#define GC_DB_COLS 512

static int bad_args(int64_t B, int64_t I, int64_t O, int act, double slope) {
    return B < 0 || I < 0 || O < 0 || act < 0 || act >= GC_ACT_COUNT || !(slope >= 0.0) ||
           isinf(slope);
}

/* Checked before any write, so a BLAS failure never leaves half an update. */
static int blas_unusable(int64_t B, int64_t I, int64_t O) {
    return !gc_blas_ready() || B > INT_MAX || I > INT_MAX || O > INT_MAX;
}

/* y = act(x w^T + b) */
int GC_IMPL(dense_forward)(real *y, const real *x, const real *w, const real *b, int64_t B,
                           int64_t I, int64_t O, int act, double slope) {
    if (bad_args(B, I, O, act, slope)) return GC_ERR_ARG;
    if (blas_unusable(B, I, O)) return GC_ERR_BLAS;
    if (B == 0 || O == 0) return GC_OK;
    if (!y || (I > 0 && (!x || !w))) return GC_ERR_ARG;
    int st = GEMM_RM(0, 1, B, O, I, (real)1, x, I, w, I, (real)0, y, O);
    if (st != GC_OK) return st;
    const real s = (real)slope;
    if (act == GC_ACT_IDENTITY && !b) return GC_OK;
    for (int64_t i = 0; i < B; i++) gc_act_row(y + i * O, y + i * O, b, O, act, s);
    return GC_OK;
}

/* dz = dy * act'(y); db += sum_B dz; dw += dz^T x; dx = dz w */
int GC_IMPL(dense_backward)(real *dx, real *dw, real *db, real *dz, const real *dy,
                            const real *x, const real *w, const real *y, int64_t B, int64_t I,
                            int64_t O, int act, double slope) {
    if (bad_args(B, I, O, act, slope)) return GC_ERR_ARG;
    if (B > 0 && O > 0 && (!dz || !dy || !y)) return GC_ERR_ARG;
    if (B > 0 && I > 0 && (!x || (dx && O > 0 && !w))) return GC_ERR_ARG;
    if (O > 0 && I > 0 && !dw) return GC_ERR_ARG;
    if (blas_unusable(B, I, O)) return GC_ERR_BLAS;
    const real s = (real)slope;
    if (db) {
        /* dz and the column sums in one pass, GC_DB_COLS columns at a time;
         * each column sums its rows in order (float64 accumulators). */
        double acc[GC_DB_COLS];
        for (int64_t j0 = 0; j0 < O; j0 += GC_DB_COLS) {
            int64_t nj = O - j0 < GC_DB_COLS ? O - j0 : GC_DB_COLS;
            for (int64_t j = 0; j < nj; j++) acc[j] = 0.0;
            for (int64_t i = 0; i < B; i++) {
                real *zr = dz + i * O + j0;
                gc_act_back_row(zr, dy + i * O + j0, y + i * O + j0, nj, act, s);
                for (int64_t j = 0; j < nj; j++) acc[j] += (double)zr[j];
            }
            for (int64_t j = 0; j < nj; j++) db[j0 + j] = (real)((double)db[j0 + j] + acc[j]);
        }
    } else {
        for (int64_t i = 0; i < B; i++)
            gc_act_back_row(dz + i * O, dy + i * O, y + i * O, O, act, s);
    }
    /* dw (O, I) += dz^T (O, B) x (B, I) */
    int st = GEMM_RM(1, 0, O, I, B, (real)1, dz, O, x, I, (real)1, dw, I);
    if (st != GC_OK) return st;
    /* dx (B, I) = dz (B, O) w (O, I) */
    if (dx) st = GEMM_RM(0, 0, B, I, O, (real)1, dz, O, w, I, (real)0, dx, I);
    return st;
}

GC_DISPATCH(int, dense_forward,
            (real *y, const real *x, const real *w, const real *b, int64_t B, int64_t I,
             int64_t O, int act, double slope),
            (y, x, w, b, B, I, O, act, slope))
GC_DISPATCH(int, dense_backward,
            (real *dx, real *dw, real *db, real *dz, const real *dy, const real *x,
             const real *w, const real *y, int64_t B, int64_t I, int64_t O, int act,
             double slope),
            (dx, dw, db, dz, dy, x, w, y, B, I, O, act, slope))
