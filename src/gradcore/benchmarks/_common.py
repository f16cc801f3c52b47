"""Shared benchmark machinery: thread pinning, workload discovery and timing.

A *workload module* is ``gradcore/benchmarks/workloads_<group>.py``. It defines

- ``GROUP``: the group name (``gradcore bench --group <GROUP>``);
- ``SMOKE``: the name of its cheapest workload (the test suite runs it once,
  from outside the source tree, with every implementation);
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
- ``workloads(only=None)``: build just the workloads whose name contains
  one of the strings in ``only`` (the report passes ``--only``);
- optionally ``summary(results)``: extra lines for the report, from
  ``{workload: {impl: {"median_ms": ...}}}``;
- optionally ``BENCH_ROUNDS``: pytest-benchmark rounds of a case with a
  ``setup`` (default 10);
- optionally ``STEADY_CALLS``: time each implementation in its steady state
  (``time_interleaved(..., calls=STEADY_CALLS)``): for workloads that run in
  a loop of themselves, such as training steps (default 1: single calls).

The package's ``conftest.py`` turns every workload module into pytest-benchmark
groups: ``python -m pytest --pyargs gradcore.benchmarks --benchmark-enable``
(or ``gradcore.benchmarks.workloads_<group>`` for one group).
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import platform
import random
import re
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

#: optional peer libraries: a workload leaves their implementations out when
#: they are not importable (the report and pytest say so)
OPTIONAL_PEERS = ("torch", "jax", "optax")

PACKAGE = __name__.rpartition(".")[0]


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
    except ImportError:  # numpy may be loaded already: set its OpenBLAS directly
        from ..experiments._threads import _openblas_handles

        for setter, _ in _openblas_handles():
            setter(n)
        how += " + openblas_set_num_threads"
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    return how


def thread_facts() -> dict:
    """What the timed process runs with: thread variables, CPU affinity, the
    OpenBLAS thread counts found, torch's intra-op threads (when imported)."""
    from ..experiments._threads import current_blas_threads

    facts = {"env": {k: os.environ.get(k) for k in THREAD_VARS + ("XLA_FLAGS",)},
             "openblas_threads": current_blas_threads()}
    if hasattr(os, "sched_getaffinity"):
        facts["cpu_affinity"] = sorted(os.sched_getaffinity(0))
    if "torch" in sys.modules:
        facts["torch_threads"] = sys.modules["torch"].get_num_threads()
    return facts


def machine_facts() -> dict:
    """Platform, CPU count, Python and library versions of this run."""
    import numpy
    import scipy

    facts = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
             "cpus": os.cpu_count(), "python": platform.python_version(),
             "numpy": numpy.__version__, "scipy": scipy.__version__}
    for name, (ok, detail) in peer_status().items():
        facts[name] = detail if ok else None
    return facts


def peer_status() -> dict:
    """``{library: (installed, version or the import error)}`` for OPTIONAL_PEERS."""
    out = {}
    for name in OPTIONAL_PEERS:
        try:
            mod = importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - any import failure means "not usable"
            out[name] = (False, f"{type(exc).__name__}: {exc}")
        else:
            out[name] = (True, getattr(mod, "__version__", "?"))
    return out


def optional(name: str):
    """The module ``name``, or None when it cannot be imported (a peer left
    out); torch is set to one intra-op thread."""
    try:
        mod = importlib.import_module(name)
    except ImportError:
        return None
    if name == "torch":
        mod.set_num_threads(1)
    return mod


def peers_of(module) -> list:
    """The optional peer libraries a workload module imports (read from its source)."""
    import inspect

    src = inspect.getsource(module)
    return [p for p in OPTIONAL_PEERS if re.search(rf"^\s*(import|from) {p}\b|optional\(\"{p}\"\)", src, re.M)]


def missing_peers(module) -> dict:
    """``{library: reason}`` for the peers of ``module`` that are not installed."""
    status = peer_status()
    return {p: status[p][1] for p in peers_of(module) if not status[p][0]}


def group_modules() -> list:
    """Names of the workload modules shipped in this package, sorted."""
    pkg = importlib.import_module(PACKAGE)
    return sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if m.name.startswith("workloads_"))


def discover(groups=None):
    """``{group: module}`` for every ``workloads_*.py`` of this package
    (``groups``: keep only these group names)."""
    found = {}
    for name in group_modules():
        mod = importlib.import_module(f"{PACKAGE}.{name}")
        group = getattr(mod, "GROUP", name[len("workloads_"):])
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


#: seconds of untimed pause after each JAX call (see :func:`time_interleaved`)
SETTLE_AFTER_JAX = 0.05


def time_interleaved(cases: dict, budget: float = 1.5, min_rounds: int = 5, max_rounds: int = 200,
                     calls: int = 1, shuffle: bool = True, seed: int = 0):
    """``{impl: (median, times, cold)}`` for a workload's cases, timed
    round-robin: every round runs each implementation in turn (its ``setup``
    untimed before each call), so load from other processes on a shared
    machine hits all of them alike. One warm-up round in the order of
    ``cases``, then rounds until their calls (and JAX pauses) have taken
    ``budget`` seconds, at least ``min_rounds`` and at most ``max_rounds``
    (the first calls, often far slower than the rest, no longer set the
    count: the mlp group's 1.5 s gave 5 rounds that way).

    ``shuffle`` (default): each round runs the implementations in a new
    order (``random.Random(seed)``; never starting with the one that ended
    the round before), so with three or more each one follows each other
    one, and the pause after a JAX call, about equally often (with two the
    rule leaves one order). A call's time depends on what ran before it:
    on this project's (virtual) machine the fused MLP ``mlp-D50-W64-B16``
    took about 0.26 ms right after itself, after the NumPy reference (which
    reads the same weights) or after a 1 ms busy loop, and about 0.45 ms
    after a 20 ms busy loop or a 50 ms sleep (``benchmarks/after_idle.py``;
    docs/performance.md). In a fixed order the implementation listed first
    (``gradcore``) always came right after the last one's JAX pause and
    carried that cost alone. ``shuffle=False``: the order of ``cases`` every round.

    ``calls`` = 1: one timed call per implementation and round (``cold`` is
    None). ``calls`` = k > 1, the steady state: each implementation runs k
    calls in a row per round; the first follows another implementation (its
    caches hold the other library's code and data) and goes to ``cold``,
    the k - 1 after it, each following a call of itself as in a training
    loop, are the timed ``times``. (Measured on the torch group's RNN step:
    the same gradcore step took 3.1 ms after itself, 3.7 ms after a torch
    step and 4.0 ms after gradcore's native step, whose 16 MB of memory
    traffic evicts the Python and torch code from the caches; a plain 16 MB
    copy before it did the same.)

    After each JAX call an untimed pause of ``SETTLE_AFTER_JAX`` seconds
    (counted in ``budget``, so a workload with JAX gets fewer rounds):
    XLA's worker threads keep spinning on the (pinned) core after a call
    returns, and without it that spin lands in the next implementation's
    time (measured: gradcore's lstm-T500-B32-I32-H128 86.6 ms without JAX
    in the process, 96 ms timed right after JAX calls, 88.8 ms with the
    pause)."""
    if calls < 1:
        raise ValueError(f"calls: expected at least 1, got {calls}")
    split = {name: split_case(c) for name, c in cases.items()}

    def call(name, setup, fn):
        if setup:
            setup()
        t0 = time.perf_counter()
        fn()
        t = time.perf_counter() - t0
        if name.startswith("jax"):
            time.sleep(SETTLE_AFTER_JAX)
        return t

    for name, sf in split.items():  # the warm-up round, untimed
        call(name, *sf)
    times: dict[str, list[float]] = {name: [] for name in split}
    cold: dict[str, list[float]] = {name: [] for name in split}
    order = list(split)
    rng = random.Random(seed)
    spent, rounds = 0.0, 0  # the budget counts the timed calls and the JAX pauses
    while rounds < max_rounds and (rounds < min_rounds or spent < budget):
        rounds += 1
        if shuffle:
            last = order[-1]
            rng.shuffle(order)
            if len(order) > 1 and order[0] == last:  # never right after itself across rounds
                i = rng.randrange(1, len(order))
                order[0], order[i] = order[i], order[0]
        for name in order:
            sf = split[name]
            block = [call(name, *sf) for _ in range(calls)]
            spent += sum(block) + (SETTLE_AFTER_JAX * calls if name.startswith("jax") else 0.0)
            if calls == 1:
                times[name] += block
            else:
                cold[name].append(block[0])
                times[name] += block[1:]
    return {name: (statistics.median(t), t, statistics.median(cold[name]) if cold[name] else None)
            for name, t in times.items()}
