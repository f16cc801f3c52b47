"""pytest-benchmark groups for the PyTorch-interop workloads (workloads_torch.py):

    python -m pytest benchmarks/bench_torch.py --benchmark-enable --benchmark-columns=median,rounds

or the ratio report with the targets checked (one thread per library; the
same as ``python benchmarks/report.py --group torch``):

    python benchmarks/bench_torch.py [--only gru] [--budget 1.5]
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

if __name__ == "__main__":  # before numpy is imported: report.main pins the threads
    from report import main

    sys.exit(main(["--group", "torch", *sys.argv[1:]]))

import pytest  # noqa: E402

import workloads_torch  # noqa: E402
from _common import bench_params, run_case  # noqa: E402


@pytest.mark.parametrize("workload,impl,case", bench_params(workloads_torch))
def test_torch(benchmark, workload, impl, case):
    run_case(benchmark, workload, impl, case)
