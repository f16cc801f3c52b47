"""The benchmark workloads shipped in the package (``gradcore.benchmarks``),
run the way a user of the installed package runs them: from a directory
outside the source tree, every group's cheapest workload (``SMOKE``) through
``gradcore bench --budget 0`` (one timed round after the warm-up) with its
JSON report, and a pytest-benchmark group through
``python -m pytest --pyargs``. No timing is asserted.

Every run is a subprocess: the benchmarks pin their process to one CPU and
one thread per library, which must not leak into the rest of the suite.
"""

import json
import os
import pathlib
import statistics
import subprocess
import sys

import pytest

import gradcore.benchmarks
from gradcore.benchmarks import workloads_clip
from gradcore.benchmarks._common import discover, peer_status, peers_of

GROUPS = {"clip", "dense", "doctor", "lab", "mlp", "rnn", "torch"}


def _run(args, cwd, timeout=600):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_every_group_ships_in_the_package_and_names_its_smoke_workload():
    groups = discover()
    assert GROUPS <= set(groups)
    here = pathlib.Path(gradcore.benchmarks.__file__).parent
    for name, module in groups.items():
        assert pathlib.Path(module.__file__).parent == here
        assert isinstance(getattr(module, "SMOKE", None), str), f"group {name} names no SMOKE workload"
    assert set(discover(["clip", "mlp"])) == {"clip", "mlp"}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    where = tmp_path_factory.mktemp("bench")
    only = [arg for m in discover().values() for arg in ("--only", m.SMOKE)]
    r = _run(["-m", "gradcore", "bench", *only, "--budget", "0", "--json", "report.json"], where)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout, json.loads((where / "report.json").read_text())


def test_bench_runs_every_groups_smoke_workload_outside_the_source_tree(smoke):
    out, report = smoke
    groups = discover()
    assert set(report["groups"]) == set(groups)
    for name, module in groups.items():
        got = report["groups"][name]
        if not got["workloads"]:  # a group whose required peer is absent says so
            assert got["not_installed"], name
            continue
        assert module.SMOKE in got["workloads"] and module.SMOKE in out, (name, list(got["workloads"]))
        row = got["workloads"][module.SMOKE]
        assert "gradcore" in row and len(row) >= 2, (name, row)
        base = row["gradcore"]["median_ms"]
        calls = getattr(module, "STEADY_CALLS", 1)
        assert got["steady_calls"] == calls
        for impl, r in row.items():
            timed = calls - 1 if calls > 1 else 1  # one round; a steady block's first call is not timed
            assert r["repeats"] == len(r["times_ms"]) == timed and min(r["times_ms"]) > 0, (name, impl)
            assert ("cold_median_ms" in r) == (calls > 1), (name, impl)
            assert r["median_ms"] == pytest.approx(statistics.median(r["times_ms"]))
            assert r["gradcore_speedup"] == pytest.approx(r["median_ms"] / base)
        assert f"{module.SMOKE:<24} | gradcore" in out


def test_steady_state_timing_runs_each_implementation_in_blocks():
    from gradcore.benchmarks._common import time_interleaved

    seen = []
    cases = {"a": lambda: seen.append("a"), "b": (lambda: seen.append("setup-b"), lambda: seen.append("b"))}
    got = time_interleaved(cases, budget=0, min_rounds=2, max_rounds=2, calls=3, shuffle=False)
    # one warm-up call each, then per round three calls of a, three of b (each after its setup)
    assert seen == ["a", "setup-b", "b"] + (["a"] * 3 + ["setup-b", "b"] * 3) * 2
    for name in cases:
        med, times, cold = got[name]
        assert len(times) == 4 and cold is not None and med == statistics.median(times)
    single = time_interleaved({"a": lambda: None}, budget=0, min_rounds=3, max_rounds=3)
    assert len(single["a"][1]) == 3 and single["a"][2] is None
    with pytest.raises(ValueError, match="calls"):
        time_interleaved(cases, calls=0)


def test_interleaved_rounds_shuffle_the_order_so_each_implementation_follows_each_other():
    from gradcore.benchmarks._common import time_interleaved

    seen = []
    cases = {k: (lambda k=k: seen.append(k)) for k in "abcd"}
    got = time_interleaved(cases, budget=0, min_rounds=40, max_rounds=40)
    assert seen[:4] == list("abcd")  # the warm-up round keeps the given order
    rounds = [seen[i:i + 4] for i in range(4, len(seen), 4)]
    assert len(rounds) == 40 and all(sorted(r) == list("abcd") for r in rounds)
    assert len({tuple(r) for r in rounds}) > 10  # the order changes from round to round
    pairs = {(p, q) for p, q in zip(seen[4:], seen[5:])}
    assert pairs == {(p, q) for p in "abcd" for q in "abcd" if p != q}  # everyone after everyone
    assert {len(v[1]) for v in got.values()} == {40}
    again = []
    time_interleaved({k: (lambda k=k: again.append(k)) for k in "abcd"}, budget=0, min_rounds=40, max_rounds=40)
    assert again == seen  # seeded: the same order in every run
    fixed = []
    time_interleaved({k: (lambda k=k: fixed.append(k)) for k in "abcd"}, budget=0, min_rounds=3, max_rounds=3,
                     shuffle=False)
    assert fixed == list("abcd") * 4
    blocks = []
    time_interleaved({k: (lambda k=k: blocks.append(k)) for k in "abc"}, budget=0, min_rounds=40, max_rounds=40,
                     calls=2)
    timed = blocks[3:]
    starts = [timed[i] for i in range(0, len(timed), 2)]
    assert all(timed[i] == timed[i + 1] for i in range(0, len(timed), 2))  # blocks of two calls
    assert all(p != q for p, q in zip([blocks[2]] + starts, starts))  # each cold call follows another one


def test_bench_report_states_the_threads_and_the_machine(smoke):
    out, report = smoke
    threads = report["threads"]
    assert all(threads["env"][k] == "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"))
    assert threads["openblas_threads"] and set(threads["openblas_threads"]) == {1}
    assert len(threads.get("cpu_affinity", [0])) == 1
    assert report["machine"]["cpus"] >= 1 and report["machine"]["numpy"]
    assert f"threads: {threads['pinned']}" in out
    for name, got in report["groups"].items():
        for peer, why in got["not_installed"].items():
            assert f"{peer}: not installed, left out ({why})" in out


def test_bench_unknown_group_names_the_groups(tmp_path):
    r = _run(["-m", "gradcore", "bench", "--group", "nope"], tmp_path)
    assert r.returncode == 2
    assert "no workload group matches ['nope']" in r.stderr and "clip" in r.stderr


def test_pytest_pyargs_runs_a_benchmark_group_outside_the_source_tree(tmp_path):
    pytest.importorskip("pytest_benchmark")
    r = _run(["-m", "pytest", "--pyargs", "gradcore.benchmarks.workloads_clip", "--benchmark-enable",
              "-k", "clip-small-flat and noclip or not-installed", "-p", "no:cacheprovider", "-ra",
              "--benchmark-max-time=0.02", "--benchmark-min-rounds=2"], tmp_path)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "gradcore.benchmarks: threads pinned: env OMP_NUM_THREADS" in out
    assert "benchmark 'clip-small-flat:noclip'" in out
    assert "test_clip[clip-small-flat:noclip-gradcore]" in out and "test_clip[clip-small-flat:noclip-numpy]" in out
    impls = workloads_clip.workloads(["clip-small-flat:noclip"])["clip-small-flat:noclip"]
    assert {"gradcore", "numpy"} <= set(impls)
    assert f"{len(impls)} passed" in out
    for impl in impls:
        assert f"test_clip[clip-small-flat:noclip-{impl}]" in out
    for peer, (installed, why) in peer_status().items():
        if peer in peers_of(workloads_clip):
            assert (f"{peer} is not installed ({why})" in out) != installed, peer


def test_bench_rejects_a_negative_budget(capsys):
    from gradcore.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["bench", "--budget", "-1"])
    assert exc.value.code == 2 and "expected seconds >= 0, got -1" in capsys.readouterr().err


def test_rounds_fill_the_budget_whatever_the_first_call_took():
    import time

    from gradcore.benchmarks._common import time_interleaved

    calls = []

    def slow_first():
        time.sleep(0.2 if not calls else 0.002)  # a first call 100x slower (a warm-up, a compile)
        calls.append(1)

    got = time_interleaved({"a": slow_first}, budget=0.05, min_rounds=1, max_rounds=200)
    n = len(got["a"][1])
    assert 8 <= n <= 26, n  # about 0.05 s / 2 ms; an estimate from the first call would give 1
