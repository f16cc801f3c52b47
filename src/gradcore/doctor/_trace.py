"""One forward/backward on a copy of the model, recorded unit by unit.

``trace(model, optimizer, x, y, loss_fn)`` deep-copies the model and the
optimizer together (``copy.deepcopy`` gives the copy its own arena and no
forward caches, and the optimizer copy follows the model copy), so nothing
the caller holds is written: parameters, gradients, buffers (BatchNorm
running statistics), forward caches and optimizer state stay as they were.

A ``Sequential`` root is walked child by child, so each unit's output and
the gradient at its input and output are seen; any other root is one unit.
Per Dense unit the pre-activation ``z = x W^T + b`` is recomputed in float64
(one extra product per layer) for the mean-field comparison.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any, List, Optional

import numpy as np

from ..nn import Activation, Dense, Sequential


def _norm(a) -> float:
    if a is None:
        return math.nan
    a = np.asarray(a, np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.sqrt(np.vdot(a.ravel(), a.ravel())))


def first_nonfinite(a) -> Optional[int]:
    if a is None:
        return None
    flat = np.asarray(a).reshape(-1)
    bad = np.flatnonzero(~np.isfinite(flat))
    return int(bad[0]) if bad.size else None


@dataclass
class Unit:
    """One recorded unit of the walk."""

    name: str
    module: Any
    kind: str
    activation: Optional[str] = None
    slope: float = 0.01
    fan_in: int = 0
    sigma_w2: float = math.nan
    sigma_b2: float = 0.0
    q: float = math.nan                 # mean(z^2) of the pre-activation (Dense)
    z_std: float = math.nan
    out_stats: dict = field(default_factory=dict)
    out_nonfinite: Optional[int] = None
    grad_out: float = math.nan          # ||dL/dy|| at the unit's output
    grad_in: float = math.nan           # ||dL/dx|| at its input (NaN when not computed)
    saturation: Optional[float] = None  # tanh/sigmoid: fraction of outputs near the rails
    dead: Optional[float] = None        # relu: fraction of units zero on the whole batch


@dataclass
class Trace:
    model: Any
    optimizer: Any
    units: List[Unit]
    loss: float
    pred_nonfinite: Optional[int]
    dpred_norm: float
    sequential: bool


def clone(model, optimizer=None):
    """Independent copies of ``model`` (and ``optimizer`` bound to the copy)."""
    if optimizer is None:
        return copy.deepcopy(model), None
    m, o = copy.deepcopy((model, optimizer))
    return m, o


def _output_stats(unit: Unit, y: np.ndarray) -> None:
    a = unit.activation
    y64 = np.asarray(y, np.float64)
    with np.errstate(all="ignore"):
        unit.out_stats = {"mean": float(np.mean(y64)), "std": float(np.std(y64)),
                          "max_abs": float(np.max(np.abs(y64))) if y64.size else 0.0}
        if a == "tanh":
            unit.saturation = float(np.mean(np.abs(y64) > 0.99))
        elif a == "sigmoid":
            unit.saturation = float(np.mean((y64 < 0.01) | (y64 > 0.99)))
        elif a in ("relu",) and y64.ndim == 2 and y64.shape[0] > 1:
            unit.dead = float(np.mean(np.all(y64 <= 0.0, axis=0)))


def _dense_unit(name, d: Dense, x) -> Unit:
    w = np.asarray(d.p["weight"], np.float64)
    b = d.p.get("bias")
    u = Unit(name, d, "dense", d.activation, d.slope, d.in_features)
    with np.errstate(all="ignore"):
        u.sigma_w2 = float(d.in_features * np.mean(w * w))
        u.sigma_b2 = float(np.mean(np.asarray(b, np.float64) ** 2)) if b is not None else 0.0
        z = np.asarray(x, np.float64) @ w.T
        if b is not None:
            z += np.asarray(b, np.float64)
        u.q = float(np.mean(z * z))
        u.z_std = float(np.std(z))
    return u


def _units_of(model):
    """(name, module) pairs of the walk; Dense followed by a bare Activation
    is kept as two units (the pair is merged when reading gains)."""
    if isinstance(model, Sequential):
        return [(str(i), m) for i, m in enumerate(model)], True
    return [("", model)], False


def trace(model, optimizer, x, y, loss_fn) -> Trace:
    m, o = clone(model, optimizer)
    m.zero_grad()
    parts, seq = _units_of(m)
    units: List[Unit] = []
    h = x
    with np.errstate(all="ignore"):
        for name, mod in parts:
            h_in = h
            h = mod.forward(h)  # the layer validates its input first
            if isinstance(mod, Dense):
                u = _dense_unit(name, mod, h_in)
            elif isinstance(mod, Activation):
                u = Unit(name, mod, "activation", mod.activation, mod.slope)
            else:
                u = Unit(name, mod, type(mod).__name__)
            if u.kind in ("dense", "activation"):
                _output_stats(u, h)
            u.out_nonfinite = first_nonfinite(h) if isinstance(h, np.ndarray) else None
            units.append(u)
        pred = h
        L, dpred = loss_fn(pred, y)
        L = float(L)
        g = dpred
        for u in reversed(units):
            u.grad_out = _norm(g)
            g = u.module.backward(g)
            u.grad_in = _norm(g) if isinstance(g, np.ndarray) else math.nan
    return Trace(m, o, units, L, first_nonfinite(pred), _norm(dpred), seq)
