/* gradnorm.c -- norm of many buffers in one call (template: see kernel.h).
 *
 * Contract: gc_norm_ex_<dt>(bufs, lens, n_bufs, ord, flags, per_buf, out)
 * computes the ord-norm (2, 1, INFINITY, or finite p > 0) of the
 * concatenation of all buffers, optionally each buffer's own norm, max |x|
 * (flags & GC_NORM_MAX, else out->max_abs = NaN), and NaN/Inf counts with
 * the position of the first non-finite value. Reads only. gc_norm_<dt> is
 * gc_norm_ex_<dt> with GC_NORM_MAX. Status: GC_OK, GC_ERR_ARG (NULL
 * pointers, negative lengths, ord not > 0), GC_ERR_NOMEM.
 *
 * Method: one fast pass accumulates sum(x^2) (or sum|x|), and max|x| when
 * asked, in float64 with GC_NACC independent accumulators over blocks of
 * GC_BLOCK elements (relative error <= (GC_BLOCK/GC_NACC + n/GC_BLOCK + 5)
 * eps for the sum).
 * A non-finite sum triggers a counting scan (NaN/Inf present) or, for
 * float64 overflow and underflow, a scaled pass sum((x/max)^p) like LAPACK's
 * lassq. General p always uses the scaled pass (max first, then pow).
 */
#include "kernel.h"

#include <stdlib.h>
#include <string.h>

#define GC_BLOCK 4096
/* Below this sum of squares, float64 squares may have lost precision. */
#define GC_TINY 0x1p-600

enum { MODE_L2, MODE_L1, MODE_INF, MODE_P };

/* ---- fast pass -------------------------------------------------------------
 * Element i + k of every group of GC_NACC elements goes to accumulator lane k;
 * lanes are summed per block of GC_BLOCK elements, blocks into a running
 * total per lane, and the lanes by a fixed-order tree at the end. Every path
 * (GNU vector extensions at 16 or 32 bytes, or the scalar fallback) performs
 * exactly these float64 operations, so results are bit-identical.
 *
 * GCC's auto-vectorizer does not vectorize the float32 -> float64 widening
 * inside a 16-lane reduction (it falls back to scalar cvtss2sd), which made
 * this pass compute-bound; the explicit vectors below run at memory speed. */
#if defined(GC_VEC_EXT)
#define GC_VEC 1
#if defined(__AVX__)
#define GC_VB 32 /* vector bytes: ymm */
#else
#define GC_VB 16 /* xmm (SSE2 on x86-64, NEON elsewhere) */
#endif
typedef double vd __attribute__((vector_size(GC_VB)));
typedef int64_t vl __attribute__((vector_size(GC_VB)));
#define WD (GC_VB / 8)        /* doubles per vector */
#define NVD (GC_NACC / WD)    /* double vectors per group */
#if GC_IS_F32
typedef float vr __attribute__((vector_size(GC_VB)));
typedef int32_t vri __attribute__((vector_size(GC_VB)));
#define WR (GC_VB / 4)
#define GC_ABSBITS 0x7fffffff
#else
typedef double vr __attribute__((vector_size(GC_VB)));
typedef int64_t vri __attribute__((vector_size(GC_VB)));
#define WR (GC_VB / 8)
#define GC_ABSBITS 0x7fffffffffffffffLL
#endif
#define NVR (GC_NACC / WR)    /* element-type vectors per group */

/* WD consecutive elements widened to float64 (one vcvtps2pd for float32). */
static inline vd load_wide(const real *p) {
#if GC_IS_F32 && WD == 4
    vd d = {p[0], p[1], p[2], p[3]};
#elif GC_IS_F32 && WD == 2
    vd d = {p[0], p[1]};
#else
    vd d;
    memcpy(&d, p, sizeof d);
#endif
    return d;
}

/* m = (|r| > m) ? |r| : m lane-wise (a NaN never replaces m), in the element
 * type: max|x| is exact, so this needs no fixed order. */
static inline vr max_abs_update(vr m, const real *p) {
    vr r;
    memcpy(&r, p, sizeof r);
    const vri absbits = (vri){0} + (GC_ABSBITS);
    r = (vr)((vri)r & absbits);
    vri gt = r > m;
    return (vr)(((vri)r & gt) | ((vri)m & ~gt));
}
#endif

/* One group of GC_NACC elements: lanes av[] += f(x) where f is x^2 (SQ) or
 * |x|; with MAX, also the lane-wise max |x| in mv[]. */
#if GC_VEC
#define GC_GROUP(SQ, MAX)                                                      \
    for (; i + GC_NACC <= end; i += GC_NACC) {                                 \
        for (int j = 0; j < NVD; j++) {                                        \
            vd d = load_wide(x + i + j * WD);                                  \
            av[j] += (SQ) ? d * d : (vd)((vl)d & absd);                        \
        }                                                                      \
        if (MAX)                                                               \
            for (int j = 0; j < NVR; j++) mv[j] = max_abs_update(mv[j], x + i + j * WR); \
    }
#else
#define GC_GROUP(SQ, MAX)                                                      \
    for (; i + GC_NACC <= end; i += GC_NACC)                                   \
        for (int k = 0; k < GC_NACC; k++) {                                    \
            double v = (double)x[i + k];                                       \
            acc[k] += (SQ) ? v * v : fabs(v);                                  \
            if (MAX) {                                                         \
                real a = (real)fabs(v);                                        \
                mxs = a > mxs ? a : mxs;                                       \
            }                                                                  \
        }
#endif

/* Fast pass over one buffer. sq: *s = sum x^2, else *s = sum |x| (both in
 * float64, NaN/Inf propagate). want_max: *max_out = max |x| (NaN ignored),
 * else *max_out = -1 (not computed: max|x| costs a third of the time when
 * the data is in cache). Each (sq, want_max) pair has its own loop. */
static void fast_pass(const real *x, int64_t n, int sq, int want_max, double *s_out,
                      double *max_out) {
    double total[GC_NACC] = {0};
    real mxs = 0;
    int64_t i = 0;
#if GC_VEC
    vr mv[NVR];
    for (int j = 0; j < NVR; j++) mv[j] = (vr){0};
    const vl absd = (vl){0} + 0x7fffffffffffffffLL;
#endif
    while (i < n) {
        int64_t end = n - i > GC_BLOCK ? i + GC_BLOCK : n;
        double acc[GC_NACC] = {0};
#if GC_VEC
        vd av[NVD];
        for (int j = 0; j < NVD; j++) av[j] = (vd){0};
#endif
        if (sq && want_max) {
            GC_GROUP(1, 1)
        } else if (sq) {
            GC_GROUP(1, 0)
        } else if (want_max) {
            GC_GROUP(0, 1)
        } else {
            GC_GROUP(0, 0)
        }
#if GC_VEC
        memcpy(acc, av, sizeof av);
#endif
        for (int k = 0; i < end; i++, k++) { /* tail of the last block, k < GC_NACC */
            double v = (double)x[i], a = fabs(v);
            acc[k] += sq ? v * v : a;
            mxs = (real)a > mxs ? (real)a : mxs;
        }
        for (int k = 0; k < GC_NACC; k++) total[k] += acc[k];
    }
#if GC_VEC
    for (int j = 0; j < NVR; j++)
        for (int k = 0; k < WR; k++) mxs = mv[j][k] > mxs ? mv[j][k] : mxs;
#endif
    /* fixed-order tree reduction of the lanes */
    *s_out = gc_fold_nacc(total);
    *max_out = want_max ? (double)mxs : -1.0;
}

/* max |x| of one buffer (NaN ignored), for when the fast pass skipped it. */
static double max_pass(const real *x, int64_t n) {
    real mxs = 0;
    int64_t i = 0;
#if GC_VEC
    vr mv[NVR];
    for (int j = 0; j < NVR; j++) mv[j] = (vr){0};
    for (; i + GC_NACC <= n; i += GC_NACC)
        for (int j = 0; j < NVR; j++) mv[j] = max_abs_update(mv[j], x + i + j * WR);
    for (int j = 0; j < NVR; j++)
        for (int k = 0; k < WR; k++) mxs = mv[j][k] > mxs ? mv[j][k] : mxs;
#endif
    for (; i < n; i++) {
        real a = (real)fabs((double)x[i]);
        mxs = a > mxs ? a : mxs;
    }
    return (double)mxs;
}

/* Scaled pass for an all-finite buffer with max|x| = m > 0: sum (|x|/m)^p. */
static double scaled_pass(const real *x, int64_t n, int mode, double p, double m) {
    double acc[GC_NACC] = {0};
    int64_t i = 0;
    if (mode == MODE_L2) {
        for (; i + GC_NACC <= n; i += GC_NACC)
            for (int k = 0; k < GC_NACC; k++) {
                double v = (double)x[i + k] / m;
                acc[k] += v * v;
            }
    } else if (mode == MODE_L1) {
        for (; i + GC_NACC <= n; i += GC_NACC)
            for (int k = 0; k < GC_NACC; k++) acc[k] += fabs((double)x[i + k]) / m;
    } else {
        for (; i + GC_NACC <= n; i += GC_NACC)
            for (int k = 0; k < GC_NACC; k++) acc[k] += pow(fabs((double)x[i + k]) / m, p);
    }
    for (int k = 0; i < n; i++, k++) {
        double a = fabs((double)x[i]) / m;
        acc[k] += mode == MODE_L2 ? a * a : mode == MODE_L1 ? a : pow(a, p);
    }
    return gc_fold_nacc(acc);
}

/* Count NaN and Inf in one buffer; *first gets the first such index or -1. */
static void count_nonfinite(const real *x, int64_t n, int64_t *n_nan, int64_t *n_inf,
                            int64_t *first) {
    int64_t nn = 0, ni = 0, f = -1;
    for (int64_t i = 0; i < n; i++) {
        real v = x[i];
        if (v != v) {
            nn++;
            if (f < 0) f = i;
        } else if (isinf(v)) {
            ni++;
            if (f < 0) f = i;
        }
    }
    *n_nan = nn;
    *n_inf = ni;
    *first = f;
}

static double root(double s, int mode, double p) {
    return mode == MODE_L2 ? sqrt(s) : mode == MODE_L1 ? s : pow(s, 1.0 / p);
}

int GC_IMPL(norm_ex)(const real *const *bufs, const int64_t *lens, int64_t n_bufs, double ord,
                     int flags, double *per_buf, gc_norm_result *out) {
    if (!out || n_bufs < 0 || (n_bufs > 0 && (!bufs || !lens))) return GC_ERR_ARG;
    if (!(ord > 0.0)) return GC_ERR_ARG; /* also rejects NaN */
    for (int64_t b = 0; b < n_bufs; b++)
        if (lens[b] < 0 || (lens[b] > 0 && !bufs[b])) return GC_ERR_ARG;
    int mode = ord == 2.0 ? MODE_L2 : ord == 1.0 ? MODE_L1 : isinf(ord) ? MODE_INF : MODE_P;

    out->norm = 0.0;
    out->max_abs = 0.0;
    out->n_nan = out->n_inf = 0;
    out->first_buf = out->first_idx = -1;
    if (n_bufs == 0) return GC_OK;

    /* per buffer: s = fast sum, mx = max|x|, bad = holds NaN/Inf */
    double *s = malloc(sizeof(double) * 2 * (size_t)n_bufs);
    unsigned char *bad = calloc((size_t)n_bufs, 1);
    if (!s || !bad) {
        free(s);
        free(bad);
        return GC_ERR_NOMEM;
    }
    double *mx = s + n_bufs;

    /* max|x| is needed for the result (GC_NORM_MAX), for ord = inf, and for
     * the scaled pass (general p always; L2/L1 only on over/underflow, where
     * it is computed below for the buffers that lack it). */
    int want_max = (flags & GC_NORM_MAX) || mode == MODE_INF || mode == MODE_P;
    double total = 0.0, gmax = 0.0;
    int any_nonfinite_sum = 0;
    for (int64_t b = 0; b < n_bufs; b++) {
        fast_pass(bufs[b], lens[b], mode == MODE_L2, want_max, &s[b], &mx[b]);
        total += s[b];
        gmax = mx[b] > gmax ? mx[b] : gmax;
        if (!isfinite(s[b])) any_nonfinite_sum = 1;
    }
    out->max_abs = (flags & GC_NORM_MAX) ? gmax : NAN;

    /* Count and locate NaN/Inf -- only when a sum says they may be there. */
    int64_t n_nan = 0, n_inf = 0;
    int overflowed = 0; /* a finite buffer whose float64 sum overflowed */
    if (any_nonfinite_sum) {
        for (int64_t b = 0; b < n_bufs; b++) {
            if (isfinite(s[b])) continue;
            int64_t bn, bi, f;
            count_nonfinite(bufs[b], lens[b], &bn, &bi, &f);
            if (bn + bi == 0) {
                overflowed = 1;
                continue;
            }
            bad[b] = 1;
            n_nan += bn;
            n_inf += bi;
            if (out->first_buf < 0) {
                out->first_buf = b;
                out->first_idx = f;
            }
            if (per_buf) per_buf[b] = bn ? NAN : INFINITY;
        }
    }
    out->n_nan = n_nan;
    out->n_inf = n_inf;
    int nonfinite = n_nan + n_inf > 0;

    if (mode == MODE_INF) {
        if (per_buf)
            for (int64_t b = 0; b < n_bufs; b++)
                if (!bad[b]) per_buf[b] = mx[b];
        out->norm = n_nan ? NAN : gmax;
        goto done;
    }

    /* The fast result is exact enough unless a sum over- or underflowed. */
    int need_scaled = mode == MODE_P || overflowed;
    for (int64_t b = 0; b < n_bufs && !need_scaled; b++)
        if (!bad[b] && s[b] < GC_TINY) {
            if (mx[b] < 0.0) mx[b] = max_pass(bufs[b], lens[b]);
            if (mx[b] > 0.0) need_scaled = 1;
        }
    if (!nonfinite && !isfinite(total)) need_scaled = 1;
    if (need_scaled)
        for (int64_t b = 0; b < n_bufs; b++)
            if (!bad[b] && mx[b] < 0.0) mx[b] = max_pass(bufs[b], lens[b]);

    if (!need_scaled) {
        if (per_buf)
            for (int64_t b = 0; b < n_bufs; b++)
                if (!bad[b]) per_buf[b] = root(s[b], mode, ord);
        out->norm = n_nan ? NAN : n_inf ? INFINITY : root(total, mode, ord);
        goto done;
    }

    /* Scaled pass on every finite buffer: norm_b = mx_b * root(sum (|x|/mx_b)^p). */
    double gfin = 0.0;
    for (int64_t b = 0; b < n_bufs; b++) {
        if (bad[b]) continue;
        s[b] = mx[b] > 0.0 ? scaled_pass(bufs[b], lens[b], mode, ord, mx[b]) : 0.0;
        if (per_buf) per_buf[b] = mx[b] * root(s[b], mode, ord);
        gfin = mx[b] > gfin ? mx[b] : gfin;
    }
    if (nonfinite) {
        out->norm = n_nan ? NAN : INFINITY;
    } else if (gfin == 0.0) {
        out->norm = 0.0;
    } else {
        double acc = 0.0;
        for (int64_t b = 0; b < n_bufs; b++) {
            if (mx[b] == 0.0) continue;
            double r = mx[b] / gfin;
            acc += s[b] * (mode == MODE_L2 ? r * r : mode == MODE_L1 ? r : pow(r, ord));
        }
        out->norm = gfin * root(acc, mode, ord);
    }
done:
    free(s);
    free(bad);
    return GC_OK;
}

GC_DISPATCH(int, norm_ex,
            (const real *const *bufs, const int64_t *lens, int64_t n_bufs, double ord, int flags,
             double *per_buf, gc_norm_result *out),
            (bufs, lens, n_bufs, ord, flags, per_buf, out))

#if defined(GC_ISA_BASE)
/* gc_norm_<dt>: gc_norm_ex_<dt> with every statistic (GC_NORM_MAX). */
int GC_API(norm)(const real *const *bufs, const int64_t *lens, int64_t n_bufs, double ord,
                 double *per_buf, gc_norm_result *out) {
    return GC_API(norm_ex)(bufs, lens, n_bufs, ord, GC_NORM_MAX, per_buf, out);
}
#endif
