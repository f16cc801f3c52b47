# C declarations of the kernels' API (csrc/gradcore.h, csrc/blas.h) and of the
# few system and Python C functions the binding calls: every `cdef extern`
# of the extension lives here, in the header's order. Being the module's own
# .pxd, it is visible in _kernels.pyx and in every _kernels_*.pxi it includes.
# A new kernel: declare it here (same prototype as gradcore.h), then bind it.
#
# Sizes are spelled as shape letters (T, B, I, H, O, D, C), as in csrc/.
# NumPy's headers include <complex.h>, whose macro I (the imaginary unit)
# would rewrite the binding's own `I` fields; the binding uses no complex
# numbers, so the macro is dropped right after NumPy's headers.

cimport numpy as cnp
from libc.stdint cimport int64_t

cdef extern from *:
    """
    #undef I
    """

# The recurrent kernels (rnn.c, lstm.c, gru.c) are declared through one
# function type each, with untyped (void *) array arguments: C converts them to
# the prototypes' float * / double *, so one wrapper serves both dtypes and
# the dtype only picks the _f32 or _f64 symbol at the call.
ctypedef int rnn_forward_fn(void *out, const void *x, const void *h0, const void *w_ih,
                            const void *w_hh, const void *b_ih, const void *b_hh, int64_t T,
                            int64_t B, int64_t I, int64_t H, int act, int stop_on_nonfinite,
                            int64_t *first_nonfinite) noexcept nogil
ctypedef int rnn_backward_fn(void *dx, void *dh0, void *dw_ih, void *dw_hh, void *db_ih,
                             void *db_hh, void *dz, double *step_norms, const void *d_out,
                             const void *d_hT, const void *x, const void *h0, const void *out,
                             const void *w_ih, const void *w_hh, int64_t T, int64_t B, int64_t I,
                             int64_t H, int act, int64_t truncate, int stop_on_nonfinite,
                             int64_t *first_nonfinite) noexcept nogil
ctypedef int lstm_forward_fn(void *out, void *cs, void *gates, const void *x, const void *h0,
                             const void *c0, const void *w_ih, const void *w_hh,
                             const void *b_ih, const void *b_hh, int64_t T, int64_t B, int64_t I,
                             int64_t H, int stop_on_nonfinite, int64_t *first_nonfinite) noexcept nogil
ctypedef int lstm_backward_fn(void *dx, void *dh0, void *dc0, void *dw_ih, void *dw_hh,
                              void *db_ih, void *db_hh, double *step_norms, double *cell_norms,
                              const void *d_out, const void *d_hT, const void *d_cT,
                              const void *x, const void *h0, const void *c0, const void *out,
                              const void *cs, void *gates, const void *w_ih, const void *w_hh,
                              int64_t T, int64_t B, int64_t I, int64_t H, int64_t truncate,
                              int stop_on_nonfinite, int64_t *first_nonfinite) noexcept nogil
ctypedef int gru_forward_fn(void *out, void *gates, const void *x, const void *h0,
                            const void *w_ih, const void *w_hh, const void *b_ih,
                            const void *b_hh, int64_t T, int64_t B, int64_t I, int64_t H,
                            int stop_on_nonfinite, int64_t *first_nonfinite) noexcept nogil
ctypedef int gru_backward_fn(void *dx, void *dh0, void *dw_ih, void *dw_hh, void *db_ih,
                             void *db_hh, double *step_norms, const void *d_out,
                             const void *d_hT, const void *x, const void *h0, const void *out,
                             void *gates, const void *w_ih, const void *w_hh, int64_t T,
                             int64_t B, int64_t I, int64_t H, int64_t truncate,
                             int stop_on_nonfinite, int64_t *first_nonfinite) noexcept nogil
ctypedef void rec_act_fn(void *y, const void *x, int64_t n, int which) noexcept nogil

cdef extern from "gradcore.h" nogil:
    enum:
        GC_OK
        GC_ERR_ARG
        GC_ERR_NOMEM
        GC_ERR_NONFINITE
        GC_ERR_BLAS
        GC_ERR_INTERRUPTED
        GC_NORM_MAX

    void gc_simd_init()
    int gc_simd_set(int level)
    int gc_simd_level()
    int gc_simd_cpu_has_avx2()
    int gc_simd_cpu_has_avx512()
    const char *gc_simd_name()

    ctypedef struct gc_norm_result:
        double norm
        double max_abs
        int64_t n_nan
        int64_t n_inf
        int64_t first_buf
        int64_t first_idx

    int gc_norm_f32(const float *const *bufs, const int64_t *lens, int64_t n_bufs,
                    double ord, double *per_buf, gc_norm_result *out)
    int gc_norm_f64(const double *const *bufs, const int64_t *lens, int64_t n_bufs,
                    double ord, double *per_buf, gc_norm_result *out)
    void gc_scale_f32(float *const *bufs, const int64_t *lens, int64_t n_bufs, double factor)
    void gc_scale_f64(double *const *bufs, const int64_t *lens, int64_t n_bufs, double factor)
    int64_t gc_clamp_f32(float *const *bufs, const int64_t *lens, int64_t n_bufs, double c)
    int64_t gc_clamp_f64(double *const *bufs, const int64_t *lens, int64_t n_bufs, double c)

    # gradient norms with optional max |x| (gradnorm.c)
    int gc_norm_ex_f32(const float *const *bufs, const int64_t *lens, int64_t n_bufs,
                       double ord, int flags, double *per_buf, gc_norm_result *out)
    int gc_norm_ex_f64(const double *const *bufs, const int64_t *lens, int64_t n_bufs,
                       double ord, int flags, double *per_buf, gc_norm_result *out)

    # unit-wise norms (unitnorm.c)
    int gc_unit_norms_f32(const float *const *bufs, const int64_t *lens, const int64_t *units,
                          int64_t n_bufs, double *out)
    int gc_unit_norms_f64(const double *const *bufs, const int64_t *lens, const int64_t *units,
                          int64_t n_bufs, double *out)

    # dense networks (activation.c, dense.c, layernorm.c, batchnorm.c, loss.c)
    enum:
        GC_ACT_IDENTITY
        GC_ACT_COUNT
    int gc_activation_forward_f32(float *y, const float *x, int64_t n, int act, double slope)
    int gc_activation_forward_f64(double *y, const double *x, int64_t n, int act, double slope)
    int gc_activation_backward_f32(float *dx, const float *dy, const float *y, int64_t n, int act,
                                   double slope)
    int gc_activation_backward_f64(double *dx, const double *dy, const double *y, int64_t n,
                                   int act, double slope)
    int gc_dense_forward_f32(float *y, const float *x, const float *w, const float *b, int64_t B,
                             int64_t I, int64_t O, int act, double slope)
    int gc_dense_forward_f64(double *y, const double *x, const double *w, const double *b,
                             int64_t B, int64_t I, int64_t O, int act, double slope)
    int gc_dense_backward_f32(float *dx, float *dw, float *db, float *dz, const float *dy,
                              const float *x, const float *w, const float *y, int64_t B,
                              int64_t I, int64_t O, int act, double slope)
    int gc_dense_backward_f64(double *dx, double *dw, double *db, double *dz, const double *dy,
                              const double *x, const double *w, const double *y, int64_t B,
                              int64_t I, int64_t O, int act, double slope)
    enum:
        GC_STACK_COLS
    int gc_dense_stack_check_f64(const int64_t *layout, int64_t L, int64_t n, int64_t B,
                                 double slope)
    int gc_dense_stack_forward_f32(float *ys, const float *x, const float *theta, int64_t n,
                                   const int64_t *layout, int64_t L, int64_t B, double slope)
    int gc_dense_stack_forward_f64(double *ys, const double *x, const double *theta, int64_t n,
                                   const int64_t *layout, int64_t L, int64_t B, double slope)
    int gc_dense_stack_backward_f32(float *dx, float *grad, float *work, const float *dy,
                                    const float *x, const float *theta, const float *ys,
                                    int64_t n, const int64_t *layout, int64_t L, int64_t B,
                                    double slope)
    int gc_dense_stack_backward_f64(double *dx, double *grad, double *work, const double *dy,
                                    const double *x, const double *theta, const double *ys,
                                    int64_t n, const int64_t *layout, int64_t L, int64_t B,
                                    double slope)
    int gc_layernorm_forward_f32(float *y, float *mean, float *rstd, const float *x,
                                 const float *gamma, const float *beta, int64_t B, int64_t D,
                                 double eps)
    int gc_layernorm_forward_f64(double *y, double *mean, double *rstd, const double *x,
                                 const double *gamma, const double *beta, int64_t B, int64_t D,
                                 double eps)
    int gc_layernorm_backward_f32(float *dx, float *dgamma, float *dbeta, const float *dy,
                                  const float *x, const float *mean, const float *rstd,
                                  const float *gamma, int64_t B, int64_t D)
    int gc_layernorm_backward_f64(double *dx, double *dgamma, double *dbeta, const double *dy,
                                  const double *x, const double *mean, const double *rstd,
                                  const double *gamma, int64_t B, int64_t D)
    int gc_batchnorm_forward_f32(float *y, const float *x, const float *gamma, const float *beta,
                                 float *running_mean, float *running_var, float *save_mean,
                                 float *save_rstd, int64_t B, int64_t D, int training,
                                 double momentum, double eps)
    int gc_batchnorm_forward_f64(double *y, const double *x, const double *gamma,
                                 const double *beta, double *running_mean, double *running_var,
                                 double *save_mean, double *save_rstd, int64_t B, int64_t D,
                                 int training, double momentum, double eps)
    int gc_batchnorm_backward_f32(float *dx, float *dgamma, float *dbeta, const float *dy,
                                  const float *x, const float *save_mean, const float *save_rstd,
                                  const float *gamma, int64_t B, int64_t D, int training)
    int gc_batchnorm_backward_f64(double *dx, double *dgamma, double *dbeta, const double *dy,
                                  const double *x, const double *save_mean,
                                  const double *save_rstd, const double *gamma, int64_t B,
                                  int64_t D, int training)
    int gc_mse_loss_f32(const float *pred, const float *target, float *dpred, int64_t n,
                        double *loss)
    int gc_mse_loss_f64(const double *pred, const double *target, double *dpred, int64_t n,
                        double *loss)
    int gc_bce_with_logits_loss_f32(const float *z, const float *target, float *dz, int64_t n,
                                    double *loss)
    int gc_bce_with_logits_loss_f64(const double *z, const double *target, double *dz, int64_t n,
                                    double *loss)
    int gc_softmax_cross_entropy_loss_f32(const float *z, const int64_t *labels, float *dz,
                                          int64_t B, int64_t C, double *loss)
    int gc_softmax_cross_entropy_loss_f64(const double *z, const int64_t *labels, double *dz,
                                          int64_t B, int64_t C, double *loss)

    # fused optimizer steps (optim.c)
    int gc_sgd_step_f32(float *param, const float *grad, float *velocity, int64_t n, double lr,
                        double momentum, int nesterov, double weight_decay, double grad_scale)
    int gc_sgd_step_f64(double *param, const double *grad, double *velocity, int64_t n,
                        double lr, double momentum, int nesterov, double weight_decay,
                        double grad_scale)
    int gc_adam_step_f32(float *param, const float *grad, float *m, float *v, int64_t n,
                         int64_t step, double lr, double beta1, double beta2, double eps,
                         double weight_decay, int decoupled, double grad_scale)
    int gc_adam_step_f64(double *param, const double *grad, double *m, double *v, int64_t n,
                         int64_t step, double lr, double beta1, double beta2, double eps,
                         double weight_decay, int decoupled, double grad_scale)

    # recurrent networks (rnn.c, lstm.c, gru.c); the function types are above
    void gc_interrupt_set(int (*check)() noexcept nogil)
    rnn_forward_fn gc_rnn_forward_f32
    rnn_forward_fn gc_rnn_forward_f64
    rnn_backward_fn gc_rnn_backward_f32
    rnn_backward_fn gc_rnn_backward_f64
    lstm_forward_fn gc_lstm_forward_f32
    lstm_forward_fn gc_lstm_forward_f64
    lstm_backward_fn gc_lstm_backward_f32
    lstm_backward_fn gc_lstm_backward_f64
    gru_forward_fn gc_gru_forward_f32
    gru_forward_fn gc_gru_forward_f64
    gru_backward_fn gc_gru_backward_f32
    gru_backward_fn gc_gru_backward_f64
    rec_act_fn gc_rec_act_f32
    rec_act_fn gc_rec_act_f64

cdef extern from "blas.h" nogil:
    ctypedef void (*gc_sgemm_t)(const char *, const char *, const int *, const int *,
                                const int *, const float *, const float *, const int *,
                                const float *, const int *, const float *, float *, const int *)
    ctypedef void (*gc_dgemm_t)(const char *, const char *, const int *, const int *,
                                const int *, const double *, const double *, const int *,
                                const double *, const int *, const double *, double *, const int *)
    ctypedef void (*gc_sgemv_t)(const char *, const int *, const int *, const float *,
                                const float *, const int *, const float *, const int *,
                                const float *, float *, const int *)
    ctypedef void (*gc_dgemv_t)(const char *, const int *, const int *, const double *,
                                const double *, const int *, const double *, const int *,
                                const double *, double *, const int *)
    ctypedef struct gc_blas_table:
        gc_sgemm_t sgemm
        gc_dgemm_t dgemm
        gc_sgemv_t sgemv
        gc_dgemv_t dgemv
    int gc_blas_set(const gc_blas_table *table)
    int gc_blas_ready()
    int gc_sgemm_rm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                    const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                    float *C, int64_t ldc)
    int gc_dgemm_rm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, double alpha,
                    const double *A, int64_t lda, const double *B, int64_t ldb, double beta,
                    double *C, int64_t ldc)

cdef extern from "Python.h":
    int PyErr_CheckSignals()          # declared without "except": the error stays set for the wrapper

cdef extern from "<pthread.h>" nogil:
    ctypedef unsigned long pthread_t
    pthread_t pthread_self()
    int pthread_equal(pthread_t a, pthread_t b)
