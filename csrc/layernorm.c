/* layernorm.c -- LayerNorm over the last axis, forward and backward
 * (template: see kernel.h).
 *
 * Contract: x (B, D) row-major. forward writes mean, rstd (B) and
 *   y = (x - mean) * rstd * gamma + beta, rstd = 1 / sqrt(var + eps) with the
 *   biased variance (two passes, float64 accumulators); gamma/beta may be NULL.
 * backward: dgamma += sum_B dy xhat, dbeta += sum_B dy (NULL: skip);
 *   dx = rstd (g - mean_D g - xhat mean_D(g xhat)), g = dy gamma (NULL: skip).
 * Row reductions use GC_NACC accumulators; column sums run row by row in a
 * float64 scratch (2 D doubles, allocated when dgamma or dbeta is given).
 * Returns GC_ERR_ARG (nothing written) for bad sizes or eps, GC_ERR_NOMEM.
 */
#include "kernel.h"

#include <stdlib.h>

/* sum_k x[k] and sum_k (x[k] - mu)^2 in float64 with GC_NACC accumulators */
static double row_sum(const real *x, int64_t n) {
    double acc[GC_NACC] = {0};
    int64_t i = 0;
    for (; i + GC_NACC <= n; i += GC_NACC)
        for (int k = 0; k < GC_NACC; k++) acc[k] += (double)x[i + k];
    for (int k = 0; i < n; i++, k++) acc[k] += (double)x[i];
    return gc_fold_nacc(acc);
}

static double row_sumsq_dev(const real *x, int64_t n, double mu) {
    double acc[GC_NACC] = {0};
    int64_t i = 0;
    for (; i + GC_NACC <= n; i += GC_NACC)
        for (int k = 0; k < GC_NACC; k++) {
            double d = (double)x[i + k] - mu;
            acc[k] += d * d;
        }
    for (int k = 0; i < n; i++, k++) {
        double d = (double)x[i] - mu;
        acc[k] += d * d;
    }
    return gc_fold_nacc(acc);
}

int GC_IMPL(layernorm_forward)(real *y, real *mean, real *rstd, const real *x,
                               const real *gamma, const real *beta, int64_t B, int64_t D,
                               double eps) {
    if (B < 0 || D < 0 || !(eps >= 0.0) || isinf(eps)) return GC_ERR_ARG;
    if (B > 0 && (!mean || !rstd || (D > 0 && (!x || !y)))) return GC_ERR_ARG;
    for (int64_t i = 0; i < B; i++) {
        const real *xr = x + i * D;
        real *yr = y + i * D;
        double mu = D ? row_sum(xr, D) / (double)D : 0.0;
        double var = D ? row_sumsq_dev(xr, D, mu) / (double)D : 0.0;
        const real m = (real)mu, r = (real)(1.0 / sqrt(var + eps));
        mean[i] = m;
        rstd[i] = r;
        if (gamma && beta)
            for (int64_t j = 0; j < D; j++) yr[j] = (xr[j] - m) * r * gamma[j] + beta[j];
        else if (gamma)
            for (int64_t j = 0; j < D; j++) yr[j] = (xr[j] - m) * r * gamma[j];
        else if (beta)
            for (int64_t j = 0; j < D; j++) yr[j] = (xr[j] - m) * r + beta[j];
        else
            for (int64_t j = 0; j < D; j++) yr[j] = (xr[j] - m) * r;
    }
    return GC_OK;
}

int GC_IMPL(layernorm_backward)(real *dx, real *dgamma, real *dbeta, const real *dy,
                                const real *x, const real *mean, const real *rstd,
                                const real *gamma, int64_t B, int64_t D) {
    if (B < 0 || D < 0) return GC_ERR_ARG;
    if (B == 0 || D == 0) return GC_OK;
    if (!dy || !x || !mean || !rstd) return GC_ERR_ARG;
    double *sg = NULL, *sb = NULL;
    if (dgamma || dbeta) {
        sg = calloc(2 * (size_t)D, sizeof(double));
        if (!sg) return GC_ERR_NOMEM;
        sb = sg + D;
    }
    const double invD = 1.0 / (double)D;
    for (int64_t i = 0; i < B; i++) {
        const real *xr = x + i * D, *dyr = dy + i * D;
        const real m = mean[i], r = rstd[i];
        if (sg)
            for (int64_t j = 0; j < D; j++) {
                real d = dyr[j];
                sg[j] += (double)(d * ((xr[j] - m) * r));
                sb[j] += (double)d;
            }
        if (!dx) continue;
        /* mean_D(g) and mean_D(g xhat), GC_NACC accumulators */
        double a1[GC_NACC] = {0}, a2[GC_NACC] = {0};
        int64_t j = 0;
        for (; j + GC_NACC <= D; j += GC_NACC)
            for (int k = 0; k < GC_NACC; k++) {
                real g = gamma ? dyr[j + k] * gamma[j + k] : dyr[j + k];
                real xh = (xr[j + k] - m) * r;
                a1[k] += (double)g;
                a2[k] += (double)(g * xh);
            }
        for (int k = 0; j < D; j++, k++) {
            real g = gamma ? dyr[j] * gamma[j] : dyr[j];
            real xh = (xr[j] - m) * r;
            a1[k] += (double)g;
            a2[k] += (double)(g * xh);
        }
        const real mg = (real)(gc_fold_nacc(a1) * invD), mgx = (real)(gc_fold_nacc(a2) * invD);
        real *dxr = dx + i * D;
        if (gamma)
            for (int64_t q = 0; q < D; q++) {
                real xh = (xr[q] - m) * r;
                dxr[q] = r * (dyr[q] * gamma[q] - mg - xh * mgx);
            }
        else
            for (int64_t q = 0; q < D; q++) {
                real xh = (xr[q] - m) * r;
                dxr[q] = r * (dyr[q] - mg - xh * mgx);
            }
    }
    if (sg) {
        if (dgamma)
            for (int64_t j = 0; j < D; j++) dgamma[j] = (real)((double)dgamma[j] + sg[j]);
        if (dbeta)
            for (int64_t j = 0; j < D; j++) dbeta[j] = (real)((double)dbeta[j] + sb[j]);
        free(sg);
    }
    return GC_OK;
}

GC_DISPATCH(int, layernorm_forward,
            (real *y, real *mean, real *rstd, const real *x, const real *gamma,
             const real *beta, int64_t B, int64_t D, double eps),
            (y, mean, rstd, x, gamma, beta, B, D, eps))
GC_DISPATCH(int, layernorm_backward,
            (real *dx, real *dgamma, real *dbeta, const real *dy, const real *x,
             const real *mean, const real *rstd, const real *gamma, int64_t B, int64_t D),
            (dx, dgamma, dbeta, dy, x, mean, rstd, gamma, B, D))
