"""Shared benchmark machinery: thread pinning, workload discovery and timing.

A *workload module* is ``benchmarks/workloads_<group>.py``. It defines

- ``GROUP``: the group name (``python benchmarks/report.py --group <GROUP>``);
- ``workloads()``: ``{workload_name: {impl_name: case}}`` where a case is a
  callable, or a ``(setup, callable)`` pair when the callable changes its
  inputs (``setup`` restores them and is not timed). Implementations whose
  library is not installed are simply left out. ``"gradcore"`` is the
  implementation the others are compared with; the usual peers are
  ``"numpy"`` (the reference backend), ``"torch"``, ``"jax"``, ``"optax"``;
- optionally ``TARGETS``: a list of ``(workload, peer, min_speedup)`` or
  ``(workload, peer, min_speedup, peer_workload)``: gradcore on ``workload``
  must be at least ``min_speedup`` times faster than ``peer`` on
  ``peer_workload`` (default: the same workload). Speed targets live here and
  in the report, never in tests;
- optionally ``ABS_TARGETS``: a list of ``(workload, impl, max_ms)``: the
  median of ``impl`` on ``workload`` must be at most ``max_ms`` milliseconds;
- optionally ``workloads(only)``: build just the workloads whose name
  contains one of the strings in ``only`` (the report passes ``--only``);
- optionally ``summary(results)``: extra lines for the report, from
  ``{workload: {impl: {"median_ms": ...}}}``.

``bench_<group>.py`` files turn the same workloads into pytest-benchmark groups
with :func:`bench_params` and :func:`run_case`.
"""

from __future__ import annotations

import importlib
import os
import pathlib
import statistics
import sys
import time

THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)

HERE = pathlib.Path(__file__).resolve().parent


def pin_threads(n: int = 1) -> str:
    """Pin every thread pool to ``n`` threads. Call before importing numpy,
    torch or jax (the environment variables are read at import); threadpoolctl
    is used as well when installed. Returns a description of what was done."""
    for k in THREAD_VARS:
        os.environ[k] = str(n)
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_multi_thread_eigen" not in flags:
        os.environ["XLA_FLAGS"] = (
            flags + f" --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads={n}"
        ).strip()
    how = f"env {'/'.join(THREAD_VARS)}={n}"
    # XLA's CPU runtime ignores the flags above and still uses every core:
    # restricting the whole process to n CPUs makes every peer honest.
    if hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))[:n]
        os.sched_setaffinity(0, set(cpus))
        how += f" + CPU affinity {cpus}"
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
        how += " + threadpoolctl"
    except ImportError:
        how += " (threadpoolctl not installed)"
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    return how


def discover(groups=None):
    """``{group: module}`` for every ``workloads_*.py`` next to this file."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    found = {}
    for path in sorted(HERE.glob("workloads_*.py")):
        mod = importlib.import_module(path.stem)
        group = getattr(mod, "GROUP", path.stem[len("workloads_"):])
        if groups and group not in groups:
            continue
        found[group] = mod
    return found


def split_case(case):
    """``(setup or None, fn)`` from a case."""
    if callable(case):
        return None, case
    setup, fn = case
    return setup, fn


def time_case(case, budget: float = 0.4, min_repeat: int = 5, max_repeat: int = 200):
    """Median and all timings (seconds) of single calls: one warm-up call,
    then as many timed calls as fit in ``budget`` seconds (within the bounds);
    ``setup`` (if any) runs untimed before each call."""
    setup, fn = split_case(case)
    if setup:
        setup()
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    repeat = int(min(max_repeat, max(min_repeat, budget / max(first, 1e-6))))
    times = []
    for _ in range(repeat):
        if setup:
            setup()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def time_interleaved(cases: dict, budget: float = 1.5, min_rounds: int = 5, max_rounds: int = 200):
    """``{impl: (median, times)}`` for a workload's cases, timed round-robin:
    every round calls each implementation once (its ``setup`` untimed before
    the call), so load from other processes on a shared machine hits all of
    them alike. One warm-up round, then as many rounds as fit in ``budget``."""
    split = {name: split_case(c) for name, c in cases.items()}
    first = {}
    for name, (setup, fn) in split.items():
        if setup:
            setup()
        t0 = time.perf_counter()
        fn()
        first[name] = time.perf_counter() - t0
    rounds = int(min(max_rounds, max(min_rounds, budget / max(sum(first.values()), 1e-6))))
    times = {name: [] for name in split}
    for _ in range(rounds):
        for name, (setup, fn) in split.items():
            if setup:
                setup()
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: (statistics.median(t), t) for name, t in times.items()}


def bench_params(module):
    """pytest parameters ``(workload, impl, case)`` for a workload module."""
    import pytest

    params = []
    for wname, impls in module.workloads().items():
        for impl, case in impls.items():
            params.append(pytest.param(wname, impl, case, id=f"{wname}-{impl}"))
    return params


def run_case(benchmark, workload, impl, case, rounds: int = 10):
    """Time one case with pytest-benchmark, in the workload's group."""
    benchmark.group = workload
    benchmark.extra_info["impl"] = impl
    setup, fn = split_case(case)
    if setup is None:
        benchmark(fn)
    else:
        benchmark.pedantic(fn, setup=setup, rounds=rounds, warmup_rounds=1)
