/* recurrent.h -- the recurrent driver shared by rnn.c, lstm.c and gru.c
 * (internal; included after kernel.h, so `real` is this compile's element
 * type). The matrix products it issues are in rec_products.h.
 *
 * - gc_rec_tanh / gc_rec_sigmoid: the shared element functions of
 *   act_inline.h, inlined and vectorized inside the fused cell loops.
 * - gc_rec_combine: dh = d_out[t] + carry, with ||dh|| (float64, GC_NACC
 *   accumulators, fixed order) and a non-finite flag from the same pass.
 * - gc_rec_rowsum_acc / gc_rec_add_bias_sums: bias gradients, float64 sums
 *   of each step's gradient rows taken inside the backward loop;
 *   gc_rec_bwd_scratch: a backward pass's one scratch block (the cell's
 *   scratch, the driver's rows, the bias sums: one malloc per call).
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

/* Always inlined: the products, norm blocks and the two drivers (below). */
#if defined(__GNUC__)
#define GC_REC_INLINE static inline __attribute__((always_inline))
#else
#define GC_REC_INLINE static inline
#endif

#include "rec_products.h"
#include "rec_vec.h"

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

/* The sum of squares behind gc_rec_combine, for a constant has_a (the
 * inlined copies have no test in their loops). */
GC_REC_INLINE double gc_rec_combine_sq(real *restrict dh, const real *restrict a,
                                       const real *restrict c, int64_t n, int has_a,
                                       int *bad) {
    double acc[GC_NACC] = {0};
    int flag = 0;
    int64_t i = 0;
#if defined(GC_REC_VEC)
    gc_rec_sq_block(acc, dh, a, c, n / GC_NACC, has_a ? 2 : 1, &flag);
    i = n / GC_NACC * GC_NACC;
#endif
    for (; i + GC_NACC <= n; i += GC_NACC)
        for (int k = 0; k < GC_NACC; k++) {
            real v = (has_a ? a[i + k] : (real)0) + c[i + k];
            dh[i + k] = v;
            acc[k] += (double)v * (double)v;
            flag |= GC_REC_BAD(v);
        }
    for (int k = 0; i < n; i++, k++) {
        real v = (has_a ? a[i] : (real)0) + c[i];
        dh[i] = v;
        acc[k] += (double)v * (double)v;
        flag |= GC_REC_BAD(v);
    }
    *bad = flag;
    return gc_fold_nacc(acc);
}

/* dh[i] = a[i] + c[i] (a NULL: 0 + c[i]), for i < n; returns ||dh||_2
 * (float64, GC_NACC accumulators in fixed order) and sets *bad when any dh
 * is NaN/Inf. */
static inline double gc_rec_combine(real *restrict dh, const real *a, const real *c, int64_t n,
                                    int *bad) {
    double s = a ? gc_rec_combine_sq(dh, a, c, n, 1, bad) : gc_rec_combine_sq(dh, a, c, n, 0, bad);
    if (!*bad && isinf(s)) return gc_rec_scaled_norm(dh, n);
    return sqrt(s);
}

/* ||v||_2 over v[0..n) (float64, GC_NACC accumulators in fixed order; the
 * scaled pass when the plain sum overflows). */
static inline double gc_rec_norm(const real *v, int64_t n) {
    double acc[GC_NACC] = {0};
    int64_t i = 0;
#if defined(GC_REC_VEC)
    gc_rec_sq_block(acc, NULL, NULL, v, n / GC_NACC, 0, NULL);
    i = n / GC_NACC * GC_NACC;
#endif
    for (; i + GC_NACC <= n; i += GC_NACC)
        for (int k = 0; k < GC_NACC; k++) acc[k] += (double)v[i + k] * (double)v[i + k];
    for (int k = 0; i < n; i++, k++) acc[k] += (double)v[i] * (double)v[i];
    double s = gc_fold_nacc(acc);
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

/* The backward pass's memory, one block (gc_rec_bwd_scratch): the cell's
 * scratch (n reals, the first nz of them zeroed: a zero state), the driver's
 * rows dh, carry_h and carry_c (B*H reals each; carry_c only with a cell
 * state, else NULL), and nb zeroed float64 bias sums (bacc; NULL when
 * nb == 0). Each part starts on a 64-byte boundary. */
typedef struct {
    real *cell, *dh, *carry_h, *carry_c;
    double *bacc;
} gc_rec_bwd_mem;

static inline size_t gc_rec_round64(size_t bytes) { return (bytes + 63) & ~(size_t)63; }

/* Allocates and lays out the block (see gc_rec_bwd_mem); returns the
 * pointer to free (the parts start at the first 64-byte boundary in it), or
 * NULL when out of memory. */
static inline void *gc_rec_bwd_scratch(gc_rec_bwd_mem *m, int64_t n, int64_t nz, int64_t BH,
                                       int has_c, int64_t nb) {
    const size_t rc = gc_rec_round64(sizeof(real) * (size_t)n);
    const size_t rh = gc_rec_round64(sizeof(real) * (size_t)BH);
    const size_t nrows = has_c ? 3 : 2;
    const size_t total = rc + nrows * rh + gc_rec_round64(sizeof(double) * (size_t)nb);
    char *raw = malloc(total + 63); /* (plain malloc: aligned_alloc's path is slower) */
    if (!raw) return NULL;
    char *blk = raw + ((64 - (uintptr_t)raw % 64) % 64);
    m->cell = (real *)blk;
    memset(blk, 0, sizeof(real) * (size_t)nz);
    m->dh = (real *)(blk + rc);
    m->carry_h = (real *)(blk + rc + rh);
    m->carry_c = has_c ? (real *)(blk + rc + 2 * rh) : NULL;
    m->bacc = nb ? (double *)(blk + rc + nrows * rh) : NULL;
    if (nb) memset(m->bacc, 0, sizeof(double) * (size_t)nb);
    return raw;
}

/* 1 when a backward pass ended early at a non-finite step (then it wrote no
 * gradient, and the caller adds no bias sums either). */
static inline int gc_rec_stopped(int stop_on_nonfinite, int64_t first_nonfinite) {
    return stop_on_nonfinite && first_nonfinite >= 0;
}

/* d[j] += acc[j] for j < n (d may be NULL). */
static inline void gc_rec_acc_add(real *d, const double *acc, int64_t n) {
    if (d)
        for (int64_t j = 0; j < n; j++) d[j] = (real)((double)d[j] + acc[j]);
}

/* After a backward pass that returned st: db_ih, db_hh (either may be
 * NULL) += the bias sums bacc of columns [0, n), unless the pass failed or
 * stopped at a non-finite step (then no gradient is written). Returns 1
 * when it added them. */
static inline int gc_rec_add_bias_sums(int st, const double *bacc, real *db_ih, real *db_hh,
                                       int64_t n, int stop_on_nonfinite,
                                       int64_t first_nonfinite) {
    if (st != GC_OK || !bacc || gc_rec_stopped(stop_on_nonfinite, first_nonfinite)) return 0;
    gc_rec_acc_add(db_ih, bacc, n);
    gc_rec_acc_add(db_hh, bacc, n);
    return 1;
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

/* Ask for the first n elements at p (cache rows the next input-projection
 * chunk will write), at most GC_REC_PREFETCH_BYTES of them, while this
 * step's products run: those rows were last touched by the previous backward
 * pass and are cold (forward measured ~2% faster, LSTM T500-B32-H128, whose
 * step rows are 64 KiB; prefetching the backward's rows measured no gain).
 * The bound keeps a step with very wide rows (B * ld reals of 128 KiB or
 * more: one step per projection chunk) from asking for more than a share of
 * the L2 while the step's own rows and weights need it. */
#define GC_REC_PREFETCH_BYTES 65536
static inline void gc_rec_prefetch_w(const real *p, int64_t n) {
#if defined(__GNUC__)
    const char *c = (const char *)p;
    int64_t bytes = n * (int64_t)sizeof(real);
    if (bytes > GC_REC_PREFETCH_BYTES) bytes = GC_REC_PREFETCH_BYTES;
    for (int64_t o = 0; o < bytes; o += 64) __builtin_prefetch(c + o, 1, 3);
#else
    (void)p;
    (void)n;
#endif
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
GC_REC_INLINE int gc_rec_forward(gc_rec_fwd_step step, void *cell, real *cache, int64_t ld,
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
    int64_t next_proj = 0;
    for (int64_t t = 0; t < T; t++) {
        if (t == next_proj) { /* t % tc == 0, without a division per step */
            st = gc_rec_in_proj(cache, ld, x, wiht, t, T, tc, B, GH, I);
            next_proj += tc;
        }
        if (st != GC_OK) break;
        real *y = cache + t * B * ld;
        const real *hprev = t ? out + (t - 1) * BH : h0;
        if (t + tc < T) gc_rec_prefetch_w(cache + (t + tc) * B * ld, B * ld);
        if (hprev)
            st = rec ? gc_rec_recur(rec, GH, hprev, H, wt, small, B, GH, H, (real)0)
                     : gc_rec_recur(y, ld, hprev, H, wt, small, B, GH, H, (real)1);
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

/* Backward step of a cell: dh = dL/dh_t (B, H) in; writes step t's gradient
 * rows g (B rows of the driver's row stride: the pre-activation gradients;
 * for a cell whose rows are its gate cache, that cache's rows of step t),
 * and carry_h / carry_c as the cell needs (carry_c: dL/dc carried to c_{t-1}
 * when the driver has a cell state; the GRU's direct path dh * z goes into
 * carry_h, which the recurrent product then accumulates onto). Returns
 * nonzero when a gradient the cell formed is non-finite. */
typedef int (*gc_rec_bwd_step)(void *cell, int64_t t, real *g, const real *dh, real *carry_h,
                               real *carry_c);
/* dW_ih, dW_hh (+=) and dx of steps [t0, t0 + n), from their gradient rows
 * a (step t0's first row; n * B rows of the driver's row stride). */
typedef int (*gc_rec_grad_fn)(void *cell, const real *a, int64_t t0, int64_t n);

/* The BPTT loop. grad (T, B, ld): the gradient rows the step writes (and
 * the bias sums read: mem->bacc[j] += columns j < nb, float64, when bacc);
 * ring_steps 0: grad holds the rows of all T steps; ring_steps k > 0: grad
 * holds only the rows of one weight-gradient chunk of k steps (the caller's
 * gc_rec_grad_chunk, which sized grad and sets the chunks here too), step
 * t's at row (t - the chunk's first step) * B: the products of a chunk are
 * made before the loop reaches the next one, so the rows are reused;
 * the carry to h_{t-1} is carry_h = beta * carry_h + R W_hh with R the step's
 * gradient rows (rsrc NULL, row stride ld) or rsrc (B, GH). mem: the rows
 * dh, carry_h and carry_c (a cell state carry when not NULL: started from
 * d_cT, cut with the windows, ending in dc0) of gc_rec_bwd_scratch.
 * n_hh: rows of dW_hh a chunk touches (sets the chunk length). Norms, the
 * first non-finite step and stop_on_nonfinite as in gc_rnn_backward; on a
 * stop, extra_norms (e.g. the LSTM cell norms) of earlier steps are NaN too. */
GC_REC_INLINE int gc_rec_backward(gc_rec_bwd_step step, gc_rec_grad_fn grads, void *cell,
                                  real *grad, int64_t ld, int64_t ring_steps, const real *rsrc, real beta,
                                  const gc_rec_bwd_mem *mem, int64_t nb, int64_t n_hh,
                                  real *dh0, real *dc0, double *step_norms, double *extra_norms,
                                  const real *d_out, const real *d_hT, const real *d_cT,
                                  const real *w_hh, int64_t T, int64_t B, int64_t I, int64_t H,
                                  int64_t GH, int64_t truncate, int stop_on_nonfinite,
                                  int64_t *first_nonfinite) {
    const int64_t BH = B * H;
    real *dh = mem->dh, *carry_h = mem->carry_h, *carry_c = mem->carry_c;
    double *bacc = mem->bacc;
    if (d_hT)
        memcpy(carry_h, d_hT, sizeof(real) * (size_t)BH);
    else
        memset(carry_h, 0, sizeof(real) * (size_t)BH);
    if (carry_c && d_cT)
        memcpy(carry_c, d_cT, sizeof(real) * (size_t)BH);
    else if (carry_c)
        memset(carry_c, 0, sizeof(real) * (size_t)BH);
    const int small = gc_rec_use_small(B, GH, H);
    const int64_t tcb = ring_steps > 0 ? ring_steps : gc_rec_grad_chunk(B, ld, n_hh, H, I, stop_on_nonfinite);
    const int ring = ring_steps > 0;
    const int64_t work = 2 * B * GH * (H + I) + 1;
    int64_t budget = GC_REC_POLL_WORK;
    int st = GC_OK;

    int64_t next_chunk = tcb ? (T - 1) / tcb * tcb : -1;
    for (int64_t t = T - 1; t >= 0; t--) {
        real *g = grad + (ring ? t - next_chunk : t) * B * ld;
        int bad = 0;
        double nrm = gc_rec_combine(dh, d_out ? d_out + t * BH : NULL, carry_h, BH, &bad);
        if (step_norms) step_norms[t] = nrm;
        bad |= step(cell, t, g, dh, carry_h, carry_c);
        if (bacc) gc_rec_rowsum_acc(bacc, g, B, ld, nb);
        if (bad && *first_nonfinite < 0) {
            *first_nonfinite = t;
            if (stop_on_nonfinite) {
                for (int64_t s = 0; s < t; s++) {
                    if (step_norms) step_norms[s] = NAN;
                    if (extra_norms) extra_norms[s] = NAN;
                }
                return GC_OK;
            }
        }
        const real *r = rsrc ? rsrc : g;
        const int64_t rld = rsrc ? GH : ld;
        if (t > 0 && !gc_rec_cut(t, truncate)) {
            st = gc_rec_recur(carry_h, H, r, rld, w_hh, small, B, H, GH, beta);
        } else if (t > 0) {
            memset(carry_h, 0, sizeof(real) * (size_t)BH);
            if (carry_c) memset(carry_c, 0, sizeof(real) * (size_t)BH);
        } else {
            if (dh0) {
                st = gc_rec_recur(carry_h, H, r, rld, w_hh, small, B, H, GH, beta);
                memcpy(dh0, carry_h, sizeof(real) * (size_t)BH);
            }
            if (dc0) memcpy(dc0, carry_c, sizeof(real) * (size_t)BH);
        }
        if (st != GC_OK) break;
        if (t == next_chunk) { /* tcb && t % tcb == 0 */
            next_chunk -= tcb;
            st = grads(cell, g, t, T - t < tcb ? T - t : tcb);
            if (st != GC_OK) break;
        }
        if (gc_rec_poll(&budget, work)) {
            st = GC_ERR_INTERRUPTED;
            break;
        }
    }
    if (st == GC_OK && !tcb) st = grads(cell, grad, 0, T);
    return st;
}

#endif /* GC_RECURRENT_H */
