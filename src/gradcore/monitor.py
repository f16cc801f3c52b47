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

The class is put together by job: recording here, the checks that flag
events in ``_monitor_flags.py``, ``state_dict`` / ``load_state_dict`` in
``_monitor_state.py``, ``history`` / ``summary`` / CSV / DataFrame in
``_monitor_report.py``.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional

import numpy as np

from ._contract import int_arg, real_arg
from ._monitor_flags import Event, Flags
from ._monitor_report import Report
from ._monitor_state import State
from .clip import GradStats, grad_stats

__all__ = ["GradMonitor", "Event"]



def _modules(model):
    named = getattr(model, "named_modules", None)
    if callable(named):
        return list(named())
    return [("", model)]


class GradMonitor(Flags, State, Report):
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


    def __repr__(self) -> str:
        return f"<GradMonitor {len(self)} steps, {len(self.events)} events>"
