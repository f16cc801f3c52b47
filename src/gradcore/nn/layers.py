"""Dense, Activation, Sequential and Residual layers.

Thin: the maths is in the active backend's kernels (``dense_forward`` /
``dense_backward``, ``activation_forward`` / ``activation_backward``). The hot
path checks the input's class, dtype and shape against the last call and then
calls the kernel with preallocated buffers; anything unusual goes through a
slow path that validates with messages naming the layer.
"""

from __future__ import annotations

import numpy as np

from .. import init as _init
from .._contract import overlaps
from ..backend import kernels
from .arena import as_float_dtype
from ._util import (CACHE_EPOCH, ShapeCache, backward_dy, check_activation, check_dy, check_input, check_real,
                    check_size, fresh_dy, run_kernel, seed_rng)
from .module import Module, unguarded

_ndarray = np.ndarray


def default_init(activation: str, slope: float):
    """Dense's default weight initializer for ``activation``: He normal (with
    the activation's gain) for relu / leaky_relu, Xavier uniform otherwise."""
    if activation in ("relu", "leaky_relu"):
        return _init.he_normal(nonlinearity=activation, a=slope)
    return _init.xavier_uniform()


class Dense(Module):
    """y = act(x W^T + b), x (B, in_features), W (out_features, in_features)
    like PyTorch's Linear; parameters ``weight`` then ``bias``.

    ``init`` / ``bias_init``: anything :func:`gradcore.init.get` accepts (name,
    number, initializer); ``init=None`` picks He normal for relu/leaky_relu and
    Xavier uniform otherwise. ``seed``: int, None or a numpy Generator (weight
    drawn first, then bias). ``slope``: leaky_relu's negative slope.
    ``input_grad=False`` makes ``backward`` skip dx (returns None; saves a GEMM
    for a network's first layer).
    """

    _stacked = False  # True once a fused MLP has bound this layer (see nn/_dense_stack.py)

    def __init__(self, in_features, out_features, activation="identity", bias=True, init=None,
                 bias_init=0.0, dtype="float32", seed=None, slope=0.01, input_grad=True):
        who = "Dense"
        self.in_features = check_size(in_features, "in_features", who)
        self.out_features = check_size(out_features, "out_features", who)
        self.activation = check_activation(activation, who)
        self.slope = check_real(slope, "slope", who, lo=0.0)
        self.dtype = as_float_dtype(dtype, f"{who} dtype")
        self.input_grad = bool(input_grad)
        rng = seed_rng(seed, who)
        shape = (self.out_features, self.in_features)
        winit = default_init(self.activation, self.slope) if init is None else init
        label = f"Dense({self.in_features} -> {self.out_features}, {self.activation})"
        self._declare("weight", _init.apply(winit, shape, rng, self.dtype, label, "init"))
        if bias:
            self._declare("bias", _init.apply(bias_init, (self.out_features,), rng, self.dtype, label,
                                              "bias_init"))
        self._bufs = ShapeCache()
        self._x = None
        self._y = None
        self._xshape = None
        self._finalize()

    def extra_repr(self):
        s = f"{self.in_features} -> {self.out_features}, {self.activation}"
        if "bias" not in self._param_names:
            s += ", bias=False"
        return s

    def _bind(self):
        self._w = self.p["weight"]
        self._b = self.p.get("bias")
        self._gw = self.g["weight"]
        self._gb = self.g.get("bias")

    def _prepare(self, x):
        x = check_input(x, self._label(), self.dtype, self.in_features)
        B = x.shape[0]
        dt = self.dtype
        O, I = self.out_features, self.in_features
        self._y, self._dz, self._dx = self._bufs.get(
            B, lambda: (np.empty((B, O), dt), np.empty((B, O), dt), np.empty((B, I), dt)))
        if overlaps(x, self._y):  # layer(layer(x)) or a view of the output: copy
            x = x.copy()
        self._xshape = x.shape
        return x

    def forward(self, x):
        if self._stacked:  # a fused MLP's layer: its caches change, the MLP looks again
            CACHE_EPOCH[0] += 1
        if x.__class__ is not _ndarray or x.dtype is not self.dtype or x.shape != self._xshape or x is self._y:
            x = self._prepare(x)
        # the hot path of every MLP: the kernel call and its retry written out
        # (run_kernel's list and frame cost 2% of mlp-D50-W64-B16)
        try:
            kernels().dense_forward(self._y, x, self._w, self._b, self.activation, self.slope)
        except (TypeError, ValueError):
            x = self._prepare(x)  # names the layer if x is the problem; else re-raise
            kernels().dense_forward(self._y, x, self._w, self._b, self.activation, self.slope)
        self._x = x
        return self._y

    def backward(self, dy):
        x, y = self._x, self._y
        dy = backward_dy(self, dy, x)
        dx = self._dx if self.input_grad else None
        try:
            kernels().dense_backward(dx, self._gw, self._gb, dy, x, self._w, y,
                                     self.activation, self.slope, self._dz)
        except (TypeError, ValueError):
            dy = fresh_dy(dy, self, self._dz, dx)
            kernels().dense_backward(dx, self._gw, self._gb, dy, x, self._w, y,
                                     self.activation, self.slope, self._dz)
        return dx


class Activation(Module):
    """y = act(x) elementwise, for any (B, D) input (no parameters)."""

    def __init__(self, activation="relu", slope=0.01, dtype="float32"):
        self.activation = check_activation(activation, "Activation")
        self.slope = check_real(slope, "slope", "Activation", lo=0.0)
        self.dtype = as_float_dtype(dtype, "Activation dtype")
        self._bufs = ShapeCache()
        self._y = None
        self._xshape = None
        self._finalize()

    def extra_repr(self):
        return self.activation

    def _prepare(self, x):
        if not isinstance(x, np.ndarray) or x.ndim != 2:
            raise ValueError(f"{self._label()}: expected a 2-D {self.dtype} input (B, D), got "
                             f"{getattr(x, 'shape', type(x).__name__)}")
        x = check_input(x, self._label(), self.dtype, x.shape[1])
        shape, dt = x.shape, self.dtype
        self._y, self._dx = self._bufs.get(shape, lambda: (np.empty(shape, dt), np.empty(shape, dt)))
        if x is not self._y and overlaps(x, self._y):  # a partial view of the output
            x = x.copy()
        self._xshape = shape
        return x

    def forward(self, x):
        if x.__class__ is not _ndarray or x.dtype is not self.dtype or x.shape != self._xshape:
            x = self._prepare(x)
        run_kernel(kernels().activation_forward, [self._y, x, self.activation, self.slope], 1, self._prepare)
        return self._y

    def backward(self, dy):
        y = self._y
        dy = backward_dy(self, dy, y)
        run_kernel(kernels().activation_backward, [self._dx, dy, y, self.activation, self.slope], 1, fresh_dy,
                   self, self._dx)
        return self._dx


class Sequential(Module):
    """Layers applied in order; children named ``"0"``, ``"1"``, ...
    ``Sequential(a, b, c)`` or ``Sequential([a, b, c])``."""

    def __init__(self, *layers):
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        if not layers:
            raise ValueError("Sequential: needs at least one layer")
        dtypes = set()
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential: layer {i} must be a gradcore.nn.Module, got {type(layer).__name__}")
            self.add_module(str(i), layer)
            dtypes.add(np.dtype(layer.dtype))
        if len(dtypes) > 1:
            raise TypeError(f"Sequential: all layers must share one dtype, got {sorted(map(str, dtypes))}")
        self.dtype = dtypes.pop()
        self._finalize()

    def _bind(self):
        layers = list(self._children.values())
        self._layers = layers
        self._fwd = [unguarded(m.forward) for m in layers]  # guarded once, by this call
        self._bwd = [unguarded(m.backward) for m in reversed(layers)]
        self._outs = ShapeCache()   # the outputs returned so far, by shape (a forward cache)

    def __len__(self):
        return len(self._children)

    def __getitem__(self, i):
        return self._layers[i]

    def __iter__(self):
        return iter(self._layers)

    def forward(self, x):
        """Each layer in turn. An output this model returned (or a view of
        it) fed back as ``x`` is copied first: the first layer keeps its input
        for backward, and the last layer overwrites that buffer."""
        if x.__class__ is _ndarray:
            for out in self._outs.entries.values():
                if overlaps(x, out):
                    x = x.copy()
                    break
        for f in self._fwd:
            x = f(x)
        if self._outs.get(x.shape, lambda: x) is not x:
            self._outs.entries[x.shape] = x
        return x

    def backward(self, dy):
        for b in self._bwd:
            dy = b(dy)
        return dy


class Residual(Module):
    """y = x + block(x) (the skip connection); ``block`` must keep the shape.
    The child is named ``"block"``; dx = dy + block.backward(dy) (None when
    the block computes no input gradient, e.g. a first layer with
    ``input_grad=False``)."""

    def __init__(self, block):
        if not isinstance(block, Module):
            raise TypeError(f"Residual: block must be a gradcore.nn.Module, got {type(block).__name__}")
        self.add_module("block", block)
        self.dtype = np.dtype(block.dtype)
        self._bufs = ShapeCache()
        self._y = None
        self._xshape = None
        self._finalize()

    def _bind(self):
        self._block = self._children["block"]

    def extra_repr(self):
        return ""

    def _label(self):
        return f"Residual({self._children['block']._label()})" if "block" in self._children else "Residual"

    def forward(self, x):
        h = self._block.forward(x)
        if h.shape != x.shape:
            raise ValueError(f"{self._label()}: block output shape {h.shape} differs from its input shape "
                             f"{x.shape}; a residual block must keep the shape")
        if x.shape != self._xshape:
            shape, dt = x.shape, self.dtype
            self._y, self._dx = self._bufs.get(shape, lambda: (np.empty(shape, dt), np.empty(shape, dt)))
            self._xshape = shape
        np.add(x, h, out=self._y)
        return self._y

    def backward(self, dy):
        if self._y is None:
            raise RuntimeError(f"{self._label()}: backward called before forward")
        if dy.__class__ is not _ndarray or dy.dtype is not self.dtype or dy.shape != self._y.shape:
            dy = check_dy(dy, self._label(), self._y)
        dxb = self._block.backward(dy)
        if dxb is None:  # the block skips its input gradient (input_grad=False): so do we
            return None
        np.add(dy, dxb, out=self._dx)
        return self._dx
