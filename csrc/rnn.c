/* rnn.c -- Elman RNN over a whole sequence: forward and BPTT in one call each
 * (template: see kernel.h; contract in the recurrent section of gradcore.h).
 *
 * h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh), t = 0..T-1, time-major.
 * This file holds only the cell: the loops are the driver in recurrent.h.
 * Forward: the input projection goes straight into out (the cache is the
 * states, ld = H), the recurrent product is added there, the step adds the
 * bias and applies act. Backward: the step writes dz = dh * act'(h), the
 * driver's gradient rows, into a ring of one weight-gradient chunk of steps
 * in the scratch block (all T steps' rows only when the weight gradients are
 * made after the loop, when the caller gives no dz); the carry is dz W_hh.
 * Scratch (malloc): W_hh^T and W_ih^T in forward; in backward one block
 * with that ring (one chunk of gc_rec_grad_chunk steps: at least 128 KiB,
 * more for narrow rows), the driver's rows and the bias sums.
 */
#include "kernel.h"
#include "recurrent.h"

#include <stdlib.h>

/* Forward cell: y = out[t] holds the projections plus the recurrent product. */
typedef struct {
    const real *bias; /* b_ih + b_hh (H) */
    int64_t B, H;
    int act;
} rnn_fwd_cell;

static int rnn_fwd_step(void *cp, int64_t t, real *restrict y, const real *hprev,
                        const real *rec) {
    const rnn_fwd_cell *c = cp;
    const real *restrict bias = c->bias;
    const int64_t H = c->H;
    int bad = 0;
    for (int64_t b = 0; b < c->B; b++) {
        real *restrict yb = y + b * H;
        if (c->act == GC_REC_TANH)
            for (int64_t j = 0; j < H; j++) {
                real v = gc_rec_tanh(yb[j] + bias[j]);
                yb[j] = v;
                bad |= GC_REC_BAD(v);
            }
        else if (c->act == GC_REC_RELU)
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
    return bad;
}

/* Forward. out (T, B, H) := states; h0 (B, H) or NULL (zeros); b_ih, b_hh (H)
 * or NULL. *first_nonfinite := first t whose h_t holds NaN/Inf, or -1. With
 * stop_on_nonfinite the loop ends at that step (later out[t] unspecified). */
int GC_IMPL(rnn_forward)(real *out, const real *x, const real *h0, const real *w_ih,
                         const real *w_hh, const real *b_ih, const real *b_hh, int64_t T,
                         int64_t B, int64_t I, int64_t H, int act, int stop_on_nonfinite,
                         int64_t *first_nonfinite) {
    if (!out || !x || !w_ih || !w_hh || !first_nonfinite || !gc_rec_check_dims(T, B, I, H))
        return GC_ERR_ARG;
    if (act != GC_REC_IDENTITY && act != GC_REC_RELU && act != GC_REC_TANH) return GC_ERR_ARG;
    *first_nonfinite = -1;
    real *bias = malloc(sizeof(real) * (size_t)H);
    if (!bias) return GC_ERR_NOMEM;
    for (int64_t j = 0; j < H; j++) bias[j] = (b_ih ? b_ih[j] : (real)0) + (b_hh ? b_hh[j] : (real)0);
    rnn_fwd_cell cell = {bias, B, H, act};
    int st = gc_rec_forward(rnn_fwd_step, &cell, out, H, NULL, out, x, h0, w_ih, w_hh, T, B, I, H,
                            H, stop_on_nonfinite, first_nonfinite);
    free(bias);
    return st;
}

/* Backward cell: the step's gradient rows z = dh * act'(h_t). */
typedef struct {
    real *dx, *dw_ih, *dw_hh;
    const real *x, *h0, *out, *w_ih;
    int64_t B, I, H;
    int act;
} rnn_bwd_cell;

static int rnn_bwd_step(void *cp, int64_t t, real *restrict z, const real *restrict dh,
                        real *carry_h, real *carry_c) {
    const rnn_bwd_cell *c = cp;
    const int64_t BH = c->B * c->H;
    const real *restrict h = c->out + t * BH;
    if (c->act == GC_REC_TANH)
        for (int64_t i = 0; i < BH; i++) z[i] = dh[i] * ((real)1 - h[i] * h[i]);
    else if (c->act == GC_REC_RELU)
        for (int64_t i = 0; i < BH; i++) z[i] = h[i] > (real)0 ? dh[i] : (real)0;
    else
        memcpy(z, dh, sizeof(real) * (size_t)BH);
    return 0;
}

/* dW_ih, dW_hh (+=) and dx rows of steps [t0, t0 + n), from their rows z. */
static int rnn_grads(void *cp, const real *z, int64_t t0, int64_t n) {
    const rnn_bwd_cell *c = cp;
    const int64_t H = c->H;
    int st = gc_rec_weight_grads(c->dw_ih, H, c->dw_hh, H, z, H, c->x, c->out, c->h0, t0, n, c->B,
                                 c->I, H);
    if (st == GC_OK && c->dx) st = gc_rec_dx(c->dx, z, H, H, c->w_ih, t0, n, c->B, c->I);
    return st;
}

/* Backward (BPTT). Gradients: dw_ih (H, I), dw_hh (H, H), db_ih, db_hh (H)
 * are accumulated (+=; the biases may be NULL); dx (T, B, I) and dh0 (B, H)
 * are overwritten (either may be NULL: not computed). d_out (T, B, H) and d_hT
 * (B, H) may be NULL (zero). dz (T, B, H) is workspace or NULL: the step
 * gradient rows dz_t live in the scratch block, one weight-gradient chunk of
 * steps at a time (a ring of gc_rec_grad_chunk steps, reused chunk after
 * chunk, so the pass touches no (T, B, H) array of its own); only when the
 * products are made after the loop (stop_on_nonfinite, or dW_hh over
 * 512 KiB) do all T steps' rows go to dz (NULL: to the scratch block).
 * step_norms (T,) :=
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
    if (!dw_ih || !dw_hh || !x || !out || !w_ih || !w_hh || !first_nonfinite ||
        !gc_rec_check_dims(T, B, I, H) || truncate < 0)
        return GC_ERR_ARG;
    if (act != GC_REC_IDENTITY && act != GC_REC_RELU && act != GC_REC_TANH) return GC_ERR_ARG;
    *first_nonfinite = -1;
    const int64_t tcb = gc_rec_grad_chunk(B, H, H, H, I, stop_on_nonfinite);
    const int64_t rows = tcb ? (tcb < T ? tcb : T) : dz ? 0 : T; /* steps of rows in scratch */
    gc_rec_bwd_mem mem;
    void *scratch = gc_rec_bwd_scratch(&mem, rows * B * H, 0, B * H, 0, db_ih || db_hh ? H : 0);
    if (!scratch) return GC_ERR_NOMEM;
    rnn_bwd_cell cell = {dx, dw_ih, dw_hh, x, h0, out, w_ih, B, I, H, act};
    int st = gc_rec_backward(rnn_bwd_step, rnn_grads, &cell, rows ? mem.cell : dz, H, tcb, NULL,
                             (real)0, &mem, H, H,
                             dh0, NULL, step_norms, NULL, d_out, d_hT, NULL, w_hh, T, B, I, H, H,
                             truncate, stop_on_nonfinite, first_nonfinite);
    gc_rec_add_bias_sums(st, mem.bacc, db_ih, db_hh, H, stop_on_nonfinite, *first_nonfinite);
    free(scratch);
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
