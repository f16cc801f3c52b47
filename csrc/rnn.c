/* rnn.c -- Elman RNN over a whole sequence: forward and BPTT in one call each
 * (template: see kernel.h; contract in the recurrent section of gradcore.h).
 *
 * h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh), t = 0..T-1, time-major.
 * Forward: the input projection (one GEMM per chunk of steps, written straight
 * into out just ahead of the loop), then per step one recurrent GEMM (beta = 1, into out[t]) and a
 * fused bias + activation + non-finite check. Cache: out only (1 x T*B*H).
 * Backward: per step one fused pass (dh = d_out[t] + carry, ||dh||, check,
 * dz = dh * act'(h), db sums) and one GEMM for the carry dz W_hh; dW_ih,
 * dW_hh and dx are GEMMs over each finished chunk of steps (see the
 * weight-gradient helpers in recurrent.h). Workspace dz: 1 x T*B*H (caller's). Scratch (malloc): W_hh^T (H*H)
 * and W_ih^T (H*I) in forward, O(B*H + H) otherwise. Every GEMM goes through
 * gc_rec_gemm (recurrent.h), which issues large products as BLAS tiles.
 */
#include "kernel.h"
#include "recurrent.h"

#include <stdlib.h>

static int check_dims(int64_t T, int64_t B, int64_t I, int64_t H) {
    return T >= 1 && B >= 1 && I >= 1 && H >= 1;
}

/* Forward. out (T, B, H) := states; h0 (B, H) or NULL (zeros); b_ih, b_hh (H)
 * or NULL. *first_nonfinite := first t whose h_t holds NaN/Inf, or -1. With
 * stop_on_nonfinite the loop ends at that step (later out[t] unspecified). */
int GC_IMPL(rnn_forward)(real *out, const real *x, const real *h0, const real *w_ih,
                         const real *w_hh, const real *b_ih, const real *b_hh, int64_t T,
                         int64_t B, int64_t I, int64_t H, int act, int stop_on_nonfinite,
                         int64_t *first_nonfinite) {
    if (!out || !x || !w_ih || !w_hh || !first_nonfinite || !check_dims(T, B, I, H))
        return GC_ERR_ARG;
    if (act != GC_REC_IDENTITY && act != GC_REC_RELU && act != GC_REC_TANH) return GC_ERR_ARG;
    *first_nonfinite = -1;
    const int64_t BH = B * H;
    real *bias = malloc(sizeof(real) * (size_t)H);
    if (!bias) return GC_ERR_NOMEM;
    for (int64_t j = 0; j < H; j++) bias[j] = (b_ih ? b_ih[j] : (real)0) + (b_hh ? b_hh[j] : (real)0);
    const int small = gc_rec_use_small(B, H, H);
    real *wiht;
    real *wt = gc_rec_make_wts(w_hh, w_ih, H, H, I, &wiht);
    if (!wt) {
        free(bias);
        return GC_ERR_NOMEM;
    }
    const int64_t tc = gc_rec_proj_chunk(B, H);
    int st = GC_OK;
    for (int64_t t = 0; t < T && st == GC_OK; t++) {
        if (t % tc == 0) st = gc_rec_in_proj(out, H, x, wiht, t, T, tc, B, H, I);
        if (st != GC_OK) break;
        real *restrict y = out + t * BH;
        const real *hprev = t ? out + (t - 1) * BH : h0;
        if (hprev) st = gc_rec_recur_fwd(y, H, hprev, wt, small, B, H, H, (real)1);
        if (st != GC_OK) break;
        int bad = 0;
        for (int64_t b = 0; b < B; b++) {
            real *restrict yb = y + b * H;
            if (act == GC_REC_TANH)
                for (int64_t j = 0; j < H; j++) {
                    real v = gc_rec_tanh(yb[j] + bias[j]);
                    yb[j] = v;
                    bad |= GC_REC_BAD(v);
                }
            else if (act == GC_REC_RELU)
                for (int64_t j = 0; j < H; j++) {
                    real v = yb[j] + bias[j];
                    v = gc_select(gc_mask(v < (real)0), (real)0, v); /* NaN stays NaN */
                    yb[j] = v;
                    bad |= GC_REC_BAD(v);
                }
            else
                for (int64_t j = 0; j < H; j++) {
                    real v = yb[j] + bias[j];
                    yb[j] = v;
                    bad |= GC_REC_BAD(v);
                }
        }
        if (bad && *first_nonfinite < 0) {
            *first_nonfinite = t;
            if (stop_on_nonfinite) break;
        }
    }
    free(bias);
    free(wt);
    return st;
}

/* dW_ih, dW_hh (+=) and dx rows of steps [t0, t0 + n), from dz. */
static int grads(real *dx, real *dw_ih, real *dw_hh, const real *dz, const real *x,
                 const real *h0, const real *out, const real *w_ih, int64_t t0, int64_t n,
                 int64_t B, int64_t I, int64_t H) {
    int st = gc_rec_weight_grads(dw_ih, H, dw_hh, H, dz, H, x, out, h0, t0, n, B, I, H);
    if (st == GC_OK && dx) st = gc_rec_dx(dx, dz, H, H, w_ih, t0, n, B, I);
    return st;
}

/* Backward (BPTT). Gradients: dw_ih (H, I), dw_hh (H, H), db_ih, db_hh (H)
 * are accumulated (+=; the biases may be NULL); dx (T, B, I) and dh0 (B, H)
 * are overwritten (either may be NULL: not computed). d_out (T, B, H) and d_hT
 * (B, H) may be NULL (zero). dz (T, B, H) is workspace. step_norms (T,) :=
 * ||dL/dh_t|| (Frobenius over the batch, of the gradient that flows at step t)
 * or NULL. truncate = k > 0: windows [0,k), [k,2k), ... with no gradient
 * crossing a window start; 0: full BPTT. *first_nonfinite := first step in
 * backward order (largest t) whose dh_t holds NaN/Inf, or -1. With
 * stop_on_nonfinite the loop ends there: step_norms of earlier steps are NaN
 * and no gradient (dx, dh0, weights, biases) is written. */
int GC_IMPL(rnn_backward)(real *dx, real *dh0, real *dw_ih, real *dw_hh, real *db_ih, real *db_hh,
                          real *dz, double *step_norms, const real *d_out, const real *d_hT,
                          const real *x, const real *h0, const real *out, const real *w_ih,
                          const real *w_hh, int64_t T, int64_t B, int64_t I, int64_t H, int act,
                          int64_t truncate, int stop_on_nonfinite, int64_t *first_nonfinite) {
    if (!dw_ih || !dw_hh || !dz || !x || !out || !w_ih || !w_hh || !first_nonfinite ||
        !check_dims(T, B, I, H) || truncate < 0)
        return GC_ERR_ARG;
    if (act != GC_REC_IDENTITY && act != GC_REC_RELU && act != GC_REC_TANH) return GC_ERR_ARG;
    *first_nonfinite = -1;
    const int64_t BH = B * H;
    real *carry = malloc(sizeof(real) * (size_t)BH);
    if (!carry) return GC_ERR_NOMEM;
    if (d_hT)
        memcpy(carry, d_hT, sizeof(real) * (size_t)BH);
    else
        memset(carry, 0, sizeof(real) * (size_t)BH);
    const int small = gc_rec_use_small(B, H, H);
    const int64_t tcb = gc_rec_grad_chunk(B, H, H, H, stop_on_nonfinite);
    double *bacc = db_ih || db_hh ? calloc((size_t)H, sizeof(double)) : NULL;
    if ((db_ih || db_hh) && !bacc) {
        free(carry);
        return GC_ERR_NOMEM;
    }
    int st = GC_OK;

    for (int64_t t = T - 1; t >= 0; t--) {
        real *restrict z = dz + t * BH;
        const real *h = out + t * BH;
        int bad = 0;
        double nrm = gc_rec_combine(z, d_out ? d_out + t * BH : NULL, carry, NULL, BH, &bad);
        if (step_norms) step_norms[t] = nrm;
        if (bad && *first_nonfinite < 0) {
            *first_nonfinite = t;
            if (stop_on_nonfinite) {
                if (step_norms)
                    for (int64_t s = 0; s < t; s++) step_norms[s] = NAN;
                free(carry);
                free(bacc);
                return GC_OK;
            }
        }
        if (act == GC_REC_TANH)
            for (int64_t i = 0; i < BH; i++) z[i] = z[i] * ((real)1 - h[i] * h[i]);
        else if (act == GC_REC_RELU)
            for (int64_t i = 0; i < BH; i++) z[i] = h[i] > (real)0 ? z[i] : (real)0;
        if (bacc) gc_rec_rowsum_acc(bacc, z, B, H, H);
        if (t > 0 && !gc_rec_cut(t, truncate)) {
            st = gc_rec_recur_bwd(carry, z, H, w_hh, small, B, H, H, (real)0);
        } else if (t > 0) {
            memset(carry, 0, sizeof(real) * (size_t)BH);
        } else if (dh0) {
            st = gc_rec_recur_bwd(dh0, z, H, w_hh, small, B, H, H, (real)0);
        }
        if (st != GC_OK) break;
        if (tcb && t % tcb == 0) {
            st = grads(dx, dw_ih, dw_hh, dz, x, h0, out, w_ih, t, T - t < tcb ? T - t : tcb, B, I, H);
            if (st != GC_OK) break;
        }
    }
    free(carry);
    if (st == GC_OK && bacc) {
        gc_rec_acc_add(db_ih, bacc, H);
        gc_rec_acc_add(db_hh, bacc, H);
    }
    free(bacc);
    if (st != GC_OK) return st;

    if (!tcb) st = grads(dx, dw_ih, dw_hh, dz, x, h0, out, w_ih, 0, T, B, I, H);
    return st;
}

GC_DISPATCH(int, rnn_forward,
            (real *out, const real *x, const real *h0, const real *w_ih, const real *w_hh,
             const real *b_ih, const real *b_hh, int64_t T, int64_t B, int64_t I, int64_t H,
             int act, int stop_on_nonfinite, int64_t *first_nonfinite),
            (out, x, h0, w_ih, w_hh, b_ih, b_hh, T, B, I, H, act, stop_on_nonfinite,
             first_nonfinite))
GC_DISPATCH(int, rnn_backward,
            (real *dx, real *dh0, real *dw_ih, real *dw_hh, real *db_ih, real *db_hh, real *dz,
             double *step_norms, const real *d_out, const real *d_hT, const real *x,
             const real *h0, const real *out, const real *w_ih, const real *w_hh, int64_t T,
             int64_t B, int64_t I, int64_t H, int act, int64_t truncate, int stop_on_nonfinite,
             int64_t *first_nonfinite),
            (dx, dh0, dw_ih, dw_hh, db_ih, db_hh, dz, step_norms, d_out, d_hT, x, h0, out, w_ih,
             w_hh, T, B, I, H, act, truncate, stop_on_nonfinite, first_nonfinite))

/* Element functions used by the fused cells, for accuracy tests. */
void GC_IMPL(rec_act)(real *y, const real *x, int64_t n, int which) {
    if (which == 0)
        for (int64_t i = 0; i < n; i++) y[i] = gc_rec_tanh(x[i]);
    else
        for (int64_t i = 0; i < n; i++) y[i] = gc_rec_sigmoid(x[i]);
}

GC_DISPATCH(void, rec_act, (real *y, const real *x, int64_t n, int which), (y, x, n, which))
