"""pytest plugin for ``python -m pytest --pyargs gradcore.benchmarks``.

An installed package has no pytest configuration, and pytest collects only
``test_*.py`` by default: the ``bench_*.py`` modules of this directory are
collected here instead. Every thread pool is pinned to one thread before
torch / jax are imported (this file loads before the bench modules); the
terminal summary and pytest-benchmark's machine info (``--benchmark-json``)
say what was done and which peers are installed.
"""

import pathlib

import pytest

from gradcore.benchmarks._common import OPTIONAL_PEERS, peer_status, pin_threads, thread_facts

HERE = pathlib.Path(__file__).resolve().parent
PINNED = pin_threads(1)


def pytest_collect_file(file_path, parent):
    if (file_path.suffix == ".py" and file_path.name.startswith("bench_") and file_path.parent.resolve() == HERE
            and not parent.session.isinitpath(file_path)):  # a module named on the command line is pytest's own
        try:
            import pytest_benchmark  # noqa: F401
        except ImportError:
            raise pytest.UsageError("gradcore.benchmarks needs pytest-benchmark: pip install 'gradcore[bench]'") from None
        return pytest.Module.from_parent(parent, path=file_path)
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
