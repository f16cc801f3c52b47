import os

import numpy as np
import pytest

from gradcore.experiments import bptt_profile, sweep
from gradcore.experiments.sweep import SCHEDULER_ENV, expand_grid


def square_or_fail(a, b=1):
    if a == 3:
        raise ValueError("a = 3 is not allowed")
    return {"value": a * a * b, "a": a}


def worker_address(a):
    from dask.distributed import get_worker

    return get_worker().address


GRID = {"a": [1, 2, 3, 4], "b": [1, 10]}


def test_expand_grid_order_and_errors():
    pts = expand_grid(GRID)
    assert pts[:3] == [{"a": 1, "b": 1}, {"a": 1, "b": 10}, {"a": 2, "b": 1}] and len(pts) == 8
    assert expand_grid([{"a": 5}, {"a": 6, "b": 2}]) == [{"a": 5}, {"a": 6, "b": 2}]
    with pytest.raises(TypeError, match=r"grid\['a'\]"):
        expand_grid({"a": 3})
    with pytest.raises(ValueError, match="empty"):
        expand_grid({"a": []})


def _expected():
    return [None if p["a"] == 3 else p["a"] * p["a"] * p["b"] for p in expand_grid(GRID)]


@pytest.mark.parametrize("backend", ["sequential", "threads", None])
def test_results_in_grid_order_with_failures_recorded(backend):
    res = sweep(square_or_fail, GRID, n_jobs=2, backend=backend)
    assert len(res) == 8
    assert [r.params for r in res] == expand_grid(GRID)
    assert [r.value["value"] if r.ok else None for r in res] == _expected()
    failed = res.errors
    assert [r.params for r in failed] == [{"a": 3, "b": 1}, {"a": 3, "b": 10}]
    assert all("a = 3 is not allowed" in r.error and "ValueError" in r.traceback for r in failed)
    header, rows = res.rows()
    assert header[:2] == ["a", "b"] and header[-1] == "error"
    assert "2 failed" in res.table()


def test_experiment_results_tabulate_their_metrics(tmp_path):
    res = sweep(bptt_profile, {"spectral_radius": [0.99, 1.01], "T": [100]}, backend="threads", n_jobs=2)
    growth = [r.metrics()["growth"] for r in res]
    np.testing.assert_allclose(growth, [0.99 ** 100, 1.01 ** 100], rtol=1e-9)
    res.to_csv(tmp_path / "s.csv")
    res.to_json(tmp_path / "s.json")
    assert open(tmp_path / "s.csv").readline().startswith("spectral_radius,T,growth")


def test_to_dataframe():
    pytest.importorskip("pandas")
    res = sweep(square_or_fail, {"a": [1, 3]}, backend="sequential")
    df = res.to_dataframe()
    assert list(df.columns) == ["a", "value", "result.a", "seconds", "error"]
    assert list(df["a"]) == [1, 3] and df["error"].iloc[1].startswith("ValueError")


def test_bad_arguments():
    with pytest.raises(ValueError, match="backend"):
        sweep(square_or_fail, GRID, backend="mpi")
    with pytest.raises(ValueError, match="n_jobs"):
        sweep(square_or_fail, GRID, n_jobs=0)
    with pytest.raises(TypeError, match="fn"):
        sweep(42, GRID)


def test_dask_needs_a_scheduler_address(monkeypatch):
    pytest.importorskip("dask.distributed")
    monkeypatch.delenv(SCHEDULER_ENV, raising=False)
    with pytest.raises(ValueError, match=SCHEDULER_ENV):
        sweep(square_or_fail, GRID, backend="dask")


def test_dask_local_cluster_equals_the_local_run(monkeypatch):
    distributed = pytest.importorskip("dask.distributed")
    local = sweep(bptt_profile, {"spectral_radius": [0.9, 1.01, 1.1], "T": [20, 50]}, backend="sequential")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, protocol="tcp", host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        remote = sweep(bptt_profile, {"spectral_radius": [0.9, 1.01, 1.1], "T": [20, 50]}, backend="dask",
                       scheduler=cluster.scheduler_address)
        monkeypatch.setenv(SCHEDULER_ENV, cluster.scheduler_address)
        failing = sweep(square_or_fail, {"a": [2, 3]}, backend="dask")
        where = sweep(worker_address, {"a": [1, 2, 3]}, backend="dask")
        workers = set(cluster.scheduler_info["workers"])
    assert where.errors == [] and {r.value for r in where} <= workers  # it really ran on the cluster
    assert remote.backend == "dask" and len(remote) == 6
    assert [r.params for r in remote] == [r.params for r in local]
    for a, b in zip(local, remote):
        np.testing.assert_array_equal(a.value.norms, b.value.norms)
    assert failing[0].value["value"] == 4 and "not allowed" in failing[1].error
