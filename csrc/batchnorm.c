/* batchnorm.c -- BatchNorm1d over the batch axis, forward and backward
 * (template: see kernel.h), PyTorch semantics.
 *
 * Contract: x (B, D) row-major, per-feature vectors (D).
 * forward, training: batch mean and biased variance (two passes, float64
 *   column accumulators summed row by row) -> save_mean, save_rstd =
 *   1/sqrt(var + eps); running_mean/var (both or neither NULL) :=
 *   (1 - momentum) running + momentum batch, with the unbiased variance
 *   var * B / (B - 1) (needs B >= 2).
 * forward, eval: save_mean := running_mean, save_rstd := 1/sqrt(running_var + eps).
 *   y = (x - save_mean) * save_rstd * gamma + beta (gamma/beta may be NULL).
 * backward: dgamma += sum_B dy xhat, dbeta += sum_B dy (NULL: skip);
 *   dx (NULL: skip) = gamma rstd (dy - mean_B dy - xhat mean_B(dy xhat))
 *   in training, gamma rstd dy in eval.
 * Allocates 2 D doubles (+ 3 D reals in training backward) of scratch.
 * Returns GC_ERR_ARG (nothing written) for
 * bad sizes/momentum/eps or missing running stats in eval, GC_ERR_NOMEM.
 */
#include "kernel.h"

#include <stdlib.h>

int GC_IMPL(batchnorm_forward)(real *y, const real *x, const real *gamma, const real *beta,
                               real *running_mean, real *running_var, real *save_mean,
                               real *save_rstd, int64_t B, int64_t D, int training,
                               double momentum, double eps) {
    if (B < 0 || D < 0 || !(eps >= 0.0) || isinf(eps) || !(momentum >= 0.0 && momentum <= 1.0))
        return GC_ERR_ARG;
    if (!running_mean != !running_var) return GC_ERR_ARG;
    if (D == 0) return GC_OK;
    if (training ? B < 2 : !running_mean) return GC_ERR_ARG;
    if (!save_mean || !save_rstd || (B > 0 && (!x || !y))) return GC_ERR_ARG;
    if (training) {
        double *s = calloc(2 * (size_t)D, sizeof(double));
        if (!s) return GC_ERR_NOMEM;
        double *sq = s + D;
        for (int64_t i = 0; i < B; i++) {
            const real *xr = x + i * D;
            for (int64_t j = 0; j < D; j++) s[j] += (double)xr[j];
        }
        for (int64_t j = 0; j < D; j++) s[j] /= (double)B;
        for (int64_t i = 0; i < B; i++) {
            const real *xr = x + i * D;
            for (int64_t j = 0; j < D; j++) {
                double d = (double)xr[j] - s[j];
                sq[j] += d * d;
            }
        }
        const double unbias = (double)B / (double)(B - 1);
        for (int64_t j = 0; j < D; j++) {
            double var = sq[j] / (double)B;
            save_mean[j] = (real)s[j];
            save_rstd[j] = (real)(1.0 / sqrt(var + eps));
            if (running_mean) {
                running_mean[j] =
                    (real)((1.0 - momentum) * (double)running_mean[j] + momentum * s[j]);
                running_var[j] =
                    (real)((1.0 - momentum) * (double)running_var[j] + momentum * var * unbias);
            }
        }
        free(s);
    } else {
        for (int64_t j = 0; j < D; j++) {
            save_mean[j] = running_mean[j];
            save_rstd[j] = (real)(1.0 / sqrt((double)running_var[j] + eps));
        }
    }
    const real *m = save_mean, *r = save_rstd;
    for (int64_t i = 0; i < B; i++) {
        const real *xr = x + i * D;
        real *yr = y + i * D;
        if (gamma && beta)
            for (int64_t j = 0; j < D; j++) yr[j] = (xr[j] - m[j]) * r[j] * gamma[j] + beta[j];
        else if (gamma)
            for (int64_t j = 0; j < D; j++) yr[j] = (xr[j] - m[j]) * r[j] * gamma[j];
        else if (beta)
            for (int64_t j = 0; j < D; j++) yr[j] = (xr[j] - m[j]) * r[j] + beta[j];
        else
            for (int64_t j = 0; j < D; j++) yr[j] = (xr[j] - m[j]) * r[j];
    }
    return GC_OK;
}

/* Eval-mode dx = gamma rstd dy (gamma may be NULL: 1). */
static void bn_eval_dx(real *dx, const real *dy, const real *gamma, const real *r, int64_t B,
                       int64_t D) {
    for (int64_t i = 0; i < B; i++) {
        const real *dyr = dy + i * D;
        real *dxr = dx + i * D;
        if (gamma)
            for (int64_t j = 0; j < D; j++) dxr[j] = gamma[j] * r[j] * dyr[j];
        else
            for (int64_t j = 0; j < D; j++) dxr[j] = r[j] * dyr[j];
    }
}

int GC_IMPL(batchnorm_backward)(real *dx, real *dgamma, real *dbeta, const real *dy,
                                const real *x, const real *save_mean, const real *save_rstd,
                                const real *gamma, int64_t B, int64_t D, int training) {
    if (B < 0 || D < 0) return GC_ERR_ARG;
    if (B == 0 || D == 0) return GC_OK;
    if (!dy || !x || !save_mean || !save_rstd) return GC_ERR_ARG;
    const real *m = save_mean, *r = save_rstd;
    if (!training && !dgamma && !dbeta) {
        bn_eval_dx(dx, dy, gamma, r, B, D); /* eval, dx only: no column sums needed */
        return GC_OK;
    }
    if (!dx && !dgamma && !dbeta) return GC_OK;
    /* sdy[j] = sum_B dy, sdx[j] = sum_B dy xhat (float64, row by row) */
    double *sdy = calloc(2 * (size_t)D, sizeof(double));
    real *a = (dx && training) ? malloc(3 * (size_t)D * sizeof(real)) : NULL;
    if (!sdy || (dx && training && !a)) {
        free(sdy);
        free(a);
        return GC_ERR_NOMEM;
    }
    double *sdx = sdy + D;
    for (int64_t i = 0; i < B; i++) {
        const real *xr = x + i * D, *dyr = dy + i * D;
        for (int64_t j = 0; j < D; j++) {
            real d = dyr[j];
            sdy[j] += (double)d;
            sdx[j] += (double)(d * ((xr[j] - m[j]) * r[j]));
        }
    }
    if (dgamma)
        for (int64_t j = 0; j < D; j++) dgamma[j] = (real)((double)dgamma[j] + sdx[j]);
    if (dbeta)
        for (int64_t j = 0; j < D; j++) dbeta[j] = (real)((double)dbeta[j] + sdy[j]);
    if (dx) {
        if (training) {
            /* per-feature terms: a = mean_B dy, c = mean_B(dy xhat), k = gamma rstd */
            real *c = a + D, *k = c + D;
            const double invB = 1.0 / (double)B;
            for (int64_t j = 0; j < D; j++) {
                double ay = sdy[j] * invB, cx = sdx[j] * invB;
                a[j] = (real)ay;
                c[j] = (real)cx;
            }
            for (int64_t j = 0; j < D; j++) k[j] = gamma ? gamma[j] * r[j] : r[j];
            for (int64_t i = 0; i < B; i++) {
                const real *xr = x + i * D, *dyr = dy + i * D;
                real *dxr = dx + i * D;
                for (int64_t j = 0; j < D; j++) {
                    real xh = (xr[j] - m[j]) * r[j];
                    dxr[j] = k[j] * (dyr[j] - a[j] - xh * c[j]);
                }
            }
        } else {
            bn_eval_dx(dx, dy, gamma, r, B, D);
        }
    }
    free(sdy);
    free(a);
    return GC_OK;
}

GC_DISPATCH(int, batchnorm_forward,
            (real *y, const real *x, const real *gamma, const real *beta, real *running_mean,
             real *running_var, real *save_mean, real *save_rstd, int64_t B, int64_t D,
             int training, double momentum, double eps),
            (y, x, gamma, beta, running_mean, running_var, save_mean, save_rstd, B, D,
             training, momentum, eps))
GC_DISPATCH(int, batchnorm_backward,
            (real *dx, real *dgamma, real *dbeta, const real *dy, const real *x,
             const real *save_mean, const real *save_rstd, const real *gamma, int64_t B,
             int64_t D, int training),
            (dx, dgamma, dbeta, dy, x, save_mean, save_rstd, gamma, B, D, training))
