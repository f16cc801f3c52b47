# C declarations of csrc/gradcore.h and csrc/blas.h. Add new kernels here.

cdef extern from "gradcore.h" nogil:
    enum:
        GC_OK
        GC_ERR_ARG
        GC_ERR_NOMEM
        GC_ERR_NONFINITE
        GC_ERR_BLAS

    void gc_simd_init()
    int gc_simd_set(int level)
    int gc_simd_level()
    int gc_simd_cpu_has_avx2()
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
