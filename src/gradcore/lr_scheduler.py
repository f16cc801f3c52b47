"""Learning-rate schedules in PyTorch's style (``gradcore.optim.lr_scheduler``).

A scheduler wraps a gradcore optimizer; building it sets the optimizer's
learning rate for step 0 and every ``step()`` moves to the next step
(``last_epoch`` += 1), setting ``optimizer.lr`` from a closed form of
``last_epoch`` and the base learning rate (the optimizer's ``lr`` when the
scheduler was built), so a restored state gives exactly the same rates:

- ``StepLR(opt, step_size, gamma=0.1)``: ``base * gamma ** (epoch // step_size)``;
- ``CosineAnnealingLR(opt, T_max, eta_min=0)``:
  ``eta_min + (base - eta_min) (1 + cos(pi epoch / T_max)) / 2`` (past
  ``T_max`` it rises again, as PyTorch's does);
- ``LinearLR(opt, start_factor=1/3, end_factor=1, total_iters=5)``: warm-up,
  ``base * (start + (end - start) min(epoch, total_iters) / total_iters)``.

``state_dict()`` / ``load_state_dict()`` hold the kind, the base rate, the
step and the settings (plain scalars); :func:`gradcore.train` steps a
scheduler once per training step and saves it in its checkpoints.
``scale(factor)`` multiplies the base rate (and CosineAnnealingLR's
``eta_min``): what a rollback with ``lr_backoff`` does.

>>> from gradcore import nn, optim
>>> opt = optim.SGD(nn.Dense(2, 1, seed=0), lr=0.1)
>>> s = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
>>> [round(s.step() or opt.lr, 4) for _ in range(4)]
[0.1, 0.05, 0.05, 0.025]
"""

from __future__ import annotations

import math
import numbers

__all__ = ["LRScheduler", "StepLR", "CosineAnnealingLR", "LinearLR"]


def _num(v, name, who, lo=None, lo_open=False, integer=False):
    if hasattr(v, "item") and getattr(v, "ndim", 1) == 0:
        v = v.item()
    if isinstance(v, bool) or not isinstance(v, numbers.Integral if integer else numbers.Real) \
            or not math.isfinite(v):
        kind = "an integer" if integer else "a finite number"
        raise TypeError(f"{who}: {name} must be {kind}, got {v!r}")
    if lo is not None and (v <= lo if lo_open else v < lo):
        raise ValueError(f"{who}: {name} must be {'>' if lo_open else '>='} {lo}, got {v!r}")
    return int(v) if integer else float(v)


class LRScheduler:
    """Base class: ``step()``, ``get_last_lr()``, ``state_dict()``,
    ``load_state_dict()``, ``scale(factor)``; subclasses give ``_lr(epoch)``."""

    _settings: tuple = ()

    def __init__(self, optimizer, last_epoch: int = -1):
        who = type(self).__name__
        if not hasattr(optimizer, "lr") or not callable(getattr(optimizer, "step", None)):
            raise TypeError(f"{who}: expected a gradcore optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lr = float(optimizer.lr)
        self.last_epoch = _num(last_epoch, "last_epoch", who, lo=-1, integer=True)
        self.step()

    def _lr(self, epoch: int) -> float:
        raise NotImplementedError

    def _apply(self) -> None:
        lr = self._lr(self.last_epoch)
        if not (math.isfinite(lr) and lr >= 0.0):
            raise ValueError(f"{type(self).__name__}: learning rate {lr!r} at step {self.last_epoch}")
        self.optimizer._lr = lr          # may be 0 (end of a cosine schedule)
        self._last_lr = lr

    def step(self) -> None:
        """Move to the next step and set the optimizer's learning rate."""
        self.last_epoch += 1
        self._apply()

    def get_last_lr(self) -> float:
        return self._last_lr

    def scale(self, factor: float) -> None:
        """Multiply the base learning rate by ``factor`` (> 0) from now on."""
        factor = _num(factor, "factor", type(self).__name__, lo=0.0, lo_open=True)
        self.base_lr *= factor
        if hasattr(self, "eta_min"):
            self.eta_min *= factor
        self._apply()

    def state_dict(self) -> dict:
        out = {"kind": type(self).__name__, "base_lr": self.base_lr, "last_epoch": self.last_epoch}
        out.update({k: getattr(self, k) for k in self._settings})
        return out

    def load_state_dict(self, state) -> None:
        """Restore :meth:`state_dict` (0-d arrays accepted); checked first."""
        who = f"{type(self).__name__}.load_state_dict"
        if not hasattr(state, "keys"):
            raise TypeError(f"{who}: expected a dict, got {type(state).__name__}")
        want = {"kind", "base_lr", "last_epoch", *self._settings}
        if set(state) != want:
            raise KeyError(f"{who}: expected the entries {sorted(want)}, got {sorted(state)}")
        kind = state["kind"]
        kind = kind.item() if hasattr(kind, "item") else kind
        if str(kind) != type(self).__name__:
            raise ValueError(f"{who}: the state is of a {kind!r} scheduler, this one is a {type(self).__name__!r}")
        base = _num(state["base_lr"], "base_lr", who, lo=0.0)
        epoch = _num(state["last_epoch"], "last_epoch", who, lo=0, integer=True)
        settings = {k: _num(state[k], k, who, integer=isinstance(getattr(self, k), int))
                    for k in self._settings}
        self.base_lr, self.last_epoch = base, epoch
        for k, v in settings.items():
            setattr(self, k, v)
        self._apply()

    def __repr__(self):
        return f"<{type(self).__name__} step {self.last_epoch}, lr {self._last_lr:.4g}>"


class StepLR(LRScheduler):
    """Decay by ``gamma`` every ``step_size`` steps."""

    _settings = ("step_size", "gamma")

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        self.step_size = _num(step_size, "step_size", "StepLR", lo=1, integer=True)
        self.gamma = _num(gamma, "gamma", "StepLR", lo=0.0, lo_open=True)
        super().__init__(optimizer, last_epoch)

    def _lr(self, epoch):
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class CosineAnnealingLR(LRScheduler):
    """Half a cosine from the base rate to ``eta_min`` over ``T_max`` steps."""

    _settings = ("T_max", "eta_min")

    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):
        self.T_max = _num(T_max, "T_max", "CosineAnnealingLR", lo=1, integer=True)
        self.eta_min = _num(eta_min, "eta_min", "CosineAnnealingLR", lo=0.0)
        super().__init__(optimizer, last_epoch)

    def _lr(self, epoch):
        return self.eta_min + (self.base_lr - self.eta_min) * (1.0 + math.cos(math.pi * epoch / self.T_max)) / 2.0


class LinearLR(LRScheduler):
    """Linear warm-up (or decay) of the factor from ``start_factor`` to
    ``end_factor`` over ``total_iters`` steps."""

    _settings = ("start_factor", "end_factor", "total_iters")

    def __init__(self, optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0, total_iters: int = 5,
                 last_epoch: int = -1):
        who = "LinearLR"
        self.start_factor = _num(start_factor, "start_factor", who, lo=0.0, lo_open=True)
        if self.start_factor > 1.0:
            raise ValueError(f"{who}: start_factor must be in (0, 1], got {start_factor!r}")
        self.end_factor = _num(end_factor, "end_factor", who, lo=0.0)
        if self.end_factor > 1.0:
            raise ValueError(f"{who}: end_factor must be in [0, 1], got {end_factor!r}")
        self.total_iters = _num(total_iters, "total_iters", who, lo=1, integer=True)
        super().__init__(optimizer, last_epoch)

    def _lr(self, epoch):
        f = self.start_factor + (self.end_factor - self.start_factor) * min(epoch, self.total_iters) / self.total_iters
        return self.base_lr * f
