"""pytest-benchmark groups for the recurrent workloads (workloads_rnn.py), one
group per workload with every implementation side by side::

    python -m pytest --pyargs gradcore.benchmarks.bench_rnn --benchmark-enable --benchmark-columns=median,rounds

Ratios from one interleaved run, targets checked: ``gradcore bench --group rnn``.
"""

import pytest

from gradcore.benchmarks import workloads_rnn
from gradcore.benchmarks._common import bench_params, run_case


@pytest.mark.parametrize("workload,impl,case", bench_params(workloads_rnn))
def test_rnn(benchmark, workload, impl, case):
    run_case(benchmark, workload, impl, case)
