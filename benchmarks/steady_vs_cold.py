"""What runs before a timed call changes its time: gradcore's torch-module
RNN training step (the torch group's ``rnn-adding-T100-B20-H128-sgd``)
timed right after itself, after torch's step, after gradcore's native step
and after a plain 16 MB copy, rounds interleaved, medians.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \\
        taskset -c 0 python benchmarks/steady_vs_cold.py [--rounds 300]

The reason the torch group times steady-state blocks (``STEADY_CALLS``; see
docs/performance.md, "How measurements are taken").
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=300)
    args = ap.parse_args()

    from gradcore.benchmarks._common import pin_threads

    pin_threads(1)
    from gradcore.benchmarks import workloads_torch as W

    name = "rnn-adding-T100-B20-H128-sgd"
    steps = W.workloads(only=[name])[name]
    src, dst = np.ones(1 << 21, np.float64), np.empty(1 << 21, np.float64)  # 16 MB each

    def copy():
        np.copyto(dst, src)

    before = {"itself": None, "torch's step": steps["torch"], "gradcore's native step": steps["native"],
              "a 16 MB copy": copy}
    times: dict[str, list[float]] = {k: [] for k in before}
    for f in steps.values():
        f()
    for _ in range(args.rounds):
        for label, prev in before.items():
            if prev is None:
                steps["gradcore"]()
            else:
                prev()
            t0 = time.perf_counter()
            steps["gradcore"]()
            times[label].append(time.perf_counter() - t0)
    print(f"gradcore's {name} step, median of {args.rounds} rounds:")
    for label, t in times.items():
        print(f"  after {label:<24} {statistics.median(t) * 1e3:7.3f} ms")


if __name__ == "__main__":
    main()
