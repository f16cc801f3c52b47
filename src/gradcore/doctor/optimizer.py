"""Optimizer: one trial step on the copy. The update-to-weight ratio
``||W_after - W_before|| / ||W_before||`` (global and the largest per
parameter), the loss before and after that step on the same batch, and
whether the optimizer's state (momentum, Adam moments) is finite."""

from __future__ import annotations

import math

import numpy as np


def _norm(a) -> float:
    a = np.asarray(a, np.float64).ravel()
    with np.errstate(all="ignore"):
        return float(np.sqrt(np.vdot(a, a)))


def state_finite(optimizer) -> dict:
    out: dict = {}
    if optimizer is None:
        return out
    for name in getattr(optimizer, "_buffers", ("velocity", "m", "v")):
        buf = getattr(optimizer, name, None)
        if isinstance(buf, np.ndarray):
            out[name] = bool(np.all(np.isfinite(buf)))
    return out


def trial_step(tr, x, y, loss_fn, lr, loss_before=None) -> dict:
    """Step the copied model (its copied optimizer, or SGD at ``lr``) once."""
    from .. import optim

    m = tr.model
    opt = tr.optimizer
    if opt is None:
        if lr is None:
            return {}
        opt = optim.SGD(m, lr=lr)
    elif lr is not None:
        opt.lr = lr
    from ..clip import grad_stats

    w0 = m.arena.data.copy()
    with np.errstate(all="ignore"):
        gnorm = float(opt.step())
        dw = m.arena.data - w0
        vw = m.arena.views(w0)
        names = list(vw)
        ws = grad_stats(vw)       # one C call per dtype for all the norms
        ds = grad_stats(m.arena.views(dw))
        per = {k: (float(d) / float(w) if w > 0 else math.nan) for k, d, w in zip(names, ds.per_array, ws.per_array)}
        wn = ws.norm
        ratio = ds.norm / wn if wn > 0 else math.nan
        m.zero_grad()
        L1, _ = loss_fn(m.forward(x), y)
    fin = [kv for kv in per.items() if math.isfinite(kv[1])]
    worst = max(fin, key=lambda kv: kv[1]) if fin else (None, math.nan)
    return {"optimizer": type(opt).__name__, "lr": float(opt.lr), "grad_norm": gnorm, "weight_norm": wn,
            "update_ratio": ratio, "max_update_ratio": worst[1], "max_update_parameter": worst[0],
            "loss_before": tr.loss if loss_before is None else loss_before, "loss_after": float(L1)}


def counterfactual(model, optimizer, x, y, loss_fn, lr, fixes: dict) -> dict:
    """The trial step again on a copy with the upstream fixes applied:
    ``fixes["input_scale"]`` (per-feature divisor of x), ``fixes["init_gain"]``
    ({Sequential index: weight multiplier}), ``fixes["recurrent_weight"]``
    ({module name: W_hh multiplier}). The learning rate is judged on it."""
    from ._trace import clone, trace

    m, o = clone(model, optimizer)
    xs = x
    if "input_scale" in fixes:
        div = fixes["input_scale"]
        xs = (np.asarray(x, np.float64) / div).astype(np.asarray(x).dtype)
    mods = dict(m.named_modules())
    for unit, mult in fixes.get("init_gain", {}).items():
        mods[unit].p["weight"][...] *= mult
    for name, mult in fixes.get("recurrent_weight", {}).items():
        mods[name].p["weight_hh"][...] *= mult
    tr = trace(m, o, xs, y, loss_fn)
    out = trial_step(tr, xs, y, loss_fn, lr)
    out["fixes"] = sorted(fixes)
    return out
