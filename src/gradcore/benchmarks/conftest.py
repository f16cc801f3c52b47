"""pytest plugin: every ``workloads_<group>.py`` of this package is collected
as the pytest-benchmark tests of its group, one benchmark group per workload
with every implementation side by side::

    python -m pytest --pyargs gradcore.benchmarks --benchmark-enable -k clip-small
    python -m pytest --pyargs gradcore.benchmarks.workloads_rnn --benchmark-enable

An installed package has no pytest configuration and pytest collects only
``test_*.py`` by default, hence this collector. A test is
``test_<group>[<workload>-<impl>]``; the cases are built when their test
runs (one workload alive at a time), and a peer library the group uses but
that is not installed is one skipped test naming it. Every thread pool is
pinned to one thread before torch / jax are imported (this file loads before
the workload modules); the terminal summary and pytest-benchmark's machine
info (``--benchmark-json``) say what was done and which peers are installed.
"""

from __future__ import annotations

import importlib
import inspect
import pathlib
import types

import pytest

from gradcore.benchmarks._common import (OPTIONAL_PEERS, PACKAGE, missing_peers, peer_status, pin_threads,
                                         split_case, thread_facts)

HERE = pathlib.Path(__file__).resolve().parent
PINNED = pin_threads(1)


def _params(module):
    """``(workload, impl)`` parameters: every implementation of every workload,
    then one skipped parameter per peer library that is not installed."""
    params = [pytest.param(w, impl, id=f"{w}-{impl}") for w, impls in module.workloads().items() for impl in impls]
    for peer, why in missing_peers(module).items():
        params.append(pytest.param(None, peer, id=f"{peer}-not-installed", marks=pytest.mark.skip(
            reason=f"{peer} is not installed ({why}): its implementations are left out")))
    return params


def _group_test(module):
    """The test function of a workload module's group."""
    built: dict = {}  # {workload: {impl: case}} of the workload being timed

    def test(benchmark, workload, impl):
        if workload not in built:
            built.clear()
            takes_only = bool(inspect.signature(module.workloads).parameters)
            built.update(module.workloads([workload]) if takes_only else module.workloads())
        benchmark.group = workload
        benchmark.extra_info["impl"] = impl
        setup, fn = split_case(built[workload][impl])
        if setup is None:
            benchmark(fn)
        else:
            rounds = getattr(module, "BENCH_ROUNDS", 10)
            benchmark.pedantic(fn, setup=setup, rounds=rounds, warmup_rounds=1)

    test.__name__ = test.__qualname__ = f"test_{module.GROUP}"
    test.__doc__ = f"pytest-benchmark groups of {module.__name__}."
    return pytest.mark.parametrize("workload,impl", _params(module))(test)


class WorkloadGroup(pytest.Module):
    """A workload module, collected as the one parametrized test of its group."""

    def _getobj(self):
        module = importlib.import_module(f"{PACKAGE}.{self.path.stem}")
        test = _group_test(module)
        holder = types.ModuleType(module.__name__, module.__doc__)
        holder.__file__ = module.__file__
        setattr(holder, test.__name__, test)
        return holder


def pytest_collect_file(file_path, parent):
    if (file_path.suffix == ".py" and file_path.name.startswith("workloads_") and file_path.parent.resolve() == HERE
            and not parent.session.isinitpath(file_path)):  # named on the command line: the hook below
        try:
            import pytest_benchmark  # noqa: F401
        except ImportError:
            raise pytest.UsageError("gradcore.benchmarks needs pytest-benchmark: pip install 'gradcore[bench]'") \
                from None
        return WorkloadGroup.from_parent(parent, path=file_path)
    return None


def pytest_pycollect_makemodule(module_path, parent):
    """A workload module named on the command line is collected by the hook above only."""
    if module_path.name.startswith("workloads_") and module_path.parent.resolve() == HERE:
        return WorkloadGroup.from_parent(parent, path=module_path)
    return None


def _peers_line():
    peers = peer_status()
    have = ", ".join(f"{p} {peers[p][1]}" for p in OPTIONAL_PEERS if peers[p][0]) or "none"
    lacking = ", ".join(p for p in OPTIONAL_PEERS if not peers[p][0]) or "none"
    return f"peers installed: {have}; not installed (left out): {lacking}"


def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(f"gradcore.benchmarks: threads pinned: {PINNED}")
    terminalreporter.write_line(f"gradcore.benchmarks: {_peers_line()}")


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["gradcore_threads"] = {"pinned": PINNED, **thread_facts()}
    machine_info["gradcore_peers"] = {p: detail for p, (ok, detail) in peer_status().items()}
