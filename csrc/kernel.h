/* kernel.h -- template machinery for kernel sources (internal).
 *
 * Every file listed in GC_KERNEL_SOURCES is compiled six times by CMake:
 * GC_DTYPE_F32 / GC_DTYPE_F64  x  GC_ISA_BASE / GC_ISA_AVX2 / GC_ISA_AVX512.
 * Inside, `real` is the element type, GC_IMPL(name) names this variant's
 * implementation, and GC_DISPATCH(ret, name, params, args) -- expanded only in
 * the baseline compile -- defines the public gc_<name>_<dtype> entry point,
 * which calls the AVX2 (level 1) or AVX-512 (level 2) variant when
 * gc_simd_level() says so.
 * Code here must be written so the compiler can vectorize it without
 * reassociation (explicit independent accumulators), because fast-math flags are
 * never used.
 */
#ifndef GC_KERNEL_H
#define GC_KERNEL_H

#include <math.h>
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include "gradcore.h"
#include "blas.h"

#if defined(GC_DTYPE_F32)
typedef float real;
#define GC_DT f32
#define GC_IS_F32 1
#define GC_REAL_MAX 3.4028234663852886e38
#define GEMM_RM gc_sgemm_rm
#define GEMV_RM gc_sgemv_rm
#elif defined(GC_DTYPE_F64)
typedef double real;
#define GC_DT f64
#define GC_IS_F32 0
#define GC_REAL_MAX 1.7976931348623157e308
#define GEMM_RM gc_dgemm_rm
#define GEMV_RM gc_dgemv_rm
#else
#error "kernel sources must be compiled with GC_DTYPE_F32 or GC_DTYPE_F64"
#endif

#if defined(GC_ISA_AVX512)
#define GC_ISA avx512
#elif defined(GC_ISA_AVX2)
#define GC_ISA avx2
#elif defined(GC_ISA_BASE)
#define GC_ISA base
#else
#error "kernel sources must be compiled with GC_ISA_BASE, GC_ISA_AVX2 or GC_ISA_AVX512"
#endif

#define GC_CAT3_(a, b, c) a##_##b##_##c
#define GC_CAT3(a, b, c) GC_CAT3_(a, b, c)
#define GC_CAT4_(a, b, c, d) a##_##b##_##c##_##d
#define GC_CAT4(a, b, c, d) GC_CAT4_(a, b, c, d)

/* gc_<name>_<dtype>: public entry; gc_<name>_<dtype>_<isa>: implementation */
#define GC_API(name) GC_CAT3(gc, name, GC_DT)
#define GC_IMPL(name) GC_CAT4(gc, name, GC_DT, GC_ISA)
#define GC_IMPL_AVX512(name) GC_CAT4(gc, name, GC_DT, avx512)
#define GC_IMPL_AVX2(name) GC_CAT4(gc, name, GC_DT, avx2)
#define GC_IMPL_BASE(name) GC_CAT4(gc, name, GC_DT, base)

#if defined(GC_ISA_BASE) && !defined(GC_NO_AVX2)
#define GC_DISPATCH(ret, name, params, args)                                   \
    ret GC_IMPL_AVX2(name) params;                                             \
    ret GC_IMPL_AVX512(name) params;                                           \
    ret GC_API(name) params {                                                  \
        const int level_ = gc_simd_level();                                    \
        return level_ == 2 ? GC_IMPL_AVX512(name) args                         \
               : level_    ? GC_IMPL_AVX2(name) args                           \
                           : GC_IMPL_BASE(name) args;                          \
    }
#elif defined(GC_ISA_BASE)
#define GC_DISPATCH(ret, name, params, args)                                   \
    ret GC_API(name) params { return GC_IMPL_BASE(name) args; }
#else
#define GC_DISPATCH(ret, name, params, args)
#endif

/* Number of independent accumulators in reductions: 16 doubles fill four
 * AVX2 registers (eight SSE2 ones, two AVX-512 ones) and make the summation
 * order, hence the result, identical on every path. */
#define GC_NACC 16

/* GC_VEC_EXT: GCC's vector extensions (vector_size types, lane-wise
 * operators) are there; every hand-vectorized block tests it, and keeps a
 * plain loop with the same per-lane operations for other compilers and
 * under -DGC_NO_VECTOR_EXT. */
#if defined(__GNUC__) && !defined(GC_NO_VECTOR_EXT)
#define GC_VEC_EXT 1
#endif

/* The fixed-order pairwise fold that ends every such reduction:
 * acc[k] + acc[k + w] for w = GC_NACC/2, ..., 2, 1; returns the sum (acc's
 * contents afterwards unspecified). With GCC >= 12 or clang as vector adds
 * of the lanes (the same additions, so the same bits), where the plain
 * loop is a chain of scalar loads and stores through memory (per step in
 * the recurrent backward's norms). */
static inline double gc_fold_nacc(double *acc) {
#if GC_NACC == 16 && defined(GC_VEC_EXT) && (defined(__clang__) || __GNUC__ >= 12)
    typedef double gc_fold_v8 __attribute__((vector_size(64)));
    typedef double gc_fold_v4 __attribute__((vector_size(32)));
    typedef double gc_fold_v2 __attribute__((vector_size(16)));
    gc_fold_v8 s0, s1;
    memcpy(&s0, acc, sizeof s0);
    memcpy(&s1, acc + 8, sizeof s1);
    const gc_fold_v8 t = s0 + s1;
    const gc_fold_v4 u =
        __builtin_shufflevector(t, t, 0, 1, 2, 3) + __builtin_shufflevector(t, t, 4, 5, 6, 7);
    const gc_fold_v2 v = __builtin_shufflevector(u, u, 0, 1) + __builtin_shufflevector(u, u, 2, 3);
    return v[0] + v[1];
#else
    for (int w = GC_NACC / 2; w > 0; w /= 2)
        for (int k = 0; k < w; k++) acc[k] += acc[k + w];
    return acc[0];
#endif
}

#endif /* GC_KERNEL_H */
