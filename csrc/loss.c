/* loss.c -- losses (mean reduction) with their gradient in the same pass
 * (template: see kernel.h).
 *
 * Contract: the loss is accumulated in float64 (GC_NACC accumulators for the
 * element-wise losses, so every SIMD path sums in the same order) and stored
 * in *loss; the gradient output (may be NULL) is written in the same pass.
 *   mse:  mean((p - t)^2), dp = 2 (p - t) / n.
 *   bce_with_logits: mean(max(z, 0) - z t + log1p(exp(-|z|))) (stable for
 *         any |z|), dz = (sigmoid(z) - t) / n; evaluated in float64 with libm.
 *   softmax_cross_entropy: z (B, C), labels in [0, C) -- all checked before
 *         any write (GC_ERR_ARG) --, mean over B of m + log(sum exp(z - m))
 *         - z[label] with m the row max, dz = (softmax(z) - onehot) / B.
 * NaN/Inf in the inputs propagate into the loss and the gradient.
 */
#include "kernel.h"

int GC_IMPL(mse_loss)(const real *p, const real *t, real *dp, int64_t n, double *loss) {
    if (n < 0 || !loss || (n > 0 && (!p || !t))) return GC_ERR_ARG;
    double acc[GC_NACC] = {0};
    const double sc = n ? 2.0 / (double)n : 0.0;
    int64_t i = 0;
    if (dp) {
        for (; i + GC_NACC <= n; i += GC_NACC)
            for (int k = 0; k < GC_NACC; k++) {
                double d = (double)p[i + k] - (double)t[i + k];
                acc[k] += d * d;
                dp[i + k] = (real)(d * sc);
            }
        for (int k = 0; i < n; i++, k++) {
            double d = (double)p[i] - (double)t[i];
            acc[k] += d * d;
            dp[i] = (real)(d * sc);
        }
    } else {
        for (; i + GC_NACC <= n; i += GC_NACC)
            for (int k = 0; k < GC_NACC; k++) {
                double d = (double)p[i + k] - (double)t[i + k];
                acc[k] += d * d;
            }
        for (int k = 0; i < n; i++, k++) {
            double d = (double)p[i] - (double)t[i];
            acc[k] += d * d;
        }
    }
    *loss = n ? gc_fold_nacc(acc) / (double)n : 0.0;
    return GC_OK;
}

int GC_IMPL(bce_with_logits_loss)(const real *z, const real *t, real *dz, int64_t n,
                                  double *loss) {
    if (n < 0 || !loss || (n > 0 && (!z || !t))) return GC_ERR_ARG;
    double acc[GC_NACC] = {0};
    const double inv = n ? 1.0 / (double)n : 0.0;
    for (int64_t i0 = 0; i0 < n; i0 += GC_NACC) {
        int64_t kn = n - i0 < GC_NACC ? n - i0 : GC_NACC;
        for (int64_t k = 0; k < kn; k++) {
            double v = (double)z[i0 + k], tv = (double)t[i0 + k];
            double e = exp(-fabs(v));
            acc[k] += (v > 0.0 ? v : 0.0) - v * tv + log1p(e);
            if (dz) {
                double r1 = 1.0 / (1.0 + e);
                double sig = v >= 0.0 ? r1 : e * r1;
                if (v != v) sig = v;
                dz[i0 + k] = (real)((sig - tv) * inv);
            }
        }
    }
    *loss = n ? gc_fold_nacc(acc) * inv : 0.0;
    return GC_OK;
}

int GC_IMPL(softmax_cross_entropy_loss)(const real *z, const int64_t *labels, real *dz,
                                        int64_t B, int64_t C, double *loss) {
    if (B < 0 || C < 0 || !loss || (B > 0 && (C == 0 || !z || !labels))) return GC_ERR_ARG;
    for (int64_t i = 0; i < B; i++)
        if (labels[i] < 0 || labels[i] >= C) return GC_ERR_ARG;
    double total = 0.0;
    const double invB = B ? 1.0 / (double)B : 0.0;
    for (int64_t i = 0; i < B; i++) {
        const real *zr = z + i * C;
        real m = zr[0];
        for (int64_t j = 1; j < C; j++) m = zr[j] > m ? zr[j] : m;
        double acc[GC_NACC] = {0};
        int64_t j = 0;
        for (; j + GC_NACC <= C; j += GC_NACC)
            for (int k = 0; k < GC_NACC; k++) acc[k] += exp((double)zr[j + k] - (double)m);
        for (int k = 0; j < C; j++, k++) acc[k] += exp((double)zr[j] - (double)m);
        double s = gc_fold_nacc(acc);
        total += (double)m + log(s) - (double)zr[labels[i]];
        if (dz) {
            real *dr = dz + i * C;
            const double f = invB / s;
            for (int64_t q = 0; q < C; q++) dr[q] = (real)(exp((double)zr[q] - (double)m) * f);
            dr[labels[i]] = (real)(exp((double)zr[labels[i]] - (double)m) * f - invB);
        }
    }
    *loss = total * invB;
    return GC_OK;
}

GC_DISPATCH(int, mse_loss, (const real *p, const real *t, real *dp, int64_t n, double *loss),
            (p, t, dp, n, loss))
GC_DISPATCH(int, bce_with_logits_loss,
            (const real *z, const real *t, real *dz, int64_t n, double *loss),
            (z, t, dz, n, loss))
GC_DISPATCH(int, softmax_cross_entropy_loss,
            (const real *z, const int64_t *labels, real *dz, int64_t B, int64_t C,
             double *loss),
            (z, labels, dz, B, C, loss))
