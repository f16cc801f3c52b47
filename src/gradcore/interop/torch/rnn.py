"""``torch.nn.RNN`` / ``LSTM`` / ``GRU`` running gradcore's fused kernels.

``gradcore.interop.torch.LSTM(...)`` is a ``torch.nn.LSTM`` (a subclass: the
same constructor arguments, registered ``nn.Parameter``\\ s with torch's
names ``weight_ih_l{k}[_reverse]`` ..., torch's initialization, so
``load_state_dict`` works both ways, pickling, ``repr``) whose ``forward``
runs every layer and direction as one fused gradcore forward and its
backward as one fused BPTT, through a ``torch.autograd.Function`` working
on the tensors' own memory (the kernels write the output and gradient
tensors through their ``.numpy()`` views). Layers and directions are
stacked in Python (the reverse direction runs on the time-reversed
sequence); dropout between layers is torch's own ``F.dropout``.

After each backward the module holds, for that backward:

- ``timestep_grad_norms``: ||dL/dh_t|| (Frobenius norm over the batch) at
  every step t, float64 -- shape (T,) for one layer and direction, else
  (num_layers * num_directions, T) with row ``layer * D + direction``;
- ``timestep_cell_grad_norms`` (LSTM): ||dL/dc_t||, same shapes;
- ``first_nonfinite_step``: None, or the first step (in backward order)
  whose gradient holds NaN/Inf in any layer/direction; ``first_nonfinite``:
  None or ``(layer, direction, step)``.

Supported: CPU float32/float64, every ``num_layers``, ``bidirectional``,
``batch_first``, ``bias``, ``nonlinearity``, ``dropout``, batched (3-D) and
unbatched (2-D) input, with or without ``hx``. Not supported (a clear error
names torch's own module instead): ``proj_size > 0``, ``PackedSequence``
input, CUDA or other devices, other dtypes.

>>> import torch
>>> from gradcore.interop.torch import LSTM
>>> lstm = LSTM(3, 5, num_layers=2)
>>> out, (h, c) = lstm(torch.randn(7, 2, 3))
>>> out.shape, h.shape
(torch.Size([7, 2, 5]), torch.Size([2, 2, 5]))
>>> out.pow(2).sum().backward()
>>> lstm.timestep_grad_norms.shape
(2, 7)
"""

from __future__ import annotations

import weakref

import torch
import torch.nn.functional as F

from ._function import Record, RecurrentLayer, Spec

__all__ = ["RNN", "LSTM", "GRU"]


class _GradcoreRecurrent:
    """The forward shared by the three modules (mixed in before torch's class)."""

    _torch_name = "torch.nn.RNN"

    def _check_config(self):
        if getattr(self, "proj_size", 0):
            raise NotImplementedError(f"gradcore.interop.torch.{type(self).__name__}: proj_size > 0 is not "
                                      f"supported; use {self._torch_name}")

    # --------------------------------------------------------------- results
    @property
    def timestep_grad_norms(self):
        r = self.__dict__.get("_grad_record")
        if r is None:
            return None
        return r.norms[0] if r.norms.shape[0] == 1 else r.norms

    @property
    def timestep_cell_grad_norms(self):
        r = self.__dict__.get("_grad_record")
        if r is None or r.cell is None:
            return None
        return r.cell[0] if r.cell.shape[0] == 1 else r.cell

    @property
    def first_nonfinite(self):
        r = self.__dict__.get("_grad_record")
        if r is None:
            return None
        D = 2 if self.bidirectional else 1
        hits = [(k // D, k % D, s) for k, s in enumerate(r.first) if s is not None]
        return max(hits, key=lambda h: (h[2], h[0])) if hits else None  # ties: the top layer sees it first

    @property
    def first_nonfinite_step(self):
        f = self.first_nonfinite
        return None if f is None else f[2]

    def __getstate__(self):
        state = super().__getstate__()
        state = dict(state)
        state.pop("_grad_record", None)
        return state

    # --------------------------------------------------------------- checks
    def _fail(self, what):
        return NotImplementedError(f"gradcore.interop.torch.{type(self).__name__}: {what} is not supported; "
                                   f"use {self._torch_name}")

    def _check_tensor(self, t, name, dtype):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
        if t.device.type != "cpu":
            raise self._fail(f"{name} on device {t.device} (gradcore runs on the CPU)")
        if t.layout != torch.strided:
            raise self._fail(f"{name} with layout {t.layout}")
        if t.dtype != dtype:
            raise TypeError(f"{name}: expected dtype {dtype} (the dtype of the module's parameters), got {t.dtype}")

    def _weights(self):
        ws = list(self._flat_weights)
        if not ws:
            raise ValueError(f"{type(self).__name__}: the module has no parameters")
        dtype = ws[0].dtype
        if dtype not in (torch.float32, torch.float64):
            raise self._fail(f"dtype {dtype} (gradcore's kernels take float32 and float64)")
        for name, w in zip(self._flat_weights_names, ws):
            self._check_tensor(w, name, dtype)
        return dtype

    # --------------------------------------------------------------- forward
    def forward(self, input, hx=None):
        if isinstance(input, torch.nn.utils.rnn.PackedSequence):
            raise self._fail("a PackedSequence input")
        self._check_config()
        dtype = self._weights()
        self._check_tensor(input, "input", dtype)
        lstm = self.mode == "LSTM"
        D = 2 if self.bidirectional else 1
        L = self.num_layers
        H = self.hidden_size
        if input.dim() not in (2, 3):
            raise ValueError(f"input: expected a 2-D (unbatched) or 3-D tensor, got {input.dim()}-D")
        batched = input.dim() == 3
        x = input if batched else input.unsqueeze(1)
        if self.batch_first and batched:
            x = x.transpose(0, 1)
        T, B, I = x.shape
        if I != self.input_size:
            raise ValueError(f"input: expected input_size {self.input_size} in the last dimension, got {I}")
        if T < 1 or B < 1:
            raise ValueError(f"input: expected at least one step and one sequence, got shape {tuple(input.shape)}")
        h0, c0 = self._states(hx, lstm, batched, dtype, L * D, B, H)

        record = Record(L * D, T, lstm)
        sink = weakref.ref(self)
        layer_in = x.contiguous()
        h_n, c_n = [], []
        for layer in range(L):
            outs = []
            for d in range(D):
                k = layer * D + d
                sfx = "_reverse" if d else ""
                w_ih = getattr(self, f"weight_ih_l{layer}{sfx}")
                w_hh = getattr(self, f"weight_hh_l{layer}{sfx}")
                b_ih = getattr(self, f"bias_ih_l{layer}{sfx}") if self.bias else None
                b_hh = getattr(self, f"bias_hh_l{layer}{sfx}") if self.bias else None
                xin = layer_in if d == 0 else layer_in.flip(0)
                res = RecurrentLayer.apply(Spec(self.mode, record, k, bool(d), sink), xin,
                                           None if h0 is None else h0[k], None if c0 is None else c0[k],
                                           w_ih, w_hh, b_ih, b_hh)
                outs.append(res[0] if d == 0 else res[0].flip(0))
                h_n.append(res[1])
                if lstm:
                    c_n.append(res[2])
            layer_out = outs[0] if D == 1 else torch.cat(outs, 2)
            if self.dropout and self.training and layer < L - 1:
                layer_out = F.dropout(layer_out, self.dropout, True)
            layer_in = layer_out
        output = layer_in
        h_n = torch.stack(h_n, 0)
        c_n = torch.stack(c_n, 0) if lstm else None
        if self.batch_first and batched:
            output = output.transpose(0, 1)
        if not batched:
            output = output.squeeze(1)
            h_n = h_n.squeeze(1)
            c_n = None if c_n is None else c_n.squeeze(1)
        return (output, (h_n, c_n)) if lstm else (output, h_n)

    def _states(self, hx, lstm, batched, dtype, LD, B, H):
        if hx is None:
            return None, None
        if lstm:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError("hx: expected a tuple (h_0, c_0) of tensors for LSTM")
            pairs = (("hx[0] (h_0)", hx[0]), ("hx[1] (c_0)", hx[1]))
        else:
            pairs = (("hx", hx),)
        want = (LD, B, H) if batched else (LD, H)
        out = []
        for name, t in pairs:
            self._check_tensor(t, name, dtype)
            if tuple(t.shape) != want:
                raise ValueError(f"{name}: expected shape {want} (num_layers * num_directions, "
                                 f"{'batch, ' if batched else ''}hidden_size), got {tuple(t.shape)}")
            out.append((t if batched else t.unsqueeze(1)).contiguous())
        return (out[0], out[1]) if lstm else (out[0], None)


class RNN(_GradcoreRecurrent, torch.nn.RNN):
    """``torch.nn.RNN`` on gradcore's kernels (see the module docstring)."""

    _torch_name = "torch.nn.RNN"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._check_config()


class LSTM(_GradcoreRecurrent, torch.nn.LSTM):
    """``torch.nn.LSTM`` on gradcore's kernels (see the module docstring)."""

    _torch_name = "torch.nn.LSTM"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._check_config()


class GRU(_GradcoreRecurrent, torch.nn.GRU):
    """``torch.nn.GRU`` on gradcore's kernels (see the module docstring)."""

    _torch_name = "torch.nn.GRU"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._check_config()
