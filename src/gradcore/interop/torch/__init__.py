"""PyTorch interop: gradcore's kernels working on torch tensors' own memory.

- gradient tools, drop-ins for ``torch.nn.utils``: :func:`clip_grad_norm_`,
  :func:`clip_grad_value_`, :func:`get_total_norm`,
  :func:`clip_grads_with_norm_` (module :mod:`.clip`);
- :class:`GradMonitor`: global and per-parameter gradient norms of any
  ``torch.nn.Module`` after every backward, NaN/Inf located by parameter
  name and flat index, explosion/vanishing events (module :mod:`.monitor`);
- :class:`RNN`, :class:`LSTM`, :class:`GRU`: ``torch.nn`` recurrent modules
  running gradcore's fused forward and BPTT, with per-time-step gradient
  norms after backward (module :mod:`.rnn`).

PyTorch is imported when first needed, so ``import gradcore`` never needs it.
"""

from __future__ import annotations

from ._grads import gather
from .clip import clip_grad_norm_, clip_grad_value_, clip_grads_with_norm_, get_total_norm

__all__ = ["clip_grad_norm_", "clip_grad_value_", "clip_grads_with_norm_", "get_total_norm", "grad_arrays",
           "GradMonitor", "RNN", "LSTM", "GRU"]

_LAZY = {"GradMonitor": ".monitor", "RNN": ".rnn", "LSTM": ".rnn", "GRU": ".rnn"}


def grad_arrays(parameters, name: str = "parameters"):
    """The ``.grad`` of every float32/float64 parameter that has one, as NumPy
    arrays sharing the gradients' memory (each buffer once)."""
    from ._grads import as_list

    g = gather(as_list(parameters, name), name)
    out = []
    for t, a, d in zip(g.tensors, g.reads, g.direct):
        if not d and not (a.dtype.kind == "f" and t.dtype.itemsize == a.dtype.itemsize):
            raise TypeError(f"{name}: grad_arrays gives views of float32/float64 gradients only, got {t.dtype}")
        out.append(a)
    return out


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
