/* gru.c -- GRU over a whole sequence: forward and BPTT in one call each
 * (template: see kernel.h; contract in the recurrent section of gradcore.h).
 *
 * Gates in PyTorch order r, z, n (rows of W_ih (3H, I), W_hh (3H, H)):
 *   r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
 *   z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
 *   n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
 *   h_t = (1 - z) * n + z * h_{t-1}
 * This file holds only the cell: the loops are the driver in recurrent.h.
 * Gate layout: cache gates (T, B, 4H), per row [r, z, n, hn] with
 * hn = W_hn h + b_hn (needed for dr); with out h: 5 x T*B*H elements. The
 * input projection fills columns 0..3H; the recurrent product of the three
 * gates goes into a (B, 3H) scratch (r multiplies its n part), which the
 * forward step combines. Backward consumes the cache: row t becomes
 * [dA_r, dA_z, dA_n, r * dA_n] (input-side gradients in columns 0..3H, the
 * hidden-side n gradient in 3H..4H) and a (B, 3H) scratch row [dA_r, dA_z,
 * r * dA_n] gives the carry (dh * z plus that row times W_hh). Weight
 * gradients: dW_ih, dx from columns 0..3H, dW_hh as two products (rows r, z
 * from columns 0..2H and rows n from 3H..4H). Scratch (malloc): W_hh^T and
 * W_ih^T in forward, O(B*H + H) otherwise.
 */
#include "kernel.h"
#include "recurrent.h"

#include <stdlib.h>

/* One batch row of the forward cell; returns 1 when h holds NaN/Inf. */
static inline int cell_fwd(real *restrict gr, real *restrict gz, real *restrict gn,
                           real *restrict ghn, real *restrict h, const real *restrict hr,
                           const real *restrict hz, const real *restrict hn,
                           const real *restrict hp, const real *restrict br,
                           const real *restrict bz, const real *restrict bin,
                           const real *restrict bhn, int64_t H) {
    int bad = 0;
    for (int64_t j = 0; j < H; j++) {
        real r = gc_rec_sigmoid(gr[j] + hr[j] + br[j]);
        real z = gc_rec_sigmoid(gz[j] + hz[j] + bz[j]);
        real a = hn[j] + bhn[j];
        real n = gc_rec_tanh(gn[j] + bin[j] + r * a);
        real hv = ((real)1 - z) * n + z * hp[j];
        gr[j] = r;
        gz[j] = z;
        gn[j] = n;
        ghn[j] = a;
        h[j] = hv;
        bad |= GC_REC_BAD(hv);
    }
    return bad;
}

/* One batch row of the backward cell: [r, z, n, hn] in, [dA_r, dA_z, dA_n,
 * r * dA_n] out (in place) and copied to the hidden-side row ar, az, an;
 * carry := dh * z (the direct path to h_{t-1}). */
static inline void cell_bwd(real *restrict gr, real *restrict gz, real *restrict gn,
                            real *restrict ghn, real *restrict ar, real *restrict az,
                            real *restrict an, real *restrict cb, const real *restrict dhb,
                            const real *restrict hp, int64_t H) {
    for (int64_t j = 0; j < H; j++) {
        real r = gr[j], z = gz[j], n = gn[j], a = ghn[j], d = dhb[j];
        real dan = d * ((real)1 - z) * ((real)1 - n * n);
        real dar = dan * a * r * ((real)1 - r);
        real daz = d * (hp[j] - n) * z * ((real)1 - z);
        real dhn = dan * r;
        gr[j] = dar;
        gz[j] = daz;
        gn[j] = dan;
        ghn[j] = dhn;
        ar[j] = dar;
        az[j] = daz;
        an[j] = dhn;
        cb[j] = d * z;
    }
}

typedef struct {
    real *out;
    const real *zeros, *bias; /* bias: [b_ir + b_hr, b_iz + b_hz, b_in, b_hn] */
    int64_t B, H;
} gru_fwd_cell;

static int gru_fwd_step(void *cp, int64_t t, real *y, const real *hprev, const real *rec) {
    const gru_fwd_cell *c = cp;
    const int64_t B = c->B, H = c->H, BH = B * H, G3 = 3 * H, G4 = 4 * H;
    const real *bias = c->bias;
    if (!hprev) hprev = c->zeros;
    int bad = 0;
    for (int64_t b = 0; b < B; b++) {
        real *gb = y + b * G4;
        const real *hb = rec + b * G3;
        bad |= cell_fwd(gb, gb + H, gb + 2 * H, gb + 3 * H, c->out + t * BH + b * H, hb, hb + H,
                        hb + 2 * H, hprev + b * H, bias, bias + H, bias + 2 * H, bias + 3 * H, H);
    }
    return bad;
}

/* Forward. out (T, B, H) := h_t; gates (T, B, 4H) := r, z, n, hn; h0 (B, H)
 * or NULL; b_ih, b_hh (3H) or NULL. first_nonfinite / stop_on_nonfinite as in
 * gc_rnn_forward. */
int GC_IMPL(gru_forward)(real *out, real *gates, const real *x, const real *h0, const real *w_ih,
                         const real *w_hh, const real *b_ih, const real *b_hh, int64_t T,
                         int64_t B, int64_t I, int64_t H, int stop_on_nonfinite,
                         int64_t *first_nonfinite) {
    if (!out || !gates || !x || !w_ih || !w_hh || !first_nonfinite ||
        !gc_rec_check_dims(T, B, I, H))
        return GC_ERR_ARG;
    *first_nonfinite = -1;
    const int64_t BH = B * H, G3 = 3 * H, G4 = 4 * H;
    /* bias (4H), gh: the recurrent product (B, 3H), zeros (B, H) */
    real *bias = malloc(sizeof(real) * (size_t)(G4 + B * G3 + BH));
    if (!bias) return GC_ERR_NOMEM;
    real *gh = bias + G4, *zeros = gh + B * G3;
    memset(zeros, 0, sizeof(real) * (size_t)BH);
    for (int64_t j = 0; j < 2 * H; j++)
        bias[j] = (b_ih ? b_ih[j] : (real)0) + (b_hh ? b_hh[j] : (real)0);
    for (int64_t j = 0; j < H; j++) {
        bias[2 * H + j] = b_ih ? b_ih[2 * H + j] : (real)0;
        bias[3 * H + j] = b_hh ? b_hh[2 * H + j] : (real)0;
    }
    gru_fwd_cell cell = {out, zeros, bias, B, H};
    int st = gc_rec_forward(gru_fwd_step, &cell, gates, G4, gh, out, x, h0, w_ih, w_hh, T, B, I,
                            H, G3, stop_on_nonfinite, first_nonfinite);
    free(bias);
    return st;
}

typedef struct {
    real *dx, *dw_ih, *dw_hh, *da;
    const real *x, *h0, *out, *w_ih, *zeros;
    int64_t B, I, H;
} gru_bwd_cell;

static int gru_bwd_step(void *cp, int64_t t, real *gt, const real *dh, real *carry_h,
                        real *carry_c) {
    const gru_bwd_cell *c = cp;
    const int64_t B = c->B, H = c->H, BH = B * H, G3 = 3 * H, G4 = 4 * H;
    const real *hprev = t ? c->out + (t - 1) * BH : (c->h0 ? c->h0 : c->zeros);
    for (int64_t b = 0; b < B; b++) {
        real *gb = gt + b * G4, *ab = c->da + b * G3;
        cell_bwd(gb, gb + H, gb + 2 * H, gb + 3 * H, ab, ab + H, ab + 2 * H, carry_h + b * H,
                 dh + b * H, hprev + b * H, H);
    }
    return 0;
}

/* dW_ih, dW_hh (+=) and dx rows of steps [t0, t0 + n), from the rows
 * [dA_r, dA_z, dA_n, r * dA_n]: W_ih and dx from columns 0..3H; the r, z rows
 * of dW_hh from columns 0..2H, its n rows from the saved dhn = a_n * r
 * (column 3H), not from a_n (column 2H). */
static int gru_grads(void *cp, const real *a, int64_t t0, int64_t n) {
    const gru_bwd_cell *c = cp;
    const int64_t H = c->H;
    int st = gc_rec_weight_grads(c->dw_ih, 3 * H, c->dw_hh, 2 * H, a, 4 * H, c->x, c->out, c->h0,
                                 t0, n, c->B, c->I, H);
    if (st == GC_OK)
        st = gc_rec_dw_hh(c->dw_hh + 2 * H * H, a + 3 * H, 4 * H, H, c->out, c->h0, t0, n, c->B,
                          H);
    if (st == GC_OK && c->dx) st = gc_rec_dx(c->dx, a, 4 * H, 3 * H, c->w_ih, t0, n, c->B, c->I);
    return st;
}

/* Backward (BPTT); gates is overwritten (consumed). dw_ih (3H, I),
 * dw_hh (3H, H), db_ih, db_hh (3H) accumulate (+=; biases may be NULL); dx
 * (T, B, I) and dh0 (B, H) are overwritten (NULL: not computed). d_out, d_hT
 * may be NULL. step_norms, truncate, first_nonfinite, stop_on_nonfinite: as
 * in gc_rnn_backward. */
int GC_IMPL(gru_backward)(real *dx, real *dh0, real *dw_ih, real *dw_hh, real *db_ih,
                          real *db_hh, double *step_norms, const real *d_out, const real *d_hT,
                          const real *x, const real *h0, const real *out, real *gates,
                          const real *w_ih, const real *w_hh, int64_t T, int64_t B, int64_t I,
                          int64_t H, int64_t truncate, int stop_on_nonfinite,
                          int64_t *first_nonfinite) {
    if (!dw_ih || !dw_hh || !x || !out || !gates || !w_ih || !w_hh || !first_nonfinite ||
        !gc_rec_check_dims(T, B, I, H) || truncate < 0)
        return GC_ERR_ARG;
    *first_nonfinite = -1;
    const int64_t BH = B * H, G3 = 3 * H, G4 = 4 * H;
    gc_rec_bwd_mem mem;
    void *scratch = gc_rec_bwd_scratch(&mem, BH + B * G3, BH, BH, 0, db_ih || db_hh ? G4 : 0);
    if (!scratch) return GC_ERR_NOMEM;
    real *zeros = mem.cell, *da = mem.cell + BH;
    gru_bwd_cell cell = {dx, dw_ih, dw_hh, da, x, h0, out, w_ih, zeros, B, I, H};
    int st = gc_rec_backward(gru_bwd_step, gru_grads, &cell, gates, G4, 0, da, (real)1, &mem, G4,
                             G3, dh0, NULL, step_norms, NULL, d_out, d_hT, NULL, w_hh, T, B, I, H,
                             G3, truncate, stop_on_nonfinite, first_nonfinite);
    /* columns r, z: both biases; n: b_in from 2H, b_hn from 3H */
    if (gc_rec_add_bias_sums(st, mem.bacc, db_ih, db_hh, 2 * H, stop_on_nonfinite,
                             *first_nonfinite)) {
        gc_rec_acc_add(db_ih ? db_ih + 2 * H : NULL, mem.bacc + 2 * H, H);
        gc_rec_acc_add(db_hh ? db_hh + 2 * H : NULL, mem.bacc + 3 * H, H);
    }
    free(scratch);
    return st;
}

GC_DISPATCH(int, gru_forward,
            (real *out, real *gates, const real *x, const real *h0, const real *w_ih,
             const real *w_hh, const real *b_ih, const real *b_hh, int64_t T, int64_t B,
             int64_t I, int64_t H, int stop_on_nonfinite, int64_t *first_nonfinite),
            (out, gates, x, h0, w_ih, w_hh, b_ih, b_hh, T, B, I, H, stop_on_nonfinite,
             first_nonfinite))
GC_DISPATCH(int, gru_backward,
            (real *dx, real *dh0, real *dw_ih, real *dw_hh, real *db_ih, real *db_hh,
             double *step_norms, const real *d_out, const real *d_hT, const real *x,
             const real *h0, const real *out, real *gates, const real *w_ih, const real *w_hh,
             int64_t T, int64_t B, int64_t I, int64_t H, int64_t truncate, int stop_on_nonfinite,
             int64_t *first_nonfinite),
            (dx, dh0, dw_ih, dw_hh, db_ih, db_hh, step_norms, d_out, d_hT, x, h0, out, gates,
             w_ih, w_hh, T, B, I, H, truncate, stop_on_nonfinite, first_nonfinite))
