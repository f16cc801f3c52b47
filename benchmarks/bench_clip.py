"""pytest-benchmark groups for the clipping workloads (see workloads_clip.py).

    python -m pytest benchmarks/bench_clip.py --benchmark-enable --benchmark-columns=median,rounds
"""

import pytest

import workloads_clip
from _common import bench_params, run_case

PARAMS = bench_params(workloads_clip)


@pytest.mark.parametrize("workload,impl,case", PARAMS)
def test_clip(benchmark, workload, impl, case):
    run_case(benchmark, workload, impl, case)
