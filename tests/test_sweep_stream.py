"""Sweeps that stream: each run on disk as it finishes, resume, Ctrl-C that
stops the workers and keeps what finished, Dask's active client."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from gradcore.experiments import sweep
from gradcore.experiments.sweep import expand_grid

CALLS = []


def square(a, b=1):
    CALLS.append(a)
    if a == 3 and b == 10:
        raise ValueError("a = 3, b = 10 is not allowed")
    return {"value": a * a * b}


def worker_address(a):
    from dask.distributed import get_worker

    return get_worker().address


def interrupt_at(a, stop_at):
    if a == stop_at:
        raise KeyboardInterrupt
    return {"value": a}


def _lines(path):
    return [json.loads(l) for l in open(path).read().splitlines()]


def test_each_run_is_on_disk_when_it_finishes(tmp_path):
    seen = []

    def check(run):
        seen.append((run.index, len(_lines(tmp_path / "runs.jsonl"))))

    res = sweep(square, {"a": [1, 2, 3], "b": [1, 10]}, backend="sequential", out=tmp_path, on_result=check)
    assert seen == [(i, i + 1) for i in range(6)]
    recs = _lines(tmp_path / "runs.jsonl")
    assert [r["params"] for r in recs] == expand_grid({"a": [1, 2, 3], "b": [1, 10]})
    assert recs[5]["error"].startswith("ValueError") and recs[0]["metrics"] == {"value": 1}
    assert recs[0]["pid"] == os.getpid() and len(res.errors) == 1


def test_interrupted_then_resumed_runs_every_point_once(tmp_path):
    grid = {"a": [1, 2, 3, 4, 5], "stop_at": [4]}
    res = sweep(interrupt_at, grid, backend="sequential", out=tmp_path)
    assert res.interrupted and [r.params["a"] for r in res] == [1, 2, 3]
    assert len(_lines(tmp_path / "runs.jsonl")) == 3
    # the resumed sweep: the done points come back from disk, only the others run
    done = sweep(interrupt_at, {"a": [1, 2, 3, 4, 5], "stop_at": [99]}, backend="sequential", out=tmp_path,
                 resume=True)
    assert not done.interrupted
    # params changed (stop_at), so nothing matched: every point ran again, once
    assert [r.resumed for r in done] == [False] * 5
    CALLS.clear()
    with open(tmp_path / "runs.jsonl", "a") as fh:
        fh.write('{"index": 7, "params": {"a": 9')            # a line cut short by a kill
    again = sweep(square, {"a": [1, 2, 3]}, backend="sequential", out=tmp_path / "s")
    CALLS.clear()
    with open(tmp_path / "s" / "runs.jsonl", "a") as fh:
        fh.write('{"index": 7, "params": {"a": 9')
    more = sweep(square, {"a": [1, 2, 3, 4]}, backend="sequential", out=tmp_path / "s", resume=True)
    assert CALLS == [4]
    assert [r.resumed for r in more] == [True, True, True, False]
    assert [r.metrics() for r in more][:3] == [r.metrics() for r in again]
    recs = _lines(tmp_path / "s" / "runs.jsonl")
    assert sorted(r["params"]["a"] for r in recs) == [1, 2, 3, 4]       # no run twice, partial line gone


def test_resume_needs_out():
    with pytest.raises(ValueError, match="resume: needs out"):
        sweep(square, {"a": [1]}, resume=True)


def _descendants(pid):
    """PIDs of every living descendant of ``pid`` (from /proc)."""
    parents = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
                parents[int(d)] = (int(fields[1]), fields[0])
            except (OSError, IndexError):
                pass
    out, frontier = set(), {pid}
    while frontier:
        nxt = {p for p, (pp, state) in parents.items() if pp in frontier and state != "Z"}
        out |= nxt
        frontier = nxt
    return out


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_cli_sweep_ctrl_c_stops_workers_and_resume_completes(tmp_path):
    pytest.importorskip("joblib")
    cfg = tmp_path / "s.toml"
    cfg.write_text('experiment = "bptt_profile"\nbackend = "loky"\nn_jobs = 2\n'
                   '[params]\nT = 4000\nhidden = 128\nbatch = 8\n'
                   '[grid]\nspectral_radius = [0.9, 0.95, 1.0, 1.05]\nseed = [0, 1]\n')
    out = tmp_path / "out"
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "gradcore", "sweep", str(cfg), "--out", str(out)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    workers = set()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            workers |= _descendants(proc.pid)
            jl = out / "runs.jsonl"
            if jl.exists() and len(jl.read_text().splitlines()) >= 2:
                break
            time.sleep(0.05)
        workers |= _descendants(proc.pid)
        finished_before = len((out / "runs.jsonl").read_text().splitlines())
        assert 2 <= finished_before < 8, "the sweep finished before it could be interrupted"
        os.killpg(proc.pid, signal.SIGINT)                 # Ctrl-C: the whole foreground group
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "--resume" in err
    assert workers, "no worker processes were seen"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.1)
    assert not [p for p in workers if _alive(p)], "orphan worker processes"
    kept = _lines(out / "runs.jsonl")
    assert len(kept) >= finished_before
    done = subprocess.run(cmd + ["--resume", "--backend", "sequential"], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    recs = _lines(out / "runs.jsonl")
    keys = [json.dumps(r["params"], sort_keys=True) for r in recs]
    assert len(keys) == len(set(keys)) == 8                      # every point, none twice
    from gradcore.experiments import bptt_profile
    from gradcore.experiments._common import jsonable

    for r in recs:                                                # the union equals an uninterrupted sweep
        want = bptt_profile(T=4000, hidden=128, batch=8, **r["params"]).metrics()
        assert json.dumps(r["metrics"], sort_keys=True) == json.dumps(jsonable(want), sort_keys=True, default=repr)


def test_dask_uses_the_active_client_first(monkeypatch):
    distributed = pytest.importorskip("dask.distributed")
    from gradcore.experiments.sweep import SCHEDULER_ENV

    monkeypatch.setenv(SCHEDULER_ENV, "tcp://127.0.0.1:1")      # would fail if it were used
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, protocol="tcp",
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        with distributed.Client(cluster):
            res = sweep(worker_address, {"a": [1, 2]}, backend="dask", scheduler="tcp://127.0.0.1:1")
            workers = set(cluster.scheduler_info["workers"])
        assert not res.errors and {r.value for r in res} <= workers


def train_until_ctrl_c(a):
    import signal as _signal

    import numpy as np

    import gradcore
    from gradcore import losses, nn

    m = nn.MLP([2, 4, 1], seed=a)
    calls = [0]

    def loss(pred, y):
        calls[0] += 1
        if a == 2 and calls[0] == 3:
            _signal.raise_signal(_signal.SIGINT)
        return losses.mse(pred, y)

    rng = np.random.default_rng(a)
    data = [(rng.normal(size=(8, 2)).astype(np.float32), rng.normal(size=(8, 1)).astype(np.float32))
            for _ in range(10)]
    return {"steps": gradcore.train(m, data, loss=loss, progress=False).steps}


def test_ctrl_c_taken_by_train_stops_a_sequential_sweep(tmp_path):
    res = sweep(train_until_ctrl_c, {"a": [1, 2, 3]}, backend="sequential", out=tmp_path)
    assert res.interrupted and [r.params["a"] for r in res] == [1]      # the partial run is not kept
    assert [r["params"]["a"] for r in _lines(tmp_path / "runs.jsonl")] == [1]
