"""Recurrent layers: Elman RNN, LSTM and GRU over whole sequences.

Time-major like PyTorch: ``x`` is (T, B, I), states are (B, H), the output is
(T, B, H). Parameters ``weight_ih`` (G*H, I), ``weight_hh`` (G*H, H),
``bias_ih``, ``bias_hh`` (G*H,) with PyTorch's gate order (LSTM i, f, g, o;
GRU r, z, n) live in the model's arena. One forward is one kernel call over
the whole sequence, one backward (BPTT) is one more:

    out, h_T = cell.forward(x, h0=None)          # LSTM: h0=(h, c) -> out, (h_T, c_T)
    dx = cell.backward(d_out, d_hT=None, truncate=None)
    cell.timestep_grad_norms                     # (T,) float64: ||dL/dh_t||
    cell.first_nonfinite_step                    # None or the step index

``d_out`` may be None (the loss depends only on the last state, through
``d_hT``). ``truncate=k`` cuts the sequence into windows [0, k), [k, 2k), ...
and lets no gradient cross a window start (a loss at step s reaches step t
only within one window, so at most k steps back); the gradient with respect
to h0 (``cell.dh0``; LSTM also ``cell.dc0``) comes from the first window.
``stop_on_nonfinite=True`` on forward or backward ends the loop at the first
non-finite state / gradient and raises :class:`NonFiniteStepError` (the
gradients are then left unchanged).

**Stateful sequences.** The state a forward returns may be passed straight
to the next forward (``out, h = rnn.forward(x1); rnn.forward(x2, h0=h)``): a
state that lives in the layer's own buffers is copied before they are
overwritten. That is truncated BPTT across calls: each backward runs over
its own call's steps and stops at its h0 (its gradient is ``dh0``, which a
caller may feed to the previous call's backward as ``d_hT`` to go further
back, if that call's cache is still alive).

**Ctrl-C.** The kernels release the GIL and notice a pending Ctrl-C within a
few milliseconds; the call then raises ``KeyboardInterrupt`` and the layer
is left consistent: after an interrupted forward it holds no cache (backward
raises until the next forward); after an interrupted backward the layer's
parameter gradients are zeroed (never a partial BPTT sum), ``dh0`` and the
step norms are None, and the cache counts as consumed.

LSTM and GRU backward consume the gate cache (it is overwritten with the gate
gradients, which saves 4 x T*B*H elements); a second backward needs a new
forward. Memory per T*B*H element (times the itemsize): RNN 2 (states +
backward workspace), LSTM 6 (gates 4, c, h), GRU 5 (gates r, z, n, hn, h).

The forward and backward passes are written once, in :class:`_Recurrent`;
each cell is an entry of a table (:class:`_Cell`: gate count, buffers,
states, and the kernel calls). Sequence adapters for ``Sequential``
(``LastStep``, ``AllSteps``, ``TimeDistributed``) are in
:mod:`gradcore.nn.seq`; the PyTorch state-dict mapping in
:mod:`gradcore.interop.torch_state`; ``scaled`` in :mod:`gradcore.init`.
"""

from __future__ import annotations

import math
import numbers
from typing import Callable, NamedTuple, Tuple

import numpy as np

from .. import _contract, init as _init
from ..backend import kernels
from ..init import scaled
from ..interop import torch_state as _torch_state
from .arena import as_float_dtype
from ._util import check_size, seed_rng
from .module import Module

__all__ = ["RNN", "LSTM", "GRU", "LastStep", "AllSteps", "TimeDistributed", "NonFiniteStepError",
           "scaled"]

_ndarray = np.ndarray


class NonFiniteStepError(FloatingPointError):
    """A recurrent pass met NaN/Inf at ``step`` and stopped there
    (``phase`` is ``"forward"`` (a state) or ``"backward"`` (a gradient))."""

    def __init__(self, step, phase, who):
        self.step = step
        self.phase = phase
        what = "state" if phase == "forward" else "gradient dL/dh_t"
        super().__init__(f"{who}: non-finite {what} at step {step} ({phase} stopped there; "
                         "gradients left unchanged)")


def _check_bias(bias, who, single_ok):
    """True (b_ih and b_hh, PyTorch's layout), False (none) or, where the
    cell allows it, "single" (one bias, named bias_ih)."""
    if isinstance(bias, (bool, np.bool_)):
        return bool(bias)
    if isinstance(bias, str) and bias == "single":
        if not single_ok:
            raise ValueError(f"{who}: bias='single' is not available (the reset gate multiplies "
                             "the hidden-side bias b_hn, so one bias is a different model); "
                             "use bias=True or bias=False")
        return "single"
    allowed = "True, False or 'single'" if single_ok else "True or False"
    raise TypeError(f"{who}: bias must be {allowed}, got {bias!r}")


# ------------------------------------------------------------- cell table
class _Cell(NamedTuple):
    """What distinguishes one recurrent cell: its gate count, its sequence
    buffers ((name, width in units of H), the first is the states h), its
    number of states (1: h; 2: h and c), whether backward consumes the cache,
    whether it takes a single bias, and the two kernel calls."""

    G: int
    buffers: Tuple[Tuple[str, int], ...]
    n_states: int
    consumes: bool
    single_ok: bool
    forward: Callable     # (layer, bufs, x, h0, c0, stop) -> first non-finite step
    backward: Callable    # (layer, bufs, dx, dh0, dc0, norms, cnorms, d_out, d_hT, d_cT, k, stop) -> first


def _rnn_forward(m, b, x, h0, c0, stop):
    return kernels().rnn_forward(b["out"], x, h0, m._w_ih, m._w_hh, m._b_ih, m._b_hh,
                                 m.nonlinearity, stop)


def _rnn_backward(m, b, dx, dh0, dc0, norms, cnorms, d_out, d_hT, d_cT, k, stop):
    return kernels().rnn_backward(dx, dh0, m._gw_ih, m._gw_hh, m._gb_ih, m._gb_hh, b["dz"], norms,
                                  d_out, d_hT, m._x, m._h0, b["out"], m._w_ih, m._w_hh,
                                  m.nonlinearity, k, stop)


def _lstm_forward(m, b, x, h0, c0, stop):
    return kernels().lstm_forward(b["out"], b["cs"], b["gates"], x, h0, c0, m._w_ih, m._w_hh,
                                  m._b_ih, m._b_hh, stop)


def _lstm_backward(m, b, dx, dh0, dc0, norms, cnorms, d_out, d_hT, d_cT, k, stop):
    return kernels().lstm_backward(dx, dh0, dc0, m._gw_ih, m._gw_hh, m._gb_ih, m._gb_hh, norms,
                                   d_out, d_hT, d_cT, m._x, m._h0, m._c0, b["out"], b["cs"],
                                   b["gates"], m._w_ih, m._w_hh, k, stop, cell_norms=cnorms)


def _gru_forward(m, b, x, h0, c0, stop):
    return kernels().gru_forward(b["out"], b["gates"], x, h0, m._w_ih, m._w_hh, m._b_ih, m._b_hh,
                                 stop)


def _gru_backward(m, b, dx, dh0, dc0, norms, cnorms, d_out, d_hT, d_cT, k, stop):
    return kernels().gru_backward(dx, dh0, m._gw_ih, m._gw_hh, m._gb_ih, m._gb_hh, norms, d_out,
                                  d_hT, m._x, m._h0, b["out"], b["gates"], m._w_ih, m._w_hh, k,
                                  stop)


CELLS = {
    "rnn": _Cell(1, (("out", 1), ("dz", 1)), 1, False, True, _rnn_forward, _rnn_backward),
    "lstm": _Cell(4, (("out", 1), ("cs", 1), ("gates", 4)), 2, True, True, _lstm_forward,
                  _lstm_backward),
    "gru": _Cell(3, (("out", 1), ("gates", 4)), 1, True, False, _gru_forward, _gru_backward),
}


# ------------------------------------------------------------------- driver
class _Recurrent(Module):
    """The one forward / backward of RNN, LSTM and GRU, driven by the cell's
    :class:`_Cell` entry (parameters, checks, buffers, records)."""

    _kind = "rnn"

    def __init__(self, input_size, hidden_size, bias, init, recurrent_init, bias_init, dtype,
                 seed, who):
        cell = self._cell = CELLS[self._kind]
        self.G = cell.G
        self._consumes = cell.consumes
        self.input_size = check_size(input_size, "input_size", who)
        self.hidden_size = check_size(hidden_size, "hidden_size", who)
        self.dtype = as_float_dtype(dtype, f"{who} dtype")
        self.bias = _check_bias(bias, who, cell.single_ok)
        rng = seed_rng(seed, who)
        H, I, G = self.hidden_size, self.input_size, self.G
        k = 1.0 / math.sqrt(H)
        default = _init.uniform(-k, k)     # PyTorch's default for every parameter
        label = f"{who}({I}, {H})"
        self._declare("weight_ih", _init.apply(default if init is None else init, (G * H, I), rng,
                                               self.dtype, label, "init"))
        if recurrent_init is None:
            w_hh = _init.apply(default, (G * H, H), rng, self.dtype, label)
        else:
            # each gate's (H, H) block separately: orthogonal / identity /
            # scaled(...) then hold per gate
            w_hh = np.concatenate([_init.apply(recurrent_init, (H, H), rng, self.dtype, label,
                                               "recurrent_init") for _ in range(G)], axis=0)
        self._declare("weight_hh", w_hh)
        if self.bias:
            binit = default if bias_init is None else bias_init
            self._declare("bias_ih", _init.apply(binit, (G * H,), rng, self.dtype, label, "bias_init"))
            if self.bias is True:
                self._declare("bias_hh", _init.apply(binit, (G * H,), rng, self.dtype, label,
                                                     "bias_init"))
        self._shape = None
        self._bufs = None
        self._x = None
        self._h0 = None
        self._c0 = None
        self._cache_ok = False
        self._dx = None
        self.timestep_grad_norms = None
        self.first_nonfinite_step = None
        self.first_nonfinite_state_step = None
        self.first_nonfinite_grad_step = None
        self.dh0 = None
        if cell.n_states == 2:
            self.dc0 = None
            self.timestep_cell_grad_norms = None

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias!r}"
        return s

    def _bind(self):
        self._w_ih = self.p["weight_ih"]
        self._w_hh = self.p["weight_hh"]
        self._b_ih = self.p.get("bias_ih")
        self._b_hh = self.p.get("bias_hh")
        self._gw_ih = self.g["weight_ih"]
        self._gw_hh = self.g["weight_hh"]
        self._gb_ih = self.g.get("bias_ih")
        self._gb_hh = self.g.get("bias_hh")

    # --------------------------------------------------------------- forward
    def forward(self, x, h0=None, stop_on_nonfinite=False):
        """x (T, B, I), h0 None / (B, H) / (1, B, H) (LSTM: None or a pair
        (h, c) of those) -> (out (T, B, H), h_T (B, H)) (LSTM: (h_T, c_T)).
        The returned arrays are buffers reused by the next forward; a state
        taken from them may be passed back as the next call's h0."""
        if (type(x) is not _ndarray or x.dtype is not self.dtype or x.ndim != 3
                or x.shape[2] != self.input_size or not x.size):
            x = self._check_x(x)
        T, B = x.shape[0], x.shape[1]
        h, c = (None, None) if h0 is None else self._initial_states(h0, B)
        bufs = self._bufs if self._shape == (T, B) else self._seq_buffers(T, B)
        stop = bool(stop_on_nonfinite)
        try:
            first = self._cell.forward(self, bufs, x, h, c, stop)
        except (TypeError, ValueError):
            # the kernel refused an argument before writing anything: the
            # layer's checks name the fault (or fix a layout and retry)
            x = self._check_x(x, force=True)
            first = self._forward_interruptible(bufs, x, h, c, stop)
        except KeyboardInterrupt:
            self._drop_cache()
            raise
        self._x, self._h0, self._c0, self._cache_ok = x, h, c, True
        self.first_nonfinite_grad_step = self.timestep_grad_norms = None
        if self._cell.n_states == 2:
            self.timestep_cell_grad_norms = None
        if first < 0:
            self.first_nonfinite_state_step = self.first_nonfinite_step = None
        else:
            self._forward_nonfinite(first, stop)
        out = bufs["out"]
        if self._cell.n_states == 2:
            return out, (out[T - 1], bufs["cs"][T - 1])
        return out, out[T - 1]

    def _forward_interruptible(self, bufs, x, h, c, stop):
        try:
            return self._cell.forward(self, bufs, x, h, c, stop)
        except KeyboardInterrupt:
            self._drop_cache()
            raise

    def _drop_cache(self):
        self._x = None
        self._cache_ok = False

    def _initial_states(self, h0, B):
        if h0 is None:
            return None, None
        if self._cell.n_states == 2:
            if not (isinstance(h0, (tuple, list)) and len(h0) == 2):
                raise TypeError(f"{self._label()}: h0 must be None or a pair (h, c), "
                                f"got {type(h0).__name__}")
            return (self._check_state(h0[0], "h0[0] (h)", B, own=True),
                    self._check_state(h0[1], "h0[1] (c)", B, own=True))
        return self._check_state(h0, "h0", B, own=True), None

    # -------------------------------------------------------------- backward
    def backward(self, d_out, d_hT=None, truncate=None, stop_on_nonfinite=False, d_cT=None):
        """BPTT: accumulates the parameter gradients, returns dx (T, B, I);
        sets ``dh0``, ``timestep_grad_norms`` (||dL/dh_t||),
        ``first_nonfinite_step``; LSTM also ``dc0`` and
        ``timestep_cell_grad_norms`` (||dL/dc_t||: the whole gradient
        reaching c_t, through c_{t+1} and through h_t), and takes ``d_cT``
        (or ``d_hT`` as a pair (d_hT, d_cT)). LSTM and GRU consume the
        forward's gate cache."""
        cell = self._cell
        if self._x is None or not self._cache_ok:
            self._check_cache()
        T, B = self._shape
        H = self.hidden_size
        if d_out is not None and (type(d_out) is not _ndarray or d_out.dtype is not self.dtype
                                  or d_out.shape != (T, B, H)):
            d_out = self._check_d_out(d_out, T, B)
        if truncate is not None and (type(truncate) is not int or not 1 <= truncate <= 2**62):
            truncate = self._check_truncate(truncate)
        lstm = cell.n_states == 2
        if lstm:
            if isinstance(d_hT, (tuple, list)):
                if len(d_hT) != 2 or d_cT is not None:
                    raise TypeError(f"{self._label()}: d_hT must be an array or a pair (d_hT, d_cT)")
                d_hT, d_cT = d_hT
            if d_cT is not None:
                d_cT = self._check_state(d_cT, "d_cT", B)
        elif d_cT is not None:
            raise TypeError(f"{self._label()}: d_cT is for LSTM only")
        if d_hT is not None:
            d_hT = self._check_state(d_hT, "d_hT", B)
        dt = self.dtype
        dx = self._dx if self._dx is not None and self._dx.shape[0] == T and self._dx.shape[1] == B \
            else self._dx_buffer(T, B)
        dh0 = np.empty((B, H), dt)
        dc0 = np.empty((B, H), dt) if lstm else None
        norms = np.empty(T)
        cnorms = np.empty(T) if lstm else None
        stop = bool(stop_on_nonfinite)
        try:
            first = cell.backward(self, self._bufs, dx, dh0, dc0, norms, cnorms, d_out, d_hT, d_cT,
                                  truncate, stop)
        except (TypeError, ValueError):
            # refused before the kernel wrote anything: fix a layout and retry
            if d_out is None:
                raise
            d_out = self._check_d_out(d_out, T, B, force=True)
            first = self._backward_interruptible(cell, dx, dh0, dc0, norms, cnorms, d_out, d_hT,
                                                 d_cT, truncate, stop)
        except KeyboardInterrupt:
            self._interrupted_backward()
            raise
        if cell.consumes:
            self._cache_ok = False
        self.timestep_grad_norms = norms
        if first < 0:
            self.dh0 = dh0
            self.first_nonfinite_grad_step = None
            if lstm:
                self.dc0, self.timestep_cell_grad_norms = dc0, cnorms
        else:
            self._backward_nonfinite(first, stop, dh0, dc0, cnorms)
        return dx

    def _backward_nonfinite(self, first, stop, dh0, dc0, cnorms):
        self.dh0 = None if stop else dh0
        if self._cell.n_states == 2:
            self.dc0 = None if stop else dc0
            self.timestep_cell_grad_norms = cnorms
        self.first_nonfinite_grad_step = self.first_nonfinite_step = int(first)
        if stop:
            raise NonFiniteStepError(int(first), "backward", self._label())

    def _backward_interruptible(self, cell, *args):
        try:
            return cell.backward(self, self._bufs, *args)
        except KeyboardInterrupt:
            self._interrupted_backward()
            raise

    def _interrupted_backward(self):
        """A backward stopped by Ctrl-C: never leave a partial BPTT sum."""
        for name in self.p:
            self.g[name][...] = 0
        self.dh0 = None
        self.timestep_grad_norms = None
        if self._cell.n_states == 2:
            self.dc0 = None
            self.timestep_cell_grad_norms = None
        if self._consumes:
            self._cache_ok = False

    # ------------------------------------------------------------ validation
    def _check_x(self, x, force=False):
        who = self._label()
        if not isinstance(x, np.ndarray):
            raise TypeError(f"{who}: expected x as a {self.dtype} numpy array of shape (T, B, "
                            f"{self.input_size}), got {type(x).__name__}")
        if x.dtype != self.dtype:
            raise TypeError(f"{who}: expected {self.dtype} x, got {x.dtype} (convert it explicitly, "
                            f"e.g. x.astype(np.{self.dtype}); gradcore never converts silently)")
        if x.ndim != 3:
            raise ValueError(f"{who}: expected a 3-D input x (T, B, {self.input_size}) (time-major), "
                             f"got shape {x.shape}")
        if x.shape[2] != self.input_size:
            raise ValueError(f"{who}: expected x with {self.input_size} features (T, B, "
                             f"{self.input_size}), got shape {x.shape}")
        if x.shape[0] < 1:
            raise ValueError(f"{who}: the sequence is empty (T = 0, x shape {x.shape}); need T >= 1")
        if x.shape[1] < 1:
            raise ValueError(f"{who}: the batch is empty (B = 0, x shape {x.shape}); need B >= 1")
        if not x.dtype.isnative:
            raise TypeError(f"{who}: expected native byte order x, got {x.dtype.str}")
        if not x.flags.c_contiguous or not x.flags.aligned:
            x = np.ascontiguousarray(x)
        elif force:
            raise   # x was fine: re-raise the kernel's own error
        return x

    def _check_state(self, s, name, B, own=False):
        """None, (B, H) or PyTorch's (1, B, H) -> None or a C-contiguous (B, H).
        ``own``: a state living in this layer's sequence buffers (the state
        the last forward returned) is copied, as the kernel overwrites them."""
        if s is None:
            return None
        who = self._label()
        H = self.hidden_size
        if not isinstance(s, np.ndarray):
            raise TypeError(f"{who}: expected {name} as a {self.dtype} array of shape ({B}, {H}) "
                            f"or (1, {B}, {H}), got {type(s).__name__}")
        if s.dtype != self.dtype:
            raise TypeError(f"{who}: expected {self.dtype} {name}, got {s.dtype} (convert it explicitly)")
        if s.shape == (1, B, H):
            s = s[0]
        if s.shape != (B, H):
            raise ValueError(f"{who}: expected {name} of shape ({B}, {H}) or (1, {B}, {H}), got {s.shape}")
        if not s.dtype.isnative:
            raise TypeError(f"{who}: expected native byte order {name}, got {s.dtype.str}")
        if own and self._bufs is not None and s.base is not None:
            base = s.base
            if any(base is buf for buf in self._bufs.values()):
                return s.copy()
        return np.ascontiguousarray(s)

    def _check_cache(self):
        who = self._label()
        if self._x is None:
            raise RuntimeError(f"{who}: backward called before forward")
        raise RuntimeError(f"{who}: backward already consumed this forward's gate cache "
                           "(LSTM/GRU backward overwrites it); call forward again")

    def _check_d_out(self, d_out, T, B, force=False):
        who = self._label()
        H = self.hidden_size
        if not isinstance(d_out, np.ndarray):
            raise TypeError(f"{who}: expected d_out as a {self.dtype} array of shape {(T, B, H)} "
                            f"or None, got {type(d_out).__name__}")
        if d_out.dtype != self.dtype:
            raise TypeError(f"{who}: expected {self.dtype} d_out, got {d_out.dtype} (convert it explicitly)")
        if d_out.shape != (T, B, H):
            raise ValueError(f"{who}: d_out has shape {d_out.shape}, but the last forward output "
                             f"has shape {(T, B, H)}")
        if not d_out.dtype.isnative:
            raise TypeError(f"{who}: expected native byte order d_out, got {d_out.dtype.str}")
        if not d_out.flags.c_contiguous or not d_out.flags.aligned:
            return np.ascontiguousarray(d_out)
        if force:
            raise       # d_out was fine: re-raise the kernel's own error
        return d_out

    def _check_truncate(self, truncate):
        return _contract.check_truncate(truncate, self._label())

    # --------------------------------------------------------------- buffers
    def _buffer_shapes(self, T, B):
        H = self.hidden_size
        return {name: (T, B, w * H) for name, w in self._cell.buffers}

    def memory_bytes(self, T, B):
        """Bytes of the sequence buffers this layer keeps for a (T, B) input
        (states, gate cache, backward workspace); x, dx and d_out not included."""
        return sum(int(np.prod(shape)) for shape in self._buffer_shapes(T, B).values()) * self.dtype.itemsize

    def _dx_buffer(self, T, B):
        """dx (T, B, I), owned by the layer and reused by the next backward
        with the same shape (copy it to keep it)."""
        dx = self._dx
        if dx is None or dx.shape[:2] != (T, B):
            dx = self._dx = np.empty((T, B, self.input_size), self.dtype)
        return dx

    def _seq_buffers(self, T, B):
        if self._shape != (T, B):
            self._bufs = None          # drop the old (possibly large) buffers first
            self._bufs = {k: np.empty(shape, self.dtype) for k, shape in self._buffer_shapes(T, B).items()}
            self._shape = (T, B)
            self._x = None             # the old cache is gone with its buffers
            self._cache_ok = False
        return self._bufs

    # --------------------------------------------------------------- records
    def _forward_nonfinite(self, first, stop):
        self.first_nonfinite_state_step = self.first_nonfinite_step = int(first)
        if stop:
            self._x = None
            self._cache_ok = False
            raise NonFiniteStepError(int(first), "forward", self._label())

    # -------------------------------------------------- PyTorch state dicts
    def torch_state_dict(self):
        """PyTorch names (``weight_ih_l0`` ...) -> copies (NumPy arrays); load
        with ``torch_module.load_state_dict({k: torch.from_numpy(v) ...})``.
        A single-bias layer exports its bias as ``bias_ih_l0`` and a zero
        ``bias_hh_l0`` (the same model as a torch layer with bias=True)."""
        return _torch_state.recurrent_torch_state_dict(self)

    def load_torch_state_dict(self, state_dict):
        """Copy weights from a single-layer, unidirectional torch.nn.RNN / LSTM /
        GRU state dict (tensors or arrays; converted to this layer's dtype).
        Every entry is checked before anything is written."""
        _torch_state.load_recurrent_torch_state_dict(self, state_dict)


# ------------------------------------------------------------------- layers
class RNN(_Recurrent):
    """Elman RNN: h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh),
    ``nonlinearity`` "tanh" | "relu" | "identity".

    ``bias``: True (``bias_ih`` and ``bias_hh``, PyTorch's layout), False
    (none) or "single": one bias ``bias_ih``, h_t = act(x_t W_ih^T +
    h_{t-1} W_hh^T + b), the nets of Pascanu et al. (2013) and Le et al.
    (2015). A single-bias layer exchanges torch state dicts as the sum of
    torch's two biases (export: ``bias_hh_l0`` zero).

    ``init`` (weight_ih), ``recurrent_init`` (weight_hh: anything
    :func:`gradcore.init.get` accepts, e.g. "orthogonal", "identity" (IRNN),
    ``scaled(init, spectral_radius=r)``) and ``bias_init`` default to
    PyTorch's U(-1/sqrt(H), 1/sqrt(H)).

    >>> rnn = RNN(3, 4, bias="single", dtype="float64", seed=0)
    >>> sorted(rnn.parameters())
    ['bias_ih', 'weight_hh', 'weight_ih']
    >>> out, h = rnn.forward(np.ones((5, 2, 3)))
    >>> out2, h2 = rnn.forward(np.ones((5, 2, 3)), h0=h)   # the next chunk of a stream
    >>> out2.shape, h2.shape
    ((5, 2, 4), (2, 4))
    """

    _kind = "rnn"

    def __init__(self, input_size, hidden_size, nonlinearity="tanh", bias=True, init=None,
                 recurrent_init=None, bias_init=None, dtype="float32", seed=None):
        _contract.check_nonlinearity(nonlinearity, "nonlinearity", "RNN")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias, init, recurrent_init, bias_init, dtype, seed, "RNN")
        self._finalize()

    def extra_repr(self):
        return super().extra_repr() + f", {self.nonlinearity}"


class LSTM(_Recurrent):
    """LSTM with PyTorch's gates i, f, g, o: c_t = f c_{t-1} + i g,
    h_t = o tanh(c_t). ``forward(x, h0=(h, c))`` -> (out, (h_T, c_T));
    after backward ``timestep_cell_grad_norms`` holds ||dL/dc_t||.

    ``forget_bias``: None (keep the initializer's biases) or a number b: the
    forget-gate slice of ``bias_ih`` is set to b and that of ``bias_hh`` to 0,
    so the total forget bias is b (needs bias=True or "single").
    """

    _kind = "lstm"

    def __init__(self, input_size, hidden_size, bias=True, init=None, recurrent_init=None,
                 bias_init=None, forget_bias=None, dtype="float32", seed=None):
        super().__init__(input_size, hidden_size, bias, init, recurrent_init, bias_init, dtype, seed, "LSTM")
        if forget_bias is not None:
            if not self.bias:
                raise ValueError("LSTM: forget_bias needs bias=True or bias='single'")
            if isinstance(forget_bias, bool) or not isinstance(forget_bias, numbers.Real) \
                    or not math.isfinite(forget_bias):
                raise TypeError(f"LSTM: forget_bias must be None or a finite number, got {forget_bias!r}")
            if abs(float(forget_bias)) > float(np.finfo(self.dtype).max):
                raise ValueError(f"LSTM: forget_bias={forget_bias!r} overflows {self.dtype} (largest finite "
                                 f"{self.dtype}: {float(np.finfo(self.dtype).max):.4g})")
            H = self.hidden_size
            self.p["bias_ih"][H:2 * H] = forget_bias
            if "bias_hh" in self.p:
                self.p["bias_hh"][H:2 * H] = 0
        self.forget_bias = forget_bias
        self._finalize()


class GRU(_Recurrent):
    """GRU with PyTorch's gates r, z, n:
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h_t = (1 - z) * n + z * h_{t-1}."""

    _kind = "gru"

    def __init__(self, input_size, hidden_size, bias=True, init=None, recurrent_init=None,
                 bias_init=None, dtype="float32", seed=None):
        super().__init__(input_size, hidden_size, bias, init, recurrent_init, bias_init, dtype, seed, "GRU")
        self._finalize()


# the adapters moved to gradcore.nn.seq; importable from here as before
from .seq import AllSteps, LastStep, TimeDistributed  # noqa: E402
