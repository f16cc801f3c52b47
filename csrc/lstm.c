/* lstm.c -- LSTM over a whole sequence: forward and BPTT in one call each
 * (template: see kernel.h; contract in the recurrent section of gradcore.h).
 *
 * Gates in PyTorch order i, f, g, o (rows of W_ih (4H, I), W_hh (4H, H)):
 *   a = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh
 *   i = sigmoid(a_i), f = sigmoid(a_f), g = tanh(a_g), o = sigmoid(a_o)
 *   c_t = f * c_{t-1} + i * g,  h_t = o * tanh(c_t)
 * Forward: the input projection is one GEMM per chunk of steps, written into
 * the gate cache (T, B, 4H) just ahead of the loop; per step one recurrent GEMM for all four gates
 * (beta = 1, in place) and one fused pass (bias, activations, c, h, check).
 * Cache: gates (4) + c (1) + out h (1) = 6 x T*B*H elements.
 * Backward consumes the gate cache: per step the fused cell backward
 * overwrites gates[t] with the pre-activation gradients dA_t (in place, no
 * extra workspace), then one GEMM dA_t W_hh gives the carry to h_{t-1}.
 * db are float64 sums taken in the loop; dW_ih, dW_hh and dx are GEMMs over
 * each finished chunk of steps (weight-gradient helpers in recurrent.h). Every GEMM goes through gc_rec_gemm (recurrent.h), which
 * issues large products as BLAS tiles (at H = 128 one per gate). Scratch
 * (malloc): W_hh^T (4H*H) and W_ih^T (4H*I) in forward, O(B*H + H)
 * otherwise.
 */
#include "kernel.h"
#include "recurrent.h"

#include <stdlib.h>

static int check_dims(int64_t T, int64_t B, int64_t I, int64_t H) {
    return T >= 1 && B >= 1 && I >= 1 && H >= 1;
}

/* One batch row of the forward cell: gates in, activated gates, c, h out;
 * returns 1 when c or h holds NaN/Inf. */
static int cell_fwd(real *restrict gi, real *restrict gf, real *restrict gg, real *restrict go,
                    real *restrict c, real *restrict h, const real *restrict cp,
                    const real *restrict bi, const real *restrict bf, const real *restrict bg,
                    const real *restrict bo, int64_t H) {
    int bad = 0;
    for (int64_t j = 0; j < H; j++) {
        real i = gc_rec_sigmoid(gi[j] + bi[j]);
        real f = gc_rec_sigmoid(gf[j] + bf[j]);
        real g = gc_rec_tanh(gg[j] + bg[j]);
        real o = gc_rec_sigmoid(go[j] + bo[j]);
        real cn = f * cp[j] + i * g;
        real hn = o * gc_rec_tanh(cn);
        gi[j] = i;
        gf[j] = f;
        gg[j] = g;
        go[j] = o;
        c[j] = cn;
        h[j] = hn;
        bad |= GC_REC_BAD(cn) | GC_REC_BAD(hn);
    }
    return bad;
}

/* One batch row of the backward cell: activated gates in, pre-activation
 * gradients out (in place); dc holds the carried dc_t on entry and dc_{t-1}
 * (through f) on exit; dct := the whole dL/dc_t (carry + the path through
 * h_t); returns 1 when dc holds NaN/Inf. */
static int cell_bwd(real *restrict gi, real *restrict gf, real *restrict gg, real *restrict go,
                    real *restrict dcb, real *restrict dct, const real *restrict dhb,
                    const real *restrict c, const real *restrict cp, int64_t H) {
    int bad = 0;
    for (int64_t j = 0; j < H; j++) {
        real i = gi[j], f = gf[j], g = gg[j], o = go[j];
        real tc = gc_rec_tanh(c[j]);
        real dhv = dhb[j];
        real dc = dcb[j] + dhv * o * ((real)1 - tc * tc);
        dct[j] = dc;
        gi[j] = dc * g * i * ((real)1 - i);
        gf[j] = dc * cp[j] * f * ((real)1 - f);
        gg[j] = dc * i * ((real)1 - g * g);
        go[j] = dhv * tc * o * ((real)1 - o);
        dcb[j] = dc * f;
        bad |= GC_REC_BAD(dc);
    }
    return bad;
}

/* Forward. out, cs (T, B, H) := h_t, c_t; gates (T, B, 4H) := i, f, g, o
 * (activated); h0, c0 (B, H) or NULL (zeros); b_ih, b_hh (4H) or NULL.
 * *first_nonfinite := first t whose h_t or c_t holds NaN/Inf, or -1; with
 * stop_on_nonfinite the loop ends there (later steps unspecified). */
int GC_IMPL(lstm_forward)(real *out, real *cs, real *gates, const real *x, const real *h0,
                          const real *c0, const real *w_ih, const real *w_hh, const real *b_ih,
                          const real *b_hh, int64_t T, int64_t B, int64_t I, int64_t H,
                          int stop_on_nonfinite, int64_t *first_nonfinite) {
    if (!out || !cs || !gates || !x || !w_ih || !w_hh || !first_nonfinite ||
        !check_dims(T, B, I, H))
        return GC_ERR_ARG;
    *first_nonfinite = -1;
    const int64_t BH = B * H, G4 = 4 * H;
    real *bias = malloc(sizeof(real) * (size_t)(G4 + BH));
    if (!bias) return GC_ERR_NOMEM;
    real *zeros = bias + G4;
    memset(zeros, 0, sizeof(real) * (size_t)BH);
    for (int64_t j = 0; j < G4; j++)
        bias[j] = (b_ih ? b_ih[j] : (real)0) + (b_hh ? b_hh[j] : (real)0);
    const int small = gc_rec_use_small(B, G4, H);
    real *wiht;
    real *wt = gc_rec_make_wts(w_hh, w_ih, G4, H, I, &wiht);
    if (!wt) {
        free(bias);
        return GC_ERR_NOMEM;
    }
    const int64_t tc = gc_rec_proj_chunk(B, G4);
    int st = GC_OK;
    for (int64_t t = 0; t < T && st == GC_OK; t++) {
        if (t % tc == 0) st = gc_rec_in_proj(gates, G4, x, wiht, t, T, tc, B, G4, I);
        if (st != GC_OK) break;
        real *gt = gates + t * B * G4;
        const real *hprev = t ? out + (t - 1) * BH : h0;
        const real *cprev = t ? cs + (t - 1) * BH : (c0 ? c0 : zeros);
        if (hprev) st = gc_rec_recur_fwd(gt, G4, hprev, wt, small, B, G4, H, (real)1);
        if (st != GC_OK) break;
        int bad = 0;
        for (int64_t b = 0; b < B; b++) {
            real *gb = gt + b * G4;
            bad |= cell_fwd(gb, gb + H, gb + 2 * H, gb + 3 * H, cs + t * BH + b * H,
                            out + t * BH + b * H, cprev + b * H, bias, bias + H, bias + 2 * H,
                            bias + 3 * H, H);
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

/* dW_ih, dW_hh (+=) and dx rows of steps [t0, t0 + n), from the gate
 * gradients dA (4H columns). */
static int grads(real *dx, real *dw_ih, real *dw_hh, const real *ga, const real *x,
                 const real *h0, const real *out, const real *w_ih, int64_t t0, int64_t n,
                 int64_t B, int64_t I, int64_t H) {
    int st = gc_rec_weight_grads(dw_ih, 4 * H, dw_hh, 4 * H, ga, 4 * H, x, out, h0, t0, n, B, I,
                                 H);
    if (st == GC_OK && dx) st = gc_rec_dx(dx, ga, 4 * H, 4 * H, w_ih, t0, n, B, I);
    return st;
}

/* Backward (BPTT); gates is overwritten (consumed). dw_ih (4H, I),
 * dw_hh (4H, H), db_ih, db_hh (4H) accumulate (+=; biases may be NULL); dx
 * (T, B, I), dh0, dc0 (B, H) are overwritten (NULL: not computed). d_out
 * (T, B, H), d_hT, d_cT (B, H) may be NULL (zero). step_norms (T,) :=
 * ||dL/dh_t|| (the h part of the gradient flowing at step t) or NULL;
 * cell_norms (T,) := ||dL/dc_t|| (the whole gradient reaching c_t: the carry
 * from c_{t+1} through f plus the path through h_t) or NULL.
 * truncate, first_nonfinite (checks dh_t and dc_t), stop_on_nonfinite: as in
 * gc_rnn_backward. */
int GC_IMPL(lstm_backward)(real *dx, real *dh0, real *dc0, real *dw_ih, real *dw_hh,
                           real *db_ih, real *db_hh, double *step_norms, double *cell_norms,
                           const real *d_out, const real *d_hT, const real *d_cT, const real *x, const real *h0,
                           const real *c0, const real *out, const real *cs, real *gates,
                           const real *w_ih, const real *w_hh, int64_t T, int64_t B, int64_t I,
                           int64_t H, int64_t truncate, int stop_on_nonfinite,
                           int64_t *first_nonfinite) {
    if (!dw_ih || !dw_hh || !x || !out || !cs || !gates || !w_ih || !w_hh || !first_nonfinite ||
        !check_dims(T, B, I, H) || truncate < 0)
        return GC_ERR_ARG;
    *first_nonfinite = -1;
    const int64_t BH = B * H, G4 = 4 * H;
    real *scratch = malloc(sizeof(real) * (size_t)(5 * BH));
    if (!scratch) return GC_ERR_NOMEM;
    real *dh = scratch, *carry_h = scratch + BH, *carry_c = scratch + 2 * BH,
         *zeros = scratch + 3 * BH, *dct = scratch + 4 * BH;
    memset(zeros, 0, sizeof(real) * (size_t)BH);
    memcpy(carry_h, d_hT ? d_hT : zeros, sizeof(real) * (size_t)BH);
    memcpy(carry_c, d_cT ? d_cT : zeros, sizeof(real) * (size_t)BH);
    const int small = gc_rec_use_small(B, G4, H);
    const int64_t tcb = gc_rec_grad_chunk(B, G4, G4, H, stop_on_nonfinite);
    double *bacc = db_ih || db_hh ? calloc((size_t)G4, sizeof(double)) : NULL;
    if ((db_ih || db_hh) && !bacc) {
        free(scratch);
        return GC_ERR_NOMEM;
    }
    int st = GC_OK;

    for (int64_t t = T - 1; t >= 0; t--) {
        real *gt = gates + t * B * G4;
        const real *cprev = t ? cs + (t - 1) * BH : (c0 ? c0 : zeros);
        int bad = 0;
        double nrm = gc_rec_combine(dh, d_out ? d_out + t * BH : NULL, carry_h, NULL, BH, &bad);
        for (int64_t b = 0; b < B; b++) {
            real *gb = gt + b * G4;
            bad |= cell_bwd(gb, gb + H, gb + 2 * H, gb + 3 * H, carry_c + b * H, dct + b * H,
                            dh + b * H, cs + t * BH + b * H, cprev + b * H, H);
        }
        if (bacc) gc_rec_rowsum_acc(bacc, gt, B, G4, G4);
        if (step_norms) step_norms[t] = nrm;
        if (cell_norms) cell_norms[t] = gc_rec_norm(dct, BH);
        if (bad && *first_nonfinite < 0) {
            *first_nonfinite = t;
            if (stop_on_nonfinite) {
                for (int64_t s = 0; s < t; s++) {
                    if (step_norms) step_norms[s] = NAN;
                    if (cell_norms) cell_norms[s] = NAN;
                }
                free(scratch);
                free(bacc);
                return GC_OK;
            }
        }
        if (t > 0 && !gc_rec_cut(t, truncate)) {
            st = gc_rec_recur_bwd(carry_h, gt, G4, w_hh, small, B, G4, H, (real)0);
        } else if (t > 0) {
            memset(carry_h, 0, sizeof(real) * (size_t)BH);
            memset(carry_c, 0, sizeof(real) * (size_t)BH);
        } else {
            if (dh0) st = gc_rec_recur_bwd(dh0, gt, G4, w_hh, small, B, G4, H, (real)0);
            if (dc0) memcpy(dc0, carry_c, sizeof(real) * (size_t)BH);
        }
        if (st != GC_OK) break;
        if (tcb && t % tcb == 0) {
            st = grads(dx, dw_ih, dw_hh, gates, x, h0, out, w_ih, t, T - t < tcb ? T - t : tcb, B,
                       I, H);
            if (st != GC_OK) break;
        }
    }
    free(scratch);
    if (st == GC_OK && bacc) {
        gc_rec_acc_add(db_ih, bacc, G4);
        gc_rec_acc_add(db_hh, bacc, G4);
    }
    free(bacc);
    if (st != GC_OK) return st;

    if (!tcb) st = grads(dx, dw_ih, dw_hh, gates, x, h0, out, w_ih, 0, T, B, I, H);
    return st;
}

GC_DISPATCH(int, lstm_forward,
            (real *out, real *cs, real *gates, const real *x, const real *h0, const real *c0,
             const real *w_ih, const real *w_hh, const real *b_ih, const real *b_hh, int64_t T,
             int64_t B, int64_t I, int64_t H, int stop_on_nonfinite, int64_t *first_nonfinite),
            (out, cs, gates, x, h0, c0, w_ih, w_hh, b_ih, b_hh, T, B, I, H, stop_on_nonfinite,
             first_nonfinite))
GC_DISPATCH(int, lstm_backward,
            (real *dx, real *dh0, real *dc0, real *dw_ih, real *dw_hh, real *db_ih, real *db_hh,
             double *step_norms, double *cell_norms, const real *d_out, const real *d_hT, const real *d_cT,
             const real *x, const real *h0, const real *c0, const real *out, const real *cs,
             real *gates, const real *w_ih, const real *w_hh, int64_t T, int64_t B, int64_t I,
             int64_t H, int64_t truncate, int stop_on_nonfinite, int64_t *first_nonfinite),
            (dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, step_norms, cell_norms, d_out, d_hT, d_cT, x, h0, c0,
             out, cs, gates, w_ih, w_hh, T, B, I, H, truncate, stop_on_nonfinite,
             first_nonfinite))
