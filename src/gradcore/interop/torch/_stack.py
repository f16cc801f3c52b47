"""A recurrent stack (layers x directions) over gradcore's fused kernels, on
NumPy arrays: the forward of every layer and direction, then the BPTT of
every one from the top, with reused scratch buffers. No torch in here.

Contract (``L`` layers, ``D`` directions, row ``k = layer * D + direction``):

- ``forward(mode, L, D, pool, x, h0, c0, weights, out, h_n, c_n, masks)``: ``x``
  (T, B, I) time-major and C-contiguous; ``h0`` / ``c0`` None or
  (L*D, B, H); ``weights[k] = (w_ih, w_hh, b_ih, b_hh)`` (biases may be
  None); writes ``out`` (T, B, D*H), ``h_n`` / ``c_n`` (L*D, B, H);
  ``masks`` None or one (T, B, D*H) dropout multiplier per layer boundary
  (applied to the input of layers 1 .. L-1). Returns the ``Tape``
  ``backward`` needs. ``out`` None: the outputs go to scratch (a re-run of
  the forward whose caches a first backward consumed: the same bits).
- ``backward(tape, d_out, d_hn, d_cn, dx, dh0, dc0, dweights, norms,
  cnorms)``: gradients in, C-contiguous or None; ``dweights[k]`` four
  zeroed arrays (None for a missing bias) the BPTT accumulates into;
  ``dx`` / ``dh0`` / ``dc0`` None (not wanted) or written; ``norms`` /
  ``cnorms`` (L*D, T) float64 get ||dL/dh_t|| / ||dL/dc_t|| in real time
  order. Returns, per row, the first non-finite step (real time) or None,
  and gives every scratch buffer back to the pool.

The loop over layers and directions is the native stack's
(``gradcore.nn._stack.run_layers`` / ``run_layers_backward``, with pooled
buffers): the reverse direction runs on a time-reversed copy of its layer's
input and its output is reversed back while the directions are joined (the
kernels take contiguous time-major arrays); a single-direction stack runs
with no copy at all (each layer's output is the next one's input, the last
writes ``out``).
"""

from __future__ import annotations

import numpy as np

from ...nn._stack import run_layers, run_layers_backward
from . import _kernels as K


class Pool:
    """Scratch arrays by (shape, dtype), reused from one call to the next
    (``take`` / ``give``; list pop and append are atomic, so threads sharing
    a module never get the same buffer)."""

    __slots__ = ("free",)
    MAX_PER_SHAPE = 4
    MAX_SHAPES = 32

    def __init__(self):
        self.free = {}

    def taker(self, dtype, kept):
        """``take(shape)``: a buffer from the pool (or a new one), also
        appended to ``kept`` (the tape's list of buffers to give back)."""
        free = self.free

        def take(shape):
            lst = free.get((shape, dtype))
            if lst:
                try:
                    a = lst.pop()
                    kept.append(a)
                    return a
                except IndexError:  # another thread took it
                    pass
            a = np.empty(shape, dtype)
            kept.append(a)
            return a
        return take

    def give(self, arrays):
        free = self.free
        if len(free) > self.MAX_SHAPES:  # the shapes keep changing: start over
            free.clear()
        for a in arrays:
            lst = free.setdefault((a.shape, a.dtype), [])
            if len(lst) < self.MAX_PER_SHAPE:
                lst.append(a)


class Tape:
    """What a forward leaves for its backward."""

    __slots__ = ("mode", "L", "D", "pool", "take", "x", "h0", "c0", "weights", "masks", "rows", "scratch")

    def __init__(self, mode, L, D, pool, take, x, h0, c0, weights, masks):
        self.mode, self.L, self.D, self.pool, self.take = mode, L, D, pool, take
        self.x, self.h0, self.c0, self.weights, self.masks = x, h0, c0, weights, masks
        self.rows = []      # per row: (kernel input, kernel output, cache)
        self.scratch = []   # every pooled buffer the tape holds (``take`` appends)

    def release(self):
        self.pool.give(self.scratch)
        self.scratch.clear()
        self.rows = None


def forward(mode, L, D, pool, x, h0, c0, weights, out, h_n, c_n, masks=None):
    tape = Tape(mode, L, D, pool, None, x, h0, c0, weights, masks)
    tape.take = take = pool.taker(x.dtype, tape.scratch)
    if out is None:  # a re-run for a second backward: the outputs are scratch too
        T, B, H = x.shape[0], x.shape[1], weights[0][1].shape[1]
        out, h_n = take((T, B, D * H)), take((L * D, B, H))
        c_n = take(h_n.shape) if mode == "LSTM" else None
    _run(tape, out, h_n, c_n)
    return tape


def _run(tape, out, h_n, c_n):
    L, D, take = tape.L, tape.D, tape.take
    T, B = tape.x.shape[0], tape.x.shape[1]
    H = h_n.shape[2]
    if L == 1 and D == 1:  # one fused call, straight into out
        _row(tape, 0, tape.x, out, h_n, c_n)
        return

    def run(k, layer, d, inp, dest):
        return _row(tape, k, inp, take((T, B, H)) if dest is None else dest, h_n, c_n)

    masks = tape.masks

    def between(layer, joined):
        dropped = take(joined.shape)
        np.multiply(joined, masks[layer], out=dropped)
        return dropped

    run_layers(L, D, tape.x, run, take, out, None if masks is None else between)


def _row(tape, k, inp, y, h_n, c_n):
    """Row k's fused forward of ``inp`` into ``y``; records its tape row."""
    h0, c0, mode = tape.h0, tape.c0, tape.mode
    cache = K.forward(mode, tape.take, y, inp, None if h0 is None else h0[k], None if c0 is None else c0[k],
                      *tape.weights[k])
    h_n[k] = y[-1]
    if c_n is not None:
        c_n[k] = K.last_cell(mode, cache)
    tape.rows.append((inp, y, cache))
    return y


def backward(tape, d_out, d_hn, d_cn, dx, dh0, dc0, dweights, norms, cnorms):
    if tape.L == 1 and tape.D == 1:
        return _backward1(tape, d_out, d_hn, d_cn, dx, dh0, dc0, dweights[0], norms, cnorms)
    mode, L, D, take = tape.mode, tape.L, tape.D, tape.take
    T = tape.x.shape[0]
    h0, c0 = tape.h0, tape.c0
    first = [None] * (L * D)

    def run(k, layer, d, g, dest, need):
        xin, y, cache = tape.rows[k]
        dxk = None if not need else (take(xin.shape) if dest is None else dest)
        rev = d == 1  # the reverse direction's norms come in its own (reversed) time
        nk = np.empty(T) if rev else norms[k]
        ck = None if cnorms is None else (np.empty(T) if rev else cnorms[k])
        f = K.backward(mode, take, cache, xin, None if h0 is None else h0[k],
                             None if c0 is None else c0[k], y, tape.weights[k][0], tape.weights[k][1],
                             g, None if d_hn is None else d_hn[k], None if d_cn is None else d_cn[k],
                             dxk, None if dh0 is None else dh0[k], None if dc0 is None else dc0[k],
                             *dweights[k], nk, ck)
        f = int(f)
        if rev:
            norms[k] = nk[::-1]
            if ck is not None:
                cnorms[k] = ck[::-1]
            first[k] = None if f < 0 else T - 1 - f
        else:
            first[k] = None if f < 0 else f
        return dxk

    masks = tape.masks

    def between(layer, total):
        np.multiply(total, masks[layer - 1], out=total)

    run_layers_backward(L, D, d_out, run, take, dx, dx is not None, None if masks is None else between)
    tape.release()
    return first


def _backward1(tape, d_out, d_hn, d_cn, dx, dh0, dc0, dw, norms, cnorms):
    """``backward`` of one layer and direction: one fused BPTT, no copies."""
    xin, y, cache = tape.rows[0]
    h0, c0, w = tape.h0, tape.c0, tape.weights[0]
    f = K.backward(tape.mode, tape.take, cache, xin, None if h0 is None else h0[0],
                         None if c0 is None else c0[0], y, w[0], w[1], d_out,
                         None if d_hn is None else d_hn[0], None if d_cn is None else d_cn[0], dx,
                         None if dh0 is None else dh0[0], None if dc0 is None else dc0[0], *dw, norms[0],
                         None if cnorms is None else cnorms[0])
    tape.release()
    f = int(f)
    return [None if f < 0 else f]
