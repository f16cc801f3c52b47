"""Run a grid of experiment settings in parallel, locally or on a Dask cluster.

``sweep(fn, grid)`` calls ``fn(**params)`` for every point of ``grid`` through
joblib: worker processes by default (``backend="loky"``), threads with
``backend="threads"`` (the kernels release the GIL), in this process with
``"sequential"``, or on a Dask cluster with ``backend="dask"`` (joblib's Dask
backend; the scheduler address comes from ``scheduler=`` or the
``GRADCORE_DASK_SCHEDULER`` environment variable). Results come back in grid
order; a run that raises is recorded with its error and traceback, never
dropped.

With ``out=DIR`` every run is written the moment it finishes (in completion
order): one JSON line in ``DIR/runs.jsonl`` (index, params, metrics, error,
traceback, seconds, worker pid; flushed and fsync-ed) plus
``DIR/runs/<index>.json`` / ``.csv`` for results that can write themselves.
``resume=True`` reads ``runs.jsonl`` (dropping a last line cut short by a
kill) and runs only the points not in it (matched by their parameters).
Ctrl-C (``KeyboardInterrupt``) stops the run: worker processes are killed,
the finished runs are kept (on disk and in the returned result, whose
``interrupted`` is True).
"""

from __future__ import annotations

import itertools
import json
import math
import numbers
import os
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from ._common import fmt, jsonable, text_table, write_csv

__all__ = ["sweep", "expand_grid", "SweepResult", "Run", "BACKENDS", "SCHEDULER_ENV"]

SCHEDULER_ENV = "GRADCORE_DASK_SCHEDULER"
BACKENDS = ("loky", "processes", "threads", "threading", "sequential", "dask")


@dataclass
class Run:
    """One point of a sweep: its parameters, the value ``fn`` returned (None
    when it failed), the error text and traceback, and the wall time."""

    index: int
    params: Dict[str, Any]
    value: Any = None
    error: Optional[str] = None
    traceback: Optional[str] = None
    seconds: float = 0.0
    pid: Optional[int] = None
    resumed: bool = False       # read back from runs.jsonl (value = its recorded metrics)

    @property
    def ok(self) -> bool:
        return self.error is None

    def metrics(self) -> Dict[str, Any]:
        """The value as a flat dict of scalars (``value.metrics()`` for
        experiment results, the dict itself, or ``{"value": value}``)."""
        v = self.value
        if v is None:
            return {}
        if hasattr(v, "metrics") and callable(v.metrics):
            return dict(v.metrics())
        if isinstance(v, Mapping):
            return {k: x for k, x in v.items() if isinstance(x, (int, float, str, bool)) or
                    type(x).__module__ == "numpy" and getattr(x, "ndim", 1) == 0}
        return {"value": v}


def expand_grid(grid) -> List[Dict[str, Any]]:
    """A dict name -> list of values becomes the Cartesian product (first key
    slowest, last key fastest); a list of dicts is taken as it is."""
    if isinstance(grid, Mapping):
        keys = list(grid)
        values = []
        for k in keys:
            v = grid[k]
            if isinstance(v, (str, bytes)) or not isinstance(v, Sequence):
                raise TypeError(f"grid[{k!r}]: expected a list of values, got {type(v).__name__} {v!r}")
            if len(v) == 0:
                raise ValueError(f"grid[{k!r}]: expected at least one value, got an empty list")
            values.append(list(v))
        return [dict(zip(keys, combo)) for combo in itertools.product(*values)]
    if isinstance(grid, Sequence) and not isinstance(grid, (str, bytes)):
        points = []
        for i, p in enumerate(grid):
            if not isinstance(p, Mapping):
                raise TypeError(f"grid[{i}]: expected a dict of parameters, got {type(p).__name__}")
            points.append(dict(p))
        return points
    raise TypeError(f"grid: expected a dict name -> list of values or a list of dicts, got {type(grid).__name__}")


def _call(fn: Callable, index: int, params: Dict[str, Any], kernel_backend: str = "c") -> Run:
    from ..backend import use_backend

    t0 = time.perf_counter()
    try:
        with use_backend(kernel_backend):  # the caller's backend, in every worker
            value = fn(**params)
    except BaseException as exc:  # noqa: BLE001 - every failure is recorded, none dropped
        if isinstance(exc, KeyboardInterrupt):
            raise
        return Run(index, params, None, f"{type(exc).__name__}: {exc}", traceback.format_exc(),
                   time.perf_counter() - t0, os.getpid())
    return Run(index, params, value, None, None, time.perf_counter() - t0, os.getpid())


def _key(params) -> str:
    return json.dumps(jsonable(params), sort_keys=True, default=repr)


class _Stream:
    """``DIR/runs.jsonl`` (+ per-run files), appended as runs finish."""

    def __init__(self, out, resume: bool):
        self.out = os.fspath(out)
        os.makedirs(self.out, exist_ok=True)
        self.path = os.path.join(self.out, "runs.jsonl")
        self.done: Dict[str, Dict[str, Any]] = {}
        if resume and os.path.exists(self.path):
            with open(self.path, "rb") as fh:
                data = fh.read()
            keep = data[:data.rfind(b"\n") + 1]     # a line cut short by a kill is dropped
            for line in keep.decode("utf-8").splitlines():
                if line.strip():
                    rec = json.loads(line)
                    self.done[_key(rec["params"])] = rec
            if len(keep) != len(data):
                with open(self.path, "r+b") as fh:
                    fh.truncate(len(keep))
        self.fh = open(self.path, "a" if resume else "w")

    def resumed_run(self, index: int, params) -> Optional[Run]:
        rec = self.done.get(_key(params))
        if rec is None:
            return None
        return Run(index, params, rec.get("metrics") or None, rec.get("error"), rec.get("traceback"),
                   float(rec.get("seconds", 0.0)), rec.get("pid"), resumed=True)

    def write(self, run: Run) -> None:
        files = {}
        v = run.value
        for ext in ("json", "csv"):
            writer = getattr(v, f"to_{ext}", None)
            if callable(writer) and not isinstance(v, Mapping):
                os.makedirs(os.path.join(self.out, "runs"), exist_ok=True)
                name = os.path.join("runs", f"{run.index:04d}.{ext}")
                writer(os.path.join(self.out, name))
                files[ext] = name
        rec = {"index": run.index, "params": run.params, "metrics": run.metrics(), "error": run.error,
               "traceback": run.traceback, "seconds": run.seconds, "pid": run.pid, "files": files}
        self.fh.write(json.dumps(jsonable(rec), default=repr) + "\n")
        self.fh.flush()
        os.fsync(self.fh.fileno())

    def close(self) -> None:
        self.fh.close()


def _kill_loky_workers() -> None:
    """Shut down joblib's reusable loky executor, killing its workers."""
    try:
        from joblib.externals.loky import reusable_executor
    except ImportError:
        return
    ex = getattr(reusable_executor, "_executor", None)
    if ex is not None:
        ex.shutdown(wait=True, kill_workers=True)


class SweepResult:
    """The runs of a sweep in grid order (``runs``), with ``values``,
    ``errors``, ``table()``, ``rows()``, ``to_csv(path)``, ``to_json(path)``
    and ``to_dataframe()`` (pandas)."""

    name = "sweep"

    interrupted = False     # Ctrl-C ended the sweep; ``runs`` holds the finished ones

    def __init__(self, runs: List[Run], backend: str, n_jobs: int, seconds: float):
        self.runs = sorted(runs, key=lambda r: r.index)
        self.backend = backend
        self.n_jobs = n_jobs
        self.seconds = seconds

    def __len__(self):
        return len(self.runs)

    def __iter__(self):
        return iter(self.runs)

    def __getitem__(self, i) -> Run:
        return self.runs[i]

    @property
    def values(self) -> List[Any]:
        return [r.value for r in self.runs]

    @property
    def errors(self) -> List[Run]:
        """The runs that failed."""
        return [r for r in self.runs if not r.ok]

    def rows(self):
        pkeys: List[str] = []
        mkeys: List[str] = []
        metrics = [r.metrics() for r in self.runs]
        for r, m in zip(self.runs, metrics):
            for k in r.params:
                if k not in pkeys:
                    pkeys.append(k)
            for k in m:
                if k not in mkeys:
                    mkeys.append(k)
        # a metric named like a parameter (or like the bookkeeping columns) is
        # shown as "result.<name>" so every column name is unique
        taken = set(pkeys) | {"seconds", "error"}
        mnames = [f"result.{k}" if k in taken else k for k in mkeys]
        header = pkeys + mnames + ["seconds", "error"]
        rows = []
        for r, m in zip(self.runs, metrics):
            rows.append([r.params.get(k) for k in pkeys] + [m.get(k) for k in mkeys]
                        + [round(r.seconds, 4), r.error or ""])
        return header, rows

    def table(self) -> str:
        header, rows = self.rows()
        title = (f"Sweep: {len(self.runs)} runs ({len(self.errors)} failed), backend {self.backend}, "
                 f"{self.seconds:.2f} s")
        return text_table(header, rows, title)

    def metrics(self) -> Dict[str, Any]:
        return {"runs": len(self.runs), "failed": len(self.errors), "seconds": self.seconds}

    def to_csv(self, path) -> str:
        header, rows = self.rows()
        return write_csv(path, header, rows)

    def to_json(self, path) -> str:
        import json

        header, rows = self.rows()
        data = {"backend": self.backend, "n_jobs": self.n_jobs, "seconds": self.seconds,
                "columns": header, "rows": rows,
                "runs": [{"params": r.params, "metrics": r.metrics(), "error": r.error,
                          "traceback": r.traceback, "seconds": r.seconds} for r in self.runs]}
        path = os.fspath(path)
        with open(path, "w") as fh:
            json.dump(jsonable(data), fh, indent=1)
        return path

    def to_dataframe(self):
        """The table as a pandas DataFrame (needs pandas)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("to_dataframe needs pandas: pip install pandas") from None
        header, rows = self.rows()
        return pd.DataFrame(rows, columns=header)

    def __repr__(self):
        return f"<SweepResult {len(self.runs)} runs, {len(self.errors)} failed, backend={self.backend}>"


def _joblib():
    try:
        import joblib
    except ImportError:
        raise ImportError('sweeps need joblib: pip install "gradcore[sweep]"') from None
    return joblib


def sweep(fn: Callable, grid, n_jobs: int = -1, backend: Optional[str] = None,
          scheduler: Optional[str] = None, verbose: int = 0,
          on_result: Optional[Callable[[Run], None]] = None, out=None, resume: bool = False) -> SweepResult:
    """Call ``fn(**params)`` for every point of ``grid`` and return a
    :class:`SweepResult` in grid order.

    ``grid``: a dict name -> list of values (Cartesian product, last key
    fastest) or a list of parameter dicts. ``n_jobs``: joblib's (-1 = all
    cores). ``backend``: None or ``"loky"``/``"processes"`` (worker processes,
    the default), ``"threads"``, ``"sequential"``, or ``"dask"`` (needs the
    ``dask`` extra and a scheduler address: ``scheduler="tcp://host:8786"`` or
    the ``GRADCORE_DASK_SCHEDULER`` environment variable; a
    ``distributed.Client`` may also be passed as ``scheduler``).

    Every point runs on the caller's kernel backend (``get_backend()`` at the
    call; ``use_backend`` is per thread, so workers would not see it).
    A run that raises is kept with ``error`` and ``traceback`` set.
    ``on_result``: called with each :class:`Run` as it finishes, in grid
    order (in completion order with ``out``; e.g. to advance a progress bar).
    ``out``: a directory; each run is written there as it finishes
    (``runs.jsonl``, see the module docstring). ``resume=True``: skip the
    points ``out/runs.jsonl`` already holds (their runs come back with
    ``resumed=True`` and their recorded metrics as ``value``). Ctrl-C
    returns the finished runs with ``interrupted=True``; with ``out`` they
    are on disk too, and the workers are stopped.

    >>> sweep(lambda a, b: a * b, {"a": [1, 2], "b": [10]}, backend="sequential").values
    [10, 20]
    """
    if not callable(fn):
        raise TypeError(f"fn: expected a callable, got {type(fn).__name__}")
    points = expand_grid(grid)
    backend = "loky" if backend is None else backend
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {', '.join(BACKENDS)} (or None), got {backend!r}")
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) or n_jobs == 0:
        raise ValueError(f"n_jobs: expected a non-zero integer (-1 = all cores), got {n_jobs!r}")
    n_jobs = int(n_jobs)
    if scheduler is not None and not isinstance(scheduler, str) and not hasattr(scheduler, "as_current"):
        raise TypeError(f"scheduler: expected None, an address string such as 'tcp://host:8786' or a "
                        f"distributed.Client, got {scheduler!r} ({type(scheduler).__name__})")
    from ..backend import get_backend

    kb = get_backend()
    if resume and out is None:
        raise ValueError("resume: needs out=DIR (where runs.jsonl is)")
    stream = _Stream(out, resume) if out is not None else None
    t0 = time.perf_counter()
    runs: List[Run] = []
    todo = []
    for i, p in enumerate(points):
        old = stream.resumed_run(i, p) if stream is not None else None
        if old is not None:
            runs.append(old)
        else:
            todo.append((i, p))

    def finished(run):
        if stream is not None:
            stream.write(run)
        runs.append(run)
        if on_result is not None:
            on_result(run)

    interrupted = False
    sequential = backend == "sequential" or len(todo) <= 1 and backend != "dask"
    try:
        if sequential:
            from .._train_state import ABSORBED

            for i, p in todo:
                seen = ABSORBED[0]
                run = _call(fn, i, p, kb)
                if ABSORBED[0] != seen:
                    # Ctrl-C was taken by a gradcore.train inside the run (which
                    # returned early): the run is partial, and the sweep stops
                    raise KeyboardInterrupt
                finished(run)
        elif todo:
            joblib = _joblib()
            tasks = [joblib.delayed(_call)(fn, i, p, kb) for i, p in todo]
            if backend == "dask":
                for run in _run_dask(joblib, tasks, n_jobs, scheduler, verbose):
                    finished(run)
            else:
                jb = {"loky": "loky", "processes": "loky", "threads": "threading", "threading": "threading"}[backend]
                order = "generator" if stream is None else "generator_unordered"
                for run in joblib.Parallel(n_jobs=n_jobs, backend=jb, verbose=verbose, return_as=order)(tasks):
                    finished(run)
    except KeyboardInterrupt:
        interrupted = True
        if backend in ("loky", "processes"):
            _kill_loky_workers()
    finally:
        if stream is not None:
            stream.close()
    res = SweepResult(runs, "sequential" if backend == "sequential" else backend, 1 if sequential else n_jobs,
                      time.perf_counter() - t0)
    res.interrupted = interrupted
    return res


def _active_client():
    """The current ``dask.distributed`` client (``Client.current()``), or None."""
    try:
        from distributed import Client
        return Client.current()
    except (ImportError, ValueError):
        return None


def _run_dask(joblib, tasks, n_jobs, scheduler, verbose):
    """Yield the runs from Dask. The client: a ``distributed.Client`` passed
    as ``scheduler``; else the active client (Dask's convention: the one made
    last, or entered with ``as_current``); else one connected to the address
    in ``scheduler`` or ``GRADCORE_DASK_SCHEDULER`` (closed afterwards)."""
    try:
        from dask.distributed import Client
    except ImportError:
        raise ImportError('backend="dask" needs dask.distributed: pip install "gradcore[dask]"') from None
    own = False
    client = scheduler if scheduler is not None and not isinstance(scheduler, str) else _active_client()
    if client is None:
        if scheduler is None:
            scheduler = os.environ.get(SCHEDULER_ENV) or None
        if scheduler is None:
            raise ValueError(f'backend="dask" needs a scheduler address or an active distributed.Client: pass '
                             f'scheduler="tcp://host:8786" or set the {SCHEDULER_ENV} environment variable')
        client = Client(scheduler, set_as_default=False)
        own = True
    try:
        with client.as_current():
            with joblib.parallel_config(backend="dask", n_jobs=n_jobs, verbose=verbose):
                yield from joblib.Parallel(return_as="generator")(tasks)
    finally:
        if own:
            client.close()
