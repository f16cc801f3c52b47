"""What every paper reproduction shares: the :class:`Reproduction` result and
the runner that spreads a paper's work units (one per seed, or per seed and
arm) over worker processes through :func:`gradcore.experiments.sweep`.

A paper module defines ``NAME``, ``TITLE``, ``CITATION``, ``SETUP`` (one
paragraph: what the paper did and what this run does), ``BUDGETS`` (budget
name -> parameter dict; ``"quick"``, ``"full"`` and the reduced ``"tiny"``
used by the test suite), ``SECONDS`` (budget -> expected wall time on 2
cores), and the functions

* ``units(params, seeds) -> list of dicts``: the independent work units
  (keyword arguments of ``run_unit``);
* ``run_unit(**unit) -> dict``: one unit's measurements (plain data);
* ``analyze(params, seeds, results) -> (claims, data, notes)``: the claims
  (computed from ``results``), the data behind the table and plot, and notes
  (why a claim is partial at this budget, what differs from the paper);
* ``rows(data) -> (header, rows)`` and ``draw(data, new_figure) -> Figure``.
"""

from __future__ import annotations

import numbers

import json
import os
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

from .._common import ExperimentResult, jsonable, new_figure, save_figure, text_table
from ..claims import claims_table, verdict

__all__ = ["Reproduction", "run_paper", "BUDGET_NAMES", "resolve_seeds"]

BUDGET_NAMES = ("quick", "full", "tiny")


class Reproduction(ExperimentResult):
    """One paper reproduction: ``claims`` (list of claim dicts), ``verdict``
    (``"reproduced"`` / ``"partial"`` / ``"not reproduced"``), ``seeds``,
    ``params`` (the setup actually run), ``budget``, ``notes`` (what is partial
    and why, what differs from the paper), ``data`` (the numbers behind the
    table and the plot), ``results`` (every work unit's raw measurements),
    ``seconds`` (wall time); ``.table()``, ``.plot(path)``, ``.to_json(path)``,
    ``.to_csv(path)``.
    """

    def __init__(self, paper, budget: str, params: Dict[str, Any], seeds: List[int], results: List[dict],
                 claims: List[dict], data: Dict[str, Any], notes: List[str], seconds: float):
        self._paper = paper
        self.name = paper.NAME
        self.title = f"{paper.NAME}: {paper.TITLE}"
        self.citation = paper.CITATION
        self.setup = paper.SETUP
        self.budget = budget
        self.params = params
        self.seeds = list(seeds)
        self.results = results
        self.claims = claims
        self.verdict = verdict(claims)
        self.data = data
        self.notes = list(notes)
        self.seconds = float(seconds)

    def rows(self):
        return self._paper.rows(self.data)

    def table(self) -> str:
        header, rows = self.rows()
        parts = [f"{self.title}",
                 f"  {self.citation}",
                 f"  budget {self.budget}, seeds {self.seeds}, {self.seconds:.1f} s",
                 f"verdict: {self.verdict}",
                 claims_table(self.claims)]
        if self.notes:
            parts.append("notes:")
            parts.extend(f"  - {n}" for n in self.notes)
        parts.append(text_table(header, rows, "measured"))
        return "\n".join(parts)

    def metrics(self) -> Dict[str, Any]:
        held = sum(bool(c["holds"]) for c in self.claims)
        return {"verdict": self.verdict, "claims": len(self.claims), "claims_held": held,
                "seeds": len(self.seeds), "seconds": self.seconds}

    def caption(self) -> str:
        return f"{self.setup} Verdict: {self.verdict} ({self.metrics()['claims_held']} of {len(self.claims)} claims hold)."

    def to_dict(self) -> Dict[str, Any]:
        header, rows = self.rows()
        return jsonable({"experiment": self.name, "title": self.title, "citation": self.citation,
                         "setup": self.setup, "budget": self.budget, "params": self.params, "seeds": self.seeds,
                         "verdict": self.verdict, "claims": self.claims, "notes": self.notes,
                         "seconds": self.seconds, "data": self.data, "columns": header, "rows": rows,
                         "results": self.results})

    def to_json(self, path) -> str:
        path = os.fspath(path)
        with open(path, "w") as fh:
            json.dump(self.to_dict(), fh, indent=1)
        return path

    def _figure(self):
        return self._paper.draw(self.data, new_figure)

    def plot(self, path) -> str:
        """Draw the paper's figure to ``path`` (PNG, needs matplotlib)."""
        return save_figure(self._figure(), path)

    def __repr__(self) -> str:
        held = sum(bool(c["holds"]) for c in self.claims)
        return (f"<Reproduction {self.name} budget={self.budget} verdict={self.verdict!r} "
                f"({held}/{len(self.claims)} claims) seeds={self.seeds}>")


def resolve_seeds(seeds, default: int) -> List[int]:
    """None -> ``range(default)``; an int n >= 1 -> ``range(n)``; a list of
    ints -> itself."""
    if seeds is None:
        return list(range(default))
    if isinstance(seeds, bool):
        raise TypeError(f"seeds: expected None, an int >= 1 or a list of ints, got {seeds!r}")
    if isinstance(seeds, numbers.Integral):
        seeds = int(seeds)
        if seeds < 1:
            raise ValueError(f"seeds: expected an integer >= 1 (the number of seeds), got {seeds}")
        return list(range(seeds))
    try:
        out = [int(s) for s in seeds]
    except (TypeError, ValueError):
        raise TypeError(f"seeds: expected None, an int >= 1 or a list of ints, got {seeds!r}") from None
    if not out:
        raise ValueError("seeds: the list of seeds is empty")
    if len(set(out)) != len(out):
        raise ValueError(f"seeds: repeated seeds in {out}")
    return out


def _run_unit_single_thread(fn, unit):
    from .._threads import blas_threads

    with blas_threads(1):
        return fn(**unit)


class _Unit:
    """Picklable ``fn(**unit)`` under one BLAS thread (worker processes)."""

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, **unit):
        return _run_unit_single_thread(self.fn, unit)


def _bar(total: int, desc: str, enabled: bool):
    if not enabled:
        return None
    if not (hasattr(sys.stderr, "isatty") and sys.stderr.isatty()):
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit="run", leave=False, file=sys.stderr)


def run_paper(paper, budget: str = "quick", seeds=None, n_jobs: Optional[int] = None,
              progress: bool = True, **overrides) -> Reproduction:
    """Run one paper module at ``budget`` (see the module docstring)."""
    from ..sweep import sweep

    if budget not in paper.BUDGETS:
        raise ValueError(f"budget: expected one of {', '.join(paper.BUDGETS)}, got {budget!r}")
    params = dict(paper.BUDGETS[budget])
    default_seeds = params.pop("seeds")
    unknown = [k for k in overrides if k not in params]
    if unknown:
        raise ValueError(f"{paper.NAME}: unknown setting {unknown[0]!r}; valid: {', '.join(sorted(params))}")
    params.update(overrides)
    seed_list = resolve_seeds(seeds, default_seeds)
    if n_jobs is not None and (isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) or n_jobs == 0):
        raise ValueError(f"n_jobs: expected None (all cores) or a non-zero integer, got {n_jobs!r}")
    units = paper.units(params, seed_list)
    jobs = -1 if n_jobs is None else n_jobs
    if jobs == -1:
        jobs = os.cpu_count() or 1
    jobs = max(1, min(jobs, len(units))) if jobs > 0 else jobs
    bar = _bar(len(units), paper.NAME, progress)
    t0 = time.perf_counter()
    try:
        res = sweep(_Unit(paper.run_unit), units, n_jobs=jobs,
                    backend="sequential" if jobs == 1 else "loky",
                    on_result=(lambda run: bar.update(1)) if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - t0
    if res.errors:
        r = res.errors[0]
        raise RuntimeError(f"{paper.NAME}: work unit {r.params} failed: {r.error}\n{r.traceback}")
    claims, data, notes = paper.analyze(params, seed_list, res.values)
    return Reproduction(paper, budget, params, seed_list, res.values, claims, data, notes, seconds)
