"""pytest-benchmark groups for the recurrent workloads (workloads_rnn.py):

    python -m pytest benchmarks/bench_rnn.py --benchmark-enable --benchmark-columns=median,rounds

or a ratio report measured in one run, with the targets checked (one thread
per library):

    python benchmarks/bench_rnn.py [--only lstm] [--budget 1.0]
"""

import os
import pathlib
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

if __name__ != "__main__":
    import pytest

    import workloads_rnn

    try:
        from _common import bench_params, run_case
    except ImportError:  # the shared benchmark helpers are not in this checkout
        bench_params = run_case = None

    if bench_params is not None:
        @pytest.mark.parametrize("workload,impl,case", bench_params(workloads_rnn))
        def test_rnn(benchmark, workload, impl, case):
            run_case(benchmark, workload, impl, case)
    else:
        _W = workloads_rnn.workloads()

        @pytest.mark.parametrize("workload,impl", [(w, i) for w, impls in _W.items() for i in impls])
        def test_rnn(benchmark, workload, impl):
            benchmark.group = workload
            benchmark(_W[workload][impl])


def _time(fn, budget):
    fn()
    times = []
    t_end = time.perf_counter() + budget
    while len(times) < 5 or (time.perf_counter() < t_end and len(times) < 300):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv):
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--only", action="append", help="run only workloads whose name contains this")
    ap.add_argument("--budget", type=float, default=1.0, help="seconds of timed calls per implementation")
    args = ap.parse_args(argv)
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[k] = "1"
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1").strip()
    import workloads_rnn

    res = {}
    for wname in workloads_rnn.specs():
        if args.only and not any(s in wname for s in args.only):
            continue
        impls = workloads_rnn.workloads(only=[wname])[wname]
        row = res[wname] = {i: _time(c, args.budget) * 1e3 for i, c in impls.items()}
        base = row["gradcore"]
        print(f"{wname:<24} " + " | ".join(
            f"{i} {t:9.3f} ms" + ("" if i == "gradcore" else f" ({t / base:5.2f}x)") for i, t in row.items()),
            flush=True)
    print("targets:")
    for w, peer, need, *rest in workloads_rnn.TARGETS:
        pw = rest[0] if rest else w
        if w in res and pw in res and peer in res[pw]:
            got = res[pw][peer] / res[w]["gradcore"]
            print(f"  [{'ok' if got >= need else 'MISSED'}] {w}: {got:.2f}x vs {peer} (target >= {need:.2f}x)")
    for w, impl, ms in workloads_rnn.ABS_TARGETS:
        if w in res:
            got = res[w][impl]
            print(f"  [{'ok' if got <= ms else 'MISSED'}] {w}: {impl} {got:.3f} ms (target <= {ms} ms)")
    scale = [(w, r["gradcore"]) for w, r in res.items() if w.startswith("rnn-scaleT")]
    if len(scale) > 1:
        print("time per step vs T (linear in T: constant):")
        for w, t in scale:
            T = int(w.split("-T")[1].split("-")[0])
            print(f"  {w}: {t:9.3f} ms, {t / T * 1e3:7.2f} us/step")


if __name__ == "__main__":
    main(sys.argv[1:])
