/* rec_vec.h -- fixed-order float64 sums of the recurrent driver in 16-lane
 * blocks (internal; included by recurrent.h, after kernel.h).
 *
 * The driver's norms keep GC_NACC (16) float64 accumulators, lane k taking
 * the elements i with i % 16 == k, in a fixed order that makes every SIMD
 * path agree. Written as plain loops, GCC vectorizes only the 16-lane inner
 * loop and keeps the accumulators in memory around it (||dh|| of 4096
 * floats: 3.4 us; 1.2 us here). Here a block is two 8-lane GCC vector
 * values (vector_size: SSE2 pairs, AVX2 halves, one AVX-512 register
 * each), the same operations per lane in the same order, so the results
 * are the bits of the plain loops (kept for other compilers and under
 * GC_NO_VECTOR_EXT, as in gradnorm.c).
 *
 * - gc_rec_sq_block: acc += v^2 lane-wise over the 16-element blocks of v,
 *   optionally storing v = a + c first and OR-ing a non-finite flag.
 */
#ifndef GC_REC_VEC_H
#define GC_REC_VEC_H

#include <string.h>

#if defined(GC_VEC_EXT) && GC_NACC == 16
#define GC_REC_VEC 1
typedef real gc_rec_vr __attribute__((vector_size(8 * sizeof(real))));
typedef double gc_rec_vd __attribute__((vector_size(64)));

/* unaligned loads / stores of 8 lanes (by pointer: no vector-typed
 * arguments or returns between functions, whose ABI depends on the ISA) */
#define GC_REC_VLOAD(v, p) memcpy(&(v), (p), sizeof(gc_rec_vr))
#define GC_REC_VSTORE(p, v) memcpy((p), &(v), sizeof(gc_rec_vr))

/* acc[0..16) += (double)v^2 over the 16-element blocks of [0, nb * 16),
 * where v = the block of c (mode 0), (real)0 + c (mode 1, stored to dh) or
 * a + c (mode 2, stored to dh); *flag |= 1 when any v is NaN/Inf (modes 1,
 * 2). A constant mode at each inlined call leaves no test in the loop. */
GC_REC_INLINE void gc_rec_sq_block(
    double *restrict acc, real *restrict dh, const real *restrict a, const real *restrict c,
    int64_t nb, int mode, int *flag) {
    gc_rec_vd s0, s1;
    memcpy(&s0, acc, sizeof s0);
    memcpy(&s1, acc + 8, sizeof s1);
    gc_rec_vr bad = {0}; /* (v - v) is 0, or NaN when v is NaN/Inf */
    for (int64_t b = 0; b < nb; b++) {
        const int64_t i = b * 16;
        gc_rec_vr v0, v1;
        GC_REC_VLOAD(v0, c + i);
        GC_REC_VLOAD(v1, c + i + 8);
        if (mode == 1) {
            v0 = (real)0 + v0;
            v1 = (real)0 + v1;
        } else if (mode == 2) {
            gc_rec_vr a0, a1;
            GC_REC_VLOAD(a0, a + i);
            GC_REC_VLOAD(a1, a + i + 8);
            v0 = a0 + v0;
            v1 = a1 + v1;
        }
        if (mode) {
            GC_REC_VSTORE(dh + i, v0);
            GC_REC_VSTORE(dh + i + 8, v1);
            bad = bad + ((v0 - v0) + (v1 - v1));
        }
        gc_rec_vd d0 = __builtin_convertvector(v0, gc_rec_vd);
        gc_rec_vd d1 = __builtin_convertvector(v1, gc_rec_vd);
        s0 = s0 + d0 * d0;
        s1 = s1 + d1 * d1;
    }
    memcpy(acc, &s0, sizeof s0);
    memcpy(acc + 8, &s1, sizeof s1);
    if (mode)
        for (int k = 0; k < 8; k++) *flag |= bad[k] != bad[k];
}

#endif

#endif /* GC_REC_VEC_H */
