"""Optimizers over a model's parameter arena: one norm pass over the flat
gradient buffer, then one fused update pass (the clip coefficient folded in).

``SGD`` and ``Adam`` follow PyTorch's update formulas (``torch.optim.SGD``
with dampening 0, ``torch.optim.Adam`` / ``AdamW`` without amsgrad).
``step(clip_norm=None)``:

1. computes the global L2 norm of ``model.arena.grad`` (one pass);
2. if it is not finite (NaN/Inf gradients), updates nothing, counts the step
   in ``skipped`` and returns the norm;
3. otherwise updates every parameter in one kernel call, reading the gradient
   as ``grad * c`` with ``c = min(1, clip_norm / (norm + 1e-6))`` (``c = 1``
   without ``clip_norm``; the same coefficient as ``clip_grad_norm_``); the
   gradient buffer itself is not modified;
4. returns the pre-clip norm.

Build the optimizer after the model is complete (containers re-home their
children's parameters into a new arena at construction).

State: ``state_dict()`` returns plain data (the optimizer's kind, its
hyperparameters and learning rate as Python scalars, step counters, and
copies of its state buffers in the arena layout); ``load_state_dict(state)``
checks everything (kind, sizes, dtypes, values) before writing anything and
restores it bit for bit, so a run continued from it takes exactly the steps
the original would have. Optimizers pickle and deep-copy (with their model,
the copy keeps updating the copy's arena).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .backend import kernels
from .adaptive import AutoClip, adaptive_clip_
from .clip import clip_coefficient
from .nn._util import check_real
from .nn.arena import Arena
from .nn.module import Module

__all__ = ["Optimizer", "SGD", "Adam", "AdamW"]


class Optimizer:
    """Shared machinery: the arena, the learning rate, the norm pass."""

    def __init__(self, model, lr):
        who = type(self).__name__
        if isinstance(model, Module):
            arena = model._require_arena()
        elif isinstance(model, Arena):
            arena = model
        else:
            raise TypeError(f"{who}: expected a gradcore.nn.Module or Arena, got {type(model).__name__}")
        self.model = model
        self.arena = arena
        self.param = arena.data
        self.grad = arena.grad
        self.lr = lr
        self.steps = 0      # updates applied
        self.skipped = 0    # steps refused because the gradient norm was not finite
        self._norm_cache = (None, None)
        self.last_clip_norm = None  # threshold used by the last step (None: no clipping)

    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value) -> None:
        self._lr = check_real(value, "lr", type(self).__name__, lo=0.0, lo_open=True)

    def zero_grad(self) -> None:
        """Zero the gradients (one fill of the arena's gradient buffer)."""
        self.grad.fill(0)

    def grad_norm(self) -> float:
        """Global L2 norm of the gradient buffer (one pass, overflow-safe in C)."""
        k = kernels()
        mod, bl = self._norm_cache
        if mod is not k:
            bl = k.BufferList([self.grad], "grad", None, False)
            self._norm_cache = (k, bl)
        return float(bl.norm(2.0, False)[0])

    def _scale(self, clip_norm):
        """(pre-clip norm, grad_scale) or (norm, None) when not finite."""
        norm = self.grad_norm()
        if not math.isfinite(norm):
            return norm, None
        if clip_norm is None:
            return norm, 1.0
        coef = clip_coefficient(norm, clip_norm)
        if 0.0 < coef < 1.1754943508222875e-38 and self.grad.dtype == np.float32:
            # folded into the update the coefficient would round to 0 in
            # float32: scale the gradients first (in double, once per element)
            kernels().BufferList([self.grad], "grad", None, True).scale_(coef)
            return norm, 1.0
        return norm, coef

    def step(self, clip_norm=None, agc=None, norm=None) -> float:
        """One update; returns the pre-clip global gradient norm (see module docstring).

        ``clip_norm``: a number, or a :class:`gradcore.AutoClip` (the norm is
        recorded and the percentile threshold used). ``agc``: unit-wise
        adaptive clipping factor (:func:`gradcore.adaptive_clip_`, eps 1e-3,
        or a ``(clipping, eps)`` pair), applied in place to the gradients
        before the norm pass. ``last_clip_norm`` is the threshold used.
        ``norm``: the global L2 norm of the gradient buffer when the caller
        has just computed it (``grad_norm()``), to skip that pass (ignored
        with ``agc``, which changes the gradients first)."""
        who = type(self).__name__
        if isinstance(self.model, Module) and self.model.arena is not self.arena:
            raise RuntimeError(f"{who}: the model's parameters moved to a new arena (it was put in a "
                               "container or re-finalized) after this optimizer was built; build the "
                               "optimizer after the model is complete")
        autoclip = None
        if isinstance(clip_norm, AutoClip):
            autoclip, clip_norm = clip_norm, None
        elif clip_norm is not None:
            clip_norm = check_real(clip_norm, "clip_norm", who, lo=0.0, lo_open=True)
        if agc is not None:
            c, e = agc if isinstance(agc, tuple) else (agc, 1e-3)
            adaptive_clip_(self.arena.params, self.arena.grads, c, e)
            norm = None
        if autoclip is not None:
            norm = self.grad_norm() if norm is None else float(norm)
            clip_norm = autoclip.observe(norm)
            scale = None if not math.isfinite(norm) else (
                1.0 if clip_norm is None else clip_coefficient(norm, clip_norm))
        elif norm is None:
            norm, scale = self._scale(clip_norm)
        else:
            norm = float(norm)
            scale = None if not math.isfinite(norm) else (1.0 if clip_norm is None
                                                          else clip_coefficient(norm, clip_norm))
        self.last_clip_norm = clip_norm
        if scale is None:
            self.skipped += 1
            return norm
        self._update(scale)
        self.steps += 1
        return norm

    def _update(self, scale):
        raise NotImplementedError

    # ------------------------------------------------------------- state
    #: hyperparameter names saved in ``state_dict`` (besides ``lr``)
    _hyper: tuple = ()
    #: state buffer attributes in the arena layout (None when unused)
    _buffers: tuple = ()
    def __repr__(self) -> str:
        """Class, learning rate, hyperparameters, size and progress.

        >>> from gradcore import nn, optim
        >>> optim.SGD(nn.Dense(2, 1, seed=0), lr=0.1, momentum=0.9)
        SGD(lr=0.1, momentum=0.9, nesterov=False, weight_decay=0.0)  # 3 parameters, 0 steps
        """
        hyper = "".join(f", {name}={getattr(self, name)!r}" for name in self._hyper)
        skipped = f", {self.skipped} skipped" if self.skipped else ""
        return (f"{type(self).__name__}(lr={self._lr!r}{hyper})  # {self.arena.size:,} parameters, "
                f"{self.steps} steps{skipped}")

    #: integer counters saved besides ``steps`` and ``skipped``
    _counters: tuple = ()

    def state_dict(self) -> dict:
        """Plain data describing this optimizer: ``kind`` (class name),
        ``lr``, the hyperparameters, ``steps``, ``skipped``, the counters
        (Adam: ``t``) and copies of the state buffers (SGD: ``velocity`` when
        momentum is used, Adam: ``m``, ``v``).

        >>> from gradcore import nn, optim
        >>> opt = optim.Adam(nn.Dense(2, 1, seed=0), lr=0.01)
        >>> sorted(opt.state_dict())[:4]
        ['betas', 'decoupled', 'eps', 'kind']
        """
        out = {"kind": type(self).__name__, "lr": self._lr, "steps": int(self.steps),
               "skipped": int(self.skipped)}
        for name in self._hyper:
            out[name] = getattr(self, name)
        for name in self._counters:
            out[name] = int(getattr(self, name))
        for name in self._buffers:
            buf = getattr(self, name)
            if buf is not None:
                out[name] = buf.copy()
        return out

    def load_state_dict(self, state) -> None:
        """Restore what :meth:`state_dict` returned (values may also be 0-d
        NumPy arrays, as read back from a checkpoint). Raises ``KeyError`` /
        ``TypeError`` / ``ValueError`` naming the entry on a mismatch (other
        optimizer kind, missing or unexpected entries, other size or dtype);
        nothing is changed then."""
        who = f"{type(self).__name__}.load_state_dict"
        if not hasattr(state, "keys"):
            raise TypeError(f"{who}: expected a dict, got {type(state).__name__}")
        kind = _scalar(state.get("kind"))
        if kind != type(self).__name__:
            raise ValueError(f"{who}: the state is of a {kind!r} optimizer, this one is a {type(self).__name__!r}")
        want = {"kind", "lr", "steps", "skipped", *self._hyper, *self._counters,
                *(b for b in self._buffers if getattr(self, b) is not None)}
        missing = sorted(want - set(state))
        unexpected = sorted(set(state) - want)
        if missing or unexpected:
            raise KeyError(f"{who}: missing entries {missing}, unexpected entries {unexpected} "
                           f"(expected {sorted(want)})")
        staged = {}
        for name in self._counters + ("steps", "skipped"):
            v = _scalar(state[name])
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0:
                raise ValueError(f"{who}: {name!r} must be an integer >= 0, got {v!r}")
            staged[name] = int(v)
        for name in self._buffers:
            dst = getattr(self, name)
            if dst is None:
                continue
            src = state[name]
            if not isinstance(src, np.ndarray):
                raise TypeError(f"{who}: {name!r} must be an ndarray, got {type(src).__name__}")
            if src.shape != dst.shape:
                raise ValueError(f"{who}: {name!r} has shape {src.shape}, expected {dst.shape} "
                                 "(a state saved for another model?)")
            if src.dtype != dst.dtype:
                raise TypeError(f"{who}: {name!r} has dtype {src.dtype}, expected {dst.dtype}")
        # hyperparameters: validated by building a scratch copy of the settings
        hyper = {name: _scalar(state[name]) for name in self._hyper}
        self._check_hyper(hyper, who)
        check_real(_scalar(state["lr"]), "lr", who, lo=0.0, lo_open=True)
        # everything checked: write
        self.lr = _scalar(state["lr"])
        for name, v in hyper.items():
            setattr(self, name, v)
        for name, v in staged.items():
            setattr(self, name, v)
        for name in self._buffers:
            dst = getattr(self, name)
            if dst is not None:
                np.copyto(dst, state[name])

    def _check_hyper(self, hyper: dict, who: str) -> None:
        raise NotImplementedError

    # ------------------------------------------------------- copy, pickle
    def __getstate__(self):
        state = self.__dict__.copy()
        state["_norm_cache"] = (None, None)   # holds the kernel module
        state.pop("param", None)
        state.pop("grad", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.param = self.arena.data
        self.grad = self.arena.grad


def _scalar(v):
    """A Python scalar from a scalar or a 0-d / 1-element array (what a
    checkpoint gives back); tuples stay tuples."""
    if isinstance(v, np.ndarray):
        if v.ndim == 0:
            return v.item()
        if v.ndim == 1:
            return tuple(x.item() for x in v)
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, list):
        return tuple(v)
    return v


class SGD(Optimizer):
    """SGD with optional (Nesterov) momentum and L2 weight decay added to the
    gradient (PyTorch formulas, dampening 0)."""

    def __init__(self, model, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(model, lr)
        who = "SGD"
        self.momentum = check_real(momentum, "momentum", who, lo=0.0)
        self.nesterov = bool(nesterov)
        self.weight_decay = check_real(weight_decay, "weight_decay", who, lo=0.0)
        if self.nesterov and self.momentum == 0.0:
            raise ValueError("SGD: nesterov=True needs momentum > 0")
        self.velocity = self.arena.zeros() if self.momentum != 0.0 else None

    _hyper = ("momentum", "nesterov", "weight_decay")
    _buffers = ("velocity",)

    def _check_hyper(self, hyper, who):
        mom = check_real(hyper["momentum"], "momentum", who, lo=0.0)
        check_real(hyper["weight_decay"], "weight_decay", who, lo=0.0)
        if not isinstance(hyper["nesterov"], (bool, np.bool_)):
            raise TypeError(f"{who}: 'nesterov' must be a bool, got {hyper['nesterov']!r}")
        if (mom != 0.0) != (self.velocity is not None):
            raise ValueError(f"{who}: the state has momentum {mom!r}; this optimizer was built with "
                             f"momentum {self.momentum!r} (with and without momentum do not mix)")
        if hyper["nesterov"] and mom == 0.0:
            raise ValueError(f"{who}: nesterov=True needs momentum > 0")
        hyper["nesterov"] = bool(hyper["nesterov"])
        hyper["momentum"] = float(mom)
        hyper["weight_decay"] = float(hyper["weight_decay"])

    def _update(self, scale):
        kernels().sgd_step(self.param, self.grad, self.velocity, self._lr, self.momentum, self.nesterov,
                           self.weight_decay, scale)


class Adam(Optimizer):
    """Adam (``decoupled=False``: L2 weight decay added to the gradient) or
    AdamW (``decoupled=True``: param *= 1 - lr * weight_decay), PyTorch
    formulas with bias correction; state ``m``, ``v`` (arena layout), ``t``."""

    def __init__(self, model, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False):
        super().__init__(model, lr)
        who = "Adam"
        try:
            b1, b2 = betas
        except (TypeError, ValueError):
            raise TypeError(f"{who}: betas must be a pair (beta1, beta2), got {betas!r}") from None
        self.betas = (check_real(b1, "beta1", who, lo=0.0, hi=1.0, hi_open=True),
                      check_real(b2, "beta2", who, lo=0.0, hi=1.0, hi_open=True))
        self.eps = check_real(eps, "eps", who, lo=0.0)
        self.weight_decay = check_real(weight_decay, "weight_decay", who, lo=0.0)
        self.decoupled = bool(decoupled)
        self.m = self.arena.zeros()
        self.v = self.arena.zeros()
        self.t = 0

    _hyper = ("betas", "eps", "weight_decay", "decoupled")
    _buffers = ("m", "v")
    _counters = ("t",)

    def _check_hyper(self, hyper, who):
        betas = hyper["betas"]
        if not isinstance(betas, tuple) or len(betas) != 2:
            raise TypeError(f"{who}: 'betas' must be a pair, got {betas!r}")
        hyper["betas"] = (check_real(betas[0], "beta1", who, lo=0.0, hi=1.0, hi_open=True),
                          check_real(betas[1], "beta2", who, lo=0.0, hi=1.0, hi_open=True))
        hyper["eps"] = check_real(hyper["eps"], "eps", who, lo=0.0)
        hyper["weight_decay"] = check_real(hyper["weight_decay"], "weight_decay", who, lo=0.0)
        if not isinstance(hyper["decoupled"], (bool, np.bool_)):
            raise TypeError(f"{who}: 'decoupled' must be a bool, got {hyper['decoupled']!r}")
        hyper["decoupled"] = bool(hyper["decoupled"])

    def _update(self, scale):
        self.t += 1
        b1, b2 = self.betas
        kernels().adam_step(self.param, self.grad, self.m, self.v, self.t, self._lr, b1, b2, self.eps,
                            self.weight_decay, self.decoupled, scale)


class AdamW(Adam):
    """AdamW: :class:`Adam` with decoupled weight decay (default 0.01, as
    ``torch.optim.AdamW``)."""

    def __init__(self, model, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(model, lr, betas, eps, weight_decay, decoupled=True)


# ``gradcore.optim.lr_scheduler`` (PyTorch's spelling); the module lives in
# gradcore/lr_scheduler.py and is registered under both names.
import sys as _sys  # noqa: E402

from . import lr_scheduler  # noqa: E402

_sys.modules[__name__ + ".lr_scheduler"] = lr_scheduler
