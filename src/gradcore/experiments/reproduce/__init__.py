"""Reproductions of the classic exploding/vanishing-gradient papers, each
running the paper's own setup and stating its claims beside the paper's
numbers.

``reproduce(name, budget="quick", seeds=None, n_jobs=None)`` returns a
:class:`Reproduction` (``claims``, ``verdict``, ``seeds``, ``.table()``,
``.plot(path)``, ``.to_json(path)``); ``name="all"`` returns a list of them,
one per paper in :data:`PAPERS` order. The quick budget of each takes under 3
minutes on 2 cores; ``budget="full"`` runs the paper's longer setup
(:func:`expected_seconds` says how long). Keyword overrides change one
setting of the budget (the test suite uses them to plant a wrong setting and
see the claim it breaks fail).

>>> r = reproduce("bengio1994", budget="tiny", n_jobs=1, progress=False)
>>> r.verdict
'reproduced'
>>> r.claims[0]["paper"]
'2.7048'
"""

from __future__ import annotations

import importlib
from typing import Dict, List, Optional, Union

from ._base import BUDGET_NAMES, Reproduction, resolve_seeds, run_paper

__all__ = ["reproduce", "reproduce_all", "Reproduction", "PAPERS", "paper_module", "expected_seconds"]

# name -> module (one small file per paper)
PAPERS = ("bengio1994", "glorot2010", "saxe2014", "pascanu2013", "le2015", "he2015", "schoenholz2017")


def paper_module(name: str):
    """The module implementing the reproduction ``name``."""
    if name not in PAPERS:
        raise ValueError(f"name: unknown reproduction {name!r}; valid: {', '.join(PAPERS)}, all")
    return importlib.import_module(f".{name}", __name__)


def expected_seconds(name: str, budget: str = "quick") -> float:
    """Expected wall time of one reproduction (``name="all"``: of all of
    them) at ``budget`` on 2 idle cores."""
    if name == "all":
        return float(sum(expected_seconds(n, budget) for n in PAPERS))
    mod = paper_module(name)
    if budget not in mod.SECONDS:
        raise ValueError(f"budget: expected one of {', '.join(mod.SECONDS)}, got {budget!r}")
    return float(mod.SECONDS[budget])


def reproduce(name: str, budget: str = "quick", seeds=None, n_jobs: Optional[int] = None,
              progress: bool = True, **overrides) -> Union[Reproduction, List[Reproduction]]:
    """Run the reproduction ``name`` (one of :data:`PAPERS`, or ``"all"`` for
    a list of every one) at ``budget`` (``"quick"``, ``"full"``, or the
    reduced ``"tiny"`` used by the test suite).

    ``seeds``: None (the budget's default), a count n (seeds 0..n-1) or a list
    of ints. ``n_jobs``: worker processes for the independent runs (None: all
    cores; 1: in this process). ``progress``: a tqdm bar per paper when
    stderr is a terminal and tqdm is installed. ``overrides``: settings of the
    budget to change (an unknown name raises ValueError listing the valid
    ones); not allowed with ``"all"``.
    """
    if budget not in BUDGET_NAMES:
        raise ValueError(f"budget: expected one of {', '.join(BUDGET_NAMES)}, got {budget!r}")
    if name == "all":
        if overrides:
            raise ValueError("reproduce('all'): settings cannot be overridden for every paper at once; "
                             "run one paper by name")
        return reproduce_all(budget, seeds, n_jobs, progress)
    return run_paper(paper_module(name), budget, seeds, n_jobs, progress, **overrides)


def reproduce_all(budget: str = "quick", seeds=None, n_jobs: Optional[int] = None, progress: bool = True,
                  names=PAPERS, on_done=None) -> List[Reproduction]:
    """Every reproduction in ``names`` (default all), in order; ``on_done(r)``
    is called after each one (e.g. to print its table as soon as it is
    ready)."""
    out = []
    for n in names:
        r = run_paper(paper_module(n), budget, seeds, n_jobs, progress)
        if on_done is not None:
            on_done(r)
        out.append(r)
    return out
