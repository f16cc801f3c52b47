"""pytest-benchmark groups for the dense-network kernel workloads (workloads_dense.py), one
group per workload with every implementation side by side::

    python -m pytest --pyargs gradcore.benchmarks.bench_dense_kernels --benchmark-enable --benchmark-columns=median,rounds

Ratios from one interleaved run, targets checked: ``gradcore bench --group dense``.
"""

import pytest

from gradcore.benchmarks import workloads_dense
from gradcore.benchmarks._common import bench_params, run_case


@pytest.mark.parametrize("workload,impl,case", bench_params(workloads_dense))
def test_dense_kernels(benchmark, workload, impl, case):
    run_case(benchmark, workload, impl, case)
