"""pytest-benchmark groups for the dense-network kernels (see workloads_dense.py).

    python -m pytest benchmarks/bench_dense_kernels.py --benchmark-enable --benchmark-columns=median,rounds

One group per workload; gradcore, the BLAS-alone floor ("gemm"), the NumPy
reference, torch, jax and scalar libm (where they apply) in the same group.
Ratios from one run: ``python benchmarks/report.py --group dense``.
"""

import pytest

import workloads_dense
from _common import bench_params, run_case

PARAMS = bench_params(workloads_dense)


@pytest.mark.parametrize("workload,impl,case", PARAMS)
def test_dense_kernels(benchmark, workload, impl, case):
    run_case(benchmark, workload, impl, case)
