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
"""

from __future__ import annotations

import math

from .backend import kernels
from .adaptive import AutoClip, adaptive_clip_
from .clip import clip_coefficient
from .nn._util import check_real
from .nn.arena import Arena
from .nn.module import Module

__all__ = ["Optimizer", "SGD", "Adam"]


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
        return norm, clip_coefficient(norm, clip_norm)

    def step(self, clip_norm=None, agc=None) -> float:
        """One update; returns the pre-clip global gradient norm (see module docstring).

        ``clip_norm``: a number, or a :class:`gradcore.AutoClip` (the norm is
        recorded and the percentile threshold used). ``agc``: unit-wise
        adaptive clipping factor (:func:`gradcore.adaptive_clip_`, eps 1e-3,
        or a ``(clipping, eps)`` pair), applied in place to the gradients
        before the norm pass. ``last_clip_norm`` is the threshold used."""
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
        if autoclip is not None:
            norm = self.grad_norm()
            clip_norm = autoclip.observe(norm)
            scale = None if not math.isfinite(norm) else (
                1.0 if clip_norm is None else clip_coefficient(norm, clip_norm))
        else:
            norm, scale = self._scale(clip_norm)
        self.last_clip_norm = clip_norm
        if scale is None:
            self.skipped += 1
            return norm
        self._update(scale)
        self.steps += 1
        return norm

    def _update(self, scale):
        raise NotImplementedError


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

    def _update(self, scale):
        self.t += 1
        b1, b2 = self.betas
        kernels().adam_step(self.param, self.grad, self.m, self.v, self.t, self._lr, b1, b2, self.eps,
                            self.weight_decay, self.decoupled, scale)
