"""The doctor's section of a report: what the doctor says about every run
of the training studies that exploded (its cause, the evidence, the fix).

``run_diagnosis(train_result)`` is what a study keeps per run (plain data:
the reported causes, or why there is no diagnosis); ``doctor_rows(results)``
collects them from study results (anything with ``runs`` whose
``extra["diagnosis"]`` is set) and ``doctor_html`` / ``doctor_text`` render
them.
"""

from __future__ import annotations

import html
from typing import List

from ..experiments._common import text_table


def run_diagnosis(result) -> dict:
    """Plain-data summary of ``result.diagnosis`` (a :class:`gradcore.TrainResult`)."""
    try:
        d = result.diagnosis
    except Exception as exc:  # noqa: BLE001 - recorded and shown in the report, not hidden
        return {"error": f"{type(exc).__name__}: {exc}"}
    if d is None:
        return {"none": "the run diverged by the loss-growth rule without a stop or a flagged explosion"}
    return {"causes": [{"name": c.name, "score": round(c.score, 3), "evidence": c.evidence, "fix": c.fix}
                       for c in d.reported],
            "first_nonfinite": (d.measurements.get("nonfinite") or {}).get("first")}


def doctor_rows(results) -> List[dict]:
    """One row per diagnosed run: study, setting, seed, diverged step, top cause, score, evidence, fix."""
    items = results.items() if hasattr(results, "items") else [(getattr(r, "name", "result"), r) for r in results]
    rows = []
    for key, res in items:
        for r in getattr(res, "runs", None) or []:
            diag = getattr(r, "extra", {}).get("diagnosis")
            if not diag:
                continue
            causes = diag.get("causes") or []
            top = causes[0] if causes else {}
            rows.append({"study": key, "setting": r.label, "seed": r.seed, "diverged_step": r.diverged_step,
                         "cause": top.get("name") or ("(error)" if "error" in diag else "(none above threshold)"),
                         "score": top.get("score"), "evidence": top.get("evidence") or diag.get("error", ""),
                         "fix": top.get("fix", ""), "also": [c["name"] for c in causes[1:]]})
    return rows


def doctor_text(results) -> str:
    rows = doctor_rows(results)
    if not rows:
        return "gradient doctor: no run exploded"
    return "gradient doctor on the runs that exploded\n" + text_table(
        ["study", "setting", "seed", "diverged at", "cause", "score", "fix"],
        [[r["study"], r["setting"], r["seed"], r["diverged_step"], r["cause"], r["score"], r["fix"]] for r in rows])


def doctor_html(results) -> str:
    """An HTML section (empty string when no run was diagnosed)."""
    rows = doctor_rows(results)
    if not rows:
        return ""
    e = html.escape
    out = ['<h2 id="doctor">Gradient doctor: why the exploding runs exploded</h2>',
           "<p>For every run above that exploded, <code>gradcore.diagnose</code> on a copy of the model taken at "
           "the first flagged explosion (or at the last calm step before training stopped), with the cause it "
           "ranks first, the measured evidence and the fix it proposes.</p>",
           "<table border=1 cellpadding=4 style='border-collapse:collapse;font-size:12px'>",
           "<tr><th>study</th><th>setting</th><th>seed</th><th>diverged at</th><th>cause</th><th>score</th>"
           "<th>evidence</th><th>fix</th></tr>"]
    for r in rows:
        score = "" if r["score"] is None else f"{r['score']:.2f}"
        also = f" (also: {', '.join(r['also'])})" if r["also"] else ""
        out.append(f"<tr><td>{e(str(r['study']))}</td><td>{e(r['setting'])}</td><td>{r['seed']}</td>"
                   f"<td>{e(str(r['diverged_step']))}</td><td><b>{e(r['cause'])}</b>{e(also)}</td><td>{score}</td>"
                   f"<td>{e(r['evidence'])}</td><td>{e(r['fix'])}</td></tr>")
    out.append("</table>")
    return "\n".join(out)
