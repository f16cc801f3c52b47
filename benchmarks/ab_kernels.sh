#!/usr/bin/env bash
# ab_kernels.sh -- build the kernels of two source trees (csrc/ of two
# checkouts) as shared libraries with the package's flags (baseline, AVX2+FMA
# and AVX-512 objects) and time them A/B with ab_kernels.c on the recurrent
# workloads of benchmarks/ab_recurrent.py, pinned to one CPU, one thread.
#
#   benchmarks/ab_kernels.sh CSRC_A CSRC_B [ROUNDS]
#   e.g. git worktree add /tmp/old HEAD~3 && benchmarks/ab_kernels.sh /tmp/old/csrc csrc
set -euo pipefail
A=$1 B=$2 R=${3:-11}
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$(mktemp -d)
FL="-O3 -fno-math-errno -ffp-contract=off -fopenmp-simd -fPIC -std=c11 -w"
build() {  # build SRC LIB
  local S=$1 L=$2 objs=() o isas="BASE AVX2"
  grep -q GC_ISA_AVX512 "$S/kernel.h" && isas="$isas AVX512"  # trees before the AVX-512 path
  for f in dispatch blas interrupt; do o=$OUT/$(basename "$L")_$f.o; gcc $FL -I"$S" -c "$S/$f.c" -o "$o"; objs+=("$o"); done
  for dt in F32 F64; do for isa in $isas; do
    case $isa in AVX2) x="-mavx2 -mfma";; AVX512) x="-mavx2 -mfma -mavx512f -mavx512vl -mavx512bw -mavx512dq -mprefer-vector-width=512";; *) x="";; esac
    for k in gradnorm clip unitnorm activation dense layernorm batchnorm loss optim rnn lstm gru; do
      [ -f "$S/$k.c" ] || continue
      o=$OUT/$(basename "$L")_${k}_${dt}_${isa}.o
      gcc $FL $x -I"$S" -DGC_DTYPE_$dt=1 -DGC_ISA_$isa=1 -c "$S/$k.c" -o "$o"; objs+=("$o")
    done
  done; done
  gcc -shared -o "$L" "${objs[@]}" -lm
}
build "$A" "$OUT/libA.so"
build "$B" "$OUT/libB.so"
gcc -O2 -I"$B" "$HERE/ab_kernels.c" -o "$OUT/ab_kernels" -ldl -lm
export OBLAS=${OBLAS:-$(python -c "import glob, os, scipy; print(glob.glob(os.path.join(os.path.dirname(scipy.__file__), '..', 'scipy.libs', 'libscipy_openblas*.so'))[0])")}
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
for w in "r 1 1 8 8" "l 1 1 8 8" "g 1 1 8 8" "r 1000 1 8 32" "l 1000 1 8 32" "g 1000 1 8 32" \
         "r 1000 32 32 128" "l 500 32 32 128" "g 500 32 32 128" "r 200 64 64 512"; do
  taskset -c "${CPU:-1}" "$OUT/ab_kernels" "$OUT/libA.so" "$OUT/libB.so" "$R" $w
done
rm -rf "$OUT"
