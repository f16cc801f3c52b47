"""Write experiment results as a small static report.

For every result: ``<key>.csv`` and ``<key>.json`` (the numbers), ``<key>.txt``
(its table) and, when matplotlib is installed, ``<key>.png``; then
``summary.json`` (every result's metrics and the list of files) and
``index.html`` showing each plot with a sentence saying what it shows, its
table and links to the data. Without matplotlib the report still has the
tables and data, and says how to get the plots (``pip install "gradcore[plot]"``).
"""

from __future__ import annotations

import html
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from ._common import PLOT_HINT, have_matplotlib, jsonable

__all__ = ["write_report", "Report", "ReportWriter"]


@dataclass
class Report:
    """What :func:`write_report` wrote: the directory, every file (relative
    names), whether plots were drawn, and the plot errors if any."""

    out_dir: str
    files: List[str] = field(default_factory=list)
    plots: bool = False
    plot_errors: Dict[str, str] = field(default_factory=dict)

    @property
    def index(self) -> str:
        return os.path.join(self.out_dir, "index.html")


def _items(results) -> List:
    if isinstance(results, Mapping):
        return list(results.items())
    out: List = []
    seen: Dict[str, int] = {}
    for r in results:
        key = getattr(r, "name", "result")
        seen[key] = seen.get(key, 0) + 1
        out.append((key if seen[key] == 1 else f"{key}{seen[key]}", r))
    return out


def write_report(results: Union[Mapping[str, object], Sequence[object]], out_dir="gradcore-report",
                 title: str = "gradcore report", plots: bool = True, extra: Optional[Mapping] = None) -> Report:
    """Write ``results`` (a dict key -> result, or a list of results keyed by
    their ``name``) into ``out_dir`` (created if needed) and return a
    :class:`Report`. ``plots=False`` skips the PNGs even with matplotlib."""
    if isinstance(results, (str, bytes)) or not isinstance(results, (Mapping, list, tuple)):
        raise TypeError(f"results: expected a dict key -> result or a list of results, got "
                        f"{type(results).__name__}")  # before out_dir is created
    items = _items(results)
    writer = ReportWriter(out_dir, title, plots, extra)
    for key, res in items:
        writer.add(key, res)
    return writer.report


class ReportWriter:
    """A report written section by section: ``add(key, result)`` writes that
    result's files and rewrites ``summary.json`` and ``index.html`` at once,
    so a failure later loses nothing written before. Creating it makes
    ``out_dir`` (an ``OSError`` then, before any experiment has run).

    >>> import tempfile
    >>> w = ReportWriter(tempfile.mkdtemp(), plots=False)
    >>> w.report.files
    ['summary.json', 'index.html']
    """

    def __init__(self, out_dir="gradcore-report", title: str = "gradcore report", plots: bool = True,
                 extra: Optional[Mapping] = None):
        out_dir = os.fspath(out_dir)
        os.makedirs(out_dir, exist_ok=True)
        self.title = title
        self.wanted = plots
        self.can_plot = plots and have_matplotlib()
        self.report = Report(out_dir, plots=self.can_plot)
        self.sections: List[Any] = []
        self.summary: Dict[str, Any] = {"title": title, "created": time.strftime("%Y-%m-%d %H:%M:%S"), "plots": self.can_plot,
                        "experiments": {}}
        if extra:
            self.summary.update(jsonable(dict(extra)))
        self._write_index()

    def update_extra(self, extra: Mapping) -> None:
        """Merge ``extra`` into summary.json (rewritten now)."""
        self.summary.update(jsonable(dict(extra)))
        self._write_index()

    def add(self, key: str, res) -> Dict[str, str]:
        """Write ``res`` as section ``key``; returns its files (kind -> name)."""
        out_dir, rep = self.report.out_dir, self.report
        files = {}
        for ext, writer in (("csv", res.to_csv), ("json", res.to_json)):
            name = f"{key}.{ext}"
            writer(os.path.join(out_dir, name))
            files[ext] = name
        table = res.table()
        with open(os.path.join(out_dir, f"{key}.txt"), "w") as fh:
            fh.write(table + "\n")
        files["txt"] = f"{key}.txt"
        if self.can_plot:
            name = f"{key}.png"
            try:
                res.plot(os.path.join(out_dir, name))
                files["png"] = name
            except Exception as exc:  # noqa: BLE001 - a broken plot must not lose the data
                rep.plot_errors[key] = f"{type(exc).__name__}: {exc}"
        self.summary["experiments"][key] = {"title": res.title, "caption": res.caption(),
                                            "metrics": jsonable(res.metrics()), "files": files}
        self.sections.append((key, res, files, table))
        self._write_index()
        return files

    def _write_index(self) -> None:
        out_dir, rep = self.report.out_dir, self.report
        for name, text in (("summary.json", json.dumps(self.summary, indent=1)),
                           ("index.html", _html(self.title, self.sections, self.can_plot, self.wanted,
                                                rep.plot_errors))):
            tmp = os.path.join(out_dir, f".{name}.tmp")
            with open(tmp, "w") as fh:
                fh.write(text)
            os.replace(tmp, os.path.join(out_dir, name))
        files = [f for _, _, fs, _ in self.sections for f in fs.values()]
        rep.files[:] = files + ["summary.json", "index.html"]


def _claims_summary(sections) -> str:
    """The table every report opens with: each section's verdict and every
    claim (holds, claim, paper/theory, measured); sections without claims
    are listed as such."""
    from .claims import claims_html, verdict as _verdict

    e = html.escape
    rows = []
    n_claims = n_held = 0
    for key, res, _, _ in sections:
        claims = getattr(res, "claims", None)
        if claims is None:
            rows.append(f'<tr class="section"><td colspan="4"><a href="#{e(key)}">{e(res.title)}</a>: '
                        "no claims (a measurement)</td></tr>")
            continue
        v = getattr(res, "verdict", None) or _verdict(claims)
        seeds = getattr(res, "seeds", None)
        rows.append(f'<tr class="section"><td colspan="4"><a href="#{e(key)}">{e(res.title)}</a>: '
                    f'verdict <span class="verdict">{e(str(v))}</span>'
                    + (f" (seeds {e(', '.join(map(str, seeds)))})" if seeds else "") + "</td></tr>")
        rows.append(claims_html(claims))
        n_claims += len(claims)
        n_held += sum(bool(c["holds"]) for c in claims)
    return ("<h2 id=\"claims\">Claims and verdicts</h2>"
            f"<p>{n_held} of {n_claims} claims hold in this run; each is computed from the run's own data.</p>"
            '<table class="claims" id="claims-table"><thead><tr><th>holds</th><th>claim</th>'
            "<th>paper / theory</th><th>measured</th></tr></thead><tbody>" + "\n".join(rows)
            + "</tbody></table>")


def _html(title, sections, can_plot, wanted, errors) -> str:
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}"
        "img{max-width:100%;border:1px solid #ddd}pre{background:#f6f6f6;padding:.6em;overflow-x:auto;"
        "font-size:12px}p.caption{font-style:italic}.note{background:#fff4d6;padding:.6em}"
        "table.claims{border-collapse:collapse;font-size:13px;margin:1em 0}table.claims td,table.claims th"
        "{border:1px solid #ccc;padding:.3em .5em;text-align:left;vertical-align:top}"
        "tr.holds td:first-child{color:#176b1e;font-weight:bold}tr.fails td:first-child{color:#b00020;"
        "font-weight:bold}tr.section td{background:#eef2f7;font-weight:bold}</style>",
        "</head><body>",
        f"<h1>{e(title)}</h1>",
        "<p>Exploding and vanishing gradients, measured: each section shows one experiment, what its "
        "plot shows, its numbers as a table, and the data as CSV and JSON.</p>",
    ]
    if wanted and not can_plot:
        parts.append(f'<p class="note">No plots in this report: {e(PLOT_HINT)}</p>')
    parts.append(_claims_summary(sections))
    parts.append("<ul>" + "".join(f'<li><a href="#{e(k)}">{e(r.title)}</a></li>' for k, r, _, _ in sections)
                 + "</ul>")
    for key, res, files, table in sections:
        parts.append(f'<h2 id="{e(key)}">{e(res.title)}</h2>')
        if "png" in files:
            parts.append(f'<img src="{e(files["png"])}" alt="{e(res.title)}">')
        elif key in errors:
            parts.append(f'<p class="note">The plot failed: {e(errors[key])}</p>')
        parts.append(f'<p class="caption">{e(res.caption())}</p>')
        parts.append(f"<pre>{e(table)}</pre>")
        links = " · ".join(f'<a href="{e(files[x])}">{x.upper()}</a>' for x in ("csv", "json", "txt") if x in files)
        parts.append(f"<p>Data: {links}</p>")
    from ..doctor.section import doctor_html

    parts.append(doctor_html({k: r for k, r, _, _ in sections}))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
