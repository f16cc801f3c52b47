#!/usr/bin/env python
"""The ``torch`` benchmark group timed in CPU time: per workload, every
implementation once per round, rounds interleaved, medians of
``time.thread_time()`` (the calling thread's CPU time, so waiting for a CPU
on a loaded machine does not count; every library runs on that thread).

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \\
        taskset -c 1 python benchmarks/ab_torch.py [--only lstm,layer] [--rounds 20]

Prints, per workload, each implementation's median and its ratio to
``gradcore`` (peer / gradcore: 1.6x = gradcore 1.6x faster; native 0.9x =
the torch step costs 10% more than gradcore's native one). Workloads and
implementations are those of ``gradcore.benchmarks.workloads_torch``.
"""

from __future__ import annotations

import argparse
import statistics
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="", help="comma-separated substrings of workload names")
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args()
    from gradcore.benchmarks import workloads_torch as W

    only = [s for s in args.only.split(",") if s] or None
    for name, impls in W.workloads(only).items():
        for fn in impls.values():  # warm-up
            fn()
        times = {k: [] for k in impls}
        for _ in range(args.rounds):
            for k, fn in impls.items():
                t0 = time.thread_time()
                fn()
                times[k].append(time.thread_time() - t0)
        med = {k: statistics.median(v) for k, v in times.items()}
        g = med["gradcore"]
        peers = " | ".join(f"{k} {v * 1e3:9.3f} ms ({v / g:.2f}x)" for k, v in med.items() if k != "gradcore")
        print(f"{name:36s} gradcore {g * 1e3:9.3f} ms | {peers}", flush=True)


if __name__ == "__main__":
    main()
