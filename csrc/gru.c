/* gru.c -- GRU over a whole sequence: forward and BPTT in one call each
 * (template: see kernel.h; contract in the recurrent section of gradcore.h).
 *
 * Gates in PyTorch order r, z, n (rows of W_ih (3H, I), W_hh (3H, H)):
 *   r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
 *   z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
 *   n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
 *   h_t = (1 - z) * n + z * h_{t-1}
 * Cache gates (T, B, 4H), per row [r, z, n, hn] with hn = W_hn h + b_hn
 * (needed for dr); with out h: 5 x T*B*H elements. Forward: the input
 * projection x W_ih^T is one GEMM per chunk of steps into the first 3H
 * columns of the cache, just ahead of the loop; per step one recurrent GEMM for all three gates into a (B, 3H)
 * scratch and one fused pass. Backward consumes the cache: row t becomes
 * [dA_r, dA_z, dA_n, r * dA_n] (input-side gradients in columns 0..3H, the
 * hidden-side n gradient in 3H..4H); per step one GEMM for the carry and the
 * bias sums; per finished chunk of steps: dW_ih, dx from columns 0..3H, dW_hh
 * as two products (rows r,z from columns 0..2H and rows n from 3H..4H).
 * Every GEMM goes through gc_rec_gemm (recurrent.h), which issues large
 * products as BLAS tiles. Scratch (malloc): W_hh^T (3H*H) and W_ih^T (3H*I)
 * in forward, O(B*H + H) otherwise.
 */
#include "kernel.h"
#include "recurrent.h"

#include <stdlib.h>

static int check_dims(int64_t T, int64_t B, int64_t I, int64_t H) {
    return T >= 1 && B >= 1 && I >= 1 && H >= 1;
}

/* One batch row of the forward cell; returns 1 when h holds NaN/Inf. */
static int cell_fwd(real *restrict gr, real *restrict gz, real *restrict gn, real *restrict ghn,
                    real *restrict h, const real *restrict hr, const real *restrict hz,
                    const real *restrict hn, const real *restrict hp, const real *restrict br,
                    const real *restrict bz, const real *restrict bin, const real *restrict bhn,
                    int64_t H) {
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
static void cell_bwd(real *restrict gr, real *restrict gz, real *restrict gn, real *restrict ghn,
                     real *restrict ar, real *restrict az, real *restrict an,
                     real *restrict cb, const real *restrict dhb, const real *restrict hp,
                     int64_t H) {
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

/* Forward. out (T, B, H) := h_t; gates (T, B, 4H) := r, z, n, hn; h0 (B, H)
 * or NULL; b_ih, b_hh (3H) or NULL. first_nonfinite / stop_on_nonfinite as in
 * gc_rnn_forward. */
int GC_IMPL(gru_forward)(real *out, real *gates, const real *x, const real *h0, const real *w_ih,
                         const real *w_hh, const real *b_ih, const real *b_hh, int64_t T,
                         int64_t B, int64_t I, int64_t H, int stop_on_nonfinite,
                         int64_t *first_nonfinite) {
    if (!out || !gates || !x || !w_ih || !w_hh || !first_nonfinite || !check_dims(T, B, I, H))
        return GC_ERR_ARG;
    *first_nonfinite = -1;
    const int64_t BH = B * H, G3 = 3 * H, G4 = 4 * H;
    /* bias: [b_ir + b_hr, b_iz + b_hz, b_in, b_hn]; gh: (B, 3H); zeros: (B, H) */
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
    const int small = gc_rec_use_small(B, G3, H);
    real *wiht;
    real *wt = gc_rec_make_wts(w_hh, w_ih, G3, H, I, &wiht);
    if (!wt) {
        free(bias);
        return GC_ERR_NOMEM;
    }
    const int64_t tc = gc_rec_proj_chunk(B, G4);
    int st = GC_OK;
    for (int64_t t = 0; t < T && st == GC_OK; t++) {
        if (t % tc == 0) st = gc_rec_in_proj(gates, G4, x, wiht, t, T, tc, B, G3, I);
        if (st != GC_OK) break;
        real *gt = gates + t * B * G4;
        const real *hprev = t ? out + (t - 1) * BH : h0;
        if (hprev)
            st = gc_rec_recur_fwd(gh, G3, hprev, wt, small, B, G3, H, (real)0);
        else
            memset(gh, 0, sizeof(real) * (size_t)(B * G3));
        if (st != GC_OK) break;
        if (!hprev) hprev = zeros;
        int bad = 0;
        for (int64_t b = 0; b < B; b++) {
            real *gb = gt + b * G4;
            const real *hb = gh + b * G3;
            bad |= cell_fwd(gb, gb + H, gb + 2 * H, gb + 3 * H, out + t * BH + b * H, hb, hb + H,
                            hb + 2 * H, hprev + b * H, bias, bias + H, bias + 2 * H, bias + 3 * H,
                            H);
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

/* dW_ih, dW_hh (+=) and dx rows of steps [t0, t0 + n), from the rows
 * [dA_r, dA_z, dA_n, r * dA_n]: W_ih and dx from columns 0..3H; the r, z rows
 * of dW_hh from columns 0..2H, its n rows from 3H..4H. */
static int grads(real *dx, real *dw_ih, real *dw_hh, const real *ga, const real *x,
                 const real *h0, const real *out, const real *w_ih, int64_t t0, int64_t n,
                 int64_t B, int64_t I, int64_t H) {
    /* r and z rows of dW_hh from a_r, a_z (columns 0..2H); the n rows from
     * the saved dhn = a_n * r (column 3H), not from a_n (column 2H). */
    int st = gc_rec_weight_grads(dw_ih, 3 * H, dw_hh, 2 * H, ga, 4 * H, x, out, h0, t0, n, B, I,
                                 H);
    if (st == GC_OK)
        st = gc_rec_dw_hh(dw_hh + 2 * H * H, ga + 3 * H, 4 * H, H, out, h0, t0, n, B, H);
    if (st == GC_OK && dx) st = gc_rec_dx(dx, ga, 4 * H, 3 * H, w_ih, t0, n, B, I);
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
        !check_dims(T, B, I, H) || truncate < 0)
        return GC_ERR_ARG;
    *first_nonfinite = -1;
    const int64_t BH = B * H, G3 = 3 * H, G4 = 4 * H;
    real *scratch = malloc(sizeof(real) * (size_t)(3 * BH + B * G3));
    if (!scratch) return GC_ERR_NOMEM;
    real *dh = scratch, *carry = scratch + BH, *zeros = scratch + 2 * BH, *da = scratch + 3 * BH;
    memset(zeros, 0, sizeof(real) * (size_t)BH);
    memcpy(carry, d_hT ? d_hT : zeros, sizeof(real) * (size_t)BH);
    const int small = gc_rec_use_small(B, G3, H);
    const int64_t tcb = gc_rec_grad_chunk(B, G4, G3, H, stop_on_nonfinite);
    double *bacc = db_ih || db_hh ? calloc((size_t)G4, sizeof(double)) : NULL;
    if ((db_ih || db_hh) && !bacc) {
        free(scratch);
        return GC_ERR_NOMEM;
    }
    int st = GC_OK;

    for (int64_t t = T - 1; t >= 0; t--) {
        real *gt = gates + t * B * G4;
        const real *hprev = t ? out + (t - 1) * BH : (h0 ? h0 : zeros);
        int bad = 0;
        double nrm = gc_rec_combine(dh, d_out ? d_out + t * BH : NULL, carry, NULL, BH, &bad);
        if (step_norms) step_norms[t] = nrm;
        if (bad && *first_nonfinite < 0) {
            *first_nonfinite = t;
            if (stop_on_nonfinite) {
                if (step_norms)
                    for (int64_t s = 0; s < t; s++) step_norms[s] = NAN;
                free(scratch);
                free(bacc);
                return GC_OK;
            }
        }
        for (int64_t b = 0; b < B; b++) {
            real *gb = gt + b * G4, *ab = da + b * G3;
            cell_bwd(gb, gb + H, gb + 2 * H, gb + 3 * H, ab, ab + H, ab + 2 * H, carry + b * H,
                     dh + b * H, hprev + b * H, H);
        }
        if (bacc) gc_rec_rowsum_acc(bacc, gt, B, G4, G4);
        if (t > 0 && !gc_rec_cut(t, truncate)) {
            st = gc_rec_recur_bwd(carry, da, G3, w_hh, small, B, G3, H, (real)1);
        } else if (t > 0) {
            memset(carry, 0, sizeof(real) * (size_t)BH);
        } else if (dh0) {
            st = gc_rec_recur_bwd(carry, da, G3, w_hh, small, B, G3, H, (real)1);
            memcpy(dh0, carry, sizeof(real) * (size_t)BH);
        }
        if (st != GC_OK) break;
        if (tcb && t % tcb == 0) {
            st = grads(dx, dw_ih, dw_hh, gates, x, h0, out, w_ih, t, T - t < tcb ? T - t : tcb, B,
                       I, H);
            if (st != GC_OK) break;
        }
    }
    free(scratch);
    if (st == GC_OK && bacc) { /* columns r, z: both biases; n: b_in from 2H, b_hn from 3H */
        gc_rec_acc_add(db_ih, bacc, 2 * H);
        gc_rec_acc_add(db_hh, bacc, 2 * H);
        gc_rec_acc_add(db_ih ? db_ih + 2 * H : NULL, bacc + 2 * H, H);
        gc_rec_acc_add(db_hh ? db_hh + 2 * H : NULL, bacc + 3 * H, H);
    }
    free(bacc);
    if (st != GC_OK) return st;

    if (!tcb) st = grads(dx, dw_ih, dw_hh, gates, x, h0, out, w_ih, 0, T, B, I, H);
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
