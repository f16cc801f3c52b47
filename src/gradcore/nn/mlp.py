"""MLP: a Sequential of Dense layers with optional normalization and skips.

A plain MLP (``norm=None``, ``residual=False``) runs as one fused chain: one
``dense_stack_forward`` and one ``dense_stack_backward`` kernel call over the
arena (bit-identical to calling the layers one by one); see ``_dense_stack``.
"""

from __future__ import annotations

from .. import init as _init
from ..interop import torch_state as _torch_state
from . import _dense_stack
from .arena import as_float_dtype
from ._util import check_activation, check_real, check_size, seed_rng
from .layers import Activation, Dense, Residual, Sequential
from .module import FORWARD_CACHE
from .normalization import BatchNorm1d, LayerNorm

NORMS = (None, "layer", "batch")
_seq_forward = Sequential.forward.__wrapped__  # type: ignore[attr-defined]  # unguarded: MLP's call is
_seq_backward = Sequential.backward.__wrapped__  # type: ignore[attr-defined]  # guarded already


class MLP(Sequential):
    """``sizes = [in, h1, ..., out]``: len(sizes) - 1 Dense layers.

    Hidden layers use ``activation``, the last ``output_activation``; weights
    from ``init`` (any :func:`gradcore.init.get` spec, the same for every
    layer: ``"he_normal"`` is N(0, 2 / fan_in)), biases from ``bias_init``.

    Layout (children ``"0"``, ``"1"``, ...):

    - ``norm=None``: each layer is one Dense with the activation fused.
    - ``norm="layer"`` / ``"batch"``: each hidden layer is Dense (identity)
      -> LayerNorm / BatchNorm1d -> Activation; the output layer stays a
      plain Dense.
    - ``residual=True``: each hidden layer whose input and output sizes are
      equal becomes ``Residual(unit)`` (y = x + unit(x)), the unit being a
      single Dense (no norm) or ``Sequential(Dense, Norm, Activation)``. Units
      that change the size and the output layer have no skip.

    ``seed`` (int, None or Generator) draws all layers from one generator in
    layer order, so a float32 and a float64 MLP from the same seed agree.

    With ``norm=None`` and ``residual=False`` the layers run as one fused
    kernel call per pass (same results, bit for bit); each layer's own forward
    cache is still set, so a layer's ``backward`` may follow the MLP's
    ``forward``.

    >>> import numpy as np
    >>> m = MLP([4, 8, 8, 2], seed=0)
    >>> y = m.forward(np.ones((3, 4), np.float32))
    >>> m.backward(np.ones_like(y)).shape, float(abs(m.flat_gradients()).sum()) > 0
    ((3, 4), True)
    """

    _forward_cache = {**FORWARD_CACHE, "_st": None}

    def __init__(self, sizes, activation="relu", output_activation="identity", init="he_normal",
                 bias_init=0.0, norm=None, residual=False, dtype="float32", seed=None, slope=0.01,
                 input_grad=True):
        who = "MLP"
        if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__len__"):
            raise TypeError(f"{who}: sizes must be a list of ints [in, hidden..., out], got {sizes!r}")
        sizes = [check_size(s, f"sizes[{i}]", who) for i, s in enumerate(sizes)]
        if len(sizes) < 2:
            raise ValueError(f"{who}: sizes needs at least 2 entries [in, out], got {sizes}")
        check_activation(activation, who)
        check_activation(output_activation, who)
        if norm not in NORMS:
            raise ValueError(f"{who}: unknown norm {norm!r}; valid: None, 'layer', 'batch'")
        slope = check_real(slope, "slope", who, lo=0.0)
        dtype = as_float_dtype(dtype, f"{who} dtype")
        init = _init.get(init)  # fails early, listing the valid names
        bias_init = _init.get(bias_init)
        rng = seed_rng(seed, who)
        self.sizes = list(sizes)
        self.activation = activation
        self.output_activation = output_activation
        self.norm = norm
        self.residual = bool(residual)
        n = len(sizes) - 1
        layers = []
        for i in range(n):
            last = i == n - 1
            act = output_activation if last else activation
            fuse = last or norm is None
            dense = Dense(sizes[i], sizes[i + 1], act if fuse else "identity", True, init, bias_init,
                          dtype, rng, slope, input_grad if i == 0 else True)
            if fuse:
                unit = dense
            else:
                normlayer = (LayerNorm if norm == "layer" else BatchNorm1d)(sizes[i + 1], dtype=dtype)
                parts = [dense, normlayer, Activation(act, slope, dtype)]
                unit = Sequential(*parts) if (self.residual and sizes[i] == sizes[i + 1]) else parts
            if self.residual and not last and sizes[i] == sizes[i + 1]:
                layers.append(Residual(unit))
            elif isinstance(unit, list):
                layers.extend(unit)
            else:
                layers.append(unit)
        super().__init__(*layers)

    def _bind(self):
        super()._bind()
        _dense_stack.bind(self)

    def forward(self, x):
        if self._stack_layout is None:
            return _seq_forward(self, x)
        return _dense_stack.forward(self, x)

    def backward(self, dy):
        if self._stack_layout is None:
            return _seq_backward(self, dy)
        return _dense_stack.backward(self, dy)

    def torch_state_dict(self):
        """A torch ``Sequential`` of ``Linear`` layers (with ``LayerNorm`` /
        ``BatchNorm1d`` and activation modules between them) as names ->
        copies: ``"0.weight"``, ``"0.bias"``, ``"2.weight"`` ... (a
        BatchNorm1d with its running statistics; residual=False only)."""
        return _torch_state.torch_state_dict(self)

    def load_torch_state_dict(self, state_dict):
        """Copy a torch ``Sequential``'s state (its i-th module with state, in
        index order, into the i-th Dense / LayerNorm / BatchNorm1d); checked
        before anything is written. A state dict holds no activations or
        norm settings: :meth:`load_torch` checks them."""
        _torch_state.load_torch_state_dict(self, state_dict)

    def load_torch(self, module):
        """Copy a torch ``Sequential`` of ``Linear`` / ``LayerNorm`` /
        ``BatchNorm1d`` / ``ReLU`` / ``Tanh`` / ``Sigmoid`` / ``LeakyReLU`` /
        ``Identity`` after checking that its layer sequence (sizes, biases,
        norm settings, activations) is this MLP's; returns self.

        >>> import torch
        >>> t = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
        >>> m = MLP([3, 8, 2]).load_torch(t)
        >>> MLP([3, 8, 2], activation="tanh").load_torch(t)
        Traceback (most recent call last):
        ...
        ValueError: MLP(sizes=[3, 8, 2], tanh -> identity).load_torch: the layer sequence (Linear: in, out, bias; activations) differs: the torch module has [('Linear', 3, 8, True), ('ReLU',), ('Linear', 8, 2, True)], this layer [('Linear', 3, 8, True), ('Tanh',), ('Linear', 8, 2, True)]
        """
        _torch_state.load_torch(self, module)
        return self

    def extra_repr(self):
        s = f"sizes={self.sizes}, {self.activation} -> {self.output_activation}"
        if self.norm:
            s += f", norm={self.norm!r}"
        if self.residual:
            s += ", residual=True"
        return s
