/* act_inline.h -- element-wise activation maths shared by activation.c and
 * dense.c (internal; include after kernel.h).
 *
 * Every loop body here is branch-free: data-dependent choices go through
 * gc_select() on bit masks, because GCC (without -fno-trapping-math) refuses
 * to if-convert a `c ? a * s : a` whose arithmetic is only needed on one side,
 * and the loop would stay scalar. float32 sigmoid uses gc_expm_f32, a
 * vectorizable exp (Cody-Waite range reduction, degree-7 polynomial, 2^n
 * built from exponent bits), float32 tanh the matching expm1
 * (gc_expm1m_f32); float64 calls libm (the accuracy target there is
 * 1e-14). All paths propagate NaN.
 */
#ifndef GC_ACT_INLINE_H
#define GC_ACT_INLINE_H

#include <string.h>

#if GC_IS_F32
typedef uint32_t gc_ubits;
#else
typedef uint64_t gc_ubits;
#endif

static inline gc_ubits gc_bits(real x) {
    gc_ubits u;
    memcpy(&u, &x, sizeof u);
    return u;
}
static inline real gc_from_bits(gc_ubits u) {
    real x;
    memcpy(&x, &u, sizeof x);
    return x;
}
/* all-ones when c is true */
static inline gc_ubits gc_mask(int c) { return (gc_ubits)0 - (gc_ubits)(c != 0); }
/* m ? a : b, bitwise (both a and b are always computed) */
static inline real gc_select(gc_ubits m, real a, real b) {
    return gc_from_bits((gc_bits(a) & m) | (gc_bits(b) & ~m));
}

/* Range reduction shared by the float32 exponentials: n = round(x / ln2)
 * by the 1.5 * 2^23 trick (*nf := n), returns r = x - n ln2 in two parts
 * (n * 0.693359375 is exact), |r| <= ln2/2. */
static inline float gc_ln2_reduce_f32(float x, float *nf) {
    const float shifter = 12582912.0f; /* 1.5 * 2^23 */
    float t = x * 1.44269504088896341f;
    float n = (t + shifter) - shifter;
    *nf = n;
    float r = x - n * 0.693359375f;
    return r - n * -2.12194440e-4f;
}

/* 1/k! for k = 0..8 (each the float nearest, as the literal 1.0f / k!). */
static const float gc_inv_fact_f32[9] = {1.0f, 1.0f, 0.5f, 1.0f / 6.0f, 1.0f / 24.0f,
                                         1.0f / 120.0f, 1.0f / 720.0f, 1.0f / 5040.0f,
                                         1.0f / 40320.0f};

/* The two polynomials, by Estrin's scheme (pairs c_k + c_{k+1} r combined
 * with r^2 and r^4): the same terms as Horner's rule in a fixed order of
 * operations, with about half its chain of dependent multiplies and adds,
 * which is what bounds these loops (measured 4-16% faster tanh / sigmoid).
 * gc_exp_poly_f32(r) = sum_{k = 0..7} r^k / k!;
 * gc_expm1_poly_f32(r) = sum_{k = 2..8} r^(k - 2) / k!. */
static inline float gc_exp_poly_f32(float r) {
    const float *c = gc_inv_fact_f32;
    float r2 = r * r, r4 = r2 * r2;
    float p01 = c[0] + c[1] * r, p23 = c[2] + c[3] * r;
    float p45 = c[4] + c[5] * r, p67 = c[6] + c[7] * r;
    return (p01 + r2 * p23) + r4 * (p45 + r2 * p67);
}
static inline float gc_expm1_poly_f32(float r) {
    const float *c = gc_inv_fact_f32;
    float r2 = r * r, r4 = r2 * r2;
    float p23 = c[2] + c[3] * r, p45 = c[4] + c[5] * r, p67 = c[6] + c[7] * r;
    return (p23 + r2 * p45) + r4 * (p67 + r2 * c[8]);
}

/* GC_PICK(c, a, b) = c ? a : b for already computed a, b (no side effects):
 * a plain conditional in the AVX-512 compile, where GCC turns it into one
 * min / blend instruction (tanh 13%, sigmoid 17% faster than the bitwise
 * select), the bitwise gc_select elsewhere, where the conditional keeps
 * the loop scalar. Both give the same value, so the paths agree bit for
 * bit. */
#if defined(GC_ISA_AVX512)
#define GC_PICK(c, a, b) ((c) ? (a) : (b))
#else
#define GC_PICK(c, a, b) gc_select(gc_mask(c), (a), (b))
#endif

/* 2^n for an integer n in [-126, 127], from its exponent bits. */
static inline float gc_pow2i_f32(int32_t n) {
    float s;
    uint32_t b = (uint32_t)(n + 127) << 23;
    memcpy(&s, &b, 4);
    return s;
}

/* exp(x) for x in [-110, 0] (float32 maths). Caller clamps and removes NaN.
 * exp(r) by its Taylor polynomial of degree 7 on |r| <= ln2/2 (truncation
 * < 3e-9 relative; gc_exp_poly_f32); 2^n is applied as 2^(n + 64) (a
 * normal number, exact product) times 2^-64, so results down in the
 * subnormal range are rounded once. */
static inline float gc_expm_f32(float x) {
    float nf;
    float r = gc_ln2_reduce_f32(x, &nf);
    float p = gc_exp_poly_f32(r);
    int32_t n = (int32_t)nf; /* in [-159, 0] */
    return (p * gc_pow2i_f32(n + 64)) * 5.42101086e-20f; /* 2^-64 */
}

/* expm1(x) for x in [-20, 0] (float32 maths), caller clamps and removes NaN:
 * same reduction as gc_expm_f32, expm1(r) = r + r^2 (1/2 + r/6 + ... + r^6/8!)
 * (Taylor, truncation < 1e-9 relative), then expm1(x) = 2^n expm1(r) +
 * (2^n - 1), both terms exact but the sum, so the result keeps its relative
 * accuracy near 0 (no 1 - e cancellation). */
static inline float gc_expm1m_f32(float x) {
    float nf;
    float r = gc_ln2_reduce_f32(x, &nf);
    float p = (gc_expm1_poly_f32(r) * r) * r + r;
    float s = gc_pow2i_f32((int32_t)nf); /* n in [-29, 0] */
    return s * p + (s - 1.0f);
}

static inline real gc_tanh(real x) {
#if GC_IS_F32
    /* tanh|x| = -m / (2 + m), m = expm1(-2|x|), |x| clamped to 10 (tanh(10)
     * rounds to 1; the clamp also turns NaN into a harmless 10). One formula
     * for every |x|: tiny and subnormal x give x back, -0.0 keeps its sign. */
    float a = fabsf(x);
    float ac = GC_PICK(a < 10.0f, a, 10.0f);
    float m = gc_expm1m_f32(-2.0f * ac);
    float r = copysignf(-m / (2.0f + m), x);
    return GC_PICK(x != x, x, r);
#else
    return tanh(x);
#endif
}

static inline real gc_sigmoid(real x) {
#if GC_IS_F32
    float a = fabsf(x);
    float ac = GC_PICK(a < 110.0f, a, 110.0f); /* also NaN -> 110 */
    float e = gc_expm_f32(-ac);
    float r1 = 1.0f / (1.0f + e), er = e * r1;
    float r = GC_PICK(x >= 0.0f, r1, er);
    return GC_PICK(x != x, x, r);
#else
    double e = exp(-fabs(x));
    double r1 = 1.0 / (1.0 + e);
    return x >= 0.0 ? r1 : e * r1;
#endif
}

/* y[j] = act(x[j] + b[j]) (b may be NULL), y may equal x */
static inline void gc_act_row(real *y, const real *x, const real *b, int64_t n, int act,
                              real slope) {
    switch (act) {
    case GC_ACT_IDENTITY:
        if (b)
            for (int64_t j = 0; j < n; j++) y[j] = x[j] + b[j];
        else if (y != x)
            for (int64_t j = 0; j < n; j++) y[j] = x[j];
        break;
    case GC_ACT_RELU:
        if (b)
            for (int64_t j = 0; j < n; j++) {
                real v = x[j] + b[j];
                y[j] = v < 0 ? (real)0 : v;
            }
        else
            for (int64_t j = 0; j < n; j++) {
                real v = x[j];
                y[j] = v < 0 ? (real)0 : v;
            }
        break;
    case GC_ACT_LEAKY_RELU:
        if (b)
            for (int64_t j = 0; j < n; j++) {
                real v = x[j] + b[j];
                y[j] = gc_select(gc_mask(v < 0), v * slope, v);
            }
        else
            for (int64_t j = 0; j < n; j++) {
                real v = x[j];
                y[j] = gc_select(gc_mask(v < 0), v * slope, v);
            }
        break;
    case GC_ACT_TANH:
        if (b)
            for (int64_t j = 0; j < n; j++) y[j] = gc_tanh(x[j] + b[j]);
        else
            for (int64_t j = 0; j < n; j++) y[j] = gc_tanh(x[j]);
        break;
    case GC_ACT_SIGMOID:
        if (b)
            for (int64_t j = 0; j < n; j++) y[j] = gc_sigmoid(x[j] + b[j]);
        else
            for (int64_t j = 0; j < n; j++) y[j] = gc_sigmoid(x[j]);
        break;
    }
}

/* dx[j] = dy[j] * act'(y[j]) from the output y; dx may equal dy.
 * relu: y <= 0 ? 0 : dy (a select, so NaN in y passes dy through like
 * PyTorch's threshold_backward); leaky_relu: y <= 0 ? slope dy : dy. */
static inline void gc_act_back_row(real *dx, const real *dy, const real *y, int64_t n, int act,
                                   real slope) {
    switch (act) {
    case GC_ACT_IDENTITY:
        if (dx != dy)
            for (int64_t j = 0; j < n; j++) dx[j] = dy[j];
        break;
    case GC_ACT_RELU:
        for (int64_t j = 0; j < n; j++) {
            real d = dy[j];
            dx[j] = y[j] <= 0 ? (real)0 : d;
        }
        break;
    case GC_ACT_LEAKY_RELU:
        for (int64_t j = 0; j < n; j++) {
            real d = dy[j];
            dx[j] = gc_select(gc_mask(y[j] <= 0), d * slope, d);
        }
        break;
    case GC_ACT_TANH:
        for (int64_t j = 0; j < n; j++) {
            real v = y[j];
            dx[j] = dy[j] * ((real)1 - v * v);
        }
        break;
    case GC_ACT_SIGMOID:
        for (int64_t j = 0; j < n; j++) {
            real v = y[j];
            dx[j] = dy[j] * (v * ((real)1 - v));
        }
        break;
    }
}

#endif /* GC_ACT_INLINE_H */
