/* Scalar libm baselines for the activation benchmark: one tanhf / expf call
 * per element (what a straightforward C loop does). Built on the fly by
 * workloads_dense.py; not part of the package. */
#include <math.h>
#include <stdint.h>

void scalar_tanhf(float *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = tanhf(x[i]);
}

void scalar_sigmoidf(float *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = 1.0f / (1.0f + expf(-x[i]));
}
