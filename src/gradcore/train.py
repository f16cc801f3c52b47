"""``gradcore.train``: a training loop that sees explosions coming and never
leaves a model full of NaN.

Per step: zero the gradients, forward, loss, backward, (monitor), optional
clip by value, optimizer step with optional clip by norm (folded into the
fused update), (monitor). On a non-finite loss or gradient -- or weights that
became non-finite after an update -- it stops, restores the weights of the
last step that completed with finite loss, gradients and weights (a copy of
``model.arena.data`` is kept after every good step: one memcpy), and says at
which step, which parameter (and flat index) and why.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional

import numpy as np

from ._contract import int_arg, real_arg
from .adaptive import AutoClip
from .clip import clip_coefficient, clip_grad_value_, grad_stats
from .monitor import GradMonitor

__all__ = ["train", "TrainResult", "LOSSES"]

LOSSES = ("mse", "bce_with_logits", "softmax_cross_entropy")


@dataclass
class TrainResult:
    """What happened in :func:`train`.

    ``losses`` / ``grad_norms`` (pre-clip) / ``clip_coefs``: one entry per
    completed step. ``stopped`` is True when training stopped on a
    non-finite value; then ``stop_step``, ``stop_reason`` (``"nonfinite_loss"``,
    ``"nonfinite_gradient"`` or ``"nonfinite_weights"``), ``stop_parameter``,
    ``stop_index`` (flat index into that parameter), ``stop_kind`` ("NaN" or
    "Inf") say where, and ``restored_step`` is the step whose resulting
    weights were restored (-1: the initial weights).
    """

    steps: int
    losses: np.ndarray
    grad_norms: np.ndarray
    clip_coefs: np.ndarray
    stopped: bool = False
    stop_step: Optional[int] = None
    stop_reason: Optional[str] = None
    stop_parameter: Optional[str] = None
    stop_index: Optional[int] = None
    stop_kind: Optional[str] = None
    restored_step: Optional[int] = None
    seconds: float = 0.0
    monitor: Optional[GradMonitor] = field(default=None, repr=False)
    _doctor: Optional[dict] = field(default=None, repr=False)

    @property
    def diagnosis(self):
        """:func:`gradcore.diagnose` of the run when its monitor flagged an
        explosion (the weights and batch of the first one) or it stopped on a
        non-finite value (the weights and batch of the last step whose loss
        was within 10x the first loss: where the run was still calm); None
        otherwise. Computed on first access from copies taken then."""
        d = self._doctor
        if d is None:
            return None
        if "result" not in d:
            from .doctor import diagnose

            d["result"] = diagnose(d["model"], d["x"], d["y"], loss=d["loss"], optimizer=d["optimizer"],
                                   lr=d["lr"], monitor=self.monitor, clipping=d["clipping"])
        return d["result"]

    @property
    def final_loss(self) -> float:
        return float(self.losses[-1]) if len(self.losses) else math.nan

    @property
    def message(self) -> str:
        if not self.stopped:
            return f"trained {self.steps} steps, final loss {self.final_loss:.6g}"
        where = ""
        if self.stop_parameter is not None:
            where = f" in {self.stop_parameter}" + (f" at flat index {self.stop_index}"
                                                    if self.stop_index is not None else "")
        what = {"nonfinite_loss": "loss", "nonfinite_gradient": "gradient",
                "nonfinite_weights": "weights after the update"}.get(self.stop_reason, self.stop_reason)
        restored = ("the initial weights" if self.restored_step == -1 else
                    f"the weights after step {self.restored_step}")
        return (f"stopped at step {self.stop_step}: {self.stop_kind} {what}{where}; restored {restored} "
                f"({self.steps} steps completed)")

    def __str__(self) -> str:
        return self.message


def _loss_fn(loss) -> Callable:
    if callable(loss):
        return loss
    from . import losses

    if loss not in LOSSES:
        raise ValueError(f"loss: expected one of {', '.join(LOSSES)} or a callable (pred, target) -> "
                         f"(loss, dpred), got {loss!r}")
    return getattr(losses, loss)


def _optimizer(model, optimizer, lr):
    from . import optim

    if optimizer is None:
        optimizer = "sgd"
    if isinstance(optimizer, str):
        name = optimizer.lower()
        if name == "sgd":
            return optim.SGD(model, lr=0.01 if lr is None else lr)
        if name == "adam":
            return optim.Adam(model, lr=1e-3 if lr is None else lr)
        raise ValueError(f"optimizer: expected 'sgd', 'adam' or an optimizer object, got {optimizer!r}")
    if not callable(getattr(optimizer, "step", None)):
        raise TypeError(f"optimizer: expected 'sgd', 'adam' or an object with step(clip_norm=None), "
                        f"got {type(optimizer).__name__}")
    return optimizer


def _progress(enabled: bool, total):
    if not enabled or not (hasattr(sys.stderr, "isatty") and sys.stderr.isatty()):
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc="train", unit="step", leave=False)


def _locate(arrays: dict):
    stats = grad_stats(arrays)
    if stats.finite:
        return None
    name, idx = stats.first_nonfinite
    v = float(np.asarray(arrays[name]).reshape(-1)[idx])
    return name, int(idx), "NaN" if math.isnan(v) else "Inf"


def train(model, batches: Iterable, loss="mse", optimizer=None, steps: Optional[int] = None,
          clip_norm: Optional[float] = None, clip_value: Optional[float] = None,
          monitor: Optional[GradMonitor] = None, progress: bool = True, stop_on_nonfinite: bool = True,
          lr: Optional[float] = None, agc: Optional[float] = None) -> TrainResult:
    """Train ``model`` on ``batches`` (any iterable of ``(x, y)`` pairs).

    ``loss``: ``"mse"``, ``"bce_with_logits"``, ``"softmax_cross_entropy"`` or
    a callable ``(pred, target) -> (loss, dpred)``. ``optimizer``: an optimizer
    built on ``model`` (anything with ``step(clip_norm=None) -> norm``), or
    ``"sgd"`` (default, lr 0.01) / ``"adam"`` (lr 1e-3) with ``lr``.
    ``steps``: stop after this many steps (None: when ``batches`` ends).
    ``clip_norm``: clip the global gradient norm (folded into the update),
    a number or a :class:`gradcore.AutoClip` (percentile of the norms seen);
    ``agc``: unit-wise adaptive clipping factor (:func:`gradcore.adaptive_clip_`);
    ``clip_value``: clamp every gradient element first. ``monitor``: a
    :class:`GradMonitor` fed at every step. ``progress``: a tqdm bar, shown
    only when stderr is a terminal. ``stop_on_nonfinite``: stop and restore
    the last finite weights on NaN/Inf (otherwise the step is skipped and
    training goes on).
    """
    if steps is not None:
        steps = int_arg(steps, "steps", lo=1)
    checked = {}
    for name, v in (("clip_norm", clip_norm), ("clip_value", clip_value), ("agc", agc)):
        if v is None or (name == "clip_norm" and isinstance(v, AutoClip)):
            checked[name] = v
        else:
            checked[name] = real_arg(v, name, lo=0, lo_open=True)
    clip_norm, clip_value, agc = checked["clip_norm"], checked["clip_value"], checked["agc"]
    if batches is None or not hasattr(batches, "__iter__"):
        raise TypeError(f"batches: expected an iterable of (x, y) pairs (a list, a generator, a "
                        f"gradcore.tasks stream), got {type(batches).__name__}")
    arena = getattr(model, "arena", None)
    if arena is None:
        raise TypeError(f"model: expected a gradcore.nn.Module with a parameter arena, got {type(model).__name__}")
    loss_fn = _loss_fn(loss)
    opt = _optimizer(model, optimizer, lr)
    if monitor is not None and monitor.model is not model:
        raise ValueError("monitor: it watches a different model")
    total = steps
    if total is None and hasattr(batches, "__len__"):
        total = len(batches)
    bar = _progress(progress, total)

    good = arena.data.copy()  # weights after the last fully finite step
    good_step = -1
    losses, norms, coefs = [], [], []
    stop = {}
    doctor = None
    calm, calm_xy, L0 = arena.data.copy(), None, None
    t0 = time.perf_counter()
    step = 0
    try:
        for batch in batches:
            if steps is not None and step >= steps:
                break
            try:
                x, y = batch
            except (TypeError, ValueError):
                raise TypeError(f"batches: step {step}: expected an (x, y) pair, got {type(batch).__name__}") from None
            model.zero_grad()
            with np.errstate(all="ignore"):
                pred = model.forward(x)
                L, dpred = loss_fn(pred, y)
            L = float(L)
            if math.isfinite(L) and (L0 is None or L <= 10.0 * L0):
                # the last calm step (loss within 10x the first): the weights that
                # produced it and its batch are what a diagnosis of a stop looks at
                L0 = L if L0 is None else L0
                calm[...] = arena.data
                calm_xy = (x, y)
            if not math.isfinite(L):
                if monitor is not None:
                    monitor.note_nonfinite_loss(step, L)
                stop = dict(stop_reason="nonfinite_loss", stop_kind="NaN" if math.isnan(L) else "Inf")
                bad = _locate(model.parameters())
                if bad is not None:
                    stop.update(stop_parameter=bad[0], stop_index=bad[1])
                if stop_on_nonfinite:
                    break
                stop = {}
                step += 1
                continue
            with np.errstate(all="ignore"):
                model.backward(dpred)
            events = monitor.after_backward(step, L) if monitor is not None else None
            if events and doctor is None and any(e.kind == "explosion" for e in events):
                doctor = _doctor_context(model, opt, x, y, loss, clip_norm)
            if events is not None:
                nonfinite = [e for e in events if e.kind == "nonfinite" and e.parameter is not None]
                bad = (nonfinite[0].parameter, nonfinite[0].index,
                       "NaN" if math.isnan(nonfinite[0].value) else "Inf") if nonfinite else None
            else:
                bad = _locate(model.gradients())
            if bad is not None:
                stop = dict(stop_reason="nonfinite_gradient", stop_parameter=bad[0], stop_index=bad[1],
                            stop_kind=bad[2])
                if stop_on_nonfinite:
                    break
                stop = {}
                step += 1
                continue
            if clip_value is not None:
                clip_grad_value_(arena.grad, clip_value)
            with np.errstate(all="ignore"):
                norm = float(opt.step(clip_norm=clip_norm) if agc is None else
                             opt.step(clip_norm=clip_norm, agc=agc))
            used = getattr(opt, "last_clip_norm", clip_norm) if clip_norm is not None else None
            coef = clip_coefficient(norm, used) if used is not None else 1.0
            if monitor is not None:
                monitor.after_step(coef)
                ws = monitor.last_weight_stats  # the monitor's weight-norm pass doubles as the check
                wbad = None if ws.finite else _locate(model.parameters())
            else:
                wbad = _locate(model.parameters())
            if wbad is not None:
                stop = dict(stop_reason="nonfinite_weights", stop_parameter=wbad[0], stop_index=wbad[1],
                            stop_kind=wbad[2])
                if stop_on_nonfinite:
                    break
                arena.data[...] = good  # cannot go on from non-finite weights
                stop = {}
                step += 1
                continue
            losses.append(L)
            norms.append(norm)
            coefs.append(coef)
            good[...] = arena.data
            good_step = step
            step += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{L:.4g}", grad=f"{norm:.3g}")
    finally:
        if bar is not None:
            bar.close()
    result = TrainResult(steps=len(losses), losses=np.asarray(losses), grad_norms=np.asarray(norms),
                         clip_coefs=np.asarray(coefs), seconds=time.perf_counter() - t0, monitor=monitor)
    if stop:
        arena.data[...] = good
        model.zero_grad()
        result.stopped = True
        result.stop_step = step
        result.restored_step = good_step
        for k, v in stop.items():
            setattr(result, k, v)
        if doctor is None and calm_xy is not None:
            doctor = _doctor_context(model, opt, *calm_xy, loss, clip_norm, weights=calm)
    result._doctor = doctor
    return result


def _doctor_context(model, opt, x, y, loss, clip_norm, weights=None) -> dict:
    """Copies of what :attr:`TrainResult.diagnosis` needs, taken now
    (``weights``: a flat arena buffer to put in the model's copy)."""
    from .optim import Optimizer

    if isinstance(opt, Optimizer) and opt.model is model:
        m, o = copy.deepcopy((model, opt))
        lr = None
    else:
        m, o, lr = copy.deepcopy(model), None, getattr(opt, "lr", None)
    if weights is not None:
        m.arena.data[...] = weights
    return {"model": m, "optimizer": o, "lr": lr, "x": np.array(x, copy=True), "y": np.array(y, copy=True),
            "loss": loss, "clipping": clip_norm}
