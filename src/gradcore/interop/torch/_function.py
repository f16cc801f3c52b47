"""One recurrent layer and direction as a ``torch.autograd.Function``:
gradcore's fused forward and BPTT on the tensors' own memory.

Contract: ``RecurrentLayer.apply(spec, x, h0, c0, w_ih, w_hh, b_ih, b_hh)``
takes C-contiguous CPU tensors of one dtype (float32/float64; ``h0``,
``c0``, biases may be None) with x (T, B, I), states (B, H), and returns
``(out (T, B, H), h_T (B, H))`` plus ``c_T`` for LSTM. ``out`` is the
kernel's output buffer itself (a torch tensor whose ``.numpy()`` view the
kernel wrote); h_T / c_T are copies of the last step. Backward hands the
incoming gradients' memory to the fused BPTT, returns freshly written
gradient tensors, and stores the per-step gradient norms (and the first
non-finite step) in ``spec.record``. LSTM/GRU BPTT consumes the gate cache:
a second backward through the same graph (``retain_graph=True``,
``gradcheck``) re-runs the forward first, which gives the same cache.
"""

from __future__ import annotations

import numpy as np
import torch

from . import _kernels as K


def _np(t):
    return None if t is None else t.detach().numpy()


class Record:
    """Per-step gradient norms of one forward call, filled by the backward
    of each of its layers/directions (row ``k = layer * D + direction``)."""

    def __init__(self, rows: int, T: int, lstm: bool):
        self.norms = np.full((rows, T), np.nan)
        self.cell = np.full((rows, T), np.nan) if lstm else None
        self.first = [None] * rows  # first non-finite step (backward order) per row, in real time

    def set(self, k, norms, cell, first, reverse):
        if reverse:
            norms = norms[::-1]
            cell = None if cell is None else cell[::-1]
            first = None if first < 0 else norms.shape[0] - 1 - first
        else:
            first = None if first < 0 else first
        self.norms[k] = norms
        if self.cell is not None and cell is not None:
            self.cell[k] = cell
        self.first[k] = first


class Spec:
    """What a layer call needs besides tensors: the mode, where its norms go,
    and the module to tell when a backward has written them."""

    __slots__ = ("mode", "record", "row", "reverse", "sink")

    def __init__(self, mode, record, row, reverse, sink):
        self.mode, self.record, self.row, self.reverse, self.sink = mode, record, row, reverse, sink


class RecurrentLayer(torch.autograd.Function):
    @staticmethod
    def forward(ctx, spec, x, h0, c0, w_ih, w_hh, b_ih, b_hh):
        T, B, _ = x.shape
        H = w_hh.shape[1]
        out = torch.empty((T, B, H), dtype=x.dtype)
        cache = K.forward(spec.mode, out.numpy(), _np(x), _np(h0), _np(c0), _np(w_ih), _np(w_hh),
                          _np(b_ih), _np(b_hh))
        h_T = out[-1].clone()
        ctx.set_materialize_grads(False)
        ctx.spec = spec
        ctx.cache = cache
        ctx.used = False
        ctx.save_for_backward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, out)
        if spec.mode == "LSTM":
            c_T = torch.from_numpy(K.last_cell(spec.mode, cache).copy())
            return out, h_T, c_T
        return out, h_T

    @staticmethod
    def backward(ctx, grad_out, grad_hT, grad_cT=None):
        spec = ctx.spec
        x, h0, c0, w_ih, w_hh, b_ih, b_hh, out = ctx.saved_tensors
        cache = ctx.cache
        if ctx.used and K.consumes_cache(spec.mode):  # the first backward consumed the gates
            again = torch.empty_like(out)
            cache = K.forward(spec.mode, again.numpy(), _np(x), _np(h0), _np(c0), _np(w_ih), _np(w_hh),
                              _np(b_ih), _np(b_hh))
        ctx.used = True
        need = ctx.needs_input_grad
        T, B, _ = x.shape
        dx = torch.empty_like(x) if need[1] else None
        dh0 = torch.empty_like(h0) if h0 is not None and need[2] else None
        dc0 = torch.empty_like(c0) if c0 is not None and need[3] else None
        dw_ih = torch.zeros_like(w_ih)
        dw_hh = torch.zeros_like(w_hh)
        db_ih = torch.zeros_like(b_ih) if b_ih is not None else None
        db_hh = torch.zeros_like(b_hh) if b_hh is not None else None
        step_norms = np.empty(T)
        cell_norms = np.empty(T) if spec.mode == "LSTM" else None
        d_out = None if grad_out is None else grad_out.contiguous()
        d_hT = None if grad_hT is None else grad_hT.contiguous()
        d_cT = None if grad_cT is None else grad_cT.contiguous()
        first = K.backward(spec.mode, cache, _np(x), _np(h0), _np(c0), _np(out), _np(w_ih), _np(w_hh),
                           _np(d_out), _np(d_hT), _np(d_cT), _np(dx), _np(dh0), _np(dc0),
                           _np(dw_ih), _np(dw_hh), _np(db_ih), _np(db_hh), step_norms, cell_norms)
        spec.record.set(spec.row, step_norms, cell_norms, int(first), spec.reverse)
        sink = spec.sink()
        if sink is not None:
            sink._grad_record = spec.record
        return (None, dx, dh0, dc0,
                dw_ih if need[4] else None, dw_hh if need[5] else None,
                db_ih if need[6] else None, db_hh if need[7] else None)
