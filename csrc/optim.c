/* optim.c -- fused optimizer updates over one flat parameter buffer
 * (template: see kernel.h), PyTorch formulas, one pass each.
 *
 * Contract: param, grad and the state buffers hold n elements; the gradient
 * is read as grad * grad_scale (a clipping coefficient folded into the pass,
 * so clipping needs no separate scaling pass) and is never written.
 *   SGD:  g = grad s + wd p; if momentum: v = momentum v + g and
 *         g = nesterov ? g + momentum v : v; p -= lr g.
 *         (velocity NULL iff momentum == 0; PyTorch's first-step v = g is the
 *         same as starting from v = 0.)
 *   Adam: g = grad s, plus wd p (decoupled = 0), or p *= 1 - lr wd
 *         (decoupled = 1, AdamW); m += (1 - b1)(g - m); v = b2 v + (1 - b2) g g;
 *         p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
 * Scalars are rounded once to the element type; element arithmetic is in the
 * element type. Returns GC_ERR_ARG (nothing written) for bad hyperparameters.
 */
#include "kernel.h"

#if GC_IS_F32
#define GC_SQRT sqrtf
#else
#define GC_SQRT sqrt
#endif

int GC_IMPL(sgd_step)(real *param, const real *grad, real *velocity, int64_t n, double lr,
                      double momentum, int nesterov, double weight_decay, double grad_scale) {
    if (n < 0 || !(lr > 0.0) || isinf(lr) || !(momentum >= 0.0) || isinf(momentum) ||
        !(weight_decay >= 0.0) || isinf(weight_decay) || !(grad_scale >= 0.0) ||
        isinf(grad_scale))
        return GC_ERR_ARG;
    if ((momentum != 0.0) != (velocity != NULL) || (nesterov && momentum == 0.0))
        return GC_ERR_ARG;
    if (n > 0 && (!param || !grad)) return GC_ERR_ARG;
    const real s = (real)grad_scale, wd = (real)weight_decay, mu = (real)momentum,
               nlr = (real)(-lr);
    const int use_wd = weight_decay != 0.0; /* loop-invariant: unswitched */
    if (momentum == 0.0) {
        for (int64_t i = 0; i < n; i++) {
            real p = param[i];
            real g = grad[i] * s;
            if (use_wd) g = g + wd * p;
            param[i] = p + nlr * g;
        }
    } else {
        const int nest = nesterov != 0; /* loop-invariant: unswitched */
        for (int64_t i = 0; i < n; i++) {
            real p = param[i];
            real g = grad[i] * s;
            if (use_wd) g = g + wd * p;
            real v = velocity[i] * mu + g;
            velocity[i] = v;
            param[i] = p + nlr * (nest ? g + mu * v : v);
        }
    }
    return GC_OK;
}

int GC_IMPL(adam_step)(real *param, const real *grad, real *m, real *v, int64_t n, int64_t step,
                       double lr, double beta1, double beta2, double eps, double weight_decay,
                       int decoupled, double grad_scale) {
    if (n < 0 || step < 1 || !(lr > 0.0) || isinf(lr) || !(beta1 >= 0.0 && beta1 < 1.0) ||
        !(beta2 >= 0.0 && beta2 < 1.0) || !(eps >= 0.0) || isinf(eps) ||
        !(weight_decay >= 0.0) || isinf(weight_decay) || !(grad_scale >= 0.0) ||
        isinf(grad_scale))
        return GC_ERR_ARG;
    if (n > 0 && (!param || !grad || !m || !v)) return GC_ERR_ARG;
    const double bc1 = 1.0 - pow(beta1, (double)step), bc2 = 1.0 - pow(beta2, (double)step);
    const real s = (real)grad_scale, w1 = (real)(1.0 - beta1), b2 = (real)beta2,
               w2 = (real)(1.0 - beta2), e = (real)eps, bc2s = (real)sqrt(bc2),
               nstep = (real)(-(lr / bc1));
    const real l2 = (real)weight_decay;
    const real decay = (real)(1.0 - lr * weight_decay);
    const int use_l2 = weight_decay != 0.0 && !decoupled; /* loop-invariant: unswitched */
    const int use_decay = weight_decay != 0.0 && decoupled;
    for (int64_t i = 0; i < n; i++) {
        real p = param[i];
        if (use_decay) p = p * decay;
        real g = grad[i] * s;
        if (use_l2) g = g + l2 * p;
        real mi = m[i];
        mi = mi + w1 * (g - mi);
        real vi = v[i] * b2 + w2 * g * g;
        m[i] = mi;
        v[i] = vi;
        param[i] = p + nstep * (mi / (GC_SQRT(vi) / bc2s + e));
    }
    return GC_OK;
}

GC_DISPATCH(int, sgd_step,
            (real *param, const real *grad, real *velocity, int64_t n, double lr,
             double momentum, int nesterov, double weight_decay, double grad_scale),
            (param, grad, velocity, n, lr, momentum, nesterov, weight_decay, grad_scale))
GC_DISPATCH(int, adam_step,
            (real *param, const real *grad, real *m, real *v, int64_t n, int64_t step,
             double lr, double beta1, double beta2, double eps, double weight_decay,
             int decoupled, double grad_scale),
            (param, grad, m, v, n, step, lr, beta1, beta2, eps, weight_decay, decoupled,
             grad_scale))
