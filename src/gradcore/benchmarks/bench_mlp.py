"""pytest-benchmark groups for the dense-network workloads (workloads_mlp.py), one
group per workload with every implementation side by side::

    python -m pytest --pyargs gradcore.benchmarks.bench_mlp --benchmark-enable --benchmark-columns=median,rounds

Ratios from one interleaved run, targets checked: ``gradcore bench --group mlp``.
"""

import pytest

from gradcore.benchmarks import workloads_mlp
from gradcore.benchmarks._common import bench_params, run_case


@pytest.mark.parametrize("workload,impl,case", bench_params(workloads_mlp))
def test_mlp(benchmark, workload, impl, case):
    run_case(benchmark, workload, impl, case)
