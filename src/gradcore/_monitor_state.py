"""A :class:`gradcore.monitor.GradMonitor`'s history as plain data (arrays,
JSON-able events and flags), for :func:`gradcore.train` checkpoints."""

from __future__ import annotations

from typing import Any, Dict, List

import numpy as np

from ._monitor_flags import Event, Fields


class State(Fields):
    """``state_dict`` / ``load_state_dict`` of
    :class:`~gradcore.monitor.GradMonitor` (a mixin)."""

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
