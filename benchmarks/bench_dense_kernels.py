"""pytest-benchmark groups for the dense-network kernels (see workloads_dense.py).

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \\
        python -m pytest benchmarks/bench_dense_kernels.py --benchmark-enable --benchmark-columns=median,rounds

One group per workload; gradcore, the BLAS-alone floor ("gemm"), the NumPy
reference, torch, jax and scalar libm (where they apply) in the same group.
"""

import os
import pathlib
import sys

for _k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_k, "1")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import pytest  # noqa: E402

import workloads_dense  # noqa: E402

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    torch = None

_WORKLOADS = workloads_dense.workloads()
PARAMS = [pytest.param(w, impl, case, id=f"{w}-{impl}") for w, impls in _WORKLOADS.items() for impl, case in impls.items()]


@pytest.mark.parametrize("workload,impl,case", PARAMS)
def test_dense_kernels(benchmark, workload, impl, case):
    benchmark.group = workload
    benchmark.extra_info["impl"] = impl
    if callable(case):
        benchmark(case)
    else:
        setup, fn = case
        benchmark.pedantic(fn, setup=setup, rounds=10, warmup_rounds=1)
