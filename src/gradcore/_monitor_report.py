"""What a :class:`gradcore.monitor.GradMonitor` gives back: ``history`` as
NumPy arrays, a readable ``summary``, CSV and a pandas DataFrame."""

from __future__ import annotations

import math
from typing import Any, Dict

import numpy as np

from ._csv import write_csv
from ._monitor_flags import Fields


class Report(Fields):
    """``history``, ``summary``, ``to_csv``, ``to_dataframe`` of
    :class:`~gradcore.monitor.GradMonitor` (a mixin)."""

    def __len__(self) -> int:
        return len(self._rec["step"])

    @property
    def history(self) -> Dict[str, Any]:
        """Dict of NumPy arrays, one entry per recorded step (see the class
        docstring). A step whose ``after_step`` has not run yet has NaN
        weight norm, clip coefficient and update ratio."""
        n = len(self)
        out: Dict[str, Any] = {}
        for k, v in self._rec.items():
            vals = list(v) + [math.nan] * (n - len(v)) if k != "exploding" else list(v) + [False] * (n - len(v))
            out[k] = np.asarray(vals, dtype=bool if k == "exploding" else (np.int64 if k == "step" else np.float64))
        for k, rows in self._per.items():
            mat = np.full((n, len(self.names)), math.nan)
            for i, r in enumerate(rows):
                mat[i] = r
            for j, name in enumerate(self.names):
                out[f"{k}/{name}"] = mat[:, j]
        ts: Dict[str, Any] = {}
        for name, rows in self._timesteps.items():
            if len({r.shape for r in rows}) == 1:
                ts[name] = np.stack(rows)
            else:
                ts[name] = rows
        out["timestep_norms"] = ts
        return out

    def summary(self) -> str:
        """A readable account: steps, norm range, clipping, events."""
        h = self.history
        n = len(self)
        if n == 0:
            return "GradMonitor: no steps recorded"
        g = h["grad_norm"]
        fin = g[np.isfinite(g)]
        lines = [f"GradMonitor: {n} steps, {len(self.names)} parameters"]
        if fin.size:
            lines.append(f"  gradient norm: first {g[0]:.4g}, last {g[-1]:.4g}, min {fin.min():.4g}, "
                         f"median {np.median(fin):.4g}, max {fin.max():.4g}")
        cc = h["clip_coef"]
        clipped = int(np.sum(cc[np.isfinite(cc)] < 1.0))
        if clipped:
            lines.append(f"  clipped at {clipped} of {n} steps (smallest coefficient {np.nanmin(cc):.3g})")
        ur = h["update_ratio"]
        if np.any(np.isfinite(ur)):
            lines.append(f"  update/weight ratio: median {np.nanmedian(ur):.3g}, max {np.nanmax(ur):.3g}")
        last = {name: h[f"grad_norm/{name}"][-1] for name in self.names}
        if last:
            big = max(last, key=lambda k: last[k] if math.isfinite(last[k]) else math.inf)
            lines.append(f"  largest parameter gradient at the last step: {big} ({last[big]:.4g})")
        for name, rows in h["timestep_norms"].items():
            r = np.asarray(rows[-1])
            for label, row in ([(name, r)] if r.ndim == 1 else [(f"{name}[{k}]", x) for k, x in enumerate(r)]):
                if len(row) and row[-1] > 0:
                    lines.append(f"  {label}: per-time-step gradient norm first/last = {row[0] / row[-1]:.4g}")
        if self.events:
            lines.append(f"  {len(self.events)} events:")
            lines.extend(f"    {e}" for e in self.events[:20])
            if len(self.events) > 20:
                lines.append(f"    ... {len(self.events) - 20} more")
        else:
            lines.append("  no events: gradients stayed finite, no explosion or vanishing flagged")
        return "\n".join(lines)

    def _table(self):
        h = self.history
        cols = [k for k in h if k != "timestep_norms"]
        return cols, [[h[c][i] for c in cols] for i in range(len(self))]

    def to_csv(self, path) -> str:
        """Write the per-step history (one row per step, one column per
        series; per-time-step norms are left out) to ``path``."""
        cols, rows = self._table()
        return write_csv(path, cols, rows, bools_as_int=True)

    def to_dataframe(self):
        """The per-step history as a pandas DataFrame (needs pandas)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("to_dataframe needs pandas: pip install pandas") from None
        h = self.history
        return pd.DataFrame({k: v for k, v in h.items() if k != "timestep_norms"})
