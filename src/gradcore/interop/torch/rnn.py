"""``torch.nn.RNN`` / ``LSTM`` / ``GRU`` running gradcore's fused kernels.

``gradcore.interop.torch.LSTM(...)`` is a ``torch.nn.LSTM`` (a subclass: the
same constructor arguments, registered ``nn.Parameter``\\ s with torch's
names ``weight_ih_l{k}[_reverse]`` ..., torch's initialization, so
``load_state_dict`` works both ways, pickling, ``repr``) whose ``forward``
runs the whole stack as one ``torch.autograd.Function``: every layer and
direction is one fused gradcore forward, and the backward one fused BPTT
each, on the tensors' own memory (the kernels read the input and weights
and write the output and gradient tensors in place; caches and
intermediate buffers are reused from call to call). The reverse direction
runs on the time-reversed sequence; dropout between layers draws torch's
own masks (the same random numbers as ``torch.nn``'s ``F.dropout``).

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
input, CUDA or other devices, other dtypes. One difference from torch: with
one direction the BPTT reads the returned output's memory, so changing
``output`` in place before ``backward`` raises torch's "modified by an
inplace operation" error (``torch.nn.LSTM`` raises it too; ``torch.nn.RNN``
/ ``GRU`` keep a copy); bidirectional modules read their own copies.

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

from . import _layer
from ._function import RecurrentStack, Run, _np, applier, forward_arrays, unwrap, weight_rows
from ._stack import Pool

__all__ = ["RNN", "LSTM", "GRU"]

_FLOATS = (torch.float32, torch.float64)
_apply = applier(RecurrentStack)


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

    def zero_grad(self, set_to_none=True):
        """``torch.nn.Module.zero_grad`` over the module's own parameters
        (the same effect, without the generic walk of the module tree; a
        module given children or ``set_to_none=False`` takes torch's)."""
        d = self.__dict__
        if not set_to_none or d["_modules"] or d.get("_is_replica", False):
            return super().zero_grad(set_to_none)
        for p in d["_parameters"].values():
            if p is not None:
                p.grad = None  # (a no-op where it already is: no read of p.grad first)

    def __getstate__(self):
        state = dict(super().__getstate__())
        state.pop("_grad_record", None)
        state.pop("_gc_views", None)  # NumPy views of the weights and the scratch pool
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

    def _check_all(self, input):
        """The full checks, each with its message (run when the cheap test fails)."""
        if isinstance(input, torch.nn.utils.rnn.PackedSequence):
            raise self._fail("a PackedSequence input")
        self._check_config()
        ws = self._flat_weights
        if not ws:
            raise ValueError(f"{type(self).__name__}: the module has no parameters")
        dtype = ws[0].dtype
        if dtype not in _FLOATS:
            raise self._fail(f"dtype {dtype} (gradcore's kernels take float32 and float64)")
        for name, w in zip(self._flat_weights_names, ws):
            self._check_tensor(w, name, dtype)
            if not w.is_contiguous():  # the kernels read the weights' own memory
                raise self._fail(f"a non-contiguous {name} (strides {tuple(w.stride())})")
        self._check_tensor(input, "input", dtype)
        if input.dim() not in (2, 3):
            raise ValueError(f"input: expected a 2-D (unbatched) or 3-D tensor, got {input.dim()}-D")

    # --------------------------------------------------------------- forward
    def forward(self, input, hx=None):
        d = self.__dict__  # (torch's settings live there; plain reads skip Module.__getattr__)
        views = d.get("_gc_views")
        if hx is None and views is not None and views[4] is not None:  # one layer, one direction
            res = _layer.call(views, d, input)
            if res is not None:
                return res
        ws = d["_flat_weights"]
        dtype = ws[0].dtype if ws else None
        need = False
        # one cheap test of everything the kernels need; the full checks name a fault
        ok = (isinstance(input, torch.Tensor) and dtype in _FLOATS and input.dtype is dtype and input.is_cpu
              and not input.is_sparse and 2 <= input.dim() <= 3 and not d["proj_size"])
        key = []
        for w in ws:
            if w.dtype is not dtype or not w.is_cpu or w.is_sparse or not w.is_contiguous():
                ok = False
                break
            need = need or w.requires_grad
            key.append((w.data_ptr(), w.stride()))  # (a transposed square weight keeps its pointer)
        if not ok:
            self._check_all(input)
        mode = d["mode"]
        lstm = mode == "LSTM"
        D = 2 if d["bidirectional"] else 1
        L = d["num_layers"]
        H = d["hidden_size"]
        batched = input.dim() == 3
        x = input if batched else input.unsqueeze(1)
        if d["batch_first"] and batched:
            x = x.transpose(0, 1)
        T, B, I = x.shape
        if I != d["input_size"]:
            raise ValueError(f"input: expected input_size {d['input_size']} in the last dimension, got {I}")
        if T < 1 or B < 1:
            raise ValueError(f"input: expected at least one step and one sequence, got shape {tuple(input.shape)}")
        if not x.is_contiguous():
            x = x.contiguous()
        h0 = c0 = None
        if hx is not None:
            h0, c0 = self._states(hx, lstm, batched, dtype, L * D, B, H)
            need = need or h0.requires_grad or (c0 is not None and c0.requires_grad)
        masks = self._masks(T, B, D * H, dtype) if d["dropout"] and d["training"] and L > 1 else None
        views = d.get("_gc_views")
        if views is None or views[0] != key:  # the weights' memory changed (or first call)
            rows, pool = weight_rows(ws, L, D, d["bias"]), views[2] if views else Pool()
            sink = weakref.ref(self)
            views = d["_gc_views"] = (key, rows, pool, Run(mode, L, D, rows, pool, None, sink),
                                      _layer.Run1(mode, rows[0], dtype, pool, sink) if L * D == 1 else None)
        grad = (need or x.requires_grad) and torch.is_grad_enabled()
        if hx is None and views[4] is not None:  # one layer and direction, no initial state
            if grad:
                res = _layer._apply(views[4], unwrap(x), *ws)
            else:
                res = _layer.forward_nograd(views[4], _np(x))
        elif grad:
            run = views[3] if masks is None else Run(mode, L, D, views[1], views[2], masks, weakref.ref(self))
            res = _apply(run, unwrap(x), h0, c0, *ws)
        else:  # nothing to differentiate: no graph, the caches go straight back to the pool
            run = views[3] if masks is None else Run(mode, L, D, views[1], views[2], masks, weakref.ref(self))
            res, tape = forward_arrays(run, x, h0, c0)
            tape.release()
        output, h_n = res[0], res[1]
        c_n = res[2] if lstm else None
        if batched and d["batch_first"]:
            output = output.transpose(0, 1)
        if not batched:
            output = output.squeeze(1)
            h_n = h_n.squeeze(1)
            c_n = None if c_n is None else c_n.squeeze(1)
        return (output, (h_n, c_n)) if lstm else (output, h_n)

    def _masks(self, T, B, width, dtype):
        """torch's dropout multipliers between layers: the same draws, in the
        same order, as ``F.dropout`` on each layer's output (NumPy views)."""
        p = float(self.dropout)
        masks = []
        for _ in range(self.num_layers - 1):
            if p >= 1.0:
                m = torch.zeros((T, B, width), dtype=dtype)
            else:
                m = torch.empty((T, B, width), dtype=dtype).bernoulli_(1 - p).div_(1 - p)
            masks.append(m.numpy())
        return masks

    def _states(self, hx, lstm, batched, dtype, LD, B, H):
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
            out.append(unwrap((t if batched else t.unsqueeze(1)).contiguous()))
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
