"""What every experiment result shares: numbers, a text table, CSV/JSON data,
a plot (matplotlib optional) and a one-sentence caption for the report."""

from __future__ import annotations

import json
import math
import os
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

from .._csv import write_csv

PLOT_HINT = 'plots need matplotlib: pip install "gradcore[plot]"'
PLOT_DPI = 150  # every PNG


def have_matplotlib() -> bool:
    """True when matplotlib can be imported (plots are optional)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def new_figure(ncols: int = 1, nrows: int = 1, width: float = 5.0, height: float = 3.6):
    """A matplotlib Figure with axes, without pyplot (no GUI backend, no global
    state): ``fig.savefig`` renders with Agg."""
    if not have_matplotlib():
        raise ImportError(PLOT_HINT)
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, [ax for row in axes for ax in row]


#: line markers of the curves of one panel, in order
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def label_axes(ax, xlabel: str, ylabel: str, title: str, legend: bool = False, integer: bool = True):
    """Axis labels, a small title naming the experiment, integer x ticks
    (steps, layers and blocks are counts; ``integer=False``: leave them), and
    a small legend when ``legend``."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    if integer:
        ax.xaxis.get_major_locator().set_params(integer=True)
    if legend:
        ax.legend(fontsize=8)


def save_figure(fig, path) -> str:
    path = os.fspath(path)
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    fig.savefig(path, dpi=PLOT_DPI)
    return path


def fmt(v: Any) -> str:
    """Format a number for tables: 4 significant digits, 'nan'/'inf' kept."""
    if v is None:
        return "-"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if not math.isfinite(v):
            return str(v)
        if v == 0.0:
            return "0"
        a = abs(v)
        if 1e-3 <= a < 1e5:
            return f"{v:.4g}"
        return f"{v:.3e}"
    return str(v)


def text_table(header: Sequence[str], rows: Sequence[Sequence[Any]], title: str = "") -> str:
    """A plain aligned text table."""
    cells = [[str(h) for h in header]] + [[fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = []
    if title:
        lines.append(title)
    lines.append("  ".join(c.rjust(w) for c, w in zip(cells[0], widths)))
    lines.append("  ".join("-" * w for w in widths))
    for r in cells[1:]:
        lines.append("  ".join(c.rjust(w) for c, w in zip(r, widths)))
    return "\n".join(lines)


def jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays (and nested containers) to JSON values;
    non-finite floats become the strings "nan", "inf", "-inf"."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else str(f)
    return obj


class ExperimentResult:
    """Base class of every experiment's result.

    Subclasses set ``name`` and implement ``rows()`` (CSV header and rows of
    the per-layer / per-step numbers), ``table()``, ``metrics()`` (a flat dict
    of scalars: what a sweep tabulates), ``caption()`` (one sentence saying
    what the plot shows) and ``_draw(fig_axes)``.
    """

    name = "experiment"
    title = "Experiment"

    def rows(self) -> Tuple[List[str], List[List[Any]]]:  # pragma: no cover - abstract
        raise NotImplementedError

    def table(self) -> str:
        header, rows = self.rows()
        return text_table(header, rows, self.title)

    def metrics(self) -> Dict[str, Any]:
        return {}

    def caption(self) -> str:
        return self.title

    def to_dict(self) -> Dict[str, Any]:
        """Every number of the result, JSON-ready."""
        header, rows = self.rows()
        return jsonable({"experiment": self.name, "title": self.title, "params": getattr(self, "params", {}),
                         "metrics": self.metrics(), "columns": header, "rows": rows})

    def to_json(self, path) -> str:
        path = os.fspath(path)
        with open(path, "w") as fh:
            json.dump(self.to_dict(), fh, indent=1)
        return path

    def to_csv(self, path) -> str:
        header, rows = self.rows()
        return write_csv(path, header, rows)

    def plot(self, path) -> str:
        """Draw the result to ``path`` (PNG); needs matplotlib
        (``pip install "gradcore[plot]"``)."""
        fig = self._figure()
        return save_figure(fig, path)

    def _figure(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        m = ", ".join(f"{k}={fmt(v)}" for k, v in list(self.metrics().items())[:6])
        return f"<{type(self).__name__} {m}>"


class ProfileSweep(ExperimentResult):
    """An experiment run over a grid of settings: ``profiles`` (one result
    per setting, in grid order) and ``params``; the title is
    ``title_format`` filled from ``params``."""

    title_format = ""

    def __init__(self, profiles, params: Dict[str, Any]):
        self.profiles = list(profiles)
        self.params = params
        self.title = self.title_format.format(**params)
