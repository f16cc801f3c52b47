"""Run a grid of experiment settings in parallel, locally or on a Dask cluster.

``sweep(fn, grid)`` calls ``fn(**params)`` for every point of ``grid`` through
joblib: worker processes by default (``backend="loky"``), threads with
``backend="threads"`` (the kernels release the GIL), in this process with
``"sequential"``, or on a Dask cluster with ``backend="dask"`` (joblib's Dask
backend; the scheduler address comes from ``scheduler=`` or the
``GRADCORE_DASK_SCHEDULER`` environment variable). Results come back in grid
order; a run that raises is recorded with its error and traceback, never
dropped.
"""

from __future__ import annotations

import itertools
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
                   time.perf_counter() - t0)
    return Run(index, params, value, None, None, time.perf_counter() - t0)


class SweepResult:
    """The runs of a sweep in grid order (``runs``), with ``values``,
    ``errors``, ``table()``, ``rows()``, ``to_csv(path)``, ``to_json(path)``
    and ``to_dataframe()`` (pandas)."""

    name = "sweep"

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
          on_result: Optional[Callable[[Run], None]] = None) -> SweepResult:
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
    order (e.g. to advance a progress bar).

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
    t0 = time.perf_counter()
    if backend == "sequential" or len(points) <= 1 and backend != "dask":
        runs = []
        for i, p in enumerate(points):
            runs.append(_call(fn, i, p, kb))
            if on_result is not None:
                on_result(runs[-1])
        return SweepResult(runs, "sequential" if backend == "sequential" else backend, 1,
                           time.perf_counter() - t0)
    joblib = _joblib()
    tasks = [joblib.delayed(_call)(fn, i, p, kb) for i, p in enumerate(points)]
    if backend == "dask":
        runs = _run_dask(joblib, tasks, n_jobs, scheduler, verbose)
    else:
        jb = {"loky": "loky", "processes": "loky", "threads": "threading", "threading": "threading"}[backend]
        if on_result is None:
            runs = joblib.Parallel(n_jobs=n_jobs, backend=jb, verbose=verbose)(tasks)
        else:
            runs = []
            for run in joblib.Parallel(n_jobs=n_jobs, backend=jb, verbose=verbose, return_as="generator")(tasks):
                runs.append(run)
                on_result(run)
    return SweepResult(list(runs), backend, n_jobs, time.perf_counter() - t0)


def _run_dask(joblib, tasks, n_jobs, scheduler, verbose):
    try:
        from dask.distributed import Client
    except ImportError:
        raise ImportError('backend="dask" needs dask.distributed: pip install "gradcore[dask]"') from None
    own = False
    if scheduler is None:
        scheduler = os.environ.get(SCHEDULER_ENV) or None
    if scheduler is None:
        raise ValueError(f'backend="dask" needs a scheduler address: pass scheduler="tcp://host:8786" '
                         f"or set the {SCHEDULER_ENV} environment variable")
    if isinstance(scheduler, str):
        client = Client(scheduler, set_as_default=False)
        own = True
    else:
        client = scheduler
    try:
        with client.as_current():
            with joblib.parallel_config(backend="dask", n_jobs=n_jobs, verbose=verbose):
                return joblib.Parallel()(tasks)
    finally:
        if own:
            client.close()
