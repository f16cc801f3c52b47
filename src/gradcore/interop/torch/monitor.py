"""``GradMonitor`` for any ``torch.nn.Module``: gradcore's monitor, fed by
the module's ``.grad`` tensors after every backward.

Contract: ``GradMonitor(module)`` records, at the end of every backward pass
that goes through ``module``'s forward output (``auto=True``, the default),
the global gradient norm and every parameter's gradient norm from ONE C
pass over all ``.grad`` tensors (one ``BufferList.norm`` call: the C kernel
walks the list of buffers, no call per tensor), NaN/Inf located by parameter
name and flat index, explosion and vanishing events, and the per-time-step
gradient norms of every sub-module that exposes ``timestep_grad_norms``
(gradcore's torch recurrent modules). ``history``, ``events``,
``summary()``, ``to_dataframe()``, ``to_csv()`` are those of
:class:`gradcore.GradMonitor`. With ``auto=False`` call
``after_backward(step, loss)`` yourself after each backward (and
optionally ``after_step(clip_coef)`` after the optimizer step, which adds
the weight norms and the update-to-weight ratio).

Parameters are those of ``module.named_parameters()`` with
``requires_grad`` (torch already lists a tied parameter once); a parameter
without a gradient after a backward counts as an all-zero gradient.
float32/float64 gradients are read in place; float16/bfloat16 ones through
a float32 copy.
"""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from ...monitor import GradMonitor as _NativeMonitor
from ._grads import torch_module

__all__ = ["GradMonitor"]


def _read(t):
    """A float32/float64 NumPy array of ``t``'s values (a view when possible)."""
    torch = torch_module()
    t = t.detach()
    if t.device.type != "cpu":
        raise ValueError(f"GradMonitor: expected CPU tensors, got device {t.device}")
    if t.dtype in (torch.float32, torch.float64):
        return t.numpy()
    return t.float().numpy()


class _TorchModel:
    """What gradcore's monitor reads from a model, taken from a torch module."""

    def __init__(self, module):
        self.module = module
        self.named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        self._empty: Dict[object, np.ndarray] = {}

    def _none(self, p):
        dt = np.float64 if p.dtype == torch_module().float64 else np.float32
        if dt not in self._empty:
            self._empty[dt] = np.zeros(0, dtype=dt)
        return self._empty[dt]

    def parameters(self):
        return {n: _read(p) for n, p in self.named}

    def gradients(self):
        return {n: (self._none(p) if p.grad is None else _read(p.grad)) for n, p in self.named}

    def named_modules(self):
        return list(self.module.named_modules())


class GradMonitor(_NativeMonitor):
    """Watch the gradients of a torch module (see the module docstring).

    >>> import torch
    >>> from gradcore.interop.torch import GradMonitor
    >>> net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    >>> mon = GradMonitor(net)
    >>> for step in range(3):
    ...     net.zero_grad()
    ...     net(torch.randn(8, 3)).pow(2).mean().backward()
    >>> len(mon), sorted(mon.history)[:3]
    (3, ['clip_coef', 'exploding', 'grad_norm'])
    >>> mon.remove()
    """

    def __init__(self, module, explode_factor: float = 10.0, window: int = 20, vanish_threshold: float = 1e-7,
                 growth_factor: float = 2.0, auto: bool = True):
        torch = torch_module()
        if not isinstance(module, torch.nn.Module):
            raise TypeError(f"module: expected a torch.nn.Module, got {type(module).__name__}")
        if not isinstance(auto, bool):
            raise TypeError(f"auto: expected True or False, got {auto!r}")
        super().__init__(_TorchModel(module), explode_factor=explode_factor, window=window,
                         vanish_threshold=vanish_threshold, growth_factor=growth_factor)
        self.module = module
        self._queued = False
        self._handle = module.register_forward_hook(self._on_forward) if auto else None

    # the end of the backward pass: torch's engine runs queued callbacks after
    # every gradient of that pass has been accumulated into .grad
    def _on_forward(self, module, inputs, output):
        torch = torch_module()
        if not torch.is_grad_enabled():
            return
        for t in _tensors(output):
            if t.requires_grad:
                t.register_hook(self._on_grad)
                return

    def _on_grad(self, grad):
        if not self._queued:
            self._queued = True
            torch_module().autograd.Variable._execution_engine.queue_callback(self._on_backward_end)
        return None

    def _on_backward_end(self):
        self._queued = False
        self.after_backward()

    def remove(self) -> None:
        """Stop recording automatically (the history is kept)."""
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
        return False

    def __repr__(self) -> str:
        return f"<gradcore.interop.torch.GradMonitor {len(self)} steps, {len(self.events)} events>"


def _tensors(output):
    torch = torch_module()
    if isinstance(output, torch.Tensor):
        yield output
    elif isinstance(output, (tuple, list)):
        for o in output:
            yield from _tensors(o)
    elif isinstance(output, dict):
        for o in output.values():
            yield from _tensors(o)
