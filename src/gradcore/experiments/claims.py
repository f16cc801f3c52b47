"""Claims an experiment makes about its own run, and the verdict they give.

Every study and reproduction returns ``claims``: a list of dicts with the keys
``claim`` (one sentence), ``paper`` (the paper's or the theory's number or
statement), ``measured`` (what this run measured, as text) and ``holds``
(bool, computed from the run's data), plus a ``verdict`` over them.

>>> c = [claim("clipping keeps every seed finite", "finite", "3 of 3 finite", True),
...      claim("unclipped runs diverge", "diverges", "1 of 3 diverged", False)]
>>> verdict(c)
'partial'
>>> print(claims_table(c))
[yes] clipping keeps every seed finite
      paper:    finite
      measured: 3 of 3 finite
[ NO] unclipped runs diverge
      paper:    diverges
      measured: 1 of 3 diverged
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Sequence

import numpy as np

REPRODUCED = "reproduced"
PARTIAL = "partial"
NOT_REPRODUCED = "not reproduced"
VERDICTS = (REPRODUCED, PARTIAL, NOT_REPRODUCED)

Claim = Dict[str, Any]


def claim(text: str, paper: Any, measured: Any, holds: Any) -> Claim:
    """One claim: ``text`` (one sentence), the paper's/theory's value, the
    measured value (numbers are formatted with 4 significant digits) and
    whether it holds in this run (must be computed from the run's data)."""
    from ._common import fmt

    if not isinstance(text, str) or not text:
        raise ValueError("claim: text must be a non-empty sentence")
    if isinstance(holds, (np.ndarray,)) and holds.shape != ():
        raise ValueError("claim: holds must be one boolean, not an array")
    return {
        "claim": text,
        "paper": paper if isinstance(paper, str) else fmt(paper),
        "measured": measured if isinstance(measured, str) else fmt(measured),
        "holds": bool(holds),
    }


def verdict(claims: Iterable[Claim]) -> str:
    """``"reproduced"`` when every claim holds, ``"not reproduced"`` when none
    does (or there are none), ``"partial"`` otherwise."""
    held = [bool(c["holds"]) for c in claims]
    if held and all(held):
        return REPRODUCED
    if any(held):
        return PARTIAL
    return NOT_REPRODUCED


def claims_table(claims: Sequence[Claim], title: str = "") -> str:
    """The claims as readable text: one block per claim, the verdict mark
    first, then the paper's (or theory's) value and the measured one."""
    lines: List[str] = [title] if title else []
    for c in claims:
        lines.append(f"[{'yes' if c['holds'] else ' NO'}] {c['claim']}")
        lines.append(f"      paper:    {c['paper']}")
        lines.append(f"      measured: {c['measured']}")
    return "\n".join(lines)


def claims_html(claims: Sequence[Claim]) -> str:
    """The claims as an HTML table body (rows only, escaped)."""
    import html

    out: List[str] = []
    for c in claims:
        cls = "holds" if c["holds"] else "fails"
        out.append(
            f'<tr class="{cls}"><td>{"yes" if c["holds"] else "no"}</td><td>{html.escape(c["claim"])}</td>'
            f'<td>{html.escape(str(c["paper"]))}</td><td>{html.escape(str(c["measured"]))}</td></tr>'
        )
    return "\n".join(out)
