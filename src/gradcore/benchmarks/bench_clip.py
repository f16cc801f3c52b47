"""pytest-benchmark groups for the clipping workloads (workloads_clip.py), one
group per workload with every implementation side by side::

    python -m pytest --pyargs gradcore.benchmarks.bench_clip --benchmark-enable --benchmark-columns=median,rounds

Ratios from one interleaved run, targets checked: ``gradcore bench --group clip``.
"""

import pytest

from gradcore.benchmarks import workloads_clip
from gradcore.benchmarks._common import bench_params, run_case


@pytest.mark.parametrize("workload,impl,case", bench_params(workloads_clip))
def test_clip(benchmark, workload, impl, case):
    run_case(benchmark, workload, impl, case)
