"""pytest-benchmark groups for the dense-network workloads (workloads_mlp.py):

    python -m pytest benchmarks/bench_mlp.py --benchmark-enable --benchmark-columns=median,rounds

or a quick ratio report with the targets checked (one thread per library):

    python benchmarks/bench_mlp.py [--only D20] [--budget 0.5]
"""

import os
import pathlib
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

if __name__ != "__main__":
    import pytest

    import workloads_mlp

    try:
        from _common import bench_params, run_case
    except ImportError:  # the shared benchmark helpers are not in this checkout
        bench_params = run_case = None

    if bench_params is not None:
        @pytest.mark.parametrize("workload,impl,case", bench_params(workloads_mlp))
        def test_mlp(benchmark, workload, impl, case):
            run_case(benchmark, workload, impl, case)
    else:
        _W = workloads_mlp.workloads()

        @pytest.mark.parametrize("workload,impl", [(w, i) for w, impls in _W.items() for i in impls])
        def test_mlp(benchmark, workload, impl):
            benchmark.group = workload
            case = _W[workload][impl]
            if callable(case):
                benchmark(case)
            else:
                setup, fn = case
                benchmark.pedantic(fn, setup=setup, rounds=10)


def _time_blocks(impls, budget, blocks=3):
    """Median and min (ms) of single calls of every implementation. Each
    implementation runs back to back (warm caches, as in report.py) in
    ``blocks`` turns spread over the run, so a busy machine's load spikes hit
    all implementations alike; every turn is at least 3 calls, then as many
    as fit in ``budget / blocks`` seconds."""
    cases = {}
    for name, case in impls.items():
        setup, fn = (None, case) if callable(case) else case
        if setup:
            setup()
        fn()  # warm-up
        cases[name] = (setup, fn)
    times = {name: [] for name in cases}
    for _ in range(blocks):
        for name, (setup, fn) in cases.items():
            t_end = time.perf_counter() + budget / blocks
            n = 0
            while n < 3 or (time.perf_counter() < t_end and n < 2000):
                if setup:
                    setup()
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
                n += 1
    return {n: (statistics.median(t) * 1e3, min(t) * 1e3) for n, t in times.items()}


def main(argv):
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--only", action="append")
    ap.add_argument("--budget", type=float, default=0.5)
    args = ap.parse_args(argv)
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[k] = "1"
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1").strip()
    import workloads_mlp

    res = {}
    for wname, impls in workloads_mlp.workloads(args.only).items():
        both = _time_blocks(impls, args.budget)
        row = res[wname] = {i: med for i, (med, _) in both.items()}
        base = row["gradcore"]
        print(f"{wname:<20} " + " | ".join(
            f"{i} {t:9.3f} ms" + ("" if i == "gradcore" else f" ({t / base:5.2f}x)") for i, t in row.items()),
            flush=True)
        print(f"{'  (min)':<20} " + " | ".join(f"{i} {mn:9.3f} ms" for i, (_, mn) in both.items()), flush=True)
    print("targets:")
    for w, peer, need, *rest in workloads_mlp.TARGETS:
        pw = rest[0] if rest else w
        if w in res and pw in res and peer in res[pw]:
            got = res[pw][peer] / res[w]["gradcore"]
            print(f"  [{'ok' if got >= need else 'MISSED'}] {w}: {got:.2f}x vs {peer} (target >= {need:.2f}x)")
    for w, impl, ms in workloads_mlp.ABS_TARGETS:
        if w in res:
            got = res[w][impl]
            print(f"  [{'ok' if got <= ms else 'MISSED'}] {w}: {impl} {got:.3f} ms (target <= {ms} ms)")


if __name__ == "__main__":
    main(sys.argv[1:])
