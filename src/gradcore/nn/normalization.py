"""LayerNorm and BatchNorm1d (PyTorch semantics and parameter names
``weight`` (gamma) then ``bias`` (beta)); maths in the backend's
``layernorm_*`` / ``batchnorm_*`` kernels."""

from __future__ import annotations

import numpy as np

from ..backend import kernels
from .arena import as_float_dtype
from ._util import ShapeCache, backward_dy, check_input, check_real, check_size, fresh_dy, run_kernel
from .module import Module

_ndarray = np.ndarray


class _FeatureNorm(Module):
    """What LayerNorm and BatchNorm1d share: the optional affine parameters
    ``weight`` and ``bias`` (D,), bound to the kernels' argument names."""

    def _bind(self):
        self._w, self._b = self.p.get("weight"), self.p.get("bias")
        self._gw, self._gb = self.g.get("weight"), self.g.get("bias")


class LayerNorm(_FeatureNorm):
    """Normalize each row of x (B, D) over its D features:
    y = (x - mean) / sqrt(var + eps) * weight + bias (biased variance).
    ``elementwise_affine=False``: no parameters; ``bias=False``: no beta."""

    def __init__(self, features, eps=1e-5, elementwise_affine=True, bias=True, dtype="float32"):
        who = "LayerNorm"
        self.features = check_size(features, "features", who)
        self.eps = check_real(eps, "eps", who, lo=0.0)
        self.dtype = as_float_dtype(dtype, f"{who} dtype")
        if elementwise_affine:
            self._declare("weight", np.ones(self.features, self.dtype))
            if bias:
                self._declare("bias", np.zeros(self.features, self.dtype))
        self._bufs = ShapeCache()
        self._x = None
        self._xshape = None
        self._finalize()

    def extra_repr(self):
        return f"{self.features}, eps={self.eps:g}" + ("" if self._param_names else ", elementwise_affine=False")

    def _prepare(self, x):
        x = check_input(x, self._label(), self.dtype, self.features)
        B, D, dt = x.shape[0], self.features, self.dtype
        self._y, self._mean, self._rstd, self._dx = self._bufs.get(
            B, lambda: (np.empty((B, D), dt), np.empty(B, dt), np.empty(B, dt), np.empty((B, D), dt)))
        self._xshape = x.shape
        return x

    def forward(self, x):
        if x.__class__ is not _ndarray or x.dtype is not self.dtype or x.shape != self._xshape:
            x = self._prepare(x)
        self._x = run_kernel(kernels().layernorm_forward, [self._y, self._mean, self._rstd, x, self._w,
                                                           self._b, self.eps], 3, self._prepare)
        return self._y

    def backward(self, dy):
        x = self._x
        dy = backward_dy(self, dy, x)
        run_kernel(kernels().layernorm_backward, [self._dx, self._gw, self._gb, dy, x, self._mean, self._rstd,
                                                  self._w], 3, fresh_dy, self)
        return self._dx


class BatchNorm1d(_FeatureNorm):
    """Normalize each feature of x (B, D) over the batch (training) or with
    running statistics (eval), like ``torch.nn.BatchNorm1d``: running stats
    updated with ``momentum`` (``None``: cumulative average) and the unbiased
    batch variance. Buffers ``running_mean``, ``running_var``,
    ``num_batches_tracked`` (saved in ``state_dict``). Training needs B >= 2.
    ``track_running_stats=False``: always batch statistics, no buffers."""

    def __init__(self, features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 dtype="float32"):
        who = "BatchNorm1d"
        self.features = check_size(features, "features", who)
        self.eps = check_real(eps, "eps", who, lo=0.0)
        self.momentum = None if momentum is None else check_real(momentum, "momentum", who, lo=0.0, hi=1.0)
        self.dtype = as_float_dtype(dtype, f"{who} dtype")
        D, dt = self.features, self.dtype
        if affine:
            self._declare("weight", np.ones(D, dt))
            self._declare("bias", np.zeros(D, dt))
        self.track_running_stats = bool(track_running_stats)
        if self.track_running_stats:
            self._declare_buffer("running_mean", np.zeros(D, dt))
            self._declare_buffer("running_var", np.ones(D, dt))
            self._declare_buffer("num_batches_tracked", np.zeros((), np.int64))
        self._save_mean = np.empty(D, dt)
        self._save_rstd = np.empty(D, dt)
        self._bufs = ShapeCache()
        self._x = None
        self._xshape = None
        self._used_batch_stats = True
        self._finalize()

    def extra_repr(self):
        return f"{self.features}, eps={self.eps:g}, momentum={self.momentum}"

    def _prepare(self, x):
        x = check_input(x, self._label(), self.dtype, self.features)
        B, D, dt = x.shape[0], self.features, self.dtype
        self._y, self._dx = self._bufs.get(B, lambda: (np.empty((B, D), dt), np.empty((B, D), dt)))
        self._xshape = x.shape
        return x

    def forward(self, x):
        if x.__class__ is not _ndarray or x.dtype is not self.dtype or x.shape != self._xshape:
            x = self._prepare(x)
        batch_stats = self.training or not self.track_running_stats
        if batch_stats and x.shape[0] < 2:
            raise ValueError(f"{self._label()}: batch statistics need a batch of at least 2 rows, "
                             f"got input of shape {x.shape}")
        nbt = None
        momentum = 0.0
        if self.track_running_stats:
            rm, rv = self._buffers["running_mean"], self._buffers["running_var"]
            if self.training:
                nbt = self._buffers["num_batches_tracked"]
                momentum = self.momentum if self.momentum is not None else 1.0 / float(nbt + 1)
        else:
            rm = rv = None
        x = run_kernel(kernels().batchnorm_forward, [self._y, x, self._w, self._b, rm, rv, self._save_mean,
                                                     self._save_rstd, batch_stats, momentum, self.eps],
                       1, self._prepare)
        if nbt is not None:
            nbt += 1
        self._used_batch_stats = batch_stats
        self._x = x
        return self._y

    def backward(self, dy):
        x = self._x
        dy = backward_dy(self, dy, x)
        run_kernel(kernels().batchnorm_backward, [self._dx, self._gw, self._gb, dy, x, self._save_mean,
                                                  self._save_rstd, self._w, self._used_batch_stats],
                   3, fresh_dy, self)
        return self._dx
