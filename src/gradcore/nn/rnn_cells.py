"""One time step: ``RNNCell``, ``LSTMCell``, ``GRUCell`` with torch.nn's semantics.

``cell.forward(x, hx=None)``: x (B, I) or unbatched (I,), hx None (zeros) or
(B, H) / (H,) (LSTMCell: a pair (h, c)) -> h' (LSTMCell: (h', c')), the
same layout. ``cell.backward(dh, dc=None)`` (LSTMCell: ``dc`` or ``dh`` as a
pair) accumulates the parameter gradients into the model's arena, returns
dx and sets ``dh0`` (``dc0``): the gradient with respect to hx. Parameters
``weight_ih`` (G*H, I), ``weight_hh`` (G*H, H), ``bias_ih``, ``bias_hh`` as
torch's cells (``torch_state_dict`` / ``load_torch_state_dict`` /
``load_torch`` exchange them unchanged). The maths is the recurrent
layers' kernels with T = 1 (one fused forward call, one fused backward
call), so a cell and a one-step layer agree bit for bit.

``backward`` applies to the last ``forward`` (one step; LSTM/GRU consume
its gate cache): to backpropagate through a sequence, use the layers. The
returned arrays are buffers reused by the next call; a state taken from
them may be passed back as the next call's hx.

>>> import numpy as np
>>> from gradcore import nn
>>> cell = nn.LSTMCell(3, 4, dtype="float64", seed=0)
>>> h, c = cell.forward(np.ones((2, 3)))
>>> h, c = cell.forward(np.ones((2, 3)), (h, c))      # the next step
>>> dx = cell.backward(np.ones((2, 4)))
>>> dx.shape, cell.dh0.shape, cell.dc0.shape
((2, 3), (2, 4), (2, 4))
"""

from __future__ import annotations

import numpy as np

from .. import _contract
from ..interop import torch_state as _torch_state
from ._recurrent import CELLS, _Driver, check_bias
from ._util import check_size, seed_rng
from .arena import as_float_dtype
from .module import Module
from .rnn import draw_unit

__all__ = ["RNNCell", "LSTMCell", "GRUCell"]


class _RecurrentCell(_Driver, Module):
    """A one-step driver (T = 1): checks x and hx in the cell's layout."""

    _kind = "rnn"

    def __init__(self, input_size, hidden_size, bias=True, *, init=None, recurrent_init=None,
                 bias_init=None, dtype="float32", seed=None):
        who = type(self).__name__
        cell = self._cell = CELLS[self._kind]
        self.G = cell.G
        self.input_size = check_size(input_size, "input_size", who)
        self.hidden_size = check_size(hidden_size, "hidden_size", who)
        self.dtype = as_float_dtype(dtype, f"{who} dtype")
        self.bias = check_bias(bias, who, cell.single_ok)
        rng = seed_rng(seed, who)
        draw_unit(self, "", self.input_size, rng, init, recurrent_init, bias_init,
                  f"{who}({self.input_size}, {self.hidden_size})")
        self._batched = True
        self._reset_driver()
        self._finalize()

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        return s if self.bias is True else s + f", bias={self.bias!r}"

    def _bind(self):
        self._bind_views()

    def _step_state(self, s, name, B, batched):
        if s is None:
            return None
        H = self.hidden_size
        want = (B, H) if batched else (H,)
        s = self._check_array(s, name, f"{want}")
        if s.shape != want:
            raise ValueError(f"{self._label()}: expected {name} of shape {want}, got {s.shape}")
        return s if batched else s[None]

    def forward(self, x, hx=None):
        """x (B, I) / (I,), hx None / (B, H) / (H,) (LSTMCell: a pair) -> h'
        (LSTMCell: (h', c')) in the same layout."""
        I = self.input_size
        x = self._check_array(x, "x", f"(B, {I}) or ({I},)")
        if x.ndim not in (1, 2) or x.shape[-1] != I:
            raise ValueError(f"{self._label()}: expected x of shape (B, {I}) or ({I},), got {x.shape}")
        if x.ndim == 2 and x.shape[0] < 1:
            raise ValueError(f"{self._label()}: the batch is empty (x shape {x.shape}); need B >= 1")
        batched = x.ndim == 2
        B = x.shape[0] if batched else 1
        if hx is not None:
            if self._cell.n_states == 2:
                if not (isinstance(hx, (tuple, list)) and len(hx) == 2):
                    raise TypeError(f"{self._label()}: hx must be None or a pair (h, c), got "
                                    f"{type(hx).__name__}")
                hx = (self._step_state(hx[0], "hx[0] (h)", B, batched),
                      self._step_state(hx[1], "hx[1] (c)", B, batched))
            else:
                hx = self._step_state(hx, "hx", B, batched)
        _, hT = self._run_forward(np.ascontiguousarray(x).reshape(1, B, I), hx, False, _unit=True)
        self._batched = batched
        if batched:
            return hT
        return (hT[0][0], hT[1][0]) if self._cell.n_states == 2 else hT[0]

    def backward(self, dh, dc=None):
        """dh = dL/dh' (LSTMCell also dc = dL/dc', or dh as a pair) -> dx;
        sets ``dh0`` (``dc0``), the gradients with respect to hx."""
        if self._x is None or not self._cache_ok:
            self._check_cache()
        B, batched = self._shape[1], self._batched
        lstm = self._cell.n_states == 2
        if lstm and isinstance(dh, (tuple, list)):
            if len(dh) != 2 or dc is not None:
                raise TypeError(f"{self._label()}: dh must be an array or a pair (dh, dc)")
            dh, dc = dh
        elif not lstm and dc is not None:
            raise TypeError(f"{self._label()}: dc is for LSTMCell only")
        if dh is None:
            raise TypeError(f"{self._label()}: dh must be an array of shape "
                            f"{(B, self.hidden_size) if batched else (self.hidden_size,)}")
        dh = self._step_state(dh, "dh", B, batched)
        dc = self._step_state(dc, "dc", B, batched)
        dx = self._run_backward(None, dh, None, False, dc, _unit=True)
        if not batched:
            self.dh0 = self.dh0[0]
            if lstm:
                self.dc0 = self.dc0[0]
            return dx[0, 0]
        return dx[0]

    def torch_state_dict(self):
        """torch's cell names (``weight_ih`` ...) -> copies."""
        return _torch_state.torch_state_dict(self)

    def load_torch_state_dict(self, state_dict):
        """Copy weights from a torch.nn.*Cell state dict (checked first)."""
        _torch_state.load_torch_state_dict(self, state_dict)

    def load_torch(self, module):
        """Copy a ``torch.nn.*Cell``'s weights after checking its
        configuration (kind, sizes, bias, nonlinearity); returns self."""
        _torch_state.load_torch(self, module)
        return self


class RNNCell(_RecurrentCell):
    """h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh), ``nonlinearity`` "tanh" |
    "relu" | "identity"; ``bias`` True, False or "single" (as ``nn.RNN``)."""

    _kind = "rnn"

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", *, init=None,
                 recurrent_init=None, bias_init=None, dtype="float32", seed=None):
        _contract.check_nonlinearity(nonlinearity, "nonlinearity", "RNNCell")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias, init=init, recurrent_init=recurrent_init,
                         bias_init=bias_init, dtype=dtype, seed=seed)

    def extra_repr(self):
        return super().extra_repr() + f", {self.nonlinearity}"


class LSTMCell(_RecurrentCell):
    """One LSTM step, gates i, f, g, o: forward(x, (h, c)) -> (h', c');
    ``(input_size, hidden_size, bias=True, *, init, recurrent_init,
    bias_init, dtype, seed)`` as ``nn.LSTM``."""

    _kind = "lstm"


class GRUCell(_RecurrentCell):
    """One GRU step, gates r, z, n (as ``nn.GRU``); arguments as
    :class:`LSTMCell`."""

    _kind = "gru"
