"""Recurrent layers: Elman RNN, LSTM and GRU with PyTorch's configurations.

``RNN / LSTM / GRU(input_size, hidden_size, num_layers=1, [nonlinearity,]
bias=True, batch_first=False, bidirectional=False, ...)`` as ``torch.nn``:
x (T, B, I), (B, T, I) when ``batch_first``, or unbatched (T, I); out
(T, B, D*H) (same layout as x; D = 2 when bidirectional); states
(num_layers * D, B, H) (unbatched (L*D, H)); LSTM states are pairs (h, c).
Gate order as PyTorch (LSTM i, f, g, o; GRU r, z, n). Each layer and
direction runs as one fused kernel call forward and one BPTT call backward;
layer k > 0 reads layer k - 1's outputs (both directions), the reverse
direction runs on the time-reversed sequence:

    out, h_n = rnn.forward(x, h0=None)           # LSTM: h0=(h, c) -> out, (h_n, c_n)
    dx = rnn.backward(d_out, d_hT=None, truncate=None)
    rnn.timestep_grad_norms                      # (L*D, T) float64: ||dL/dh_t|| per layer/direction
    rnn.first_nonfinite                          # None or (layer, direction, step)

**Names and the one-layer layout.** Parameters are torch's
``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}``
(``_reverse`` for the backward direction) in the model's arena. A layer with
one layer and one direction keeps gradcore's names ``weight_ih``,
``weight_hh``, ``bias_ih``, ``bias_hh`` (so existing checkpoints load) and
answers to torch's as attributes (``rnn.weight_ih_l0``) and in
``torch_state_dict``; it takes h0 as (B, H) or (1, B, H) and returns its
state as (B, H) (unbatched (H,)) -- or as (1, B, H) when h0 was given in
that layout --, its norms as (T,) and ``first_nonfinite_step`` as an int.
``d_hT`` comes in the layout of the returned state, ``dh0`` / ``dc0`` are
set in it. Row ``layer * D + direction`` of the (L*D, T) norms is in real
time for both directions; ``first_nonfinite_step`` is the step of
``first_nonfinite`` (the first layer/direction, in run order, to meet
NaN/Inf: forward layer 0 upward, backward top layer down).

``d_out`` may be None (the loss depends only on the last state, through
``d_hT``). ``truncate=k`` cuts each direction's sequence (in its own time
order) into windows [0, k), [k, 2k), ... and lets no gradient cross a window
start; the gradient with respect to h0 comes from the first window.
``stop_on_nonfinite=True`` on forward or backward ends the pass at the first
non-finite state / gradient and raises :class:`NonFiniteStepError` (with
``layer``, ``direction``, ``step``; the gradients are then left unchanged).

**Stateful sequences.** The state a forward returns may be passed straight
to the next forward (``out, h = rnn.forward(x1); rnn.forward(x2, h0=h)``):
a state that lives in the layer's own buffers is copied before they are
overwritten. Each backward stops at its call's h0 (its gradient is ``dh0``,
which may be fed to the previous call's backward as ``d_hT``).

**Ctrl-C.** The kernels notice a pending Ctrl-C within a few milliseconds;
after an interrupted forward the layer holds no cache; after an interrupted
backward its parameter gradients are zeroed (never a partial BPTT sum),
``dh0`` and the step norms are None, and the cache counts as consumed.

LSTM and GRU backward consume the gate cache; a second backward needs a new
forward. Memory per T*B*H element per layer and direction (times the
itemsize): RNN 2, LSTM 6, GRU 5 (see ``memory_bytes``).

A bare torch state dict carries no layout (``batch_first``) and, for one
layer, no nonlinearity: :meth:`_Recurrent.load_torch` reads a torch module
and checks its configuration. Files: the driver in
:mod:`gradcore.nn._recurrent`, the stacking in :mod:`gradcore.nn._stack`,
the cells in :mod:`gradcore.nn.rnn_cells`, the adapters in
:mod:`gradcore.nn.seq`, the torch names in :mod:`gradcore.interop.torch_state`.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .. import _contract, init as _init
from ..init import scaled
from ..interop import torch_state as _torch_state
from . import _stack
from ._recurrent import CELLS, NonFiniteStepError, _Driver, check_bias
from ._util import check_size, seed_rng
from .arena import as_float_dtype
from ._guard import _guarded, self_guarded
from .module import FORWARD_CACHE, Module

__all__ = ["RNN", "LSTM", "GRU", "LastStep", "AllSteps", "TimeDistributed", "NonFiniteStepError",
           "scaled"]

_ndarray = np.ndarray
_check_bias = check_bias


def _flag(value, name, who):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{who}: {name} must be True or False, got {value!r}")
    return bool(value)


def draw_unit(m, sfx, I, rng, init, recurrent_init, bias_init, label):
    """Declare one layer and direction's parameters (PyTorch's draw order:
    weight_ih, weight_hh, bias_ih, bias_hh); defaults U(-1/sqrt(H), 1/sqrt(H))."""
    H, G = m.hidden_size, m._cell.G
    k = 1.0 / math.sqrt(H)
    default = _init.uniform(-k, k)     # PyTorch's default for every parameter
    m._declare("weight_ih" + sfx, _init.apply(default if init is None else init, (G * H, I), rng,
                                              m.dtype, label, "init"))
    if recurrent_init is None:
        w_hh = _init.apply(default, (G * H, H), rng, m.dtype, label)
    else:
        # each gate's (H, H) block separately: orthogonal / identity /
        # scaled(...) then hold per gate
        w_hh = np.concatenate([_init.apply(recurrent_init, (H, H), rng, m.dtype, label,
                                           "recurrent_init") for _ in range(G)], axis=0)
    m._declare("weight_hh" + sfx, w_hh)
    if m.bias:
        binit = default if bias_init is None else bias_init
        m._declare("bias_ih" + sfx, _init.apply(binit, (G * H,), rng, m.dtype, label, "bias_init"))
        if m.bias is True:
            m._declare("bias_hh" + sfx, _init.apply(binit, (G * H,), rng, m.dtype, label, "bias_init"))


# ------------------------------------------------------------------- layer
class _Recurrent(_Driver, Module):
    """RNN, LSTM and GRU of every configuration. One layer and direction is
    its own driver (the fast path: time-major 3-D x, h0 None or (B, H));
    anything else goes through :mod:`gradcore.nn._stack`."""

    _kind = "rnn"
    _forward_cache = {**FORWARD_CACHE, "_layout": None, "_units": None, "_returned": None,
                      "_dshape": None, "_dx_key": None}

    def __init__(self, input_size, hidden_size, num_layers, bias, batch_first, bidirectional, init,
                 recurrent_init, bias_init, dtype, seed, who):
        cell = self._cell = CELLS[self._kind]
        self.G = cell.G
        self._consumes = cell.consumes
        self.input_size = check_size(input_size, "input_size", who)
        self.hidden_size = check_size(hidden_size, "hidden_size", who)
        self.num_layers = check_size(num_layers, "num_layers", who)
        self.batch_first = _flag(batch_first, "batch_first", who)
        self.bidirectional = _flag(bidirectional, "bidirectional", who)
        self.num_directions = D = 2 if self.bidirectional else 1
        self.dtype = as_float_dtype(dtype, f"{who} dtype")
        self.bias = check_bias(bias, who, cell.single_ok)
        rng = seed_rng(seed, who)
        self._single = self.num_layers * D == 1
        self._general = not self._single or self.batch_first
        label = f"{who}({self.input_size}, {self.hidden_size})"
        for layer in range(self.num_layers):
            I = self.input_size if layer == 0 else D * self.hidden_size
            for d in range(D):
                draw_unit(self, _stack.suffix(layer, d, self._single), I, rng, init, recurrent_init,
                          bias_init, label)
        self._layout = None
        self._units = None
        self._reset_driver()

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias!r}"
        if self.batch_first:
            s += ", batch_first=True"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s

    def _bind(self):
        # torch's parameter names as attributes (views; rebuilt with the arena)
        for torch_name, (local, _) in _torch_state.entries(self).items():
            if local is not None:
                setattr(self, torch_name, self.p[local])
        if self._single:
            self._bind_views()
        else:
            self._units = None
            self._units = self._unit_list()

    def _unit_list(self):
        """The drivers, row ``layer * D + direction`` (the layer itself when it
        has one layer and direction)."""
        if self._single:
            return [self]
        if self._units is None:
            self._units = [_stack.Unit(self, layer, d) for layer in range(self.num_layers)
                           for d in range(self.num_directions)]
        return self._units

    # --------------------------------------------------------------- passes
    # forward / backward are the driver's: the one-layer, time-major call with
    # h0 None or (B, H) runs it directly, anything else goes to the stack path.
    # The common call (see _kernels_recplan.pxi) makes the thread guard's
    # check in its compiled plan; every other call takes the guarded driver.
    _guarded_forward = _guarded(_Driver._run_forward, "forward")
    _guarded_backward = _guarded(_Driver._run_backward, "backward")

    @self_guarded(_Driver._run_forward)
    def forward(self, x, h0=None, stop_on_nonfinite=False, _unit=False):
        plan = self._plan
        if plan is not None and h0 is None:
            out = plan.run_forward(self, x, None, stop_on_nonfinite, True)
            if out is not None:
                return out
        return self._guarded_forward(x, h0, stop_on_nonfinite, _unit)

    @self_guarded(_Driver._run_backward)
    def backward(self, d_out, d_hT=None, truncate=None, stop_on_nonfinite=False, d_cT=None,
                 _unit=False):
        plan = self._plan
        if plan is not None and truncate is None:
            dx = plan.run_backward(self, d_out, None, stop_on_nonfinite, True, d_hT, d_cT)
            if dx is not None:
                return dx
        return self._guarded_backward(d_out, d_hT, truncate, stop_on_nonfinite, d_cT, _unit)

    def _stack_forward(self, x, h0, stop):
        return _stack.forward(self, x, h0, stop)

    def _stack_backward(self, d_out, d_hT, truncate, stop, d_cT):
        return _stack.backward(self, d_out, d_hT, truncate, stop, d_cT)

    def memory_bytes(self, T, B):
        """Bytes of the sequence buffers the layer keeps for a (T, B) input
        (states, gate cache, backward workspace of every layer and
        direction); x, dx, d_out and the copies between layers not included."""
        per = sum(w for _, w in self._cell.buffers) * T * B * self.hidden_size
        return per * self.num_layers * self.num_directions * self.dtype.itemsize

    # -------------------------------------------------- PyTorch state dicts
    def torch_state_dict(self):
        """PyTorch names (``weight_ih_l0`` ..., ``_reverse``) -> copies (NumPy
        arrays); load with ``torch_module.load_state_dict({k:
        torch.from_numpy(v) ...})``. A single-bias layer exports its bias as
        ``bias_ih_l{k}`` and a zero ``bias_hh_l{k}``."""
        return _torch_state.torch_state_dict(self)

    def load_torch_state_dict(self, state_dict):
        """Copy weights from a torch.nn.RNN / LSTM / GRU state dict of the same
        configuration (tensors or arrays; converted to this layer's dtype).
        Every entry is checked before anything is written. A state dict
        carries no layout: prefer :meth:`load_torch`, which checks
        ``batch_first`` and the nonlinearity too."""
        _torch_state.load_torch_state_dict(self, state_dict)

    def load_torch(self, module):
        """Copy the weights of a ``torch.nn.RNN / LSTM / GRU`` module after
        checking that its configuration (kind, sizes, num_layers,
        bidirectional, bias, batch_first, nonlinearity) is this layer's;
        returns self.

        >>> import torch
        >>> from gradcore import nn
        >>> t = torch.nn.GRU(3, 4, num_layers=2, batch_first=True)
        >>> g = nn.GRU(3, 4, num_layers=2, batch_first=True, dtype="float32").load_torch(t)
        >>> nn.GRU(3, 4, num_layers=2).load_torch(t)
        Traceback (most recent call last):
        ...
        ValueError: GRU(3, 4, num_layers=2).load_torch: batch_first differs: the torch module has True, this layer False
        """
        _torch_state.load_torch(self, module)
        return self


# ------------------------------------------------------------------- layers
class RNN(_Recurrent):
    """Elman RNN: h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh),
    ``nonlinearity`` "tanh" | "relu" | "identity".

    ``bias``: True (``bias_ih`` and ``bias_hh``, PyTorch's layout), False
    (none) or "single": one bias ``bias_ih``, h_t = act(x_t W_ih^T +
    h_{t-1} W_hh^T + b), the nets of Pascanu et al. (2013) and Le et al.
    (2015). A single-bias layer exchanges torch state dicts as the sum of
    torch's two biases (export: ``bias_hh_l{k}`` zero).

    ``init`` (weight_ih), ``recurrent_init`` (weight_hh: anything
    :func:`gradcore.init.get` accepts, e.g. "orthogonal", "identity" (IRNN),
    ``scaled(init, spectral_radius=r)``) and ``bias_init`` default to
    PyTorch's U(-1/sqrt(H), 1/sqrt(H)). A string third argument is read as
    ``nonlinearity`` (gradcore's order before ``num_layers`` was added).

    >>> rnn = RNN(3, 4, bias="single", dtype="float64", seed=0)
    >>> sorted(rnn.parameters())
    ['bias_ih', 'weight_hh', 'weight_ih']
    >>> out, h = rnn.forward(np.ones((5, 2, 3)))
    >>> out2, h2 = rnn.forward(np.ones((5, 2, 3)), h0=h)   # the next chunk of a stream
    >>> out2.shape, h2.shape
    ((5, 2, 4), (2, 4))
    >>> deep = RNN(3, 4, num_layers=2, bidirectional=True, batch_first=True, dtype="float64")
    >>> out, h_n = deep.forward(np.ones((2, 5, 3)))        # (B, T, I)
    >>> out.shape, h_n.shape
    ((2, 5, 8), (4, 2, 4))
    """

    _kind = "rnn"

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, bidirectional=False, *, init=None, recurrent_init=None,
                 bias_init=None, dtype="float32", seed=None):
        if isinstance(num_layers, str):     # RNN(I, H, "relu"): the earlier positional order
            num_layers, nonlinearity = 1, num_layers
        _contract.check_nonlinearity(nonlinearity, "nonlinearity", "RNN")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, bidirectional, init,
                         recurrent_init, bias_init, dtype, seed, "RNN")
        self._finalize()

    def extra_repr(self):
        return super().extra_repr() + f", {self.nonlinearity}"


class LSTM(_Recurrent):
    """LSTM with PyTorch's gates i, f, g, o: c_t = f c_{t-1} + i g,
    h_t = o tanh(c_t). ``forward(x, h0=(h, c))`` -> (out, (h_n, c_n));
    after backward ``timestep_cell_grad_norms`` holds ||dL/dc_t||.

    ``forget_bias``: None (keep the initializer's biases) or a number b: the
    forget-gate slice of every ``bias_ih`` is set to b and that of
    ``bias_hh`` to 0, so the total forget bias is b (needs bias=True or
    "single").
    """

    _kind = "lstm"

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 bidirectional=False, *, init=None, recurrent_init=None, bias_init=None,
                 forget_bias=None, dtype="float32", seed=None):
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, bidirectional, init,
                         recurrent_init, bias_init, dtype, seed, "LSTM")
        if forget_bias is not None:
            self._set_forget_bias(forget_bias)
        self.forget_bias = forget_bias
        self._finalize()

    def _set_forget_bias(self, forget_bias):
        if not self.bias:
            raise ValueError("LSTM: forget_bias needs bias=True or bias='single'")
        if isinstance(forget_bias, bool) or not isinstance(forget_bias, numbers.Real) \
                or not math.isfinite(forget_bias):
            raise TypeError(f"LSTM: forget_bias must be None or a finite number, got {forget_bias!r}")
        big = float(np.finfo(self.dtype).max)
        if abs(float(forget_bias)) > big:
            raise ValueError(f"LSTM: forget_bias={forget_bias!r} overflows {self.dtype} (largest finite "
                             f"{self.dtype}: {big:.4g})")
        H = self.hidden_size
        for name, v in self.p.items():
            if name.startswith("bias_"):
                v[H:2 * H] = forget_bias if name.startswith("bias_ih") else 0


class GRU(_Recurrent):
    """GRU with PyTorch's gates r, z, n:
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h_t = (1 - z) * n + z * h_{t-1}."""

    _kind = "gru"

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 bidirectional=False, *, init=None, recurrent_init=None, bias_init=None,
                 dtype="float32", seed=None):
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, bidirectional, init,
                         recurrent_init, bias_init, dtype, seed, "GRU")
        self._finalize()


# the adapters live in gradcore.nn.seq; importable from here as before
from .seq import AllSteps, LastStep, TimeDistributed  # noqa: E402
