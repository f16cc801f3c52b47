"""The events a :class:`gradcore.monitor.GradMonitor` flags and the checks
that flag them (explosion against the running median, steady weight growth,
vanishing norms, and vanishing through time in recurrent layers: a 2-D
per-time-step array, one row per layer and direction, is checked row by
row)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import numpy as np


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



class Fields:
    """The attributes of :class:`~gradcore.monitor.GradMonitor` its mixins
    read (set in ``GradMonitor.__init__``)."""

    model: Any
    names: List[str]
    events: List[Event]
    explode_factor: float
    window: int
    vanish_threshold: float
    growth_factor: float
    _rec: Dict[str, List[Any]]
    _per: Dict[str, List[np.ndarray]]
    _timesteps: Dict[str, List[np.ndarray]]
    _before: Optional[np.ndarray]
    _pending: bool
    _exploding: bool
    _growing: bool
    _vanishing: set
    _vanishing_time: set
    _step: int


class Flags(Fields):
    """The checks of :class:`~gradcore.monitor.GradMonitor` (a mixin: they
    read its thresholds and records and append to its ``events``)."""

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
