"""A whole recurrent stack as one ``torch.autograd.Function``: gradcore's
fused forward and BPTT of every layer and direction on the tensors' own
memory.

Contract: ``RecurrentStack.apply(run, x, h0, c0, *weights)`` takes
C-contiguous CPU tensors of one dtype (float32/float64): x (T, B, I)
time-major, ``h0`` / ``c0`` None or (L*D, B, H), ``weights`` in torch's
``_flat_weights`` order (per layer and direction ``w_ih, w_hh[, b_ih,
b_hh]``, with ``run.rows`` NumPy views of the same memory), and returns ``(out (T, B, D*H), h_n (L*D, B, H))`` plus ``c_n`` for
LSTM, fresh tensors the kernels wrote through their ``.numpy()`` views.
Backward hands the incoming gradients' memory to the fused BPTT (a
contiguous copy only where torch passes a strided one), returns freshly
written gradient tensors, and stores the per-step gradient norms (and first
non-finite steps) in a :class:`Record` it gives to ``run.sink``. The
kernels' caches and every intermediate buffer come from ``run.pool`` and go
back to it after the backward (or at once when no gradient is needed).
LSTM/GRU BPTT consumes the gate cache: a second backward through the same
graph (``retain_graph=True``, ``gradcheck``) re-runs the forward first, which
gives the same cache.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.autograd.function import once_differentiable

from . import _stack


class Record:
    """The per-step gradient norms of one backward (rows ``layer * D +
    direction``, real time order) and each row's first non-finite step."""

    __slots__ = ("norms", "cell", "first")

    def __init__(self, norms, cell, first):
        self.norms, self.cell, self.first = norms, cell, first


def give_record(run, norms, cnorms, first):
    """The backward's Record to the module ``run.sink`` names (if it still lives)."""
    sink = run.sink()
    if sink is not None:  # (past torch's Module.__setattr__, which a plain attribute does not need)
        sink.__dict__["_grad_record"] = Record(norms, cnorms, first)


class Run:
    """What a call needs besides tensors: the mode, the stack's shape, NumPy
    views of the weights per row (``(w_ih, w_hh, b_ih, b_hh)``), the buffer
    pool, dropout masks (NumPy views) and where the record goes."""

    __slots__ = ("mode", "L", "D", "rows", "pool", "masks", "sink")

    def __init__(self, mode, L, D, rows, pool, masks, sink):
        self.mode, self.L, self.D, self.rows, self.pool, self.masks, self.sink = mode, L, D, rows, pool, masks, sink


def weight_rows(weights, L, D, bias):
    """Per row k: NumPy views (w_ih, w_hh, b_ih, b_hh) of the flat weight list."""
    arrays = [w.detach().numpy() for w in weights]
    n = 4 if bias else 2
    return [tuple(arrays[k * n:k * n + n]) + ((None, None) if not bias else ()) for k in range(L * D)]


def _np(t):
    """A NumPy view of ``t`` (``numpy()`` alone where autograd allows it: in
    the Function's forward and backward, and for tensors needing no gradient)."""
    if t is None:
        return None
    try:
        return t.numpy()
    except RuntimeError:  # requires grad under grad mode (a backward with create_graph=True)
        return t.detach().numpy()


def _np_c(t):
    """A C-contiguous NumPy view of a gradient (a copy only if torch passed a strided one)."""
    return None if t is None else np.ascontiguousarray(_np(t))


def applier(cls):
    """``cls.apply`` without its Python wrapper when no functorch transform
    is active (the wrapper then only unwraps dead functorch wrappers, which
    the module does itself for the tensors it does not own: ``unwrap``).
    About 6 us of Python per call; ``cls.apply`` itself where torch's
    internals differ from what this expects."""
    base = getattr(getattr(torch.autograd, "function", None), "_SingleLevelFunction", None)
    raw = getattr(torch._C, "_FunctionBase", None)
    raw = getattr(raw, "__dict__", {}).get("apply")
    active = getattr(torch._C, "_are_functorch_transforms_active", None)
    if raw is None or active is None or base is None or cls.setup_context != base.setup_context:
        return cls.apply
    fast = raw.__get__(None, cls)
    slow = cls.apply

    def apply(*args):
        return slow(*args) if active() else fast(*args)
    return apply


def direct_backward(cls):
    """Let the autograd engine call ``cls.backward(ctx, *grads)`` itself: the
    node's ``apply`` (which the engine calls) becomes ``cls.backward``, past
    ``BackwardCFunction.apply``, which only looks up ``backward`` / ``vjp`` and
    the boxed-gradients flag again on every call (none of which this
    ``cls`` changes). Left as torch made it where torch's internals differ
    from what this expects. (Patching ``cls.backward`` afterwards does not
    reach the engine: patch ``cls._backward_cls.apply``.)"""
    fn = getattr(torch.autograd, "function", None)
    base = getattr(fn, "BackwardCFunction", None)
    node = cls.__dict__.get("_backward_cls")
    if (base is None or node is None or not issubclass(node, base) or "apply" not in base.__dict__
            or getattr(cls, "boxed_grads_call", False) or cls.vjp is not fn.Function.vjp
            or not isinstance(cls.__dict__.get("backward"), staticmethod)):
        return
    node.apply = cls.__dict__["backward"].__func__


def _unwrapper():
    f = getattr(getattr(torch._C, "_functorch", None), "unwrap_if_dead", None)
    return f if f is not None else (lambda t: t)


unwrap = _unwrapper()


def forward_arrays(run, x, h0, c0):
    """Run the stack; returns (fresh output tensors, tape). Outputs are NumPy
    allocations handed to torch (``from_numpy``: cheaper than ``torch.empty``
    and a ``.numpy()`` view)."""
    T, B = x.shape[0], x.shape[1]
    w_hh = run.rows[0][1]
    H, dt = w_hh.shape[1], w_hh.dtype
    LD = run.L * run.D
    out = np.empty((T, B, run.D * H), dt)
    h_n = np.empty((LD, B, H), dt)
    c_n = np.empty((LD, B, H), dt) if run.mode == "LSTM" else None
    tape = _stack.forward(run.mode, run.L, run.D, run.pool, _np(x), _np(h0), _np(c0), run.rows,
                          out, h_n, c_n, run.masks)
    if c_n is None:
        return (torch.from_numpy(out), torch.from_numpy(h_n)), tape
    return (torch.from_numpy(out), torch.from_numpy(h_n), torch.from_numpy(c_n)), tape


def _tensor(a):
    return None if a is None else torch.from_numpy(a)


class RecurrentStack(torch.autograd.Function):
    @staticmethod
    def forward(ctx, run, x, h0, c0, *weights):
        outputs, tape = forward_arrays(run, x, h0, c0)
        ctx.set_materialize_grads(False)
        ctx.run = run
        ctx.tape = tape
        # one direction: the output too, whose memory the top layer's BPTT reads,
        # so an in-place change of it before backward raises torch's error instead
        # of bending the gradients (two directions: the BPTT reads pooled copies)
        ctx.save_for_backward(x, h0, c0, *weights, *((outputs[0],) if run.D == 1 else ()))
        return outputs

    @staticmethod
    @once_differentiable  # no second derivative: differentiating this backward raises instead of dropping it
    def backward(ctx, d_out, d_hn, d_cn=None):
        run = ctx.run
        x, h0, c0, *_ = ctx.saved_tensors  # (checks nothing, the output included, was modified in place since)
        tape, ctx.tape = ctx.tape, None
        if tape is None:  # a second backward: the first one consumed (and gave back) the caches
            tape = _stack.forward(run.mode, run.L, run.D, run.pool, _np(x), _np(h0), _np(c0), run.rows,
                                  None, None, None, run.masks)
        need = ctx.needs_input_grad
        xa = tape.x
        dt = xa.dtype
        dx = np.empty(xa.shape, dt) if need[1] else None
        dh0 = np.empty(tape.h0.shape, dt) if h0 is not None and need[2] else None
        dc0 = np.empty(tape.c0.shape, dt) if c0 is not None and need[3] else None
        zeros = np.zeros
        dws = [[None if a is None else zeros(a.shape, dt) for a in row] for row in run.rows]
        LD, T = run.L * run.D, xa.shape[0]
        norms = np.empty((LD, T))
        cnorms = np.empty((LD, T)) if run.mode == "LSTM" else None
        first = _stack.backward(tape, _np_c(d_out), _np_c(d_hn), _np_c(d_cn), dx, dh0, dc0, dws, norms, cnorms)
        give_record(run, norms, cnorms, first)
        grads = [g for row in dws for g in row if g is not None]
        return (None, _tensor(dx), _tensor(dh0), _tensor(dc0),
                *[torch.from_numpy(g) if n else None for g, n in zip(grads, need[4:])])


direct_backward(RecurrentStack)
