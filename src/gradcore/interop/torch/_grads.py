"""Gather the gradients of torch parameters for gradcore's kernels.

Contract: :func:`gather` validates every tensor (a dense CPU tensor of
float16, bfloat16, float32 or float64) before anything is written, drops
exact repeats of one buffer (a parameter tied into two places, or passed
twice) and refuses partial overlaps (``gradcore.clip.aliases``), and sorts the
rest into

- ``direct``: C-contiguous float32/float64 -- NumPy views of the tensors'
  own memory, read and written in place by the C kernels (zero-copy);
- ``other``: non-contiguous float32/float64 and every float16/bfloat16
  tensor -- read through a contiguous float32/float64 copy (the norm is
  accumulated in float64 either way) and written in place through the
  tensor's own strides by torch's in-place ops.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import List, Sequence

import numpy as np

from ...backend import kernels
from ...clip import aliases


_TORCH: list = []  # the torch module, once imported


def torch_module():
    if _TORCH:
        return _TORCH[0]
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "gradcore.interop.torch needs PyTorch: pip install 'gradcore[torch]'"
        ) from exc
    _TORCH.append(torch)
    return torch


@dataclass
class Gathered:
    """Validated, de-duplicated gradients (see the module docstring)."""

    tensors: list = field(default_factory=list)   # the gradient tensors kept, in order
    index: List[int] = field(default_factory=list)  # their position in the caller's list
    reads: list = field(default_factory=list)     # float32/float64 arrays to read (views or copies)
    direct: List[bool] = field(default_factory=list)  # reads[k] is the tensor's own memory
    dtypes: list = field(default_factory=list)    # the tensors' torch dtypes

    def write_views(self):
        """The arrays the C kernels may write in place (direct ones)."""
        return [a for a, d in zip(self.reads, self.direct) if d]

    def others(self):
        """The tensors written through torch (non-contiguous or half precision)."""
        return [t for t, d in zip(self.tensors, self.direct) if not d]


def as_list(parameters, name: str):
    """``parameters`` as a list (a single tensor, or any iterable of them)."""
    torch = torch_module()
    if isinstance(parameters, torch.Tensor):
        return [parameters]
    if parameters is None or isinstance(parameters, (str, bytes, numbers.Number)) or not hasattr(parameters, "__iter__"):
        raise TypeError(f"{name}: expected a torch.Tensor or an iterable of tensors, got "
                        f"{'None' if parameters is None else type(parameters).__name__}")
    return list(parameters)


def _np_view(t):
    """A NumPy view of ``t``'s memory with ``t``'s strides (int16 for bfloat16)."""
    torch = torch_module()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy()
    return t.numpy()


def _disjoint(tensors) -> bool:
    """True when every tensor is contiguous and no two byte ranges overlap
    (then no buffer repeats and none overlaps another: ``aliases`` has nothing
    to find). One sort of ``data_ptr`` ranges, no NumPy views needed."""
    spans = []
    for t in tensors:
        if not t.is_contiguous():
            return False
        n = t.nbytes
        if n:
            p = t.data_ptr()
            spans.append((p, p + n))
    spans.sort()
    end = 0
    for lo, hi in spans:
        if lo < end:
            return False
        end = hi
    return True


def _refuse(g, label):
    torch = torch_module()
    if g.layout != torch.strided:
        raise TypeError(f"{label}: expected a dense (strided) tensor, got layout {g.layout}")
    if g.device.type != "cpu":
        raise ValueError(f"{label}: expected a CPU tensor, got device {g.device}; gradcore runs on the CPU "
                         "(use torch.nn.utils for other devices)")
    raise TypeError(f"{label}: expected dtype torch.float32, torch.float64, torch.float16 or "
                    f"torch.bfloat16, got {g.dtype}")


def gather(items, name: str = "parameters", grads: bool = True) -> Gathered:
    """Validate ``items`` (parameters whose ``.grad`` is taken, or tensors
    themselves with ``grads=False``) and sort them (see the module docstring).
    Parameters without a gradient are skipped, as torch does."""
    torch = torch_module()
    ok = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
    strided = torch.strided
    chosen, index = [], []
    for i, p in enumerate(items):
        if not isinstance(p, torch.Tensor):
            raise TypeError(f"{name}[{i}]: expected a torch.Tensor, got {type(p).__name__}")
        g = p.grad if grads else p
        if g is None:
            continue
        if g.layout is not strided or not g.is_cpu or g.dtype not in ok:
            _refuse(g, f"{name}[{i}].grad" if grads else f"{name}[{i}]")
        chosen.append(g.detach() if g.requires_grad else g)
        index.append(i)
    views = [_np_view(g) for g in chosen]
    keep: Sequence[int] = range(len(views))
    if len(views) > 1 and not _disjoint(chosen):
        # positions as in the caller's list (None where a parameter has no gradient)
        spread = [None] * (index[-1] + 1)
        for k, v in zip(index, views):
            spread[k] = v
        dups = aliases(spread, name)
        if dups:
            keep = [k for k, i in enumerate(index) if i not in dups]
    out = Gathered()
    for k in keep:
        g, v = chosen[k], views[k]
        out.tensors.append(g)
        out.index.append(index[k])
        out.dtypes.append(g.dtype)
        if g.dtype in (torch.float32, torch.float64):
            out.reads.append(v)  # BufferList reads a non-contiguous view through a contiguous copy
            out.direct.append(bool(v.flags.c_contiguous))
        else:
            out.reads.append(g.float().numpy())
            out.direct.append(False)
    return out


def result_dtype(dtypes):
    """float64 if any gradient is float64, else float32 (also for half
    precision: its norm can exceed float16's range)."""
    torch = torch_module()
    return torch.float64 if any(d == torch.float64 for d in dtypes) else torch.float32


def fast(items, grads: bool = True, writable: bool = True):
    """The common case in one pass: every kept tensor (``.grad`` of each of
    ``items``, or the items themselves with ``grads=False``) gives a NumPy
    view of its own memory (``Tensor.numpy``: dense CPU, no autograd) and
    the backend's ``BufferList`` accepts them all (float32/float64,
    C-contiguous when ``writable``; exact repeats counted once). Returns
    ``(buffer list, any float64, any tensor)``, or None when anything else
    is met: then :func:`gather` sorts the tensors and names a fault. Nothing
    is written either way."""
    torch = torch_module()
    Tensor = torch.Tensor
    arrays = []
    wide = False
    try:
        for p in items:
            if not isinstance(p, Tensor):
                return None
            g = p.grad if grads else p
            if g is not None:
                a = g.numpy()
                arrays.append(a)
                if a.itemsize == 8:
                    wide = True
        return kernels().BufferList(arrays, "parameters", None, writable), wide, bool(arrays)
    except (TypeError, ValueError, RuntimeError):  # a dtype, device, layout, autograd or memory case
        return None
