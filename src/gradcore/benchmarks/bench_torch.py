"""pytest-benchmark groups for the PyTorch-interop workloads (workloads_torch.py), one
group per workload with every implementation side by side::

    python -m pytest --pyargs gradcore.benchmarks.bench_torch --benchmark-enable --benchmark-columns=median,rounds

Ratios from one interleaved run, targets checked: ``gradcore bench --group torch``.
"""

import pytest

from gradcore.benchmarks import workloads_torch
from gradcore.benchmarks._common import bench_params, run_case


@pytest.mark.parametrize("workload,impl,case", bench_params(workloads_torch))
def test_torch(benchmark, workload, impl, case):
    run_case(benchmark, workload, impl, case)
