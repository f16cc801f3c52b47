"""pytest-benchmark groups for the explosion-lab workloads (workloads_lab.py), one
group per workload with every implementation side by side::

    python -m pytest --pyargs gradcore.benchmarks.bench_lab --benchmark-enable --benchmark-columns=median,rounds

Ratios from one interleaved run, targets checked: ``gradcore bench --group lab``.
"""

import pytest

from gradcore.benchmarks import workloads_lab
from gradcore.benchmarks._common import bench_params, run_case


@pytest.mark.parametrize("workload,impl,case", bench_params(workloads_lab))
def test_lab(benchmark, workload, impl, case):
    run_case(benchmark, workload, impl, case, rounds=5)
