/* dispatch.c -- runtime choice between the baseline and AVX2+FMA kernels.
 * The CPU is asked once (gc_simd_init); GRADCORE_SIMD=baseline forces the
 * portable path so tests can compare both on one machine. */
#include "gradcore.h"

#include <stdlib.h>
#include <string.h>

static int g_level = 0;

int gc_simd_cpu_has_avx2(void) {
#if defined(GC_NO_AVX2)
    return 0;
#elif defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

void gc_simd_init(void) {
    const char *env = getenv("GRADCORE_SIMD");
    int want = 1;
    if (env && (strcmp(env, "baseline") == 0 || strcmp(env, "0") == 0 ||
                strcmp(env, "default") == 0))
        want = 0;
    g_level = want && gc_simd_cpu_has_avx2();
}

int gc_simd_set(int level) {
    if (level < 0 || level > 1) return GC_ERR_ARG;
    if (level == 1 && !gc_simd_cpu_has_avx2()) return GC_ERR_ARG;
    g_level = level;
    return GC_OK;
}

int gc_simd_level(void) { return g_level; }

const char *gc_simd_name(void) { return g_level ? "avx2+fma" : "baseline"; }
