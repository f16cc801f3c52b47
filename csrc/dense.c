/* dense.c -- dense layer forward and backward (template: see kernel.h).
 *
 * Contract (W (O, I) row-major like PyTorch, all arrays C-contiguous):
 *   forward:  y (B, O) = act(x w^T + b): one GEMM into y, then the bias add
 *             and the activation fused in one pass over y. b may be NULL.
 *   backward: dz (B, O) = dy * act'(y) (dz may equal dy), fused with the
 *             column sums of dz into db (db += ..., NULL: no bias);
 *             dw += dz^T x (GEMM, beta = 1); dx = dz w (GEMM, NULL: skip).
 * Stack (a chain of L dense layers in one call, bit-identical to L calls of
 * the layer functions; the parameters live in one flat buffer `theta`):
 *   layout (L, GC_STACK_COLS) int64 rows {I, O, w_off, b_off (-1: no bias),
 *   act}: layer l reads w = theta + w_off (O, I) and b = theta + b_off (O);
 *   I of layer l is O of layer l - 1. ys holds the layer outputs back to
 *   back (y_l (B, O_l) at B * sum_{k<l} O_k).
 *   stack forward:  ys := every y_l, y_0 from x (B, I_0).
 *   stack backward: from dy (B, O_{L-1}): grad (the layout of theta) += every
 *             dw, db; dx (B, I_0) := the input gradient (NULL: skip); work
 *             holds at least 2 * B * max(all I, O) scratch values.
 * Returns GC_ERR_ARG for bad sizes/act/slope/layout (before any write) and
 * GC_ERR_BLAS when BLAS is unavailable or a size exceeds the BLAS int range
 * (the stack passes too: gc_dense_stack_check gives their status for a
 * layout and sizes alone).
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

/* Layout rows valid for theta of n values: sizes chain, offsets in range,
 * activations known. Reports the largest dimension (*maxdim) and the total
 * output size sum O_l (*sum_o). */
static int bad_layout(const int64_t *lay, int64_t L, int64_t n, int64_t *maxdim, int64_t *sum_o) {
    int64_t mx = 0, so = 0;
    if (L < 1 || !lay) return 1;
    for (int64_t l = 0; l < L; l++) {
        const int64_t *r = lay + l * GC_STACK_COLS;
        int64_t I = r[0], O = r[1], wo = r[2], bo = r[3], act = r[4];
        if (I < 1 || O < 1 || act < 0 || act >= GC_ACT_COUNT) return 1;
        if (l > 0 && I != lay[(l - 1) * GC_STACK_COLS + 1]) return 1;
        if (O > n || I > n / O || wo < 0 || wo > n - O * I) return 1;
        if (bo < -1 || (bo >= 0 && bo > n - O)) return 1;
        mx = I > mx ? I : mx;
        mx = O > mx ? O : mx;
        so += O;
    }
    *maxdim = mx;
    *sum_o = so;
    return 0;
}

/* The checks both stack passes start with: GC_ERR_ARG for a bad B, slope or
 * layout, then GC_ERR_BLAS when BLAS is unavailable or B or a layer's I or
 * O exceeds the BLAS int range (as the layer functions report it). */
static int stack_args(const int64_t *layout, int64_t L, int64_t n, int64_t B, double slope,
                      int64_t *maxdim, int64_t *sum_o) {
    if (B < 0 || !(slope >= 0.0) || isinf(slope)) return GC_ERR_ARG;
    if (bad_layout(layout, L, n, maxdim, sum_o)) return GC_ERR_ARG;
    return blas_unusable(B, *maxdim, *maxdim) ? GC_ERR_BLAS : GC_OK;
}

/* The status the stack passes give for these sizes before touching any
 * array (GC_OK, GC_ERR_ARG or GC_ERR_BLAS): their checks, on their own. */
int GC_IMPL(dense_stack_check)(const int64_t *layout, int64_t L, int64_t n, int64_t B,
                               double slope) {
    int64_t maxdim, sum_o;
    return stack_args(layout, L, n, B, slope, &maxdim, &sum_o);
}

/* ys := y_0 .. y_{L-1} of the chain (see the contract at the top) */
int GC_IMPL(dense_stack_forward)(real *ys, const real *x, const real *theta, int64_t n,
                                 const int64_t *layout, int64_t L, int64_t B, double slope) {
    int64_t maxdim, sum_o;
    int st = stack_args(layout, L, n, B, slope, &maxdim, &sum_o);
    if (st != GC_OK || B == 0) return st;
    if (!ys || !x || !theta) return GC_ERR_ARG;
    const real *h = x;
    real *y = ys;
    for (int64_t l = 0; l < L; l++) {
        const int64_t *r = layout + l * GC_STACK_COLS;
        st = GC_IMPL(dense_forward)(y, h, theta + r[2], r[3] < 0 ? NULL : theta + r[3], B, r[0],
                                        r[1], (int)r[4], slope);
        if (st != GC_OK) return st;
        h = y;
        y += B * r[1];
    }
    return GC_OK;
}

/* grad += every dw, db; dx := input gradient (NULL: skip); dz / dx of the
 * hidden layers alternate between the two halves of work. */
int GC_IMPL(dense_stack_backward)(real *dx, real *grad, real *work, const real *dy, const real *x,
                                  const real *theta, const real *ys, int64_t n,
                                  const int64_t *layout, int64_t L, int64_t B, double slope) {
    int64_t maxdim, sum_o;
    int st = stack_args(layout, L, n, B, slope, &maxdim, &sum_o);
    if (st != GC_OK || B == 0) return st;
    if (!grad || !work || !dy || !x || !theta || !ys) return GC_ERR_ARG;
    real *const buf[2] = {work, work + B * maxdim};
    const real *g = dy; /* gradient with respect to the current layer's output */
    int64_t yoff = B * sum_o;
    for (int64_t l = L - 1; l >= 0; l--) {
        const int64_t *r = layout + l * GC_STACK_COLS;
        int64_t I = r[0], O = r[1];
        yoff -= B * O;
        /* the top layer's dz goes to scratch; below it dz overwrites its dy
         * (scratch by then), and dx goes to the other half */
        real *dz = l == L - 1 ? buf[0] : (real *)g;
        real *dxl = l == 0 ? dx : dz == buf[0] ? buf[1] : buf[0];
        const real *xin = l > 0 ? ys + yoff - B * I : x;
        st = GC_IMPL(dense_backward)(dxl, grad + r[2], r[3] < 0 ? NULL : grad + r[3], dz, g,
                                         xin, theta + r[2], ys + yoff, B, I, O, (int)r[4], slope);
        if (st != GC_OK) return st;
        g = dxl;
    }
    return GC_OK;
}

GC_DISPATCH(int, dense_stack_check,
            (const int64_t *layout, int64_t L, int64_t n, int64_t B, double slope),
            (layout, L, n, B, slope))
GC_DISPATCH(int, dense_stack_forward,
            (real *ys, const real *x, const real *theta, int64_t n, const int64_t *layout,
             int64_t L, int64_t B, double slope),
            (ys, x, theta, n, layout, L, B, slope))
GC_DISPATCH(int, dense_stack_backward,
            (real *dx, real *grad, real *work, const real *dy, const real *x, const real *theta,
             const real *ys, int64_t n, const int64_t *layout, int64_t L, int64_t B, double slope),
            (dx, grad, work, dy, x, theta, ys, n, layout, L, B, slope))
GC_DISPATCH(int, dense_forward,
            (real *y, const real *x, const real *w, const real *b, int64_t B, int64_t I,
             int64_t O, int act, double slope),
            (y, x, w, b, B, I, O, act, slope))
GC_DISPATCH(int, dense_backward,
            (real *dx, real *dw, real *db, real *dz, const real *dy, const real *x,
             const real *w, const real *y, int64_t B, int64_t I, int64_t O, int act,
             double slope),
            (dx, dw, db, dz, dy, x, w, y, B, I, O, act, slope))
