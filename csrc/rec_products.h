/* rec_products.h -- the matrix products of the recurrent driver (internal;
 * included by recurrent.h, after kernel.h).
 *
 * - gc_rec_gemm: row-major GEMM through BLAS, large products as tiles that
 *   hit OpenBLAS's small-matrix path; gc_rec_in_proj: the input projection
 *   of a chunk of steps through a transposed copy of W_ih.
 * - gc_rec_recur: the per-step recurrent product (forward and backward),
 *   through BLAS, or through a hand-vectorized small-matrix path when the
 *   recurrent matrix is tiny (see GC_REC_SMALL below).
 * - gc_rec_weight_grads / gc_rec_dw_hh / gc_rec_dx / gc_rec_grad_chunk:
 *   dW_ih, dW_hh and dx over the rows of a chunk of finished steps.
 * All of them return GC_OK or the BLAS wrapper's status.
 */
#ifndef GC_REC_PRODUCTS_H
#define GC_REC_PRODUCTS_H

#include <stdlib.h>

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
 * j < n <= GC_REC_JB, the partial sums in a fixed-size local array; terms are
 * added four at a time in a fixed order, so every SIMD path agrees bit for
 * bit. GCC keeps that array in memory, so with GCC vector extensions the
 * blocks of 16 and 32 columns go through gc_rec_small_vec instead, and this
 * plain loop serves the last columns (fewer than 16). */
#define GC_REC_JB 32
/* acc[j] += the terms of rows g < m, for j < n: called with n = GC_REC_JB
 * (a constant trip count; only without GCC's vector extensions, where
 * whole blocks come here) or the tail n. */
GC_REC_INLINE void gc_rec_small_acc(
    real *restrict acc, const real *restrict c, const real *restrict rows, int64_t ld,
    int64_t m, int64_t n) {
    int64_t g = 0;
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

#if defined(GC_VEC_EXT)
/* Blocks of columns with the partial sums as GCC vector values of the
 * native register width (GC_REC_VL lanes: 64 bytes with AVX-512, 32 with
 * AVX2, 16 otherwise), nv of them, so they stay in registers across the
 * rows: as a local array they went through memory for every group of rows,
 * a store and a load on the chain of dependent adds (float32 AVX-512,
 * T1000-B1-H32: backward loop 97 -> 58 us). Same operations per lane in the
 * same order as gc_rec_small_acc, so the same bits. nv is a constant at
 * each inlined call (the loops over it unroll). */
#define GC_REC_SMALL_VEC 1
#if defined(GC_ISA_AVX512)
#define GC_REC_VBYTES 64
#elif defined(GC_ISA_AVX2)
#define GC_REC_VBYTES 32
#else
#define GC_REC_VBYTES 16
#endif
#define GC_REC_VL (GC_REC_VBYTES / (int)sizeof(real))
/* columns per block: 32, or 16 where 32 would take more than 8 registers */
#define GC_REC_VCOLS (32 / GC_REC_VL <= 8 ? 32 : 16)
typedef real gc_rec_vn __attribute__((vector_size(GC_REC_VBYTES)));
#define GC_REC_NLOAD(v, p) memcpy(&(v), (p), sizeof(gc_rec_vn))
#define GC_REC_NSTORE(p, v) memcpy((p), &(v), sizeof(gc_rec_vn))
GC_REC_INLINE void gc_rec_small_vec(real *restrict y, const real *restrict c,
                                    const real *restrict rows, int64_t ld, int64_t m, int nv,
                                    int add) {
    gc_rec_vn a[GC_REC_VCOLS / GC_REC_VL];
    #pragma GCC unroll 8
    for (int k = 0; k < nv; k++) a[k] = (gc_rec_vn){0};
    int64_t g = 0;
    for (; g + 4 <= m; g += 4) {
        const real c0 = c[g], c1 = c[g + 1], c2 = c[g + 2], c3 = c[g + 3];
        const real *r0 = rows + g * ld, *r1 = r0 + ld, *r2 = r1 + ld, *r3 = r2 + ld;
        #pragma GCC unroll 8
        for (int k = 0; k < nv; k++) {
            gc_rec_vn x0, x1, x2, x3;
            GC_REC_NLOAD(x0, r0 + k * GC_REC_VL);
            GC_REC_NLOAD(x1, r1 + k * GC_REC_VL);
            GC_REC_NLOAD(x2, r2 + k * GC_REC_VL);
            GC_REC_NLOAD(x3, r3 + k * GC_REC_VL);
            a[k] = a[k] + ((c0 * x0 + c1 * x1) + (c2 * x2 + c3 * x3));
        }
    }
    for (; g < m; g++) {
        const real cg = c[g];
        #pragma GCC unroll 8
        for (int k = 0; k < nv; k++) {
            gc_rec_vn x0;
            GC_REC_NLOAD(x0, rows + g * ld + k * GC_REC_VL);
            a[k] = a[k] + cg * x0;
        }
    }
    #pragma GCC unroll 8
    for (int k = 0; k < nv; k++) {
        gc_rec_vn v = a[k];
        if (add) {
            gc_rec_vn y0;
            GC_REC_NLOAD(y0, y + k * GC_REC_VL);
            v = y0 + v;
        }
        GC_REC_NSTORE(y + k * GC_REC_VL, v);
    }
}
#endif

static inline void gc_rec_small_block(real *restrict y, const real *restrict c,
                                      const real *restrict rows, int64_t ld, int64_t m,
                                      int64_t n, int add) {
    real acc[GC_REC_JB];
    for (int j = 0; j < GC_REC_JB; j++) acc[j] = 0;
    if (n == GC_REC_JB)
        gc_rec_small_acc(acc, c, rows, ld, m, GC_REC_JB);
    else
        gc_rec_small_acc(acc, c, rows, ld, m, n);
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
    /* tile i in loop order (k, m, n) when K >= M, else (m, n, k) */
    const int64_t nm = (M + mt - 1) / mt, nn = (N + nt - 1) / nt, nk = (K + kt - 1) / kt;
    const int k_outer = K >= M;
    int st = GC_OK;
    for (int64_t i = 0; i < nm * nn * nk && st == GC_OK; i++) {
        const int64_t im = k_outer ? (i / nn) % nm : i / (nn * nk);
        const int64_t in = k_outer ? i % nn : (i / nk) % nn;
        const int64_t ik = k_outer ? i / (nm * nn) : i % nk;
        const int64_t m0 = im * mt, n0 = in * nt, k0 = ik * kt;
        st = GEMM_RM(ta, tb, M - m0 < mt ? M - m0 : mt, N - n0 < nt ? N - n0 : nt,
                     K - k0 < kt ? K - k0 : kt, (real)1, GC_REC_AT(m0, k0), lda,
                     GC_REC_BT(k0, n0), ldb, k0 ? (real)1 : beta, C + m0 * ldc + n0, ldc);
    }
#undef GC_REC_AT
#undef GC_REC_BT
    return st;
}

/* The per-step recurrent product y(B, N; row stride ldy) = beta * y +
 * a(B, K; row stride lda) m, m (K, N) row-major; beta is 0 or 1. Forward:
 * a = h_{t-1}, m = W_hh^T (the caller transposes W once per sequence:
 * OpenBLAS's NN kernels are about twice as fast as the transposed-operand
 * ones at these sizes); backward: a = the step's gradient rows, m = W_hh.
 * small: the hand-vectorized path (see GC_REC_SMALL). */
static inline int gc_rec_recur(real *restrict y, int64_t ldy, const real *restrict a,
                               int64_t lda, const real *restrict m, int small, int64_t B,
                               int64_t N, int64_t K, real beta) {
    if (small) {
        const int add = beta != (real)0;
        for (int64_t b = 0; b < B; b++) {
            int64_t j0 = 0;
#if defined(GC_REC_SMALL_VEC)
            for (; j0 + GC_REC_VCOLS <= N; j0 += GC_REC_VCOLS)
                gc_rec_small_vec(y + b * ldy + j0, a + b * lda, m + j0, N, K,
                                 GC_REC_VCOLS / GC_REC_VL, add);
            if (GC_REC_VCOLS == 32 && N - j0 >= 16) {
                gc_rec_small_vec(y + b * ldy + j0, a + b * lda, m + j0, N, K, 16 / GC_REC_VL, add);
                j0 += 16;
            }
#endif
            for (; j0 < N; j0 += GC_REC_JB)
                gc_rec_small_block(y + b * ldy + j0, a + b * lda, m + j0, N, K,
                                   N - j0 < GC_REC_JB ? N - j0 : GC_REC_JB, add);
        }
        return GC_OK;
    }
    if (B == 1) return GEMV_RM(1, K, N, (real)1, m, N, a, beta, y);
    return gc_rec_gemm(0, 0, B, N, K, a, lda, m, N, beta, y, ldy);
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

/* ---- weight gradients and dx, by chunks of steps ---------------------------
 * a: the pre-activation gradients of the steps [t0, t0 + nt) (row stride lda;
 * step t's B rows start at a + (t - t0)*B*lda), columns 0..n-1 of a row being
 * the gradients of n weight rows. The backward loops call these for each finished chunk of
 * steps [t0, t0 + nt) (gc_rec_grad_chunk steps, counted down from the end),
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
        st = gc_rec_gemm(1, 0, n, H, (t0 + nt - first) * B, a + (first - t0) * B * lda, lda,
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
    int st = gc_rec_gemm(1, 0, n_ih, I, nt * B, a, lda, x + t0 * B * I, I,
                         (real)1, dw_ih, I);
    if (st == GC_OK) st = gc_rec_dw_hh(dw_hh, a, lda, n_hh, out, h0, t0, nt, B, H);
    return st;
}

/* dx rows of steps [t0, t0 + nt) = a[:, :G] W_ih (W_ih (G, I)). */
static inline int gc_rec_dx(real *dx, const real *a, int64_t lda, int64_t G, const real *w_ih,
                            int64_t t0, int64_t nt, int64_t B, int64_t I) {
    return gc_rec_gemm(0, 0, nt * B, I, G, a, lda, w_ih, I, (real)0,
                       dx + t0 * B * I, I);
}

/* Steps per weight-gradient chunk: about 128 KiB of gradient rows, so that
 * a chunk's rows, its x and h rows, dW and W_hh (the carry's) all stay in
 * the 1 MiB per-core L2 of the development machine (512 KiB chunks measured
 * 3% slower for LSTM / GRU T500-B32-H128 fwd + bwd, 1.5% for RNN
 * T1000-B32-H128; 64 KiB no faster than 128), but at least about 2^23
 * multiply-adds of products (B * lda * (H + 2 I) a step), so that narrow
 * rows (B = 1) do not pay the chunk's few BLAS calls too often; 0 (one pass
 * after the loop) with
 * stop_on_nonfinite, or when dW_hh (n_hh x H) is over 512 KiB: every chunk
 * reads and writes all of dW, which then no longer stays in cache (RNN
 * H = 512: float32 backward no faster chunked, float64 ~10% slower). */
static inline int64_t gc_rec_grad_chunk(int64_t B, int64_t lda, int64_t n_hh, int64_t H,
                                        int64_t I, int stop_on_nonfinite) {
    if (stop_on_nonfinite || n_hh * H * (int64_t)sizeof(real) > 524288) return 0;
    int64_t tc = (int64_t)(131072 / sizeof(real)) / (B * lda);
    const int64_t tw = ((int64_t)1 << 23) / (B * lda * (H + 2 * I));
    tc = tw > tc ? tw : tc;
    return tc < 1 ? 1 : tc;
}

#endif /* GC_REC_PRODUCTS_H */
