/* gradcore.h -- the C API of gradcore's kernels.
 *
 * Contract: plain C11, no Python. Raw pointers and sizes in, status codes out.
 * Every kernel exists for float32 (_f32) and float64 (_f64). Arrays are
 * C-contiguous (row-major). Kernels never allocate unless documented, never
 * print, and never touch an output before all arguments were checked.
 */
#ifndef GRADCORE_H
#define GRADCORE_H

#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes returned by kernels. */
enum {
    GC_OK = 0,
    GC_ERR_ARG = 1,        /* a size or option is out of range */
    GC_ERR_NOMEM = 2,      /* a scratch allocation failed */
    GC_ERR_NONFINITE = 3,  /* a NaN/Inf was found where the caller asked to stop */
    GC_ERR_BLAS = 4        /* the BLAS table is missing or a size exceeds BLAS int */
};

/* ---- SIMD dispatch (dispatch.c) ------------------------------------------
 * gc_simd_init() picks the AVX2+FMA path when the CPU has it, unless the
 * environment variable GRADCORE_SIMD=baseline forces the portable path.
 * gc_simd_set(0|1) overrides (1 is refused when the CPU lacks AVX2/FMA). */
void gc_simd_init(void);
int gc_simd_set(int level);
int gc_simd_level(void);            /* 0 baseline, 1 avx2+fma */
int gc_simd_cpu_has_avx2(void);
const char *gc_simd_name(void);     /* "avx2+fma" or "baseline" */

/* ---- Norms over many buffers (norm.c) -------------------------------------
 * Norm of the concatenation of n_bufs buffers, ord = 2, 1, INFINITY or any
 * finite p > 0. per_buf (may be NULL) receives each buffer's own norm.
 * L2 is overflow- and underflow-safe: float32 accumulates in float64, float64
 * takes a scaled (lassq-style) pass only when the fast sum over/underflows.
 * NaN/Inf are detected from the accumulated result; only then does a second
 * scan count them and locate the first one (first_buf, first_idx; -1 if none).
 * With NaN present norm is NaN; with Inf (no NaN) norm is +Inf. */
typedef struct {
    double norm;
    double max_abs;       /* max |x| over finite and infinite values (NaN ignored) */
    int64_t n_nan;
    int64_t n_inf;
    int64_t first_buf;    /* buffer of the first non-finite value, -1 if none */
    int64_t first_idx;    /* its flat index inside that buffer, -1 if none */
} gc_norm_result;

int gc_norm_f32(const float *const *bufs, const int64_t *lens, int64_t n_bufs,
                double ord, double *per_buf, gc_norm_result *out);
int gc_norm_f64(const double *const *bufs, const int64_t *lens, int64_t n_bufs,
                double ord, double *per_buf, gc_norm_result *out);
/* gc_norm_ex: flags = 0 skips max |x| when the norm does not need it
 * (out->max_abs is then NaN); GC_NORM_MAX computes it (= gc_norm). */
#define GC_NORM_MAX 1
int gc_norm_ex_f32(const float *const *bufs, const int64_t *lens, int64_t n_bufs,
                   double ord, int flags, double *per_buf, gc_norm_result *out);
int gc_norm_ex_f64(const double *const *bufs, const int64_t *lens, int64_t n_bufs,
                   double ord, int flags, double *per_buf, gc_norm_result *out);

/* ---- In-place clipping (clip.c) -------------------------------------------
 * gc_scale: x *= factor for every element of every buffer.
 * gc_clamp: x = min(max(x, -c), c); returns how many elements changed.
 * NaN stays NaN and is not counted as changed. */
void gc_scale_f32(float *const *bufs, const int64_t *lens, int64_t n_bufs, double factor);
void gc_scale_f64(double *const *bufs, const int64_t *lens, int64_t n_bufs, double factor);
int64_t gc_clamp_f32(float *const *bufs, const int64_t *lens, int64_t n_bufs, double c);
int64_t gc_clamp_f64(double *const *bufs, const int64_t *lens, int64_t n_bufs, double c);

/* ---- Dense networks: activations, dense, layernorm, batchnorm, losses,
 * optimizers (activation.c, dense.c, layernorm.c, batchnorm.c, loss.c, optim.c) */



/* ---- Recurrent networks: RNN, LSTM, GRU forward and BPTT (rnn.c, lstm.c, gru.c) */



#ifdef __cplusplus
}
#endif
#endif /* GRADCORE_H */
