"""pytest-benchmark groups for the explosion-lab workloads (workloads_lab.py):

    python -m pytest benchmarks/bench_lab.py --benchmark-enable --benchmark-columns=median,rounds

or the ratio report with the targets checked (one thread per library):

    python benchmarks/report.py --group lab
"""

import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import workloads_lab  # noqa: E402
from _common import bench_params, run_case  # noqa: E402


@pytest.mark.parametrize("workload,impl,case", bench_params(workloads_lab))
def test_lab(benchmark, workload, impl, case):
    run_case(benchmark, workload, impl, case, rounds=5)
