/* clip.c -- in-place scaling and clamping of many buffers (template: see
 * kernel.h).
 *
 * Contract: gc_scale_<dt> multiplies every element by factor. The factor is
 * rounded once to the element type when that leaves it a normal number (the
 * fast loop); a float32 factor that would round to zero, a subnormal or Inf
 * (|factor| < FLT_MIN or > FLT_MAX) is applied in double instead, each product
 * rounded once to float32, so a tiny clipping coefficient does not underflow
 * while the scaled values themselves are representable. gc_clamp_<dt> clamps every element to [-c, c] and returns
 * the number of elements it changed; NaN is left as NaN and not counted.
 * Callers validate the buffers (writable, contiguous) before calling.
 */
#include "kernel.h"

void GC_IMPL(scale)(real *const *bufs, const int64_t *lens, int64_t n_bufs, double factor) {
#if GC_IS_F32
    const double af = fabs(factor);
    if (!(af >= 1.1754943508222875e-38 && af <= 3.4028234663852886e38) && factor == factor) {
        for (int64_t b = 0; b < n_bufs; b++) {
            real *x = bufs[b];
            const int64_t n = lens[b];
            for (int64_t i = 0; i < n; i++) x[i] = (real)((double)x[i] * factor);
        }
        return;
    }
#endif
    const real f = (real)factor;
    for (int64_t b = 0; b < n_bufs; b++) {
        real *x = bufs[b];
        const int64_t n = lens[b];
        for (int64_t i = 0; i < n; i++) x[i] *= f;
    }
}

int64_t GC_IMPL(clamp)(real *const *bufs, const int64_t *lens, int64_t n_bufs, double c) {
    const real hi = (real)c, lo = -(real)c;
    int64_t changed = 0;
    for (int64_t b = 0; b < n_bufs; b++) {
        real *x = bufs[b];
        const int64_t n = lens[b];
        int64_t cnt[GC_NACC] = {0};
        int64_t i = 0;
        for (; i + GC_NACC <= n; i += GC_NACC)
            for (int k = 0; k < GC_NACC; k++) {
                real v = x[i + k];
                real y = v > hi ? hi : v;
                y = y < lo ? lo : y;
                cnt[k] += y != v && v == v;
                x[i + k] = y;
            }
        for (int k = 0; i < n; i++, k++) {
            real v = x[i];
            real y = v > hi ? hi : v;
            y = y < lo ? lo : y;
            cnt[k] += y != v && v == v;
            x[i] = y;
        }
        for (int k = 0; k < GC_NACC; k++) changed += cnt[k];
    }
    return changed;
}

GC_DISPATCH(void, scale,
            (real *const *bufs, const int64_t *lens, int64_t n_bufs, double factor),
            (bufs, lens, n_bufs, factor))
GC_DISPATCH(int64_t, clamp,
            (real *const *bufs, const int64_t *lens, int64_t n_bufs, double c),
            (bufs, lens, n_bufs, c))
