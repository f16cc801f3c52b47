"""Adaptive gradient clipping: thresholds that follow the gradients.

* :class:`AutoClip` (Seetharaman et al. 2020, "AutoClip: Adaptive Gradient
  Clipping for Source Separation Networks"): clip the global gradient norm at
  the ``percentile``-th percentile of the norms seen so far (the current one
  included; ``history`` keeps only the last N). Pass it wherever a clip norm
  goes: ``optimizer.step(clip_norm=AutoClip(10))``,
  ``gradcore.train(..., clip_norm=AutoClip(10))``, or call ``clip_(grads)``.
* :func:`adaptive_clip_` (Brock et al. 2021, NFNets' unit-wise AGC, optax's
  ``adaptive_grad_clip``): every unit's gradient is scaled down to at most
  ``clipping * max(||w_unit||, eps)``. A unit is an output row of gradcore's
  (out, in, ...) weights, so the values equal optax's on the transposed
  (in, out) arrays; an array with at most one dimension longer than 1 (a
  bias, a (out, 1) weight) is a single unit, as in optax.
  The norms of all units of all parameters and gradients come from one
  kernel call per dtype (``unit_norms``, csrc/unitnorm.c).
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, Optional

import numpy as np

from .backend import kernels
from .clip import _as_list, clip_grad_norm_, global_norm
from ._contract import check_float_array, resolve_aliases

__all__ = ["AutoClip", "adaptive_clip_", "unit_counts"]


class AutoClip:
    """Clip at the ``percentile``-th percentile (0 < p <= 100) of the global
    gradient norms observed so far; ``history`` (int >= 1 or None = all)
    bounds how many recent norms are kept. Non-finite norms are not recorded.

    >>> ac = AutoClip(percentile=50)
    >>> [ac.observe(n) for n in (1.0, 3.0, 2.0)]
    [1.0, 2.0, 2.0]
    >>> g = np.array([30.0, 40.0])
    >>> ac.clip_(g)          # norm 50 joins the history; the median is now 2.5
    50.0
    >>> round(float(np.linalg.norm(g)), 4)
    2.5
    """

    def __init__(self, percentile: float = 10, history: Optional[int] = None):
        try:
            p = float(percentile)
        except (TypeError, ValueError):
            raise TypeError(f"AutoClip: percentile must be a number in (0, 100], got {percentile!r}") from None
        if isinstance(percentile, bool) or not (0.0 < p <= 100.0):
            raise ValueError(f"AutoClip: percentile must be a number in (0, 100], got {percentile!r}")
        if history is not None and (isinstance(history, bool) or not isinstance(history, (int, np.integer))
                                    or history < 1):
            raise ValueError(f"AutoClip: history must be an integer >= 1 or None, got {history!r}")
        self.percentile = p
        self.history = None if history is None else int(history)
        self._norms: deque = deque(maxlen=self.history)
        self.last_threshold: Optional[float] = None

    def __repr__(self):
        return f"AutoClip(percentile={self.percentile:g}, history={self.history}, seen={len(self._norms)})"

    @property
    def norms(self) -> np.ndarray:
        """The recorded norms (oldest first)."""
        return np.asarray(self._norms, dtype=np.float64)

    def threshold(self) -> Optional[float]:
        """The current clip norm (None before the first finite norm)."""
        if not self._norms:
            return None
        return float(np.percentile(self.norms, self.percentile))

    def observe(self, norm: float) -> Optional[float]:
        """Record ``norm`` (if finite) and return the threshold to clip this step at."""
        norm = float(norm)
        if math.isfinite(norm):
            self._norms.append(norm)
        self.last_threshold = self.threshold()
        return self.last_threshold

    def clip_(self, grads: Any, eps: float = 1e-6) -> float:
        """Clip ``grads`` in place at the updated threshold (as
        :func:`gradcore.clip_grad_norm_`); returns the pre-clip global norm."""
        norm = global_norm(grads)
        thr = self.observe(norm)
        if thr is not None and math.isfinite(norm):
            clip_grad_norm_(grads, thr, eps=eps)
        return norm

    def state_dict(self) -> dict:
        return {"percentile": np.float64(self.percentile),
                "history": np.int64(-1 if self.history is None else self.history),
                "norms": self.norms}

    def load_state_dict(self, state) -> None:
        h = int(state["history"])
        AutoClip.__init__(self, float(state["percentile"]), None if h < 0 else h)
        self._norms.extend(float(v) for v in np.asarray(state["norms"], np.float64).ravel())


def unit_counts(shapes) -> list:
    """Units per array for unit-wise clipping: 1 when at most one dimension
    is longer than 1 (optax's "scalars and vectors"), else ``shape[0]``."""
    out = []
    for s in shapes:
        s = tuple(s)
        out.append(1 if sum(1 for d in s if d > 1) <= 1 or len(s) < 2 else int(s[0]))
    return out


def _check_factor(value, name, lo_open):
    if isinstance(value, bool):
        raise TypeError(f"{name}: expected a finite number, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a finite number, got {value!r}") from None
    if not math.isfinite(v) or (v <= 0.0 if lo_open else v < 0.0):
        raise ValueError(f"{name}: expected a finite number {'>' if lo_open else '>='} 0, got {value!r}")
    return v


def adaptive_clip_(params: Any, grads: Any, clipping: float = 0.01, eps: float = 1e-3) -> int:
    """Unit-wise adaptive gradient clipping, in place on ``grads``.

    For every unit (output row) with gradient norm ``g`` and weight norm
    ``w``: ``max = clipping * max(w, eps)``; when ``g >= max`` the unit's
    gradient is multiplied by ``max / max(g, 1e-6)`` (optax's formula; a NaN
    unit stays NaN). ``params`` and ``grads`` are matching ndarrays, lists or
    dicts (same keys, shapes and dtypes). Everything is validated before the
    first write. Returns the number of units clipped.

    >>> w = np.array([[3.0, 4.0], [0.0, 1.0]])
    >>> g = np.array([[0.3, 0.4], [0.0, 0.001]])
    >>> adaptive_clip_(w, g, clipping=0.01)
    1
    >>> g
    array([[0.03 , 0.04 ],
           [0.   , 0.001]])
    """
    clipping = _check_factor(clipping, "clipping", True)
    eps = _check_factor(eps, "eps", False)
    plist, pkeys = _as_list(params, "params")
    glist, gkeys = _as_list(grads, "grads")
    if len(plist) != len(glist):
        raise ValueError(f"grads: expected {len(plist)} arrays (one per parameter), got {len(glist)}")
    if pkeys is not None and gkeys is not None and pkeys != gkeys:
        raise ValueError(f"grads: keys {gkeys} differ from params' keys {pkeys}")
    keys = gkeys if gkeys is not None else pkeys
    for i, (p, g) in enumerate(zip(plist, glist)):
        label = f"[{keys[i]!r}]" if keys is not None else f"[{i}]"
        check_float_array(p, "params" + label)
        check_float_array(g, "grads" + label, writable=True)
        if p.shape != g.shape:
            raise ValueError(f"grads{label}: shape {g.shape} differs from params{label} shape {p.shape}")
        if p.dtype != g.dtype:
            raise TypeError(f"grads{label}: dtype {g.dtype} differs from params{label} dtype {p.dtype}")
    if not glist:
        return 0
    # a (param, grad) pair given twice is clipped once; a gradient shared by
    # two different parameters, or partial overlaps, are refused
    gdups = resolve_aliases(glist, "grads", keys)
    pdups = resolve_aliases(plist, "params", keys)
    for j, i in gdups.items():
        if pdups.get(j) != i:
            lab = (lambda k: f"[{keys[k]!r}]" if keys is not None else f"[{k}]")
            raise ValueError(f"grads{lab(j)} is the same array as grads{lab(i)} but params{lab(j)} is not "
                             f"params{lab(i)}; each gradient belongs to one parameter")
    if gdups:
        plist = [p for k, p in enumerate(plist) if k not in gdups]
        glist = [g for k, g in enumerate(glist) if k not in gdups]
    units = unit_counts(g.shape for g in glist)
    norms = kernels().unit_norms(plist + glist, units + units, "arrays")
    n = len(glist)
    clipped = 0
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        for g, u, pn, gn in zip(glist, units, norms[:n], norms[n:]):
            max_norm = clipping * np.maximum(pn, eps)
            hit = ~(gn < max_norm)          # optax: where(g < max, g, clipped); NaN is clipped (stays NaN)
            if not hit.any():
                continue
            factor = (max_norm / np.maximum(gn, 1e-6)).astype(g.dtype)
            rows = g.reshape(u, -1)
            idx = np.flatnonzero(hit)
            rows[idx] *= factor[idx, None]
            clipped += int(np.count_nonzero(hit & (gn >= max_norm)))
    return clipped
