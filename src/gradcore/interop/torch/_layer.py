"""One layer and direction without initial state as one
``torch.autograd.Function``: the common case (``num_layers=1``, one
direction, ``hx=None``, no dropout) in as few Python and torch operations
per call as the contract allows.

Contract: ``Layer.apply(run, x, *weights)`` with ``run`` a :class:`Run1`
(the module's kernels, NumPy views of ``weights``, pool, record sink) and
``x`` a C-contiguous time-major (T, B, I) CPU tensor of the weights' dtype;
returns fresh ``(out (T, B, H), h_n (1, B, H)[, c_n (1, B, H)])`` exactly
as :class:`._function.RecurrentStack` does for the same call (the same
kernels on the same memory: the same bits). Backward: the same gradients,
the same :class:`._function.Record` (norms (1, T), first non-finite step)
given to the module, the same pooled caches (taken in the forward, given
back after the backward or at once without a graph), the same second
backward (``retain_graph``: the consumed LSTM/GRU cache is recomputed by
re-running the forward into scratch).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, from_numpy, is_grad_enabled
from torch.autograd.function import once_differentiable

from . import _kernels as K
from ._function import _np, _np_c, applier, direct_backward, give_record, unwrap


class Run1:
    """What a one-layer call needs besides tensors: ``mode``, the weight
    views ``w`` = (w_ih, w_hh, b_ih, b_hh) (biases None without bias), the
    weights' torch dtype, the pool and where the record goes."""

    __slots__ = ("mode", "w", "dtype", "pool", "sink", "lstm", "gated", "shapes", "H")

    def __init__(self, mode, w, dtype, pool, sink):
        self.mode, self.w, self.dtype, self.pool, self.sink = mode, w, dtype, pool, sink
        self.lstm = mode == "LSTM"
        self.gated = K.consumes_cache(mode)  # LSTM / GRU: a gate cache from the pool
        self.shapes = tuple(a.shape for a in w if a is not None)  # of the weight gradients
        self.H = w[1].shape[1]


def call(views, d, input):
    """The module's forward for a 3-D input without ``hx`` (``views``: the
    module's ``_gc_views``, ``d`` its ``__dict__``), or None when the cheap
    test of what the kernels need fails or the weights' memory moved (the
    module's full path then checks, names a fault, or rebuilds the views)."""
    run = views[4]
    dtype = run.dtype
    if not (isinstance(input, Tensor) and input.dtype is dtype and input.is_cpu and not input.is_sparse
            and input.dim() == 3) or d["proj_size"]:
        return None
    ws, key = d["_flat_weights"], views[0]
    if len(ws) != len(key):
        return None
    need = False
    try:
        for w, ptr in zip(ws, key):
            if (w.data_ptr(), w.stride()) != ptr or w.dtype is not dtype:
                return None
            if w.requires_grad:
                need = True
    except (AttributeError, RuntimeError):  # not a tensor, or no storage: the full checks say so
        return None
    bf = d["batch_first"]
    x = input.transpose(0, 1) if bf else input
    T, B, I = x.shape
    if I != d["input_size"] or T < 1 or B < 1:
        return None
    if not x.is_contiguous():
        x = x.contiguous()
    if (need or x.requires_grad) and is_grad_enabled():
        res = _apply(run, unwrap(x), *ws)
    else:
        res = forward_nograd(run, _np(x))
    if bf:
        return (res[0].transpose(0, 1), (res[1], res[2])) if run.lstm else (res[0].transpose(0, 1), res[1])
    return (res[0], (res[1], res[2])) if run.lstm else res


def forward_arrays(run, xa):
    """The fused forward of ``xa``; returns (output tensors, output array,
    cache, the scratch taken from the pool)."""
    T, B, H = xa.shape[0], xa.shape[1], run.H
    dt = xa.dtype
    out = np.empty((T, B, H), dt)
    kept: list = []
    cache = K.forward(run.mode, run.pool.taker(dt, kept), out, xa, None, None, *run.w)
    h_n = out[-1:].copy()
    if run.lstm:
        c_n = K.last_cell("LSTM", cache)[None].copy()
        return (from_numpy(out), from_numpy(h_n), from_numpy(c_n)), out, cache, kept
    return (from_numpy(out), from_numpy(h_n)), out, cache, kept


def forward_nograd(run, xa):
    """The output tensors of a forward nothing differentiates: no graph, the
    caches go straight back to the pool."""
    res, _, _, kept = forward_arrays(run, xa)
    if kept:
        run.pool.give(kept)
    return res


class Layer(torch.autograd.Function):
    @staticmethod
    def forward(ctx, run, x, *weights):
        outputs, out, cache, kept = forward_arrays(run, _np(x))
        ctx.set_materialize_grads(False)
        ctx.state = (run, out, cache, kept)
        # the output too: the BPTT reads its memory, so an in-place change of
        # it before backward must raise torch's error, not bend the gradients
        ctx.save_for_backward(x, *weights, outputs[0])
        return outputs

    @staticmethod
    @once_differentiable  # no second derivative: differentiating this backward raises instead of dropping it
    def backward(ctx, d_out, d_hn, d_cn=None):
        # (saved_tensors checks nothing, the output included, was modified in place since the forward)
        xa = _np(ctx.saved_tensors[0])
        run, out, cache, kept = ctx.state
        w = run.w
        dt = xa.dtype
        if cache is None:  # a second backward: the first one gave its scratch back
            kept = []
            take = run.pool.taker(dt, kept)
            if run.gated:  # LSTM / GRU: the gate cache is recomputed (the same bits)
                out = take(out.shape)
                cache = K.forward(run.mode, take, out, xa, None, None, *w)
            else:  # Elman: the states are the output, which saved_tensors checked is unchanged
                cache = ()
        else:
            ctx.state = (run, out, None, None)
            take = run.pool.taker(dt, kept)
        need = ctx.needs_input_grad
        dx = np.empty(xa.shape, dt) if need[1] else None
        zeros = np.zeros  # (one per parameter: one block cut into views costs more Python)
        dw = [zeros(s, dt) for s in run.shapes]
        grads = [None, None if dx is None else from_numpy(dx)]
        grads += [from_numpy(g) if n else None for g, n in zip(dw, need[2:])]
        if len(dw) == 2:
            dw += (None, None)
        T = xa.shape[0]
        norms = np.empty((1, T))
        cnorms = np.empty((1, T)) if run.lstm else None
        f = K.backward(run.mode, take, cache, xa, None, None, out, w[0], w[1], _np_c(d_out),
                       None if d_hn is None else _np_c(d_hn)[0], None if d_cn is None else _np_c(d_cn)[0],
                       dx, None, None, *dw, norms[0], None if cnorms is None else cnorms[0])
        run.pool.give(kept)
        f = int(f)
        give_record(run, norms, cnorms, [None if f < 0 else f])
        return tuple(grads)


_apply = applier(Layer)
direct_backward(Layer)
