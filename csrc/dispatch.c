/* dispatch.c -- runtime choice between the baseline, AVX2+FMA and AVX-512
 * kernels. The CPU is asked once (gc_simd_init) and the widest path it runs
 * is taken; GRADCORE_SIMD=baseline (or avx2) caps the level so tests and
 * users can compare the paths on one machine. All paths give the same bits. */
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

/* AVX-512 F/VL/BW/DQ (what the level-2 objects are compiled for); the
 * builtin also checks that the OS saves the 512-bit state. */
int gc_simd_cpu_has_avx512(void) {
#if defined(GC_NO_AVX2)
    return 0;
#elif defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    __builtin_cpu_init();
    return gc_simd_cpu_has_avx2() && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512dq");
#else
    return 0;
#endif
}

static int max_level(void) {
    return gc_simd_cpu_has_avx512() ? 2 : gc_simd_cpu_has_avx2() ? 1 : 0;
}

void gc_simd_init(void) {
    const char *env = getenv("GRADCORE_SIMD");
    int cap = 2;
    if (env && (strcmp(env, "baseline") == 0 || strcmp(env, "0") == 0 ||
                strcmp(env, "default") == 0))
        cap = 0;
    else if (env && (strcmp(env, "avx2") == 0 || strcmp(env, "1") == 0))
        cap = 1;
    int best = max_level();
    g_level = best < cap ? best : cap;
}

int gc_simd_set(int level) {
    if (level < 0 || level > max_level()) return GC_ERR_ARG;
    g_level = level;
    return GC_OK;
}

int gc_simd_level(void) { return g_level; }

const char *gc_simd_name(void) {
    return g_level == 2 ? "avx512" : g_level == 1 ? "avx2+fma" : "baseline";
}
