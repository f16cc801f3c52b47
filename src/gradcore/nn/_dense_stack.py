"""The fused path of a plain MLP: all its Dense layers in one kernel call per
pass (``dense_stack_forward`` / ``dense_stack_backward``), bit-identical to
calling the layers one by one.

Why: a deep narrow MLP (50 layers of 64) spends most of a training step
outside the GEMMs when each layer is its own Python and binding call, and
after other work has run the scattered per-layer objects are cold in cache;
one call walks a layout table and the arena instead.

Contract (used by :class:`gradcore.nn.MLP`):

- ``bind(m)`` (from ``m._bind``, after the arena is built or rebuilt): sets
  ``m._stack_layout`` to the (L, STACK_COLS) int64 layout of ``m``'s Dense
  children over ``m``'s slice of the arena (``m._theta`` / ``m._grad``), or
  to None when the children are not all plain ``Dense`` layers with one
  slope (then ``m`` runs as a ``Sequential``).
- ``forward(m, x)`` / ``backward(m, dy)``: the MLP's passes. Per batch size a
  ``ShapeCache`` entry holds the outputs ``ys`` (every layer's y back to
  back), the scratch ``work``, ``dx`` and the children's forward caches
  (views into ``ys``), so a child's own ``backward`` may follow the MLP's
  ``forward``, as with a Sequential. ``forward`` sets the first layer's
  input and re-installs only the caches a layer's own ``forward`` replaced
  since (one identity test per layer, run at C speed: rewriting 50 layers'
  caches on every call cost about a fifth of a step when they are cold);
  the test itself runs only when ``CACHE_EPOCH`` moved since the last
  install or test (after a 20 ms pause the 50 tests cost 26-49 µs).
"""

from __future__ import annotations

import operator
from itertools import repeat

import numpy as np

from .._contract import ACTIVATION_CODES, overlaps
from ..backend import kernels
from ._util import CACHE_EPOCH, ShapeCache, check_dy, check_input
from .layers import Dense

_ndarray = np.ndarray
_is = operator.is_
_X = repeat("_x")


class _Buffers:
    """Work buffers of one batch size B (see the module docstring)."""

    __slots__ = ("ys", "out", "work", "dx", "first", "y0", "children", "dicts", "xs", "epoch")

    def __init__(self, m, B: int):
        lay, dt = m._stack_layout, m.dtype
        self.ys = np.empty(B * int(lay[:, 1].sum()), dt)
        self.work = np.empty(2 * B * int(lay[:, :2].max()), dt)
        self.dx = np.empty((B, int(lay[0, 0])), dt)
        self.children = []
        pos, prev = 0, None
        for d, (I, O, *_) in zip(m._layers, lay.tolist()):
            y = self.ys[pos:pos + B * O].reshape(B, O)
            pos += B * O
            state = {"_x": prev, "_y": y, "_xshape": (B, I), "_dz": np.empty((B, O), dt),
                     "_dx": np.empty((B, I), dt)}
            self.children.append((d.__dict__, state))
            prev = y
        self.out = prev
        self.first = self.children[0][0]
        self.y0 = self.children[0][1]["_y"]
        self.dicts = [d for d, _ in self.children[1:]]  # layers 1.. and the inputs installed there
        self.xs = [state["_x"] for _, state in self.children[1:]]
        self.epoch = -1  # CACHE_EPOCH when the children last held these caches


def bind(m) -> None:
    layers = m._layers
    m._stack_layout = None
    m._bufs = ShapeCache()
    m._st = m._x = m._y = m._xshape = None
    if not all(type(d) is Dense for d in layers) or len({d.slope for d in layers}) != 1 \
            or not all(d.input_grad for d in layers[1:]):
        return
    theta, grad = m.flat_parameters(), m.flat_gradients()
    base, item = theta.ctypes.data, theta.itemsize

    def offset(a):
        return (a.ctypes.data - base) // item

    rows = [[d.in_features, d.out_features, offset(d._w), -1 if d._b is None else offset(d._b),
             ACTIVATION_CODES[d.activation]] for d in layers]
    m._stack_layout = np.array(rows, np.int64)
    for d in layers:
        d._stacked = True  # its own forward now moves CACHE_EPOCH
    m._theta, m._grad = theta, grad
    m._slope = layers[0].slope
    m._input_grad = layers[0].input_grad


def _prepare(m, x):
    x = check_input(x, m._layers[0]._label(), m.dtype, int(m._stack_layout[0, 0]))  # as the layer says
    B = x.shape[0]
    st = m._st = m._bufs.get(B, lambda: _Buffers(m, B))
    m._y = st.out
    m._xshape = x.shape
    if overlaps(x, st.ys):  # the MLP's own output (or a view of it) fed back: copy
        x = x.copy()
    _install(st)
    return x


def _install(st):
    """The children hold st's caches again. Moves CACHE_EPOCH: another MLP
    sharing these children (a ``copy.copy``) must look at them again."""
    for d, state in st.children:
        d.update(state)
    CACHE_EPOCH[0] += 1
    st.epoch = CACHE_EPOCH[0]


def forward(m, x):
    if x.__class__ is not _ndarray or x.dtype is not m.dtype or x.shape != m._xshape or x is m._y:
        x = _prepare(m, x)
    st = m._st
    try:
        kernels().dense_stack_forward(st.ys, x, m._theta, m._stack_layout, m._slope)
    except (TypeError, ValueError):
        x = _prepare(m, x)  # names the first layer if x is the problem; else re-raise
        st = m._st
        kernels().dense_stack_forward(st.ys, x, m._theta, m._stack_layout, m._slope)
    m._x = x
    if st.epoch != CACHE_EPOCH[0]:
        # a layer's own forward since the last install replaced its _x (layers
        # 1..) or, on a new shape, its _y (the first layer, whose _x is ours);
        # or caches were emptied, or another MLP installed its own
        if st.first.get("_y") is not st.y0 or not all(map(_is, map(dict.get, st.dicts, _X), st.xs)):
            _install(st)
        else:
            st.epoch = CACHE_EPOCH[0]
    st.first["_x"] = x
    return st.out


def backward(m, dy):
    st = m._st
    if st is None or m._x is None:
        raise RuntimeError(f"{m._layers[-1]._label()}: backward called before forward")
    out = st.out
    if dy.__class__ is not _ndarray or dy.dtype is not m.dtype or dy.shape != out.shape:
        dy = check_dy(dy, m._layers[-1]._label(), out)  # as the last layer says
    dx = st.dx if m._input_grad else None
    try:
        kernels().dense_stack_backward(dx, m._grad, st.work, dy, m._x, m._theta, st.ys, m._stack_layout,
                                       m._slope)
    except (TypeError, ValueError):
        dy = check_dy(dy, m._layers[-1]._label(), out)
        if any(o is not None and overlaps(dy, o) for o in (dx, st.work, m._grad)):
            dy = dy.copy()  # e.g. the MLP's own dx fed back as dy
        kernels().dense_stack_backward(dx, m._grad, st.work, dy, m._x, m._theta, st.ys, m._stack_layout,
                                       m._slope)
    return dx
