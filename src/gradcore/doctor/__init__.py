"""The gradient doctor: why the gradient explodes or vanishes, and what to change.

``gradcore.diagnose(model, x, y, loss="mse", lr=None, optimizer=None,
monitor=None, clipping=None) -> Diagnosis`` runs one forward/backward on the
batch on a *copy* of the model (and of the optimizer), one trial update on
that copy when a learning rate is known, and one more forward to see the
loss after it; the caller's model and optimizer are never written.

It measures (modules of this package, one per family): the input scale
(``inputs``), each Dense layer's backward gain against the mean-field chi_1
of its activation and measured weight/bias variance, and saturation
(``layers``), each recurrent layer's W_hh spectra and the fitted growth of
||dL/dh_t|| (``recurrent``), the update-to-weight ratio and the optimizer
state's finiteness (``optimizer``), the first non-finite value, and which
normalization, skip connections and clipping are present (``structure``);
``causes`` turns them into a ranked list of :class:`Cause` from the fixed
vocabulary :data:`CAUSES`.

>>> import numpy as np, gradcore
>>> net = gradcore.nn.MLP([4, 16, 16, 1], seed=0, dtype="float64")
>>> x = np.random.default_rng(0).uniform(0, 255, (64, 4))
>>> d = gradcore.diagnose(net, x, np.zeros((64, 1)))
>>> d.top.name
'input_scale'
"""

from __future__ import annotations

import math
import numbers
import time

import numpy as np

from ..clip import global_norm, grad_stats  # noqa: F401
from .causes import rank, upstream_fixes
from .diagnosis import CAUSES, THRESHOLD, Cause, Diagnosis
from .inputs import input_severity, measure_inputs
from .layers import measure_layers, saturation_summary
from .optimizer import counterfactual, state_finite, trial_step
from .recurrent import measure_recurrent
from .modelspec import build_model, model_spec
from .structure import measure_structure
from ._trace import first_nonfinite, trace

__all__ = ["diagnose", "Diagnosis", "Cause", "CAUSES", "THRESHOLD", "model_spec", "build_model", "from_checkpoint"]


def _monitor_summary(monitor) -> dict:
    if monitor is None or len(monitor) == 0:
        return {}
    h = monitor.history
    g = np.asarray(h["grad_norm"], np.float64)
    fin = g[np.isfinite(g)]
    if fin.size == 0:
        return {"steps": int(g.size)}
    # the clip advice comes from the calm steps: those before the first flagged explosion / NaN
    bad = [e.step for e in monitor.events if e.kind in ("explosion", "nonfinite")]
    calm = g[(np.asarray(h["step"]) < min(bad)) & np.isfinite(g)] if bad else fin
    if calm.size < 3:
        calm = fin
    return {"steps": int(calm.size), "all_steps": int(g.size), "min": float(fin.min()), "max": float(fin.max()),
            "median": float(np.median(calm)), "p90": float(np.percentile(calm, 90)),
            "events": [str(e) for e in monitor.events[:10]]}


def _nonfinite(model, tr) -> dict:
    """The first non-finite value, searched in the parameters, then the
    forward outputs unit by unit, then the gradients, then recurrent steps."""
    out: dict = {"first": None}
    for k, v in model.parameters().items():
        i = first_nonfinite(v)
        if i is not None:
            out["first"] = f"parameter {k} at flat index {i} ({v.reshape(-1)[i]})"
            return out
    for u in tr.units:
        if u.out_nonfinite is not None:
            out["first"] = f"forward output of unit {u.name or type(u.module).__name__} ({u.module._label()}) at flat index {u.out_nonfinite}"
            break
    for _, mod in tr.model.named_modules():
        s = getattr(mod, "first_nonfinite_step", None)
        if s is not None and out["first"] is None:
            out["first"] = f"recurrent layer {mod._label()} at time step {s}"
    if out["first"] is None:
        for k, v in tr.model.gradients().items():
            i = first_nonfinite(v)
            if i is not None:
                out["first"] = f"gradient of {k} at flat index {i}"
                break
    return out


def diagnose(model, x, y, loss="mse", lr=None, optimizer=None, monitor=None, clipping=None) -> Diagnosis:
    """Diagnose ``model`` on the batch ``(x, y)`` (see the module docstring).

    ``loss``: as :func:`gradcore.train`. ``lr``: the learning rate to judge
    (default: ``optimizer.lr``); with neither, the learning rate is not
    judged. ``optimizer``: the optimizer in use (its state is read and a copy
    takes the trial step). ``monitor``: a :class:`gradcore.GradMonitor` whose
    history of norms informs the clipping advice. ``clipping``: the clipping
    in use (None: none; a number: the global clip norm; or an
    :class:`gradcore.AutoClip`)."""
    from ..train import _loss_fn

    t0 = time.perf_counter()
    if getattr(model, "arena", None) is None:
        raise TypeError(f"model: expected a gradcore.nn.Module with a parameter arena, got {type(model).__name__}")
    if optimizer is not None and getattr(optimizer, "model", None) is not model:
        raise ValueError("optimizer: it was built on a different model")
    if lr is not None and (isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not float(lr) > 0
                           or not math.isfinite(lr)):
        raise ValueError(f"lr: expected a finite number > 0 or None, got {lr!r}")
    loss_fn = _loss_fn(loss)
    tr = trace(model, optimizer, x, y, loss_fn)
    gnorm = float(global_norm(tr.model.arena.grad))
    layers = measure_layers(tr.units)
    m = {
        "input": measure_inputs(x, tr.units[0] if tr.sequential and tr.units else None),
        "layers": layers,
        "saturation": saturation_summary(layers),
        "recurrent": measure_recurrent(tr.model),
        "structure": measure_structure(model, clipping),
        "nonfinite": _nonfinite(model, tr),
        "monitor": _monitor_summary(monitor),
        "grad_norm": gnorm,
        "loss": tr.loss,
    }
    eff_lr = lr if lr is not None else (getattr(optimizer, "lr", None) if optimizer is not None else None)
    opt_m = {"state_finite": state_finite(optimizer)}
    passes = {"forward": 1, "backward": 1}
    if eff_lr is not None and math.isfinite(tr.loss):
        opt_m.update(trial_step(tr, x, y, loss_fn, lr))
        passes["forward"] += 1
        passes["trial_update"] = 1
        fixes = upstream_fixes(model, x, m)
        if fixes:
            # the learning rate judged again on a copy with the upstream fixes
            # applied: one more forward/backward, trial step and forward
            opt_m["counterfactual"] = counterfactual(model, optimizer, x, y, loss_fn, lr, fixes)
            passes["forward"] += 2
            passes["backward"] += 1
            passes["trial_update"] += 1
    m["optimizer"] = opt_m
    causes = rank(m, eff_lr is not None)
    assert all(c.name in CAUSES for c in causes)
    return Diagnosis(causes, m, tr.loss, gnorm, THRESHOLD, passes, time.perf_counter() - t0)


def from_checkpoint(path, model_spec=None):
    """``(model, optimizer or None, metadata)`` rebuilt from a checkpoint
    written by :func:`gradcore.save`: the model from ``model_spec`` (a dict
    or JSON text) or from the checkpoint's ``model_spec`` metadata entry; the
    optimizer (SGD / Adam / AdamW) from its saved state when there is one."""
    import inspect

    from .. import checkpoint, optim

    model_sd, opt_sd, meta = checkpoint.split(checkpoint.read(path))
    spec = model_spec if model_spec is not None else meta.get("model_spec")
    if spec is None:
        raise ValueError(f"{path}: the checkpoint does not say how to rebuild its model (no 'model_spec' metadata); "
                         "save it with gradcore.save(path, model, optimizer, model=gradcore.doctor.model_spec(model)) "
                         "or give the spec (--model JSON)")
    model = build_model(spec)
    opt = None
    if opt_sd is not None:
        from ..optim import _scalar

        kind = _scalar(opt_sd["kind"])
        cls = getattr(optim, str(kind), None)
        if not (isinstance(cls, type) and issubclass(cls, optim.Optimizer)):
            raise ValueError(f"{path}: unknown optimizer kind {kind!r} in the checkpoint")
        params = inspect.signature(cls).parameters
        kw = {k: _scalar(v) for k, v in opt_sd.items() if k in params and k != "model"}
        opt = cls(model, **kw)
    checkpoint.load(path, model, opt)
    return model, opt, meta
