/* activation.c -- element-wise activations, forward and backward (template:
 * see kernel.h; the maths lives in act_inline.h, shared with dense.c).
 *
 * Contract: gc_activation_forward_<dt>(y, x, n, act, slope) writes
 * y = act(x); gc_activation_backward_<dt>(dx, dy, y, n, act, slope) writes
 * dx = dy * act'(y) with the derivative taken from the output y. Outputs may
 * alias the matching input exactly. Returns GC_ERR_ARG (nothing written) for
 * an unknown act, n < 0 or a negative / non-finite slope.
 */
#include "kernel.h"
#include "act_inline.h"

static int bad_args(int64_t n, int act, double slope) {
    return n < 0 || act < 0 || act >= GC_ACT_COUNT || !(slope >= 0.0) || isinf(slope);
}

/* y = act(x) */
int GC_IMPL(activation_forward)(real *y, const real *x, int64_t n, int act, double slope) {
    if (bad_args(n, act, slope) || (n > 0 && (!y || !x))) return GC_ERR_ARG;
    gc_act_row(y, x, NULL, n, act, (real)slope);
    return GC_OK;
}

/* dx = dy * act'(y) */
int GC_IMPL(activation_backward)(real *dx, const real *dy, const real *y, int64_t n, int act,
                                 double slope) {
    if (bad_args(n, act, slope) || (n > 0 && (!dx || !dy || !y))) return GC_ERR_ARG;
    gc_act_back_row(dx, dy, y, n, act, (real)slope);
    return GC_OK;
}

GC_DISPATCH(int, activation_forward,
            (real *y, const real *x, int64_t n, int act, double slope), (y, x, n, act, slope))
GC_DISPATCH(int, activation_backward,
            (real *dx, const real *dy, const real *y, int64_t n, int act, double slope),
            (dx, dy, y, n, act, slope))
