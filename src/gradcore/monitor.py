"""Watch gradients while a model trains: norms, update ratios, and the events
that matter (NaN/Inf, explosion, vanishing), located by step and parameter.

Use with :func:`gradcore.train` (``monitor=GradMonitor(model)``) or by hand::

    mon = GradMonitor(model)
    for step, (x, y) in enumerate(batches):
        model.zero_grad(); loss, dpred = losses.mse(model.forward(x), y); model.backward(dpred)
        mon.after_backward(step, loss)          # grad norms, non-finite check
        norm = opt.step(clip_norm=1.0)
        mon.after_step(clip_coef=clip_coefficient(norm, 1.0))  # weight norms, update ratio

Per step it records the global gradient norm and every parameter's gradient
norm in ONE pass over the arena (:func:`gradcore.grad_stats` gives the
per-array norms from a single C call), every parameter's weight norm, the
update-to-weight ratio ``||W_after - W_before|| / ||W_before||`` of the step,
the clip coefficient applied, and ``timestep_grad_norms`` of every recurrent
layer (any sub-module that has that attribute).
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import numpy as np

from ._contract import int_arg, real_arg
from .clip import GradStats, grad_stats

__all__ = ["GradMonitor", "Event"]


@dataclass(frozen=True)
class Event:
    """Something the monitor flagged.

    ``kind``: ``"nonfinite"`` (NaN/Inf gradient or loss; ``detail`` is "NaN"
    or "Inf"), ``"explosion"`` (the norm jumped above ``explode_factor`` times
    the running median), ``"weight_growth"`` (the weight norm grew at every
    step of the window), ``"vanishing"`` (a gradient norm fell below
    ``vanish_threshold``), ``"vanishing_in_time"`` (in a recurrent layer,
    ||dL/dh_0|| fell below ``vanish_threshold`` times ||dL/dh_T-1||:
    almost nothing reaches the first time step; ``parameter`` is the
    layer). ``parameter`` and ``index`` (flat index into that parameter)
    locate it when it is about one value.
    """

    step: int
    kind: str
    parameter: Optional[str]
    index: Optional[int]
    value: float
    detail: str

    def __str__(self) -> str:
        where = ""
        if self.parameter is not None:
            where = f" in {self.parameter}" + (f" at flat index {self.index}" if self.index is not None else "")
        return f"step {self.step}: {self.kind}{where}: {self.detail}"


def _modules(model):
    named = getattr(model, "named_modules", None)
    if callable(named):
        return list(named())
    return [("", model)]


class GradMonitor:
    """Record gradient statistics of ``model`` step by step and flag trouble.

    ``explode_factor``: a step whose global gradient norm exceeds this many
    times the median of the previous ``window`` steps is an explosion (the
    median needs at least ``min(window, 5)`` steps of history); the weight
    norm growing at every one of the last ``window`` steps by a total factor
    of at least ``growth_factor`` is flagged as ``"weight_growth"``.
    ``vanish_threshold``: a global (or per-parameter) gradient norm below it
    is flagged as vanishing. Each condition is reported once when it starts,
    not at every step it lasts.

    ``history`` is a dict of NumPy arrays (one entry per recorded step):
    ``step``, ``loss``, ``grad_norm``, ``clip_coef``, ``weight_norm``,
    ``update_ratio``, and per parameter ``grad_norm/<name>``,
    ``weight_norm/<name>``, ``update_ratio/<name>``; ``timestep_norms`` maps
    each recurrent layer's name to its per-step gradient norms (a 2-D array
    when every step had the same length).
    """

    def __init__(self, model, explode_factor: float = 10.0, window: int = 20, vanish_threshold: float = 1e-7,
                 growth_factor: float = 2.0):
        if not callable(getattr(model, "gradients", None)) or not callable(getattr(model, "parameters", None)):
            raise TypeError(f"model: expected a gradcore.nn.Module (with parameters() and gradients()), "
                            f"got {type(model).__name__}")
        explode_factor = real_arg(explode_factor, "explode_factor", lo=1.0)
        vanish_threshold = real_arg(vanish_threshold, "vanish_threshold", lo=0.0)
        growth_factor = real_arg(growth_factor, "growth_factor", lo=1.0)
        window = int_arg(window, "window", lo=2)
        self.model = model
        self.explode_factor = float(explode_factor)
        self.window = window
        self.vanish_threshold = float(vanish_threshold)
        self.growth_factor = float(growth_factor)
        self.names = list(model.parameters().keys())
        self.events: List[Event] = []
        self._rec: Dict[str, List[Any]] = {k: [] for k in ("step", "loss", "grad_norm", "clip_coef",
                                                           "weight_norm", "update_ratio", "exploding")}
        self._per: Dict[str, List[np.ndarray]] = {"grad_norm": [], "weight_norm": [], "update_ratio": []}
        self._timesteps: Dict[str, List[np.ndarray]] = {}
        self._before: Optional[np.ndarray] = None
        self._before_buf: Optional[np.ndarray] = None
        self._diff_buf: Optional[np.ndarray] = None
        self._views = None
        #: GradStats of the weights after the last recorded step (None before)
        self.last_weight_stats: Optional[GradStats] = None
        self._pending = False
        self._exploding = False
        self._growing = False
        self._vanishing: set = set()
        self._vanishing_time: set = set()
        self._step = -1

    # ------------------------------------------------------------ recording
    def _flat(self):
        arena = getattr(self.model, "arena", None)
        return None if arena is None else arena.data

    def after_backward(self, step: Optional[int] = None, loss: Optional[float] = None) -> List[Event]:
        """Record the gradients of this step (call after ``backward``, before
        the optimizer step). Returns the events flagged at this step."""
        if step is not None:
            step = int_arg(step, "step", lo=0)
        if loss is not None:  # NaN/Inf are recorded (and flagged as events)
            if isinstance(loss, (bool, np.bool_, str, bytes)):
                raise TypeError(f"loss: expected a real number or None, got {loss!r}")
            try:
                loss = float(loss)
            except (TypeError, ValueError):
                raise TypeError(f"loss: expected a real number or None, got {loss!r}") from None
        if self._pending:
            self._close_step(math.nan, None)
        self._step = self._step + 1 if step is None else step
        step = self._step
        n_before = len(self.events)
        self._marks = ({k: len(v) for k, v in self._rec.items()}, {k: len(v) for k, v in self._per.items()},
                       {k: len(v) for k, v in self._timesteps.items()}, n_before)
        grads = self.model.gradients()
        stats = grad_stats(grads)
        per = np.asarray(stats.per_array, dtype=np.float64)
        norm = float(stats.norm)
        self._rec["step"].append(step)
        self._rec["loss"].append(math.nan if loss is None else float(loss))
        self._rec["grad_norm"].append(norm)
        self._per["grad_norm"].append(per)
        if loss is not None and not math.isfinite(float(loss)):
            self.events.append(Event(step, "nonfinite", None, None, float(loss),
                                     f"loss is {'NaN' if math.isnan(float(loss)) else 'Inf'}"))
        if not stats.finite:
            assert stats.first_nonfinite is not None
            name, idx = stats.first_nonfinite
            value = float(np.asarray(grads[name]).reshape(-1)[idx])
            kind = "NaN" if math.isnan(value) else "Inf"
            self.events.append(Event(step, "nonfinite", name, int(idx), value,
                                     f"{kind} gradient ({stats.n_nan} NaN, {stats.n_inf} Inf values in all)"))
            self._rec["exploding"].append(False)
        else:
            self._check_explosion(step, norm)
            self._check_vanishing(step, norm, per)
        for mname, mod in _modules(self.model):
            ts = getattr(mod, "timestep_grad_norms", None)
            if ts is not None:
                norms = np.array(ts, dtype=np.float64, copy=True)
                self._timesteps.setdefault(mname or "model", []).append(norms)
                self._check_time_vanishing(step, mname or "model", norms)
        flat = self._flat()
        if flat is None:
            self._before = None
        else:
            if self._before_buf is None or self._before_buf.shape != flat.shape or self._before_buf.dtype != flat.dtype:
                self._before_buf = np.empty_like(flat)
                self._diff_buf = np.empty_like(flat)
                self._views = None
            np.copyto(self._before_buf, flat)
            self._before = self._before_buf
        self._pending = True
        return self.events[n_before:]

    def _drop_pending(self) -> None:
        """Forget the half-recorded step (after_backward without after_step):
        what :func:`gradcore.train` does when Ctrl-C aborts a step."""
        if not self._pending:
            return
        rec, per, ts, n_events = self._marks
        for k, n in rec.items():
            del self._rec[k][n:]
        for k, n in per.items():
            del self._per[k][n:]
        for k in list(self._timesteps):
            if k in ts:
                del self._timesteps[k][ts[k]:]
            else:
                del self._timesteps[k]
        del self.events[n_events:]
        self._pending = False
        self._step -= 1

    def note_event(self, step: int, kind: str, detail: str, value: float = math.nan,
                   parameter: Optional[str] = None) -> Event:
        """Record an event that happened outside the gradients, e.g. a
        ``"rollback"`` by :func:`gradcore.train`. Returns it."""
        e = Event(int(step), str(kind), parameter, None, float(value), str(detail))
        self.events.append(e)
        return e

    # ------------------------------------------------------------- state
    def state_dict(self) -> Dict[str, Any]:
        """Everything recorded, as plain data: ``name -> ndarray`` for the
        series and per-time-step norms, plus JSON-able ``events`` and
        ``flags``; :meth:`load_state_dict` on a monitor of the same model
        continues the history (used by :func:`gradcore.train` checkpoints)."""
        if self._pending:
            raise RuntimeError("GradMonitor.state_dict: a step is half recorded (after_backward without "
                               "after_step)")
        out: Dict[str, Any] = {}
        for k, v in self._rec.items():
            out[f"rec/{k}"] = np.asarray(v, dtype=bool if k == "exploding" else
                                         (np.int64 if k == "step" else np.float64))
        for k, rows in self._per.items():
            out[f"per/{k}"] = (np.stack(rows) if rows else np.zeros((0, len(self.names)))).astype(np.float64)
        for name, rows in self._timesteps.items():
            out[f"ts/{name}/values"] = np.concatenate(rows) if rows else np.zeros(0)
            out[f"ts/{name}/lengths"] = np.asarray([len(r) for r in rows], dtype=np.int64)
        out["names"] = list(self.names)
        out["events"] = [[e.step, e.kind, e.parameter, e.index, e.value, e.detail] for e in self.events]
        out["flags"] = {"exploding": self._exploding, "growing": self._growing, "step": self._step,
                        "vanishing": sorted(("" if n is None else "p:" + n) for n in self._vanishing),
                        "vanishing_time": sorted(self._vanishing_time)}
        return out

    def load_state_dict(self, state) -> None:
        """Replace this monitor's history with ``state`` (from :meth:`state_dict`)."""
        names = list(state["names"])
        if names != self.names:
            raise ValueError(f"GradMonitor.load_state_dict: the state is of parameters {names}, this monitor "
                             f"watches {self.names}")
        rec: Dict[str, list] = {k: [] for k in self._rec}
        for k in rec:
            arr = np.asarray(state[f"rec/{k}"])
            rec[k] = [bool(v) for v in arr] if k == "exploding" else \
                [int(v) for v in arr] if k == "step" else [float(v) for v in arr]
        per = {k: [np.array(r, dtype=np.float64) for r in np.asarray(state[f"per/{k}"])] for k in self._per}
        ts: Dict[str, List[np.ndarray]] = {}
        for key in state:
            if key.startswith("ts/") and key.endswith("/values"):
                name = key[3:-7]
                vals = np.asarray(state[key], dtype=np.float64)
                bounds = np.cumsum(np.asarray(state[f"ts/{name}/lengths"], dtype=np.int64))[:-1]
                ts[name] = [np.array(r) for r in np.split(vals, bounds)] if len(vals) or len(bounds) else []
                if len(state[f"ts/{name}/lengths"]) == 0:
                    ts[name] = []
        self._rec, self._per, self._timesteps = rec, per, ts
        self.events = [Event(int(st), kind, par, None if idx is None else int(idx), float(val), det)
                       for st, kind, par, idx, val, det in state["events"]]
        flags = state["flags"]
        self._exploding, self._growing = bool(flags["exploding"]), bool(flags["growing"])
        self._step = int(flags["step"])
        self._vanishing = {None if n == "" else n[2:] for n in flags["vanishing"]}
        self._vanishing_time = set(flags["vanishing_time"])
        self._pending = False
        self._before = None

    def note_nonfinite_loss(self, step: int, loss: float) -> Event:
        """Record that the loss of ``step`` was NaN/Inf (no backward ran, so
        no gradients are recorded for it). Returns the event."""
        loss = float(loss)
        e = Event(int(step), "nonfinite", None, None, loss, f"loss is {'NaN' if math.isnan(loss) else 'Inf'}")
        self.events.append(e)
        return e

    def after_step(self, clip_coef: Optional[float] = 1.0) -> List[Event]:
        """Record the weights after the optimizer step: weight norms, the
        update-to-weight ratios and the clip coefficient applied (1.0: no
        clipping; None when the step was skipped). Returns new events."""
        if clip_coef is not None:
            clip_coef = real_arg(clip_coef, "clip_coef", lo=0.0, hi=1.0)
        if not self._pending:
            raise RuntimeError("GradMonitor.after_step: call after_backward first")
        n_before = len(self.events)
        self._close_step(1.0 if clip_coef is None else float(clip_coef), self._before)
        return self.events[n_before:]

    def _slices(self):
        """(name -> slice of the arena) for the monitored parameters (cached)."""
        if self._views is None:
            offsets = self.model.arena.offsets
            self._views = {n: slice(*offsets[self._arena_key(n)]) for n in self.names}
        return self._views

    def _close_step(self, clip_coef: float, before: Optional[np.ndarray]) -> None:
        params = self.model.parameters()
        w = grad_stats(params)
        self.last_weight_stats = w
        wper = np.asarray(w.per_array, dtype=np.float64)
        self._rec["clip_coef"].append(clip_coef)
        self._rec["weight_norm"].append(float(w.norm))
        self._per["weight_norm"].append(wper)
        flat = self._flat()
        if before is not None and flat is not None and flat.shape == before.shape:
            sl = self._slices()
            diff = np.subtract(flat, before, out=self._diff_buf)
            d = grad_stats({n: diff[v] for n, v in sl.items()})
            b = grad_stats({n: before[v] for n, v in sl.items()})
            with np.errstate(divide="ignore", invalid="ignore"):
                per = np.asarray(d.per_array, dtype=np.float64) / np.asarray(b.per_array, dtype=np.float64)
                total = float(d.norm) / float(b.norm) if b.norm > 0 else math.inf
        else:
            per = np.full(len(self.names), math.nan)
            total = math.nan
        self._rec["update_ratio"].append(total)
        self._per["update_ratio"].append(per)
        self._check_growth(self._step)
        self._pending = False

    def _arena_key(self, name: str) -> str:
        offsets = self.model.arena.offsets
        if name in offsets:
            return name
        # a sub-module monitored on its own: its names are a suffix of the arena's
        for key in offsets:
            if key.endswith("." + name):
                return key
        raise KeyError(name)

    # ----------------------------------------------------------------- flags
    def _check_explosion(self, step: int, norm: float) -> None:
        past = [v for v in self._rec["grad_norm"][-self.window - 1:-1] if math.isfinite(v)]
        exploding = False
        if len(past) >= min(self.window, 5):
            med = float(np.median(past))
            exploding = med > 0 and norm > self.explode_factor * med
            if exploding and not self._exploding:
                self.events.append(Event(step, "explosion", None, None, norm,
                                         f"gradient norm {norm:.4g} > {self.explode_factor:g} x running median "
                                         f"{med:.4g} of the last {len(past)} steps"))
        self._exploding = exploding
        self._rec["exploding"].append(exploding)

    def _check_growth(self, step: int) -> None:
        wn = self._rec["weight_norm"]
        if len(wn) <= self.window:
            return
        recent = np.asarray(wn[-self.window - 1:])
        growing = bool(np.all(np.diff(recent) > 0) and recent[0] > 0
                       and recent[-1] >= self.growth_factor * recent[0])
        if growing and not self._growing:
            self.events.append(Event(step, "weight_growth", None, None, float(recent[-1]),
                                     f"weight norm grew at each of the last {self.window} steps, "
                                     f"{recent[0]:.4g} -> {recent[-1]:.4g}"))
        self._growing = growing

    def _check_vanishing(self, step: int, norm: float, per: np.ndarray) -> None:
        now: set = set()
        if norm < self.vanish_threshold:
            now.add(None)
        for name, v in zip(self.names, per):
            if v < self.vanish_threshold:
                now.add(name)
        for name in sorted(now - self._vanishing, key=lambda n: (n is not None, n or "")):
            value = norm if name is None else float(per[self.names.index(name)])
            what = "global gradient norm" if name is None else "gradient norm"
            self.events.append(Event(step, "vanishing", name, None, value,
                                     f"{what} {value:.3g} < {self.vanish_threshold:g}"))
        self._vanishing = now

    def _check_time_vanishing(self, step: int, name: str, norms: np.ndarray) -> None:
        """Flag (once, when it starts) a recurrent layer whose gradient at the
        first time step is below ``vanish_threshold`` times the last step's.
        A 2-D array (one row per layer and direction) is checked row by row,
        as ``name[row]``."""
        if norms.ndim == 2:
            for k, row in enumerate(norms):
                self._check_time_vanishing(step, f"{name}[{k}]", row)
            return
        vanishing = False
        ratio = math.nan
        if norms.size >= 2 and np.all(np.isfinite(norms)) and norms[-1] > 0.0:
            ratio = float(norms[0] / norms[-1])
            vanishing = ratio < self.vanish_threshold
        if vanishing and name not in self._vanishing_time:
            self.events.append(Event(step, "vanishing_in_time", name, None, ratio,
                                     f"||dL/dh_0|| is {ratio:.3g} x ||dL/dh_T-1|| (< {self.vanish_threshold:g})"))
        if vanishing:
            self._vanishing_time.add(name)
        else:
            self._vanishing_time.discard(name)

    # --------------------------------------------------------------- results
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
        path = os.fspath(path)
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(cols)
            for r in rows:
                w.writerow([repr(float(v)) if isinstance(v, (float, np.floating)) else
                            (int(v) if isinstance(v, (np.integer, np.bool_, bool)) else v) for v in r])
        return path

    def to_dataframe(self):
        """The per-step history as a pandas DataFrame (needs pandas)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("to_dataframe needs pandas: pip install pandas") from None
        h = self.history
        return pd.DataFrame({k: v for k, v in h.items() if k != "timestep_norms"})

    def __repr__(self) -> str:
        return f"<GradMonitor {len(self)} steps, {len(self.events)} events>"
