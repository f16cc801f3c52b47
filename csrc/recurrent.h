/* recurrent.h -- helpers shared by rnn.c, lstm.c and gru.c (internal;
 * included after kernel.h, so `real` is this compile's element type).
 *
 * - gc_rec_tanh / gc_rec_sigmoid: the shared element functions of
 *   act_inline.h, inlined and vectorized inside the fused cell loops.
 * - gc_rec_gemm: row-major GEMM through BLAS, large products as tiles that
 *   hit OpenBLAS's small-matrix path; gc_rec_in_proj: the input projection
 *   of all steps through a transposed copy of W_ih.
 * - gc_rec_recur_fwd / gc_rec_recur_bwd: the per-step recurrent product,
 *   through BLAS, or through a hand-vectorized small-matrix path when the
 *   recurrent matrix is tiny (see GC_REC_SMALL below).
 * - gc_rec_combine: dh = d_out[t] + carry, with ||dh|| (float64, GC_NACC
 *   accumulators, fixed order) and a non-finite flag from the same pass.
 * - gc_rec_rowsum_acc / gc_rec_acc_add: bias gradients, float64 sums of
 *   each step's gradient rows taken inside the backward loop.
 * - gc_rec_weight_grads / gc_rec_dw_hh / gc_rec_dx / gc_rec_grad_chunk:
 *   dW_ih, dW_hh and dx over the rows of a chunk of finished steps.
 * - gc_rec_forward / gc_rec_backward: the forward and BPTT loops of every
 *   cell (the driver), with gc_rec_check_dims and interrupt polling.
 */
#ifndef GC_RECURRENT_H
#define GC_RECURRENT_H

#include <stdlib.h>
#include <string.h>

/* ---- element functions ----------------------------------------------------
 * The dense kernels' tanh / sigmoid (act_inline.h: branch-free, vectorizable
 * float32 versions with max abs error ~1e-7 against float64; libm for
 * float64), so every layer of the library computes the same values. */
#include "act_inline.h"

static inline real gc_rec_tanh(real x) { return gc_tanh(x); }
static inline real gc_rec_sigmoid(real x) { return gc_sigmoid(x); }

/* Non-finite test usable in vectorized integer OR-reductions. */
#define GC_REC_BAD(v) ((v) - (v) != (v) - (v))

/* Elman nonlinearities (gc_rnn_* act argument). */
enum { GC_REC_IDENTITY = 0, GC_REC_RELU = 1, GC_REC_TANH = 2 };

/* ---- per-step recurrent products ------------------------------------------ */

/* Small-matrix path: for a single sequence (B = 1) whose recurrent matrix
 * has at most GC_REC_SMALL elements (G*H*H: RNN H <= 64, GRU H <= 36, LSTM
 * H <= 32) the per-step matrix-vector product is done by the hand-vectorized
 * loop below instead of BLAS GEMV: a step is then a few thousand FLOPs and
 * the BLAS call (argument checks, dispatch) is a sizeable part of it. Measured
 * on the development machine (T=1000, fwd+bwd, 1 thread): 1.03-1.17x faster
 * than GEMV for RNN H=8..64, 1.01-1.12x for LSTM H=8..32, 0.99-1.14x for GRU.
 * With B >= 2 a BLAS GEMM (which reuses each loaded weight across the batch
 * rows) was faster at every size tried (B=2..64, H=32/64), so it is used
 * there. The loop sums in a fixed order, so both SIMD paths give identical
 * results. */
#define GC_REC_SMALL 4096

static inline int gc_rec_use_small(int64_t B, int64_t GH, int64_t H) {
    return B == 1 && GH * H <= GC_REC_SMALL;
}

/* Small-path building block: y[j] (+)= sum_{g < m} c[g] * rows[g * ld + j] for
 * j < n <= GC_REC_JB. The partial sums live in a fixed-size local array that
 * the compiler keeps in vector registers (no load/store per term); terms are
 * added four at a time in a fixed order, so both SIMD paths agree bit for bit. */
#define GC_REC_JB 32
static inline void gc_rec_small_block(real *restrict y, const real *restrict c,
                                      const real *restrict rows, int64_t ld, int64_t m,
                                      int64_t n, int add) {
    real acc[GC_REC_JB];
    for (int j = 0; j < GC_REC_JB; j++) acc[j] = 0;
    int64_t g = 0;
    if (n == GC_REC_JB) {
        for (; g + 4 <= m; g += 4) {
            const real c0 = c[g], c1 = c[g + 1], c2 = c[g + 2], c3 = c[g + 3];
            const real *r0 = rows + g * ld, *r1 = r0 + ld, *r2 = r1 + ld, *r3 = r2 + ld;
            for (int j = 0; j < GC_REC_JB; j++)
                acc[j] = acc[j] + ((c0 * r0[j] + c1 * r1[j]) + (c2 * r2[j] + c3 * r3[j]));
        }
        for (; g < m; g++) {
            const real cg = c[g];
            const real *rg = rows + g * ld;
            for (int j = 0; j < GC_REC_JB; j++) acc[j] = acc[j] + cg * rg[j];
        }
    } else {
        for (; g + 4 <= m; g += 4) {
            const real c0 = c[g], c1 = c[g + 1], c2 = c[g + 2], c3 = c[g + 3];
            const real *r0 = rows + g * ld, *r1 = r0 + ld, *r2 = r1 + ld, *r3 = r2 + ld;
            for (int64_t j = 0; j < n; j++)
                acc[j] = acc[j] + ((c0 * r0[j] + c1 * r1[j]) + (c2 * r2[j] + c3 * r3[j]));
        }
        for (; g < m; g++) {
            const real cg = c[g];
            const real *rg = rows + g * ld;
            for (int64_t j = 0; j < n; j++) acc[j] = acc[j] + cg * rg[j];
        }
    }
    if (add)
        for (int64_t j = 0; j < n; j++) y[j] = y[j] + acc[j];
    else
        for (int64_t j = 0; j < n; j++) y[j] = acc[j];
}

/* Tiled GEMM: the row-major product C(M, N) = beta * C + op(A) op(B) (inner
 * dimension K; arguments as GEMM_RM with alpha = 1) as a sequence of BLAS
 * calls on tiles of at most GC_REC_TILE_MNK multiply-adds (C tiles of up to
 * 128 columns, K chunks of up to 128, as many rows as fit). Every tile is one
 * GEMM_RM call; K chunks after the first accumulate with beta = 1, in fixed
 * order, so the result does not depend on the SIMD path. Why: OpenBLAS's
 * SkylakeX kernels (the ones scipy's OpenBLAS selects on the AVX-512
 * development machine) take a no-copy small-matrix path when
 * M*N*K <= 1e6, which at the recurrent sizes runs at 100-115 GFLOP/s against
 * 55-85 for the packed path (1 thread, float32, e.g. (32 x 128) x (128 x 128):
 * 9.3 us alone vs 64.7 us for the 4-gate (32 x 512) product, 4 x 9.3 = 37 us
 * tiled; the after-loop dW_ih product at T*B = 32000, I = 32, H = 128:
 * 10.1 ms as one call, 2.3 ms tiled). Loop order: the longest of M and K
 * outermost, so a long reduction (weight gradients over T*B rows) streams
 * A and B once while C stays in cache. */
#define GC_REC_TILE_MNK 524288
static inline int gc_rec_gemm(int ta, int tb, int64_t M, int64_t N, int64_t K,
                              const real *A, int64_t lda, const real *Bm, int64_t ldb,
                              real beta, real *C, int64_t ldc) {
    const int64_t nt = N < 128 ? N : 128, kt = K < 128 ? K : 128;
    int64_t mt = nt * kt > 0 ? GC_REC_TILE_MNK / (nt * kt) : M;
    if (mt < 1) mt = 1;
    if (mt > M) mt = M;
    if (M * N * K <= GC_REC_TILE_MNK || M == 0 || N == 0 || K == 0)
        return GEMM_RM(ta, tb, M, N, K, (real)1, A, lda, Bm, ldb, beta, C, ldc);
    /* element (i, k) of op(A) / (k, j) of op(B) */
#define GC_REC_AT(i, k) (ta ? A + (k) * lda + (i) : A + (i) * lda + (k))
#define GC_REC_BT(k, j) (tb ? Bm + (j) * ldb + (k) : Bm + (k) * ldb + (j))
    int st = GC_OK;
    if (K >= M) {
        for (int64_t k0 = 0; k0 < K && st == GC_OK; k0 += kt)
            for (int64_t m0 = 0; m0 < M && st == GC_OK; m0 += mt)
                for (int64_t n0 = 0; n0 < N && st == GC_OK; n0 += nt)
                    st = GEMM_RM(ta, tb, M - m0 < mt ? M - m0 : mt, N - n0 < nt ? N - n0 : nt,
                                 K - k0 < kt ? K - k0 : kt, (real)1, GC_REC_AT(m0, k0), lda,
                                 GC_REC_BT(k0, n0), ldb, k0 ? (real)1 : beta, C + m0 * ldc + n0,
                                 ldc);
    } else {
        for (int64_t m0 = 0; m0 < M && st == GC_OK; m0 += mt)
            for (int64_t n0 = 0; n0 < N && st == GC_OK; n0 += nt)
                for (int64_t k0 = 0; k0 < K && st == GC_OK; k0 += kt)
                    st = GEMM_RM(ta, tb, M - m0 < mt ? M - m0 : mt, N - n0 < nt ? N - n0 : nt,
                                 K - k0 < kt ? K - k0 : kt, (real)1, GC_REC_AT(m0, k0), lda,
                                 GC_REC_BT(k0, n0), ldb, k0 ? (real)1 : beta, C + m0 * ldc + n0,
                                 ldc);
    }
#undef GC_REC_AT
#undef GC_REC_BT
    return st;
}

/* y(B, GH; row stride ldy) = beta * y + h(B, H) W^T, given wt = W^T (H, GH)
 * (the caller transposes W once per sequence: OpenBLAS's NN kernels are about
 * twice as fast as the transposed-operand ones at these sizes). beta is 0 or
 * 1. small: the hand-vectorized path (see GC_REC_SMALL). */
static inline int gc_rec_recur_fwd(real *restrict y, int64_t ldy, const real *restrict h,
                                   const real *restrict wt, int small, int64_t B, int64_t GH,
                                   int64_t H, real beta) {
    if (small) {
        for (int64_t b = 0; b < B; b++)
            for (int64_t j0 = 0; j0 < GH; j0 += GC_REC_JB)
                gc_rec_small_block(y + b * ldy + j0, h + b * H, wt + j0, GH, H,
                                   GH - j0 < GC_REC_JB ? GH - j0 : GC_REC_JB, beta != (real)0);
        return GC_OK;
    }
    if (B == 1) return GEMV_RM(1, H, GH, (real)1, wt, GH, h, beta, y);
    return gc_rec_gemm(0, 0, B, GH, H, h, H, wt, GH, beta, y, ldy);
}

/* dh(B, H) = beta * dh + da(B, GH; row stride lda) W with W (GH, H). Small
 * path (small != 0) reads W directly (rows of W are the axpy vectors). */
static inline int gc_rec_recur_bwd(real *restrict dh, const real *restrict da, int64_t lda,
                                   const real *restrict w, int small, int64_t B, int64_t GH,
                                   int64_t H, real beta) {
    if (small) {
        for (int64_t b = 0; b < B; b++)
            for (int64_t j0 = 0; j0 < H; j0 += GC_REC_JB)
                gc_rec_small_block(dh + b * H + j0, da + b * lda, w + j0, H, GH,
                                   H - j0 < GC_REC_JB ? H - j0 : GC_REC_JB, beta != (real)0);
        return GC_OK;
    }
    if (B == 1) return GEMV_RM(1, GH, H, (real)1, w, H, da, beta, dh);
    return gc_rec_gemm(0, 0, B, H, GH, da, lda, w, H, beta, dh, H);
}

/* W (GH, H) -> wt (H, GH), in 32 x 32 tiles. */
static inline void gc_rec_transpose(real *restrict wt, const real *restrict w, int64_t GH,
                                    int64_t H) {
    enum { TB = 32 };
    for (int64_t g0 = 0; g0 < GH; g0 += TB)
        for (int64_t k0 = 0; k0 < H; k0 += TB) {
            int64_t g1 = g0 + TB < GH ? g0 + TB : GH, k1 = k0 + TB < H ? k0 + TB : H;
            for (int64_t g = g0; g < g1; g++)
                for (int64_t k = k0; k < k1; k++) wt[k * GH + g] = w[g * H + k];
        }
}

/* W_hh^T (H, G) and W_ih^T (I, G) for the forward pass, in one malloc'd
 * block: returns W_hh^T (free it alone) and sets *wiht; NULL when out of
 * memory. */
static inline real *gc_rec_make_wts(const real *w_hh, const real *w_ih, int64_t G, int64_t H,
                                    int64_t I, real **wiht) {
    real *wt = malloc(sizeof(real) * (size_t)(G * (H + I)));
    if (!wt) return NULL;
    gc_rec_transpose(wt, w_hh, G, H);
    *wiht = wt + G * H;
    gc_rec_transpose(*wiht, w_ih, G, I);
    return wt;
}

/* Input projection in chunks of steps: y rows of steps [t, t + tc) (B rows
 * each, row stride ldy, G columns) = x_t W_ih^T, given wiht = W_ih^T (I, G)
 * (a transposed copy: the NN tiles run at ~100 GFLOP/s against ~65-75 for
 * the transposed-operand product). The forward loops call it every tc steps
 * (gc_rec_proj_chunk) instead of once for the whole sequence, so the rows the
 * next steps add their recurrent product to are still in cache. */
static inline int gc_rec_in_proj(real *y, int64_t ldy, const real *x, const real *wiht, int64_t t,
                                 int64_t T, int64_t tc, int64_t B, int64_t G, int64_t I) {
    int64_t n = T - t < tc ? T - t : tc;
    return gc_rec_gemm(0, 0, n * B, G, I, x + t * B * I, I, wiht, G, (real)0, y + t * B * ldy,
                       ldy);
}

/* Steps per input-projection chunk: about 128 KiB of destination rows. */
static inline int64_t gc_rec_proj_chunk(int64_t B, int64_t ldy) {
    int64_t tc = (int64_t)(131072 / sizeof(real)) / (B * ldy);
    return tc < 1 ? 1 : tc;
}

/* ---- norms and checks ------------------------------------------------------ */

/* Scaled sum of squares for float64 values whose plain sum overflowed. */
static double gc_rec_scaled_norm(const real *v, int64_t n) {
    double m = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double a = fabs((double)v[i]);
        m = a > m ? a : m;
    }
    if (m == 0.0) return 0.0;
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double a = (double)v[i] / m;
        s += a * a;
    }
    return m * sqrt(s);
}

/* dh[i] = a[i] (+ c[i] when c) (+ e[i] when e), for i < n; returns ||dh||_2
 * (float64, GC_NACC accumulators in fixed order) and sets *bad when any dh is
 * NaN/Inf. a, c, e may be NULL (treated as zero). */
static inline double gc_rec_combine(real *restrict dh, const real *a, const real *c,
                                    const real *e, int64_t n, int *bad) {
    double acc[GC_NACC] = {0};
    int flag = 0;
    int64_t i = 0;
    if (!a && !c && !e) {
        memset(dh, 0, sizeof(real) * (size_t)n);
        return 0.0;
    }
    for (; i + GC_NACC <= n; i += GC_NACC)
        for (int k = 0; k < GC_NACC; k++) {
            real v = (a ? a[i + k] : (real)0);
            if (c) v = v + c[i + k];
            if (e) v = v + e[i + k];
            dh[i + k] = v;
            acc[k] += (double)v * (double)v;
            flag |= GC_REC_BAD(v);
        }
    for (int k = 0; i < n; i++, k++) {
        real v = (a ? a[i] : (real)0);
        if (c) v = v + c[i];
        if (e) v = v + e[i];
        dh[i] = v;
        acc[k] += (double)v * (double)v;
        flag |= GC_REC_BAD(v);
    }
    for (int w = GC_NACC / 2; w > 0; w /= 2)
        for (int k = 0; k < w; k++) acc[k] += acc[k + w];
    *bad = flag;
    double s = acc[0];
    if (!flag && isinf(s)) return gc_rec_scaled_norm(dh, n);
    return sqrt(s);
}

/* ||v||_2 over v[0..n) (float64, GC_NACC accumulators in fixed order; the
 * scaled pass when the plain sum overflows). */
static inline double gc_rec_norm(const real *v, int64_t n) {
    double acc[GC_NACC] = {0};
    int64_t i = 0;
    for (; i + GC_NACC <= n; i += GC_NACC)
        for (int k = 0; k < GC_NACC; k++) acc[k] += (double)v[i + k] * (double)v[i + k];
    for (int k = 0; i < n; i++, k++) acc[k] += (double)v[i] * (double)v[i];
    for (int w = GC_NACC / 2; w > 0; w /= 2)
        for (int k = 0; k < w; k++) acc[k] += acc[k + w];
    double s = acc[0];
    if (isinf(s)) return gc_rec_scaled_norm(v, n);
    return sqrt(s);
}

/* 1 when any of x[0..n) is NaN/Inf. */
static inline int gc_rec_any_bad(const real *x, int64_t n) {
    int flag = 0;
    for (int64_t i = 0; i < n; i++) flag |= GC_REC_BAD(x[i]);
    return flag;
}

/* acc[j] += sum_r m[r * ld + j] for r < rows, j < n (float64, rows in
 * order): the bias-gradient sums, taken step by step inside the backward
 * loops while the step's gradient rows are still in cache (one pass over
 * the (T, B, G) gradients less than a column reduction after the loop). */
static inline void gc_rec_rowsum_acc(double *restrict acc, const real *restrict m, int64_t rows,
                                     int64_t ld, int64_t n) {
    for (int64_t r = 0; r < rows; r++) {
        const real *row = m + r * ld;
        for (int64_t j = 0; j < n; j++) acc[j] += (double)row[j];
    }
}

/* d[j] += acc[j] for j < n (d may be NULL). */
static inline void gc_rec_acc_add(real *d, const double *acc, int64_t n) {
    if (d)
        for (int64_t j = 0; j < n; j++) d[j] = (real)((double)d[j] + acc[j]);
}

/* ---- weight gradients and dx, by chunks of steps ---------------------------
 * a: the pre-activation gradients of all steps (row stride lda; step t's B
 * rows start at a + t*B*lda), columns 0..n-1 of a row being the gradients of
 * n weight rows. The backward loops call these for each finished chunk of
 * steps [t0, t0 + n) (gc_rec_grad_chunk steps, counted down from the end),
 * while the chunk's gradient rows are still in cache, instead of once over
 * all T*B rows after the loop; with stop_on_nonfinite (where a stopped pass
 * must leave every gradient untouched) they run once after the loop. */

/* dw_hh (n, H) += sum over t in [t0, t0 + nt) of a_t[:, :n]^T h_{t-1}, with
 * h_{t-1} = out[t - 1] (out (T, B, H)), or h0 for t = 0 (no term when h0 is
 * NULL): one product over the chunk's steps t >= 1, one for step 0. */
static inline int gc_rec_dw_hh(real *dw_hh, const real *a, int64_t lda, int64_t n,
                               const real *out, const real *h0, int64_t t0, int64_t nt,
                               int64_t B, int64_t H) {
    const int64_t first = t0 ? t0 : 1;
    int st = GC_OK;
    if (t0 + nt > first)
        st = gc_rec_gemm(1, 0, n, H, (t0 + nt - first) * B, a + first * B * lda, lda,
                         out + (first - 1) * B * H, H, (real)1, dw_hh, H);
    if (st == GC_OK && t0 == 0 && h0)
        st = gc_rec_gemm(1, 0, n, H, B, a, lda, h0, H, (real)1, dw_hh, H);
    return st;
}

/* Over the rows of steps [t0, t0 + nt): dw_ih (n_ih, I) += a[:, :n_ih]^T x,
 * then dw_hh (n_hh, H) += the recurrent term of a[:, :n_hh] (gc_rec_dw_hh). */
static inline int gc_rec_weight_grads(real *dw_ih, int64_t n_ih, real *dw_hh, int64_t n_hh,
                                      const real *a, int64_t lda, const real *x,
                                      const real *out, const real *h0, int64_t t0, int64_t nt,
                                      int64_t B, int64_t I, int64_t H) {
    int st = gc_rec_gemm(1, 0, n_ih, I, nt * B, a + t0 * B * lda, lda, x + t0 * B * I, I,
                         (real)1, dw_ih, I);
    if (st == GC_OK) st = gc_rec_dw_hh(dw_hh, a, lda, n_hh, out, h0, t0, nt, B, H);
    return st;
}

/* dx rows of steps [t0, t0 + nt) = a[:, :G] W_ih (W_ih (G, I)). */
static inline int gc_rec_dx(real *dx, const real *a, int64_t lda, int64_t G, const real *w_ih,
                            int64_t t0, int64_t nt, int64_t B, int64_t I) {
    return gc_rec_gemm(0, 0, nt * B, I, G, a + t0 * B * lda, lda, w_ih, I, (real)0,
                       dx + t0 * B * I, I);
}

/* Steps per weight-gradient chunk: about 512 KiB of gradient rows (half the
 * per-core L2 of the development machine); 0 (one pass after the loop) with
 * stop_on_nonfinite, or when dW_hh (n_hh x H) is over 512 KiB: every chunk
 * reads and writes all of dW, which then no longer stays in cache (RNN
 * H = 512: float32 backward no faster chunked, float64 ~10% slower). */
static inline int64_t gc_rec_grad_chunk(int64_t B, int64_t lda, int64_t n_hh, int64_t H,
                                        int stop_on_nonfinite) {
    if (stop_on_nonfinite || n_hh * H * (int64_t)sizeof(real) > 524288) return 0;
    int64_t tc = (int64_t)(524288 / sizeof(real)) / (B * lda);
    return tc < 1 ? 1 : tc;
}

/* Truncated BPTT: with window length k > 0 the sequence is cut into windows
 * [0, k), [k, 2k), ...; no gradient crosses from step t to t-1 when t is a
 * window start (t % k == 0, t > 0). k == 0: full BPTT. */
static inline int gc_rec_cut(int64_t t, int64_t k) { return k > 0 && t > 0 && t % k == 0; }

/* ---- the recurrent driver ---------------------------------------------------
 * The forward loop and the BPTT loop of every recurrent kernel, written once.
 * Each cell file (rnn.c, lstm.c, gru.c) supplies only its cell maths and gate
 * layout as static step functions; the drivers are always inlined and their
 * step arguments are constants at each call, so the compiler inlines the
 * cells into the loops (-O3) and the result is the code of a hand-written
 * loop per cell. Both drivers poll for an interrupt (gc_interrupt_poll, about
 * every 2^24 multiply-adds) and return GC_ERR_INTERRUPTED when it fires. */
#if defined(__GNUC__)
#define GC_REC_DRIVER static inline __attribute__((always_inline))
#else
#define GC_REC_DRIVER static inline
#endif

/* Sizes every recurrent kernel accepts. */
static inline int gc_rec_check_dims(int64_t T, int64_t B, int64_t I, int64_t H) {
    return T >= 1 && B >= 1 && I >= 1 && H >= 1;
}

/* Interrupt polling: work (multiply-adds) is counted per step and the
 * installed check (see gc_interrupt_set) is asked each time 2^24 of it has
 * passed (a few ms of compute), so a short call never asks at all. */
#define GC_REC_POLL_WORK ((int64_t)1 << 24)
static inline int gc_rec_poll(int64_t *budget, int64_t work) {
    *budget -= work;
    if (*budget > 0) return 0;
    *budget = GC_REC_POLL_WORK;
    return gc_interrupt_poll();
}

/* Forward step of a cell: step t's B cache rows y (ld columns, the input
 * projection and, when the driver's rec is NULL, the recurrent product
 * already added), hprev = h_{t-1} (NULL: zero initial state), rec = the
 * step's recurrent product (B, GH) when the driver was given a scratch.
 * Writes the step's states; returns nonzero when one is non-finite. */
typedef int (*gc_rec_fwd_step)(void *cell, int64_t t, real *y, const real *hprev,
                               const real *rec);

/* The forward loop. cache (T, B, ld): the input projection x W_ih^T goes
 * into its columns [0, GH), one product per chunk of steps just ahead of the
 * loop; out (T, B, H): the states h_t (written by the step); rec NULL: the
 * recurrent product h_{t-1} W_hh^T is added into the cache rows (beta = 1),
 * else it is written into rec (B, GH) (zeros without h_{t-1}). Malloc:
 * W_hh^T and W_ih^T. */
GC_REC_DRIVER int gc_rec_forward(gc_rec_fwd_step step, void *cell, real *cache, int64_t ld,
                                 real *rec, const real *out, const real *x, const real *h0,
                                 const real *w_ih, const real *w_hh, int64_t T, int64_t B,
                                 int64_t I, int64_t H, int64_t GH, int stop_on_nonfinite,
                                 int64_t *first_nonfinite) {
    const int64_t BH = B * H;
    const int small = gc_rec_use_small(B, GH, H);
    real *wiht;
    real *wt = gc_rec_make_wts(w_hh, w_ih, GH, H, I, &wiht);
    if (!wt) return GC_ERR_NOMEM;
    const int64_t tc = gc_rec_proj_chunk(B, ld), work = B * GH * (H + I) + 1;
    int64_t budget = GC_REC_POLL_WORK;
    int st = GC_OK;
    for (int64_t t = 0; t < T; t++) {
        if (t % tc == 0) st = gc_rec_in_proj(cache, ld, x, wiht, t, T, tc, B, GH, I);
        if (st != GC_OK) break;
        real *y = cache + t * B * ld;
        const real *hprev = t ? out + (t - 1) * BH : h0;
        if (hprev)
            st = rec ? gc_rec_recur_fwd(rec, GH, hprev, wt, small, B, GH, H, (real)0)
                     : gc_rec_recur_fwd(y, ld, hprev, wt, small, B, GH, H, (real)1);
        else if (rec)
            memset(rec, 0, sizeof(real) * (size_t)(B * GH));
        if (st != GC_OK) break;
        if (step(cell, t, y, hprev, rec) && *first_nonfinite < 0) {
            *first_nonfinite = t;
            if (stop_on_nonfinite) break;
        }
        if (gc_rec_poll(&budget, work)) {
            st = GC_ERR_INTERRUPTED;
            break;
        }
    }
    free(wt);
    return st;
}

/* 1 when a backward pass ended early at a non-finite step (then it wrote no
 * gradient, and the caller adds no bias sums either). */
static inline int gc_rec_stopped(int stop_on_nonfinite, int64_t first_nonfinite) {
    return stop_on_nonfinite && first_nonfinite >= 0;
}

/* Backward step of a cell: dh = dL/dh_t (B, H) in; writes step t's gradient
 * rows (the driver's grad at t: the pre-activation gradients), and
 * carry_h / carry_c as the cell needs (carry_c: dL/dc carried to c_{t-1}
 * when the driver has a cell state; the GRU's direct path dh * z goes into
 * carry_h, which the recurrent product then accumulates onto). Returns
 * nonzero when a gradient the cell formed is non-finite. */
typedef int (*gc_rec_bwd_step)(void *cell, int64_t t, const real *dh, real *carry_h,
                               real *carry_c);
/* dW_ih, dW_hh (+=) and dx of steps [t0, t0 + n), from the gradient rows. */
typedef int (*gc_rec_grad_fn)(void *cell, int64_t t0, int64_t n);

/* The BPTT loop. grad (T, B, ld): the gradient rows the step writes (and
 * the bias sums read: bacc[j] += columns j < nb, float64, when bacc);
 * the carry to h_{t-1} is carry_h = beta * carry_h + R W_hh with R the step's
 * gradient rows (rsrc NULL, row stride ld) or rsrc (B, GH). has_c: a cell
 * state carry, started from d_cT, cut with the windows, ending in dc0.
 * n_hh: rows of dW_hh a chunk touches (sets the chunk length). Norms, the
 * first non-finite step and stop_on_nonfinite as in gc_rnn_backward; on a
 * stop, extra_norms (e.g. the LSTM cell norms) of earlier steps are NaN too. */
GC_REC_DRIVER int gc_rec_backward(gc_rec_bwd_step step, gc_rec_grad_fn grads, void *cell,
                                  const real *grad, int64_t ld, const real *rsrc, real beta,
                                  int has_c, double *bacc, int64_t nb, int64_t n_hh,
                                  real *dh0, real *dc0, double *step_norms, double *extra_norms,
                                  const real *d_out, const real *d_hT, const real *d_cT,
                                  const real *w_hh, int64_t T, int64_t B, int64_t I, int64_t H,
                                  int64_t GH, int64_t truncate, int stop_on_nonfinite,
                                  int64_t *first_nonfinite) {
    const int64_t BH = B * H;
    real *scratch = malloc(sizeof(real) * (size_t)((has_c ? 3 : 2) * BH));
    if (!scratch) return GC_ERR_NOMEM;
    real *dh = scratch, *carry_h = scratch + BH, *carry_c = has_c ? scratch + 2 * BH : NULL;
    if (d_hT)
        memcpy(carry_h, d_hT, sizeof(real) * (size_t)BH);
    else
        memset(carry_h, 0, sizeof(real) * (size_t)BH);
    if (carry_c && d_cT)
        memcpy(carry_c, d_cT, sizeof(real) * (size_t)BH);
    else if (carry_c)
        memset(carry_c, 0, sizeof(real) * (size_t)BH);
    const int small = gc_rec_use_small(B, GH, H);
    const int64_t tcb = gc_rec_grad_chunk(B, ld, n_hh, H, stop_on_nonfinite);
    const int64_t work = 2 * B * GH * (H + I) + 1;
    int64_t budget = GC_REC_POLL_WORK;
    int st = GC_OK;

    for (int64_t t = T - 1; t >= 0; t--) {
        const real *g = grad + t * B * ld;
        int bad = 0;
        double nrm = gc_rec_combine(dh, d_out ? d_out + t * BH : NULL, carry_h, NULL, BH, &bad);
        if (step_norms) step_norms[t] = nrm;
        bad |= step(cell, t, dh, carry_h, carry_c);
        if (bacc) gc_rec_rowsum_acc(bacc, g, B, ld, nb);
        if (bad && *first_nonfinite < 0) {
            *first_nonfinite = t;
            if (stop_on_nonfinite) {
                for (int64_t s = 0; s < t; s++) {
                    if (step_norms) step_norms[s] = NAN;
                    if (extra_norms) extra_norms[s] = NAN;
                }
                free(scratch);
                return GC_OK;
            }
        }
        const real *r = rsrc ? rsrc : g;
        const int64_t rld = rsrc ? GH : ld;
        if (t > 0 && !gc_rec_cut(t, truncate)) {
            st = gc_rec_recur_bwd(carry_h, r, rld, w_hh, small, B, GH, H, beta);
        } else if (t > 0) {
            memset(carry_h, 0, sizeof(real) * (size_t)BH);
            if (carry_c) memset(carry_c, 0, sizeof(real) * (size_t)BH);
        } else {
            if (dh0) {
                st = gc_rec_recur_bwd(carry_h, r, rld, w_hh, small, B, GH, H, beta);
                memcpy(dh0, carry_h, sizeof(real) * (size_t)BH);
            }
            if (dc0) memcpy(dc0, carry_c, sizeof(real) * (size_t)BH);
        }
        if (st != GC_OK) break;
        if (tcb && t % tcb == 0) {
            st = grads(cell, t, T - t < tcb ? T - t : tcb);
            if (st != GC_OK) break;
        }
        if (gc_rec_poll(&budget, work)) {
            st = GC_ERR_INTERRUPTED;
            break;
        }
    }
    free(scratch);
    if (st == GC_OK && !tcb) st = grads(cell, 0, T);
    return st;
}

#endif /* GC_RECURRENT_H */
