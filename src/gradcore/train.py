"""``gradcore.train``: a training loop that sees explosions coming, never
leaves a model full of NaN, and can stop and go on.

Per step: zero the gradients, forward, loss, backward, (monitor), optional
clip by value, optimizer step with optional clip by norm (folded into the
fused update), (monitor), (scheduler step). Without a monitor the gradient
norm is computed once (``optimizer.grad_norm()``: it is both the non-finite
check and the norm the update clips with). On a non-finite loss or gradient
-- or weights that became non-finite after an update -- it stops (or skips
the step, or rolls back and lowers the learning rate), restoring the state of
the last step that completed with finite loss, gradients and weights: the
weights and the buffers (BatchNorm running statistics) are copied after every
good step, the optimizer state too when rolling back.

A run goes on across calls: the step count, the optimizer ``train`` built
from a name, the monitor's history and the loss history live on the model
(``model._train_loop``), so ``train(model, data, steps=50)`` twice is one run
of 100 steps. ``checkpoint=PATH`` saves the whole run (``gradcore.save``
format plus the loop, the data-stream position, scheduler, AutoClip and
monitor state) every ``checkpoint_every`` steps, at the end, when it stops on
NaN/Inf and on Ctrl-C; ``resume=True`` continues from that file so that
losses and weights are bit-identical to a run that was never interrupted.

:class:`TrainResult` lives in ``_train_result.py``, :func:`evaluate` and the
losses by name in ``_train_eval.py``, the run's state (snapshots, rollback,
checkpoints, resume, Ctrl-C) in ``_train_state.py``; all are importable from
here.
"""

from __future__ import annotations

import math
import os
import sys
import time
from typing import Any, Dict, Iterable, List, Optional

import numpy as np

from . import _train_state as _ts
from ._contract import int_arg, real_arg
from ._train_eval import LOSSES, _loss_fn, evaluate
from ._train_result import TrainResult, _doctor_context
from .adaptive import AutoClip
from .clip import clip_coefficient, clip_grad_value_, grad_stats
from .monitor import GradMonitor

__all__ = ["train", "evaluate", "TrainResult", "LOSSES", "ON_NONFINITE"]

ON_NONFINITE = ("stop", "skip", "rollback")


def _optimizer(model, optimizer, lr, loop):
    from . import optim

    if optimizer is None:
        optimizer = "sgd"
    if isinstance(optimizer, str):
        name = optimizer.lower()
        if name not in ("sgd", "adam"):
            raise ValueError(f"optimizer: expected 'sgd', 'adam' or an optimizer object, got {optimizer!r}")
        prev = loop.optimizer
        if prev is not None and loop.opt_name == name and prev.arena is model.arena:
            if lr is not None:          # a later call may change the rate; the state goes on
                prev.lr = lr
            return prev
        opt = (optim.SGD(model, lr=0.01 if lr is None else lr) if name == "sgd"
               else optim.Adam(model, lr=1e-3 if lr is None else lr))
        loop.optimizer, loop.opt_name = opt, name
        return opt
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
    if stats.finite or stats.first_nonfinite is None:
        return None
    name, idx = stats.first_nonfinite
    v = float(np.asarray(arrays[name]).reshape(-1)[idx])
    return name, int(idx), "NaN" if math.isnan(v) else "Inf"




def _check_int(name, v, lo=1):
    """None or an int >= lo (Python or NumPy integer; bool, float, str refused)."""
    return None if v is None else int_arg(v, name, lo=lo)


def train(model, batches: Iterable, loss="mse", optimizer=None, steps: Optional[int] = None,
          clip_norm: Optional[float] = None, clip_value: Optional[float] = None,
          monitor: Optional[GradMonitor] = None, progress: bool = True, stop_on_nonfinite: bool = True,
          lr: Optional[float] = None, agc: Optional[float] = None, *, on_nonfinite: Optional[str] = None,
          lr_backoff: float = 0.5, max_rollbacks: int = 3, scheduler=None, checkpoint=None,
          checkpoint_every: Optional[int] = None, resume: bool = False, eval_data=None,
          eval_every: Optional[int] = None) -> TrainResult:
    """Train ``model`` on ``batches`` (any iterable of ``(x, y)`` pairs).

    ``loss``: ``"mse"``, ``"bce_with_logits"``, ``"softmax_cross_entropy"`` or
    a callable ``(pred, target) -> (loss, dpred)``. ``optimizer``: an optimizer
    built on ``model`` (anything with ``step(clip_norm=None) -> norm``), or
    ``"sgd"`` (default, lr 0.01) / ``"adam"`` (lr 1e-3) with ``lr`` (built on
    the first call and reused, state and all, by later calls on the model).
    ``steps``: stop after this many steps (None: when ``batches`` ends); with
    ``resume=True`` the run's total, so re-running the same call finishes it.
    ``clip_norm``: clip the global gradient norm (folded into the update),
    a number or a :class:`gradcore.AutoClip` (percentile of the norms seen);
    ``agc``: unit-wise adaptive clipping factor (:func:`gradcore.adaptive_clip_`);
    ``clip_value``: clamp every gradient element first. ``monitor``: a
    :class:`GradMonitor` fed at every step (with the run's step numbers).
    ``progress``: a tqdm bar, shown only when stderr is a terminal.

    Non-finite values: ``on_nonfinite="stop"`` (default; or
    ``stop_on_nonfinite=True``) stops and restores the last finite state;
    ``"skip"`` (``stop_on_nonfinite=False``) drops the step and goes on;
    ``"rollback"`` restores the last finite state (weights, buffers,
    optimizer), multiplies the learning rate by ``lr_backoff`` and goes on
    with the next batch, at most ``max_rollbacks`` times (then it stops);
    each rollback is a ``"rollback"`` event of the monitor.

    ``scheduler``: a ``gradcore.optim.lr_scheduler`` scheduler on the
    optimizer (or a callable ``optimizer -> scheduler``), stepped after
    every update. ``eval_data``: held-out ``(x, y)`` (a pair, a list of
    pairs or a callable returning them), evaluated with
    :func:`evaluate` every ``eval_every`` steps (None: once at the end).

    ``checkpoint``: a file path; the run is saved there every
    ``checkpoint_every`` steps (None: only at the end), at the end, when it
    stops on NaN/Inf and on Ctrl-C. ``resume=True``: if the file exists,
    continue from it (model, optimizer, scheduler, AutoClip, monitor
    history, step count) and put the data where it was: a
    :class:`gradcore.tasks.TaskStream` (what every ``gradcore.tasks``
    generator returns) is set to its saved position; any other iterable is
    advanced past the batches the run had consumed (so it must yield the same
    batches from its start). Without a file it starts a fresh run.

    Ctrl-C: the first one ends the call after the current step (saved to
    ``checkpoint``); the result has ``interrupted=True``. A second one
    aborts the step at once (the state of the last complete step is kept).
    """
    steps = _check_int("steps", steps)
    checkpoint_every = _check_int("checkpoint_every", checkpoint_every)
    eval_every = _check_int("eval_every", eval_every)
    max_rollbacks = _check_int("max_rollbacks", max_rollbacks, lo=0)
    checked: Dict[str, Any] = {}
    for name, v in (("clip_norm", clip_norm), ("clip_value", clip_value), ("agc", agc)):
        if v is None or (name == "clip_norm" and isinstance(v, AutoClip)):
            checked[name] = v
        else:
            checked[name] = real_arg(v, name, lo=0, lo_open=True)
    clip_norm, clip_value, agc = checked["clip_norm"], checked["clip_value"], checked["agc"]
    lr_backoff = real_arg(lr_backoff, "lr_backoff", lo=0, lo_open=True, hi=1)
    if batches is None or not hasattr(batches, "__iter__"):
        raise TypeError(f"batches: expected an iterable of (x, y) pairs (a list, a generator, a "
                        f"gradcore.tasks stream), got {type(batches).__name__}")
    if on_nonfinite is None:
        on_nonfinite = "stop" if stop_on_nonfinite else "skip"
    if on_nonfinite not in ON_NONFINITE:
        raise ValueError(f"on_nonfinite: expected one of {', '.join(ON_NONFINITE)}, got {on_nonfinite!r}")
    if (checkpoint_every is not None or resume) and checkpoint is None:
        raise ValueError("checkpoint_every / resume: need checkpoint=PATH")
    if eval_every is not None and eval_data is None:
        raise ValueError("eval_every: needs eval_data")
    arena = getattr(model, "arena", None)
    if arena is None:
        raise TypeError(f"model: expected a gradcore.nn.Module with a parameter arena, got {type(model).__name__}")
    loss_fn = _loss_fn(loss)
    loop = _ts.loop_of(model)
    opt = _optimizer(model, optimizer, lr, loop)
    if monitor is not None and monitor.model is not model:
        raise ValueError("monitor: it watches a different model")
    if scheduler is not None and not hasattr(scheduler, "state_dict"):
        scheduler = scheduler(opt)
    if scheduler is not None and getattr(scheduler, "optimizer", opt) is not opt:
        raise ValueError("scheduler: it drives a different optimizer")
    autoclip = clip_norm if isinstance(clip_norm, AutoClip) else None
    ckpt_path = None if checkpoint is None else os.fspath(checkpoint)
    if ckpt_path is not None:
        d = os.path.dirname(os.path.abspath(ckpt_path))
        if not os.path.isdir(d):
            raise FileNotFoundError(2, "checkpoint directory does not exist", d)

    resumed_from = None
    saved_stream = None
    if resume and ckpt_path is not None and os.path.exists(ckpt_path):
        meta = _ts.restore_run(ckpt_path, model, opt, loop, batches, scheduler, autoclip, monitor)
        resumed_from = loop.step
        saved_stream = meta.get("stream")
    remaining = steps
    if resume and steps is not None:
        remaining = max(steps - loop.step, 0)

    it = iter(batches)
    if resumed_from is not None:
        if saved_stream is not None and callable(getattr(batches, "load_state_dict", None)):
            batches.load_state_dict(saved_stream)  # type: ignore[attr-defined]  # checked just above
        else:
            for _ in range(loop.consumed):      # a plain iterable: skip what the run consumed
                try:
                    next(it)
                except StopIteration:
                    break

    total = remaining
    if total is None and hasattr(batches, "__len__"):
        total = len(batches)  # type: ignore[arg-type]  # checked just above
    bar = _progress(progress, total) if remaining != 0 else None
    from .optim import Optimizer

    fused = isinstance(opt, Optimizer)
    snap = _ts.Snapshot(model, opt, with_optimizer=on_nonfinite == "rollback" and fused)
    snap.step = loop.step - 1
    first_step = loop.step
    n_losses0, n_eval0 = len(loop.losses), len(loop.eval_losses)
    rollbacks: List[Dict[str, Any]] = []
    stop: Dict[str, Any] = {}
    interrupted = False
    doctor = None
    calm, calm_xy, L0 = arena.data.copy(), None, None
    t0 = time.perf_counter()
    taken = 0

    def save():
        _ts.save_run(ckpt_path, model, opt, loop, batches, scheduler, autoclip, monitor)

    def run_eval(step):
        loop.eval_steps.append(step)
        loop.eval_losses.append(evaluate(model, eval_data, loss_fn))

    guard = _ts.Interrupts()
    try:
        with guard:
            while remaining is None or taken < remaining:
                if guard.requested:
                    interrupted = True
                    break
                try:
                    batch = next(it)
                except StopIteration:
                    break
                except KeyboardInterrupt:
                    interrupted = True
                    break
                step = loop.step
                loop.consumed += 1
                recorded = False
                try:
                    try:
                        x, y = batch
                    except (TypeError, ValueError):
                        raise TypeError(f"batches: step {step}: expected an (x, y) pair, "
                                        f"got {type(batch).__name__}") from None
                    bad = None
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
                        bad = dict(stop_reason="nonfinite_loss", stop_kind="NaN" if math.isnan(L) else "Inf")
                        where = _locate(model.parameters())
                        if where is not None:
                            bad.update(stop_parameter=where[0], stop_index=where[1])
                    else:
                        with np.errstate(all="ignore"):
                            model.backward(dpred)
                        known_norm = None
                        if monitor is not None:
                            events = monitor.after_backward(step, L)
                            recorded = True
                            if events and doctor is None and any(e.kind == "explosion" for e in events):
                                doctor = _doctor_context(model, opt, x, y, loss, clip_norm)
                            nonfinite = [e for e in events if e.kind == "nonfinite" and e.parameter is not None]
                            where = (nonfinite[0].parameter, nonfinite[0].index,
                                     "NaN" if math.isnan(nonfinite[0].value) else "Inf") if nonfinite else None
                        elif fused and agc is None:
                            gnorm = opt.grad_norm()          # the one gradient-norm pass of the step
                            where = None if math.isfinite(gnorm) else _locate(model.gradients())
                            known_norm = gnorm if clip_value is None else None
                        else:
                            where = _locate(model.gradients())
                        if where is not None:
                            bad = dict(stop_reason="nonfinite_gradient", stop_parameter=where[0],
                                       stop_index=where[1], stop_kind=where[2])
                    if bad is None:
                        if clip_value is not None:
                            clip_grad_value_(arena.grad, clip_value)
                        guard.critical = True          # the update and its bookkeeping complete
                        with np.errstate(all="ignore"):
                            if known_norm is not None or agc is not None:
                                norm = float(opt.step(clip_norm=clip_norm, agc=agc, norm=known_norm))
                            else:
                                norm = float(opt.step(clip_norm=clip_norm))
                        used = getattr(opt, "last_clip_norm", clip_norm) if clip_norm is not None else None
                        coef = clip_coefficient(norm, used) if used is not None else 1.0
                        if monitor is not None:
                            monitor.after_step(coef)
                            recorded = False
                            ws = monitor.last_weight_stats  # the monitor's weight-norm pass doubles as the check
                            wbad = None if ws is not None and ws.finite else _locate(model.parameters())
                        else:
                            wbad = _locate(model.parameters())
                        if wbad is not None:
                            bad = dict(stop_reason="nonfinite_weights", stop_parameter=wbad[0],
                                       stop_index=wbad[1], stop_kind=wbad[2])
                except KeyboardInterrupt:
                    # a second Ctrl-C inside forward/backward: back to the last complete step
                    guard.critical = True
                    snap.restore(optimizer=False)
                    if recorded and monitor is not None:
                        monitor._drop_pending()
                    loop.consumed -= 1
                    interrupted = True
                    break
                loop.step += 1
                taken += 1
                if bad is not None:
                    guard.critical = True
                    if on_nonfinite == "rollback" and loop.rollbacks < max_rollbacks:
                        snap.restore()
                        model.zero_grad()
                        if scheduler is not None:
                            scheduler.scale(lr_backoff)
                        else:
                            opt.lr = opt.lr * lr_backoff
                        loop.rollbacks += 1
                        rb = dict(step=step, reason=bad["stop_reason"], restored_step=snap.step,
                                  lr=float(opt.lr))
                        rollbacks.append(rb)
                        if monitor is not None:
                            monitor.note_event(step, "rollback",
                                               f"{bad.get('stop_kind', '')} {bad['stop_reason']}: restored the "
                                               f"state after step {snap.step}, learning rate now {opt.lr:.4g}",
                                               value=float(opt.lr), parameter=bad.get("stop_parameter"))
                    elif on_nonfinite == "skip":
                        snap.restore(optimizer=False)   # weights and BatchNorm statistics stay finite
                    else:
                        stop = bad
                        stop["stop_step"] = step
                        break
                else:
                    loop.losses.append(L)
                    loop.grad_norms.append(norm)
                    loop.clip_coefs.append(coef)
                    loop.loss_steps.append(step)
                    snap.take(step)
                    if scheduler is not None:
                        scheduler.step()
                    guard.critical = False
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(loss=f"{L:.4g}", grad=f"{norm:.3g}")
                    if eval_every is not None and loop.step % eval_every == 0:
                        run_eval(step)
                guard.critical = False
                if checkpoint_every is not None and loop.step % checkpoint_every == 0:
                    guard.critical = True
                    save()
                    guard.critical = False
            guard.critical = True
            if stop:
                snap.restore(optimizer=stop["stop_reason"] == "nonfinite_weights")
                model.zero_grad()
            if eval_data is not None and eval_every is None and not stop and taken:
                run_eval(loop.step - 1)
            if ckpt_path is not None and (taken or resumed_from is None):
                save()
    finally:
        if bar is not None:
            bar.close()
    res_steps = loop.loss_steps[n_losses0:]
    result = TrainResult(steps=len(res_steps), losses=np.asarray(loop.losses[n_losses0:]),
                         grad_norms=np.asarray(loop.grad_norms[n_losses0:]),
                         clip_coefs=np.asarray(loop.clip_coefs[n_losses0:]),
                         seconds=time.perf_counter() - t0, monitor=monitor, interrupted=interrupted,
                         first_step=first_step, global_step=loop.step,
                         loss_steps=np.asarray(res_steps, dtype=np.int64), rollbacks=rollbacks,
                         eval_steps=np.asarray(loop.eval_steps[n_eval0:], dtype=np.int64),
                         eval_losses=np.asarray(loop.eval_losses[n_eval0:]), checkpoint=ckpt_path,
                         resumed_from=resumed_from, optimizer=opt)
    if stop:
        result.stopped = True
        result.restored_step = snap.step if snap.step >= first_step else -1
        for k, v in stop.items():
            setattr(result, k, v)
        if doctor is None and calm_xy is not None:
            doctor = _doctor_context(model, opt, *calm_xy, loss, clip_norm, weights=calm)
    result._doctor = doctor
    return result
