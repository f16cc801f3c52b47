"""What :func:`gradcore.train` keeps between calls and in its checkpoints.

- ``Loop`` (``model._train_loop``): the run's global step, the batches drawn
  from the data, rollbacks, the optimizer ``train`` built from a name, and
  the whole run's loss / norm / evaluation history. A second ``train`` call
  on the same model continues all of it.
- ``Snapshot``: the last fully finite state (weights, buffers such as
  BatchNorm running statistics, optionally the optimizer state), refreshed
  after every good step with copies into preallocated arrays.
- ``Interrupts``: while training, the first Ctrl-C (SIGINT) asks the loop to
  stop after the current step (which then saves and returns); a second one
  raises ``KeyboardInterrupt`` at once, except inside the update and the
  save, which always complete.
- ``save_run`` / ``restore_run``: one checkpoint file (``gradcore.save``
  format) with the model, the optimizer, and as metadata the loop, the data
  stream position, the scheduler, the AutoClip history and the monitor.
"""

from __future__ import annotations

import signal
import threading
from typing import Any, Dict, List, Optional

import numpy as np

from . import checkpoint as _ckpt

LOOP_VERSION = 1


class Loop:
    """A run's bookkeeping, kept on the model between ``train`` calls."""

    def __init__(self):
        self.step = 0          # steps taken (good, skipped or rolled back)
        self.consumed = 0      # batches drawn from the data
        self.rollbacks = 0
        self.optimizer = None  # built by train from a name
        self.opt_name: Optional[str] = None
        self.losses: List[float] = []
        self.grad_norms: List[float] = []
        self.clip_coefs: List[float] = []
        self.loss_steps: List[int] = []
        self.eval_steps: List[int] = []
        self.eval_losses: List[float] = []


def loop_of(model) -> Loop:
    loop = model.__dict__.get("_train_loop")
    if not isinstance(loop, Loop):
        loop = Loop()
        model.__dict__["_train_loop"] = loop
    return loop


def _opt_buffers(opt):
    return [name for name in getattr(opt, "_buffers", ()) if getattr(opt, name, None) is not None]


class Snapshot:
    """The last good state; ``take()`` refreshes it, ``restore()`` puts it back."""

    def __init__(self, model, opt, with_optimizer: bool):
        self.model = model
        self.weights = model.arena.data.copy()
        self.live_buffers = model.buffers()
        self.buffers = {k: v.copy() for k, v in self.live_buffers.items()}
        self.opt = opt if with_optimizer and callable(getattr(opt, "state_dict", None)) else None
        self.opt_state = self.opt.state_dict() if self.opt is not None else None
        self.step = -1

    def take(self, step: int) -> None:
        np.copyto(self.weights, self.model.arena.data)
        for k, v in self.live_buffers.items():
            np.copyto(self.buffers[k], v)
        if self.opt is not None:
            st: Any = self.opt_state
            for name in _opt_buffers(self.opt):
                np.copyto(st[name], getattr(self.opt, name))
            st["lr"] = self.opt._lr
            st["steps"], st["skipped"] = int(self.opt.steps), int(self.opt.skipped)
            for name in getattr(self.opt, "_counters", ()):
                st[name] = int(getattr(self.opt, name))
        self.step = step

    def restore(self, optimizer: bool = True) -> None:
        np.copyto(self.model.arena.data, self.weights)
        for k, v in self.live_buffers.items():
            np.copyto(v, self.buffers[k])
        if optimizer and self.opt is not None:
            self.opt.load_state_dict(self.opt_state)


#: Ctrl-Cs absorbed by a training loop in this process (a caller running
#: several trainings, e.g. a sequential sweep, checks it to stop too)
ABSORBED = [0]


class Interrupts:
    """SIGINT handling for the loop (main thread only; elsewhere a no-op)."""

    def __init__(self):
        self.requested = False
        self.critical = False
        self._old = None
        self._installed = False

    def _handler(self, signum, frame):
        if self.critical or not self.requested:
            if not self.requested:
                ABSORBED[0] += 1
            self.requested = True
            return
        raise KeyboardInterrupt

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            try:
                self._old = signal.signal(signal.SIGINT, self._handler)
                self._installed = True
            except (ValueError, OSError):
                self._installed = False
        return self

    def __exit__(self, *exc):
        if self._installed:
            signal.signal(signal.SIGINT, self._old if self._old is not None else signal.default_int_handler)
        return False


def _jsonable_state(state: Dict[str, Any], prefix: str, arrays: Dict[str, np.ndarray]) -> Dict[str, Any]:
    """Split ``state`` into arrays (into ``arrays`` under ``prefix``) and the rest."""
    plain = {}
    for k, v in state.items():
        if isinstance(v, np.ndarray):
            arrays[f"{prefix}{k}"] = v
        elif isinstance(v, np.generic):
            plain[k] = v.item()
        else:
            plain[k] = v
    return plain


def save_run(path, model, opt, loop: Loop, stream, scheduler, autoclip, monitor) -> str:
    """One atomic checkpoint of the whole run (see the module docstring)."""
    meta: Dict[str, Any] = {}
    arrays: Dict[str, np.ndarray] = {}
    meta["train"] = {"version": LOOP_VERSION, "step": loop.step, "consumed": loop.consumed,
                     "rollbacks": loop.rollbacks, "optimizer_name": loop.opt_name}
    for name in ("losses", "grad_norms", "clip_coefs", "eval_losses"):
        arrays[f"history/{name}"] = np.asarray(getattr(loop, name), dtype=np.float64)
    for name in ("loss_steps", "eval_steps"):
        arrays[f"history/{name}"] = np.asarray(getattr(loop, name), dtype=np.int64)
    sd = getattr(stream, "state_dict", None)
    meta["stream"] = sd() if callable(sd) else None
    meta["scheduler"] = _jsonable_state(scheduler.state_dict(), "", {}) if scheduler is not None else None
    if autoclip is not None:
        meta["autoclip"] = _jsonable_state(autoclip.state_dict(), "autoclip/", arrays)
    if monitor is not None:
        meta["monitor"] = _jsonable_state(monitor.state_dict(), "monitor/", arrays)
    entries = _ckpt._entries(model, opt if callable(getattr(opt, "state_dict", None)) else None, meta)
    for k, v in arrays.items():
        entries[f"meta/{k}"] = v
    return _ckpt.write_arrays(path, entries)


def restore_run(path, model, opt, loop: Loop, stream, scheduler, autoclip, monitor) -> Dict[str, Any]:
    """Load ``save_run``'s file into everything given; returns its metadata.
    Everything is read and checked before the model and optimizer change."""
    arrays = _ckpt.read(path)
    model_sd, opt_sd, meta = _ckpt.split(arrays)
    info = meta.get("train")
    if not isinstance(info, dict) or info.get("version") != LOOP_VERSION:
        raise _ckpt.CheckpointError(f"{path}: not a checkpoint written by gradcore.train "
                                    "(no training state in its metadata)")
    if opt_sd is None and callable(getattr(opt, "load_state_dict", None)):
        raise KeyError(f"{path}: the checkpoint holds no optimizer state")
    if (meta.get("scheduler") is None) != (scheduler is None):
        have = "a" if meta.get("scheduler") is not None else "no"
        raise ValueError(f"{path}: the checkpoint has {have} learning-rate scheduler state; pass the same "
                         "scheduler= as the run that wrote it")
    restore = model.state_dict()
    model.load_state_dict(model_sd)
    try:
        if opt_sd is not None and callable(getattr(opt, "load_state_dict", None)):
            opt.load_state_dict(opt_sd)
        if scheduler is not None:
            scheduler.load_state_dict(meta["scheduler"])
    except BaseException:
        model.load_state_dict(restore)
        raise
    if autoclip is not None and meta.get("autoclip") is not None:
        autoclip.load_state_dict({**meta["autoclip"],
                                  **{k[9:]: v for k, v in meta.items() if k.startswith("autoclip/")}})
    if monitor is not None and meta.get("monitor") is not None:
        monitor.load_state_dict({**meta["monitor"],
                                 **{k[8:]: v for k, v in meta.items() if k.startswith("monitor/")}})
    loop.step, loop.consumed, loop.rollbacks = int(info["step"]), int(info["consumed"]), int(info["rollbacks"])
    for name in ("losses", "grad_norms", "clip_coefs", "eval_losses"):
        setattr(loop, name, [float(v) for v in meta[f"history/{name}"]])
    for name in ("loss_steps", "eval_steps"):
        setattr(loop, name, [int(v) for v in meta[f"history/{name}"]])
    return meta
