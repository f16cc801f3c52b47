"""Sequence adapters: recurrent layers inside a ``Sequential``.

:class:`LastStep` (forward -> h_T (B, H)) and :class:`AllSteps` (forward ->
all states (T, B, H)) wrap an RNN / LSTM / GRU so it takes one input and
returns one output; :class:`TimeDistributed` applies a (B, D) layer such as
``Dense`` to every step of a (T, B, D) input as one (T*B, D) batch.

>>> import numpy as np
>>> from gradcore import nn
>>> model = nn.Sequential(nn.LastStep(nn.GRU(3, 8, seed=0)), nn.Dense(8, 1, seed=1))
>>> model.forward(np.zeros((10, 4, 3), np.float32)).shape
(4, 1)
"""

from __future__ import annotations

import numpy as np

from .module import Module

__all__ = ["LastStep", "AllSteps", "TimeDistributed"]


class _SeqAdapter(Module):
    def __init__(self, rnn, who):
        from .rnn import _Recurrent

        if not isinstance(rnn, _Recurrent):
            raise TypeError(f"{who}: expected a gradcore.nn RNN, LSTM or GRU, got {type(rnn).__name__}")
        self.add_module("rnn", rnn)
        self.dtype = rnn.dtype
        self._finalize()

    def _bind(self):
        self._rnn = self._children["rnn"]

    def _label(self):
        return f"{type(self).__name__}({self._children['rnn']._label()})" if "rnn" in self._children \
            else type(self).__name__


class LastStep(_SeqAdapter):
    """Sequential-friendly wrapper: forward(x) -> h_T (B, H) (zero initial
    state); backward(dy (B, H)) -> dx, with dy as dL/dh_T. For a stacked or
    bidirectional layer h_T is the top layer's final state of each direction,
    concatenated (B, D*H) (torch's ``cat(h_n[-2], h_n[-1])``). The recurrent
    layer is child ``"rnn"``; ``truncate`` applies to its backward."""

    def __init__(self, rnn, truncate=None):
        super().__init__(rnn, "LastStep")
        self.truncate = truncate
        self._top = None

    def forward(self, x):
        _, hT = self._rnn.forward(x)
        h = hT[0] if isinstance(hT, tuple) else hT
        rnn = self._rnn
        if rnn.num_layers * rnn.num_directions == 1 and h.ndim != 3:
            self._top = None
            return h
        D = rnn.num_directions
        top = np.moveaxis(h[-D:], 0, -2)                  # (..., D, H)
        self._top = (h.shape, top.shape)
        return top.reshape(top.shape[:-2] + (-1,))

    def backward(self, dy):
        if not _forwarded(self._rnn):
            raise RuntimeError(f"{self._label()}: backward called before forward")
        if self._top is not None:
            full, top = self._top
            if not isinstance(dy, np.ndarray) or dy.shape != top[:-2] + (top[-2] * top[-1],):
                raise ValueError(f"{self._label()}: dy must have shape {top[:-2] + (top[-2] * top[-1],)}, "
                                 f"got {getattr(dy, 'shape', type(dy).__name__)}")
            d_hT = np.zeros(full, dy.dtype)
            d_hT[full[0] - top[-2]:] = np.moveaxis(dy.reshape(top), -2, 0)
            dy = d_hT
        return self._rnn.backward(None, d_hT=dy, truncate=self.truncate)


def _forwarded(rnn):
    return rnn._x is not None or getattr(rnn, "_layout", None) is not None


class AllSteps(_SeqAdapter):
    """Sequential-friendly wrapper: forward(x) -> all states (T, B, H);
    backward(d_out (T, B, H)) -> dx. Follow it with ``TimeDistributed(Dense(...))``
    for a head on every step."""

    def __init__(self, rnn, truncate=None):
        super().__init__(rnn, "AllSteps")
        self.truncate = truncate

    def forward(self, x):
        out, _ = self._rnn.forward(x)
        return out

    def backward(self, dy):
        if not _forwarded(self._rnn):
            raise RuntimeError(f"{self._label()}: backward called before forward")
        return self._rnn.backward(dy, truncate=self.truncate)


class TimeDistributed(Module):
    """Apply a (B, D) -> (B, O) layer to every step of a (T, B, D) input as one
    (T*B, D) batch (one GEMM for a Dense head); child ``"layer"``."""

    def __init__(self, layer):
        if not isinstance(layer, Module):
            raise TypeError(f"TimeDistributed: layer must be a gradcore.nn.Module, got {type(layer).__name__}")
        self.add_module("layer", layer)
        self.dtype = layer.dtype
        self._tb = None
        self._finalize()

    def _bind(self):
        self._layer = self._children["layer"]

    def forward(self, x):
        if not isinstance(x, np.ndarray) or x.ndim != 3:
            raise ValueError(f"TimeDistributed: expected a 3-D input (T, B, D), got "
                             f"{getattr(x, 'shape', type(x).__name__)}")
        T, B, D = x.shape
        y = self._layer.forward(np.ascontiguousarray(x).reshape(T * B, D))
        self._tb = (T, B)
        return y.reshape(T, B, -1)

    def backward(self, dy):
        if self._tb is None:
            raise RuntimeError("TimeDistributed: backward called before forward")
        T, B = self._tb
        if not isinstance(dy, np.ndarray) or dy.ndim != 3 or dy.shape[:2] != (T, B):
            raise ValueError(f"TimeDistributed: dy must have shape ({T}, {B}, O), got "
                             f"{getattr(dy, 'shape', type(dy).__name__)}")
        dx = self._layer.backward(np.ascontiguousarray(dy).reshape(T * B, -1))
        return None if dx is None else dx.reshape(T, B, -1)
