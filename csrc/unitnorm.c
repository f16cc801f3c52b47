/* unitnorm.c -- L2 norms of the units (rows) of many buffers in one call
 * (template: see kernel.h).
 *
 * Contract: gc_unit_norms_<dt>(bufs, lens, units, n_bufs, out). Buffer b holds
 * units[b] rows of lens[b] / units[b] contiguous elements (units[b] >= 1 must
 * divide lens[b]; an empty buffer needs units[b] >= 1 and gives zero norms).
 * out receives sum(units) float64 norms, buffer after buffer, row after row.
 * Reads only. Status: GC_OK, GC_ERR_ARG (NULL pointers, bad counts).
 *
 * Method: each row's sum of squares accumulates in float64 in GC_NACC lanes
 * (element i + k goes to lane k) summed by a fixed tree, so the baseline and
 * AVX2 compiles give the same bits. float32 cannot overflow there. For
 * float64 a sum that overflows (all elements finite) or falls below 2^-600 is
 * recomputed as max|x| * sqrt(sum((x / max|x|)^2)); NaN in a row gives NaN,
 * otherwise Inf gives +Inf.
 */
#include "kernel.h"

#define GC_UTINY 0x1p-600

static double GC_IMPL(row_sumsq)(const real *x, int64_t n) {
    double acc[GC_NACC] = {0};
    int64_t i = 0;
    for (; i + GC_NACC <= n; i += GC_NACC)
        for (int k = 0; k < GC_NACC; k++) {
            double v = (double)x[i + k];
            acc[k] += v * v;
        }
    for (int k = 0; i < n; i++, k++) {
        double v = (double)x[i];
        acc[k] += v * v;
    }
    return gc_fold_nacc(acc);
}

#if !GC_IS_F32
static double GC_IMPL(row_scaled)(const real *x, int64_t n) {
    double m = 0.0;
    int nan = 0, inf = 0;
    for (int64_t i = 0; i < n; i++) {
        double a = fabs((double)x[i]);
        if (a != a) nan = 1;
        else if (a > GC_REAL_MAX) inf = 1;
        else if (a > m) m = a;
    }
    if (nan) return NAN;
    if (inf) return INFINITY;
    if (m == 0.0) return 0.0;
    double acc[GC_NACC] = {0};
    int64_t i = 0;
    for (; i + GC_NACC <= n; i += GC_NACC)
        for (int k = 0; k < GC_NACC; k++) {
            double v = (double)x[i + k] / m;
            acc[k] += v * v;
        }
    for (int k = 0; i < n; i++, k++) {
        double v = (double)x[i] / m;
        acc[k] += v * v;
    }
    return m * sqrt(gc_fold_nacc(acc));
}
#endif

int GC_IMPL(unit_norms)(const real *const *bufs, const int64_t *lens, const int64_t *units,
                        int64_t n_bufs, double *out) {
    if (n_bufs < 0 || (n_bufs > 0 && (bufs == NULL || lens == NULL || units == NULL || out == NULL)))
        return GC_ERR_ARG;
    for (int64_t b = 0; b < n_bufs; b++) {
        if (lens[b] < 0 || units[b] < 1 || lens[b] % units[b] != 0) return GC_ERR_ARG;
        if (lens[b] > 0 && bufs[b] == NULL) return GC_ERR_ARG;
    }
    int64_t o = 0;
    for (int64_t b = 0; b < n_bufs; b++) {
        const int64_t rows = units[b], cols = lens[b] / units[b];
        for (int64_t r = 0; r < rows; r++) {
            const real *x = bufs[b] + r * cols;
            double s = cols > 0 ? GC_IMPL(row_sumsq)(x, cols) : 0.0;
#if GC_IS_F32
            out[o++] = sqrt(s);
#else
            if (s != s || s > 1.7976931348623157e308 || (s < GC_UTINY && s > 0.0))
                out[o++] = GC_IMPL(row_scaled)(x, cols);
            else
                out[o++] = sqrt(s);
#endif
        }
    }
    return GC_OK;
}

GC_DISPATCH(int, unit_norms,
            (const real *const *bufs, const int64_t *lens, const int64_t *units, int64_t n_bufs,
             double *out),
            (bufs, lens, units, n_bufs, out))
