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

/* Sizes are named by their shape letters (T, B, I, H, O, D, C). <complex.h>
 * defines a macro I (the imaginary unit): it is suspended for the prototypes
 * so this header can follow <complex.h>. */
#pragma push_macro("I")
#undef I

/* Status codes returned by kernels. */
enum {
    GC_OK = 0,
    GC_ERR_ARG = 1,        /* a size or option is out of range */
    GC_ERR_NOMEM = 2,      /* a scratch allocation failed */
    GC_ERR_NONFINITE = 3,  /* a NaN/Inf was found where the caller asked to stop */
    GC_ERR_BLAS = 4,       /* the BLAS table is missing or a size exceeds BLAS int */
    GC_ERR_INTERRUPTED = 5 /* the installed interrupt check fired (see gc_interrupt_set) */
};

/* ---- SIMD dispatch (dispatch.c) ------------------------------------------
 * gc_simd_init() picks the widest path the CPU runs: 2 AVX-512 (F, VL, BW,
 * DQ), 1 AVX2+FMA, 0 portable baseline; the environment variable
 * GRADCORE_SIMD=baseline (or avx2) caps it. gc_simd_set(level) overrides
 * (a level the CPU lacks is refused). Every path gives the same bits. */
void gc_simd_init(void);
int gc_simd_set(int level);
int gc_simd_level(void);            /* 0 baseline, 1 avx2+fma, 2 avx512 */
int gc_simd_cpu_has_avx2(void);
int gc_simd_cpu_has_avx512(void);
const char *gc_simd_name(void);     /* "avx512", "avx2+fma" or "baseline" */

/* ---- Norms over many buffers (gradnorm.c) -------------------------------------
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

/* ---- Unit-wise norms (unitnorm.c) ------------------------------------------
 * L2 norm of every unit (row) of many buffers in one call: buffer b is
 * units[b] rows of lens[b] / units[b] elements; out gets sum(units) float64
 * norms in order. Overflow-safe like gc_norm; NaN in a row gives NaN, else
 * Inf gives +Inf. GC_ERR_ARG for NULL pointers or units[b] < 1 not dividing
 * lens[b]. */
int gc_unit_norms_f32(const float *const *bufs, const int64_t *lens, const int64_t *units,
                      int64_t n_bufs, double *out);
int gc_unit_norms_f64(const double *const *bufs, const int64_t *lens, const int64_t *units,
                      int64_t n_bufs, double *out);

/* ---- Dense networks: activations, dense, layernorm, batchnorm, losses,
 * optimizers (activation.c, dense.c, layernorm.c, batchnorm.c, loss.c, optim.c) */

/* Activation codes (the Python names are in ACTIVATIONS, same order). */
enum {
    GC_ACT_IDENTITY = 0,
    GC_ACT_RELU = 1,
    GC_ACT_LEAKY_RELU = 2,   /* x > 0 ? x : slope * x, slope >= 0 */
    GC_ACT_TANH = 3,
    GC_ACT_SIGMOID = 4,
    GC_ACT_COUNT = 5
};

/* y[i] = act(x[i]) for n elements (y may equal x). float32 tanh/sigmoid use a
 * vectorizable exp/polynomial approximation (max abs error vs float64 < 1e-6);
 * float64 uses libm. NaN propagates, -0.0 stays -0.0 (except sigmoid). */
int gc_activation_forward_f32(float *y, const float *x, int64_t n, int act, double slope);
int gc_activation_forward_f64(double *y, const double *x, int64_t n, int act, double slope);
/* dx[i] = dy[i] * act'(y[i]) from the activation output y (dx may equal dy):
 * tanh' = 1 - y^2, sigmoid' = y (1 - y), relu/leaky_relu: y <= 0 ? 0 / slope : 1
 * (a select: NaN in y passes dy through, like PyTorch). */
int gc_activation_backward_f32(float *dx, const float *dy, const float *y, int64_t n, int act,
                               double slope);
int gc_activation_backward_f64(double *dx, const double *dy, const double *y, int64_t n, int act,
                               double slope);

/* Dense layer, W (O, I) like PyTorch. Forward: one GEMM y = x w^T, then the
 * bias add and activation fused in one pass over y. b may be NULL. */
int gc_dense_forward_f32(float *y, const float *x, const float *w, const float *b, int64_t B,
                         int64_t I, int64_t O, int act, double slope);
int gc_dense_forward_f64(double *y, const double *x, const double *w, const double *b, int64_t B,
                         int64_t I, int64_t O, int act, double slope);
/* Backward: dz := dy * act'(y) (dz may equal dy) fused with db += column sums
 * of dz (db may be NULL); dw += dz^T x (GEMM, beta = 1); dx := dz w (GEMM,
 * skipped when dx is NULL). */
int gc_dense_backward_f32(float *dx, float *dw, float *db, float *dz, const float *dy,
                          const float *x, const float *w, const float *y, int64_t B, int64_t I,
                          int64_t O, int act, double slope);
int gc_dense_backward_f64(double *dx, double *dw, double *db, double *dz, const double *dy,
                          const double *x, const double *w, const double *y, int64_t B,
                          int64_t I, int64_t O, int act, double slope);

/* A chain of L dense layers in one call (bit-identical to L layer calls), the
 * parameters in one flat buffer theta of n values. layout: L rows of
 * GC_STACK_COLS int64 {I, O, w_off, b_off (-1: no bias), act}, I of a row
 * equal to O of the row before. ys: the outputs y_l (B, O_l) back to back.
 * Backward: grad (theta's layout) += every dw, db; dx (B, I_0) := the input
 * gradient (NULL: skip); work: 2 * B * max(every I, O) scratch values.
 * Both return GC_ERR_ARG for a bad layout, B or slope and GC_ERR_BLAS when B
 * or a layer size exceeds the BLAS int range (before any write);
 * gc_dense_stack_check returns that status for a layout and sizes alone. */
#define GC_STACK_COLS 5
int gc_dense_stack_check_f32(const int64_t *layout, int64_t L, int64_t n, int64_t B, double slope);
int gc_dense_stack_check_f64(const int64_t *layout, int64_t L, int64_t n, int64_t B, double slope);
int gc_dense_stack_forward_f32(float *ys, const float *x, const float *theta, int64_t n,
                               const int64_t *layout, int64_t L, int64_t B, double slope);
int gc_dense_stack_forward_f64(double *ys, const double *x, const double *theta, int64_t n,
                               const int64_t *layout, int64_t L, int64_t B, double slope);
int gc_dense_stack_backward_f32(float *dx, float *grad, float *work, const float *dy,
                                const float *x, const float *theta, const float *ys, int64_t n,
                                const int64_t *layout, int64_t L, int64_t B, double slope);
int gc_dense_stack_backward_f64(double *dx, double *grad, double *work, const double *dy,
                                const double *x, const double *theta, const double *ys,
                                int64_t n, const int64_t *layout, int64_t L, int64_t B,
                                double slope);

/* LayerNorm over the last axis of x (B, D), biased variance (two passes,
 * float64 accumulators). mean, rstd (B) written. gamma/beta may be NULL. */
int gc_layernorm_forward_f32(float *y, float *mean, float *rstd, const float *x,
                             const float *gamma, const float *beta, int64_t B, int64_t D,
                             double eps);
int gc_layernorm_forward_f64(double *y, double *mean, double *rstd, const double *x,
                             const double *gamma, const double *beta, int64_t B, int64_t D,
                             double eps);
/* dgamma += sum_B dy xhat, dbeta += sum_B dy (NULL: skip), dx := (NULL: skip)
 * rstd (g - mean(g) - xhat mean(g xhat)), g = dy gamma. Allocates 2 D doubles
 * of scratch when dgamma or dbeta is given (GC_ERR_NOMEM). */
int gc_layernorm_backward_f32(float *dx, float *dgamma, float *dbeta, const float *dy,
                              const float *x, const float *mean, const float *rstd,
                              const float *gamma, int64_t B, int64_t D);
int gc_layernorm_backward_f64(double *dx, double *dgamma, double *dbeta, const double *dy,
                              const double *x, const double *mean, const double *rstd,
                              const double *gamma, int64_t B, int64_t D);

/* BatchNorm1d over the batch axis of x (B, D), PyTorch semantics.
 * training: batch mean / biased variance -> save_mean, save_rstd (D);
 *   running_mean/var (may both be NULL) := (1 - momentum) running + momentum
 *   batch, with the unbiased variance (needs B >= 2).
 * eval: save_mean := running_mean, save_rstd := 1/sqrt(running_var + eps).
 * Allocates 2 D doubles of scratch (GC_ERR_NOMEM). */
int gc_batchnorm_forward_f32(float *y, const float *x, const float *gamma, const float *beta,
                             float *running_mean, float *running_var, float *save_mean,
                             float *save_rstd, int64_t B, int64_t D, int training,
                             double momentum, double eps);
int gc_batchnorm_forward_f64(double *y, const double *x, const double *gamma, const double *beta,
                             double *running_mean, double *running_var, double *save_mean,
                             double *save_rstd, int64_t B, int64_t D, int training,
                             double momentum, double eps);
/* dgamma += sum_B dy xhat, dbeta += sum_B dy (NULL: skip); dx := (NULL: skip)
 * gamma rstd (dy - mean_B dy - xhat mean_B(dy xhat)) in training,
 * gamma rstd dy in eval. Allocates 2 D doubles of scratch (GC_ERR_NOMEM). */
int gc_batchnorm_backward_f32(float *dx, float *dgamma, float *dbeta, const float *dy,
                              const float *x, const float *save_mean, const float *save_rstd,
                              const float *gamma, int64_t B, int64_t D, int training);
int gc_batchnorm_backward_f64(double *dx, double *dgamma, double *dbeta, const double *dy,
                              const double *x, const double *save_mean,
                              const double *save_rstd, const double *gamma, int64_t B,
                              int64_t D, int training);

/* Losses (mean reduction) and their gradient in the same pass; the loss is
 * accumulated in float64 and written to *loss; dpred may be NULL.
 * mse: mean((p - t)^2), d = 2 (p - t) / n.
 * bce_with_logits: mean(max(z,0) - z t + log1p(exp(-|z|))), d = (sigmoid(z) - t) / n.
 * softmax_cross_entropy: logits (B, C), labels in [0, C) (checked before any
 * write: GC_ERR_ARG), mean over B of logsumexp(z) - z[label],
 * d = (softmax(z) - onehot) / B. */
int gc_mse_loss_f32(const float *pred, const float *target, float *dpred, int64_t n, double *loss);
int gc_mse_loss_f64(const double *pred, const double *target, double *dpred, int64_t n,
                    double *loss);
int gc_bce_with_logits_loss_f32(const float *z, const float *target, float *dz, int64_t n,
                                double *loss);
int gc_bce_with_logits_loss_f64(const double *z, const double *target, double *dz, int64_t n,
                                double *loss);
int gc_softmax_cross_entropy_loss_f32(const float *z, const int64_t *labels, float *dz,
                                      int64_t B, int64_t C, double *loss);
int gc_softmax_cross_entropy_loss_f64(const double *z, const int64_t *labels, double *dz,
                                      int64_t B, int64_t C, double *loss);

/* Fused optimizer updates over one flat buffer of n parameters (PyTorch
 * formulas), one pass; the gradient is read as grad * grad_scale (a clipping
 * coefficient folded in) and never written.
 * SGD: g = grad s + wd p; velocity (NULL iff momentum == 0) = momentum v + g;
 *      g = nesterov ? g + momentum v : v; p -= lr g.
 * Adam/AdamW (step >= 1): g = grad s (+ wd p unless decoupled; decoupled:
 *      p *= 1 - lr wd); m += (1 - b1)(g - m); v = b2 v + (1 - b2) g^2;
 *      p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps). */
int gc_sgd_step_f32(float *param, const float *grad, float *velocity, int64_t n, double lr,
                    double momentum, int nesterov, double weight_decay, double grad_scale);
int gc_sgd_step_f64(double *param, const double *grad, double *velocity, int64_t n, double lr,
                    double momentum, int nesterov, double weight_decay, double grad_scale);
int gc_adam_step_f32(float *param, const float *grad, float *m, float *v, int64_t n,
                     int64_t step, double lr, double beta1, double beta2, double eps,
                     double weight_decay, int decoupled, double grad_scale);
int gc_adam_step_f64(double *param, const double *grad, double *m, double *v, int64_t n,
                     int64_t step, double lr, double beta1, double beta2, double eps,
                     double weight_decay, int decoupled, double grad_scale);



/* ---- Interrupts (interrupt.c) ---------------------------------------------
 * Long kernels (the recurrent forward and BPTT loops) call gc_interrupt_poll()
 * every few milliseconds of work; it returns the installed check's answer (0
 * when none is installed). A nonzero answer ends the kernel with
 * GC_ERR_INTERRUPTED (what it had written is then unspecified; see each
 * kernel). The check may be called from any thread the kernel runs in. */
void gc_interrupt_set(int (*check)(void));
int gc_interrupt_poll(void);

/* ---- Recurrent networks: RNN, LSTM, GRU forward and BPTT (rnn.c, lstm.c, gru.c) */
/* Time-major: x (T, B, I), states (T, B, H); weights and gate order as
 * PyTorch (W_ih (G*H, I), W_hh (G*H, H); G = 1 RNN, 4 LSTM i,f,g,o, 3 GRU
 * r,z,n). One call per sequence. Forward writes the states (and the gate
 * cache) and reports in *first_nonfinite the first step t whose state holds
 * NaN/Inf (-1 if none); stop_on_nonfinite != 0 ends the loop there.
 * Backward accumulates (+=) dw_ih, dw_hh, db_ih, db_hh (biases may be NULL),
 * overwrites dx (T, B, I) and dh0 / dc0 (B, H) (NULL: skipped), takes
 * d_out (T, B, H), d_hT, d_cT (B, H) that may be NULL (zero), writes
 * step_norms[t] = ||dL/dh_t|| (float64, may be NULL) and reports the first
 * step in backward order (largest t) whose dh_t (or dc_t) holds NaN/Inf;
 * with stop_on_nonfinite the loop ends there, earlier step_norms are NaN and
 * no gradient is written. truncate = k > 0: the sequence is cut into
 * windows [0,k), [k,2k), ... and no gradient crosses a window start (a loss
 * at step s reaches step t only when both lie in one window, so at most k
 * steps back); 0 = full BPTT. LSTM/GRU backward consume (overwrite) the gate
 * cache. Elements per T*B*H: RNN cache 1 (+1 backward workspace dz), LSTM 6
 * (gates 4, c 1, h 1), GRU 5 (gates r,z,n,hn 4, h 1). Each call mallocs
 * G*H*H (forward: the transposed W_hh) plus
 * O(B*G*H + G*H) scratch (GC_ERR_NOMEM on failure). act: 0 identity,
 * 1 relu, 2 tanh. */
int gc_rnn_forward_f32(float *out, const float *x, const float *h0, const float *w_ih,
                       const float *w_hh, const float *b_ih, const float *b_hh, int64_t T,
                       int64_t B, int64_t I, int64_t H, int act, int stop_on_nonfinite,
                       int64_t *first_nonfinite);
int gc_rnn_forward_f64(double *out, const double *x, const double *h0, const double *w_ih,
                       const double *w_hh, const double *b_ih, const double *b_hh, int64_t T,
                       int64_t B, int64_t I, int64_t H, int act, int stop_on_nonfinite,
                       int64_t *first_nonfinite);
/* dz (T, B, H): workspace (dL/d pre-activation) for a backward whose weight
 * gradients are made after the loop, or NULL (then scratch); its contents
 * after the call are unspecified. */
int gc_rnn_backward_f32(float *dx, float *dh0, float *dw_ih, float *dw_hh, float *db_ih,
                        float *db_hh, float *dz, double *step_norms, const float *d_out,
                        const float *d_hT, const float *x, const float *h0, const float *out,
                        const float *w_ih, const float *w_hh, int64_t T, int64_t B, int64_t I,
                        int64_t H, int act, int64_t truncate, int stop_on_nonfinite,
                        int64_t *first_nonfinite);
int gc_rnn_backward_f64(double *dx, double *dh0, double *dw_ih, double *dw_hh, double *db_ih,
                        double *db_hh, double *dz, double *step_norms, const double *d_out,
                        const double *d_hT, const double *x, const double *h0, const double *out,
                        const double *w_ih, const double *w_hh, int64_t T, int64_t B, int64_t I,
                        int64_t H, int act, int64_t truncate, int stop_on_nonfinite,
                        int64_t *first_nonfinite);
/* LSTM: out, cs (T, B, H) = h_t, c_t; gates (T, B, 4H) = activated i, f, g, o. */
int gc_lstm_forward_f32(float *out, float *cs, float *gates, const float *x, const float *h0,
                        const float *c0, const float *w_ih, const float *w_hh, const float *b_ih,
                        const float *b_hh, int64_t T, int64_t B, int64_t I, int64_t H,
                        int stop_on_nonfinite, int64_t *first_nonfinite);
int gc_lstm_forward_f64(double *out, double *cs, double *gates, const double *x,
                        const double *h0, const double *c0, const double *w_ih,
                        const double *w_hh, const double *b_ih, const double *b_hh, int64_t T,
                        int64_t B, int64_t I, int64_t H, int stop_on_nonfinite,
                        int64_t *first_nonfinite);
int gc_lstm_backward_f32(float *dx, float *dh0, float *dc0, float *dw_ih, float *dw_hh,
                         float *db_ih, float *db_hh, double *step_norms, double *cell_norms, const float *d_out,
                         const float *d_hT, const float *d_cT, const float *x, const float *h0,
                         const float *c0, const float *out, const float *cs, float *gates,
                         const float *w_ih, const float *w_hh, int64_t T, int64_t B, int64_t I,
                         int64_t H, int64_t truncate, int stop_on_nonfinite,
                         int64_t *first_nonfinite);
int gc_lstm_backward_f64(double *dx, double *dh0, double *dc0, double *dw_ih, double *dw_hh,
                         double *db_ih, double *db_hh, double *step_norms, double *cell_norms, const double *d_out,
                         const double *d_hT, const double *d_cT, const double *x,
                         const double *h0, const double *c0, const double *out,
                         const double *cs, double *gates, const double *w_ih,
                         const double *w_hh, int64_t T, int64_t B, int64_t I, int64_t H,
                         int64_t truncate, int stop_on_nonfinite, int64_t *first_nonfinite);
/* GRU: out (T, B, H); gates (T, B, 4H) = r, z, n, hn (hn = W_hn h + b_hn). */
int gc_gru_forward_f32(float *out, float *gates, const float *x, const float *h0,
                       const float *w_ih, const float *w_hh, const float *b_ih,
                       const float *b_hh, int64_t T, int64_t B, int64_t I, int64_t H,
                       int stop_on_nonfinite, int64_t *first_nonfinite);
int gc_gru_forward_f64(double *out, double *gates, const double *x, const double *h0,
                       const double *w_ih, const double *w_hh, const double *b_ih,
                       const double *b_hh, int64_t T, int64_t B, int64_t I, int64_t H,
                       int stop_on_nonfinite, int64_t *first_nonfinite);
int gc_gru_backward_f32(float *dx, float *dh0, float *dw_ih, float *dw_hh, float *db_ih,
                        float *db_hh, double *step_norms, const float *d_out, const float *d_hT,
                        const float *x, const float *h0, const float *out, float *gates,
                        const float *w_ih, const float *w_hh, int64_t T, int64_t B, int64_t I,
                        int64_t H, int64_t truncate, int stop_on_nonfinite,
                        int64_t *first_nonfinite);
int gc_gru_backward_f64(double *dx, double *dh0, double *dw_ih, double *dw_hh, double *db_ih,
                        double *db_hh, double *step_norms, const double *d_out,
                        const double *d_hT, const double *x, const double *h0,
                        const double *out, double *gates, const double *w_ih,
                        const double *w_hh, int64_t T, int64_t B, int64_t I, int64_t H,
                        int64_t truncate, int stop_on_nonfinite, int64_t *first_nonfinite);
/* Element functions of the fused cells (float32 / float64 paths), exposed
 * for accuracy tests: y[i] = tanh(x[i]) (which = 0) or sigmoid(x[i]) (1). */
void gc_rec_act_f32(float *y, const float *x, int64_t n, int which);
void gc_rec_act_f64(double *y, const double *x, int64_t n, int which);

#pragma pop_macro("I")

#ifdef __cplusplus
}
#endif
#endif /* GRADCORE_H */
