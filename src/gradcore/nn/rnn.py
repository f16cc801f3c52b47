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

LSTM and GRU backward consume the gate cache (it is overwritten with the gate
gradients, which saves 4 x T*B*H elements); a second backward needs a new
forward. Memory per T*B*H element (times the itemsize): RNN 2 (states +
backward workspace), LSTM 6 (gates 4, c, h), GRU 5 (gates r, z, n, hn, h).

Use :class:`LastStep` / :class:`AllSteps` to put a recurrent layer in a
``Sequential`` (output h_T (B, H) or all states (T, B, H)), and
:class:`TimeDistributed` to apply a (B, D) layer such as ``Dense`` to every
step.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .. import _contract, init as _init
from ..backend import kernels
from .arena import as_float_dtype
from ._util import check_size, seed_rng
from .module import Module

__all__ = ["RNN", "LSTM", "GRU", "LastStep", "AllSteps", "TimeDistributed", "NonFiniteStepError",
           "scaled"]


class NonFiniteStepError(FloatingPointError):
    """A recurrent pass met NaN/Inf at ``step`` and stopped there
    (``phase`` is ``"forward"`` (a state) or ``"backward"`` (a gradient))."""

    def __init__(self, step, phase, who):
        self.step = step
        self.phase = phase
        what = "state" if phase == "forward" else "gradient dL/dh_t"
        super().__init__(f"{who}: non-finite {what} at step {step} ({phase} stopped there; "
                         "gradients left unchanged)")


# --------------------------------------------------------------- initializers
def scaled(init, spectral_radius):
    """An initializer drawing a square matrix from ``init`` (anything
    :func:`gradcore.init.get` accepts) and rescaling it so that its spectral
    radius (largest |eigenvalue|) is exactly ``spectral_radius``.

    >>> w = scaled("orthogonal", spectral_radius=0.9)((4, 4), 0, "float64")
    >>> round(float(max(abs(np.linalg.eigvals(w)))), 12)
    0.9
    """
    base = _init.get(init)
    if isinstance(spectral_radius, bool) or not isinstance(spectral_radius, numbers.Real):
        raise TypeError(f"scaled: spectral_radius must be a real number >= 0, got {spectral_radius!r}")
    r = float(spectral_radius)
    if not (math.isfinite(r) and r >= 0):
        raise ValueError(f"scaled: spectral_radius must be a finite number >= 0, got {spectral_radius!r}")

    def fn(shape, rng=None, dtype="float32"):
        shape = tuple(shape)
        if len(shape) != 2 or shape[0] != shape[1]:
            raise ValueError(f"scaled: needs a square 2-D weight, got shape {shape}")
        w = np.asarray(base(shape, rng, np.float64), dtype=np.float64)
        rho = float(np.max(np.abs(np.linalg.eigvals(w)))) if w.size else 0.0
        if not rho > 0:
            raise ValueError(f"scaled: {base!r} drew a matrix with spectral radius {rho}; cannot rescale it")
        return np.ascontiguousarray(w * (r / rho), dtype=as_float_dtype(dtype))

    return _init.Initializer("scaled", lambda shp, rng: fn(shp, rng, np.float64),
                             init=base, spectral_radius=r)


# ------------------------------------------------------------------- layers
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


class _Recurrent(Module):
    """Shared machinery of RNN, LSTM and GRU (parameters, checks, buffers)."""

    G = 1            # gates
    _kind = "rnn"
    _consumes = False
    _single_ok = True

    def __init__(self, input_size, hidden_size, bias, init, recurrent_init, bias_init, dtype,
                 seed, who):
        self.input_size = check_size(input_size, "input_size", who)
        self.hidden_size = check_size(hidden_size, "hidden_size", who)
        self.dtype = as_float_dtype(dtype, f"{who} dtype")
        self.bias = _check_bias(bias, who, self._single_ok)
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
            w_hh = np.concatenate([_init.apply(recurrent_init, (H, H), rng, self.dtype, label, "recurrent_init")
                                   for _ in range(G)], axis=0)
        self._declare("weight_hh", w_hh)
        if self.bias:
            binit = default if bias_init is None else bias_init
            self._declare("bias_ih", _init.apply(binit, (G * H,), rng, self.dtype, label, "bias_init"))
            if self.bias is True:
                self._declare("bias_hh", _init.apply(binit, (G * H,), rng, self.dtype, label, "bias_init"))
        self._shape = None
        self._bufs = None
        self._x = None
        self._h0 = None
        self._c0 = None
        self._cache_ok = False
        self.timestep_grad_norms = None
        self.first_nonfinite_step = None
        self.first_nonfinite_state_step = None
        self.first_nonfinite_grad_step = None
        self.dh0 = None

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

    # ----------------------------------------------------------- validation
    def _check_x(self, x):
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
        return x

    def _check_state(self, s, name, B):
        """None, (B, H) or PyTorch's (1, B, H) -> None or a C-contiguous (B, H)."""
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
        return np.ascontiguousarray(s)

    def _check_backward(self, d_out, truncate):
        who = self._label()
        if self._x is None:
            raise RuntimeError(f"{who}: backward called before forward")
        if not self._cache_ok:
            raise RuntimeError(f"{who}: backward already consumed this forward's gate cache "
                               "(LSTM/GRU backward overwrites it); call forward again")
        T, B = self._shape
        H = self.hidden_size
        if d_out is not None:
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
            d_out = np.ascontiguousarray(d_out)
        return d_out, _contract.check_truncate(truncate, who)

    def memory_bytes(self, T, B):
        """Bytes of the sequence buffers this layer keeps for a (T, B) input
        (states, gate cache, backward workspace); x, dx and d_out not included."""
        return sum(int(np.prod(shape)) for shape in self._buffer_shapes(T, B).values()) * self.dtype.itemsize

    def _make_buffers(self, T, B):
        return {k: np.empty(shape, self.dtype) for k, shape in self._buffer_shapes(T, B).items()}

    def _dx_buffer(self, T, B):
        """dx (T, B, I), owned by the layer and reused by the next backward
        with the same shape (copy it to keep it)."""
        dx = getattr(self, "_dx", None)
        if dx is None or dx.shape[:2] != (T, B):
            dx = self._dx = np.empty((T, B, self.input_size), self.dtype)
        return dx

    def _seq_buffers(self, T, B):
        if self._shape != (T, B):
            self._bufs = None          # drop the old (possibly large) buffers first
            self._bufs = self._make_buffers(T, B)
            self._shape = (T, B)
        return self._bufs

    def _record_forward(self, first, stop):
        self.first_nonfinite_state_step = None if first < 0 else int(first)
        self.first_nonfinite_step = self.first_nonfinite_state_step
        self.first_nonfinite_grad_step = None
        self.timestep_grad_norms = None
        if self._kind == "lstm":
            self.timestep_cell_grad_norms = None
        if first >= 0 and stop:
            self._x = None
            self._cache_ok = False
            raise NonFiniteStepError(int(first), "forward", self._label())

    def _record_backward(self, first, stop, norms):
        self.timestep_grad_norms = norms
        self.first_nonfinite_grad_step = None if first < 0 else int(first)
        if first >= 0:
            self.first_nonfinite_step = int(first)
        if first >= 0 and stop:
            raise NonFiniteStepError(int(first), "backward", self._label())

    # -------------------------------------------------- PyTorch state dicts
    _TORCH = (("weight_ih", "weight_ih_l0"), ("weight_hh", "weight_hh_l0"),
              ("bias_ih", "bias_ih_l0"), ("bias_hh", "bias_hh_l0"))

    def torch_state_dict(self):
        """PyTorch names (``weight_ih_l0`` ...) -> copies (NumPy arrays); load
        with ``torch_module.load_state_dict({k: torch.from_numpy(v) ...})``.
        A single-bias layer exports its bias as ``bias_ih_l0`` and a zero
        ``bias_hh_l0`` (the same model as a torch layer with bias=True)."""
        sd = {tk: self.p[k].copy() for k, tk in self._TORCH if k in self.p}
        if self.bias == "single":
            sd["bias_hh_l0"] = np.zeros_like(self.p["bias_ih"])
        return sd

    def load_torch_state_dict(self, state_dict):
        """Copy weights from a single-layer, unidirectional torch.nn.RNN / LSTM /
        GRU state dict (tensors or arrays; converted to this layer's dtype).
        Every entry is checked before anything is written."""
        who = self._label()
        if not hasattr(state_dict, "keys"):
            raise TypeError(f"{who}.load_torch_state_dict: expected a dict, got {type(state_dict).__name__}")
        wanted = {tk: k for k, tk in self._TORCH if k in self.p}
        if self.bias == "single":          # torch's two biases load as their sum
            wanted["bias_hh_l0"] = "bias_hh"
        extra = [k for k in state_dict if k not in wanted]
        missing = [k for k in wanted if k not in state_dict]
        if extra or missing:
            raise KeyError(f"{who}.load_torch_state_dict: expected exactly the keys {list(wanted)} "
                           f"(single layer, unidirectional, bias={self.bias}); missing {missing}, "
                           f"unexpected {extra}")
        staged = []
        for tk, k in wanted.items():
            v = state_dict[tk]
            if hasattr(v, "detach"):
                v = v.detach().cpu().numpy()
            v = np.asarray(v)
            want = self.p["bias_ih" if k == "bias_hh" and self.bias == "single" else k].shape
            if v.shape != want:
                raise ValueError(f"{who}.load_torch_state_dict: {tk!r} has shape {v.shape}, "
                                 f"expected {want}")
            if not np.issubdtype(v.dtype, np.floating):
                raise TypeError(f"{who}.load_torch_state_dict: {tk!r} has dtype {v.dtype}, expected floats")
            staged.append((k, v))
        staged = dict(staged)
        if self.bias == "single":
            staged["bias_ih"] = staged["bias_ih"].astype(np.float64) + staged.pop("bias_hh")
        for k, v in staged.items():
            self.p[k][...] = v.astype(self.dtype)


class RNN(_Recurrent):
    """Elman RNN: h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh),
    ``nonlinearity`` "tanh" | "relu" | "identity".

    ``bias``: True (``bias_ih`` and ``bias_hh``, PyTorch's layout), False
    (none) or "single": one bias ``bias_ih``, h_t = act(x_t W_ih^T +
    h_{t-1} W_hh^T + b), the nets of Pascanu et al. (2013) and Le et al.
    (2015). A single-bias layer exchanges torch state dicts as the sum of
    torch's two biases (export: ``bias_hh_l0`` zero).

    >>> rnn = RNN(3, 4, bias="single", dtype="float64", seed=0)
    >>> sorted(rnn.parameters())
    ['bias_ih', 'weight_hh', 'weight_ih']

    ``init`` (weight_ih), ``recurrent_init`` (weight_hh: anything
    :func:`gradcore.init.get` accepts, e.g. "orthogonal", "identity" (IRNN),
    ``scaled(init, spectral_radius=r)``) and ``bias_init`` default to
    PyTorch's U(-1/sqrt(H), 1/sqrt(H)).
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

    def _buffer_shapes(self, T, B):
        H = self.hidden_size
        return {"out": (T, B, H), "dz": (T, B, H)}

    def forward(self, x, h0=None, stop_on_nonfinite=False):
        """x (T, B, I), h0 None / (B, H) / (1, B, H) -> (out (T, B, H), h_T (B, H)).
        The returned arrays are buffers reused by the next forward."""
        x = self._check_x(x)
        T, B, _ = x.shape
        h0 = self._check_state(h0, "h0", B)
        bufs = self._seq_buffers(T, B)
        self._x = None
        first = kernels().rnn_forward(bufs["out"], x, h0, self._w_ih, self._w_hh, self._b_ih,
                                      self._b_hh, self.nonlinearity, bool(stop_on_nonfinite))
        self._x, self._h0, self._cache_ok = x, h0, True
        self._record_forward(first, stop_on_nonfinite)
        return bufs["out"], bufs["out"][T - 1]

    def backward(self, d_out, d_hT=None, truncate=None, stop_on_nonfinite=False):
        """BPTT: accumulates the parameter gradients, returns dx (T, B, I);
        sets ``dh0``, ``timestep_grad_norms``, ``first_nonfinite_step``."""
        d_out, truncate = self._check_backward(d_out, truncate)
        T, B = self._shape
        d_hT = self._check_state(d_hT, "d_hT", B)
        dt = self.dtype
        dx = self._dx_buffer(T, B)
        dh0 = np.empty((B, self.hidden_size), dt)
        norms = np.empty(T)
        first = kernels().rnn_backward(dx, dh0, self._gw_ih, self._gw_hh, self._gb_ih, self._gb_hh,
                                       self._bufs["dz"], norms, d_out, d_hT, self._x, self._h0,
                                       self._bufs["out"], self._w_ih, self._w_hh, self.nonlinearity,
                                       truncate, bool(stop_on_nonfinite))
        stopped = first >= 0 and stop_on_nonfinite
        self.dh0 = None if stopped else dh0
        self._record_backward(first, stop_on_nonfinite, norms)
        return dx


class LSTM(_Recurrent):
    """LSTM with PyTorch's gates i, f, g, o: c_t = f c_{t-1} + i g,
    h_t = o tanh(c_t). ``forward(x, h0=(h, c))`` -> (out, (h_T, c_T)).

    ``forget_bias``: None (keep the initializer's biases) or a number b: the
    forget-gate slice of ``bias_ih`` is set to b and that of ``bias_hh`` to 0,
    so the total forget bias is b (needs bias=True).
    """

    G = 4
    _kind = "lstm"
    _consumes = True

    def __init__(self, input_size, hidden_size, bias=True, init=None, recurrent_init=None,
                 bias_init=None, forget_bias=None, dtype="float32", seed=None):
        super().__init__(input_size, hidden_size, bias, init, recurrent_init, bias_init, dtype, seed, "LSTM")
        self.timestep_cell_grad_norms = None
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
        self.dc0 = None

    def _buffer_shapes(self, T, B):
        H = self.hidden_size
        return {"out": (T, B, H), "cs": (T, B, H), "gates": (T, B, 4 * H)}

    def forward(self, x, h0=None, stop_on_nonfinite=False):
        """x (T, B, I), h0 None or (h, c) (each (B, H) / (1, B, H) / None)
        -> (out (T, B, H), (h_T, c_T))."""
        x = self._check_x(x)
        T, B, _ = x.shape
        if h0 is None:
            h, c = None, None
        elif isinstance(h0, (tuple, list)) and len(h0) == 2:
            h = self._check_state(h0[0], "h0[0] (h)", B)
            c = self._check_state(h0[1], "h0[1] (c)", B)
        else:
            raise TypeError(f"{self._label()}: h0 must be None or a pair (h, c), got {type(h0).__name__}")
        bufs = self._seq_buffers(T, B)
        self._x = None
        first = kernels().lstm_forward(bufs["out"], bufs["cs"], bufs["gates"], x, h, c, self._w_ih,
                                       self._w_hh, self._b_ih, self._b_hh, bool(stop_on_nonfinite))
        self._x, self._h0, self._c0, self._cache_ok = x, h, c, True
        self._record_forward(first, stop_on_nonfinite)
        return bufs["out"], (bufs["out"][T - 1], bufs["cs"][T - 1])

    def backward(self, d_out, d_hT=None, truncate=None, stop_on_nonfinite=False, d_cT=None):
        """BPTT (consumes the gate cache): accumulates the parameter gradients,
        returns dx (T, B, I); sets ``dh0``, ``dc0``, ``timestep_grad_norms``
        (||dL/dh_t||), ``timestep_cell_grad_norms`` (||dL/dc_t||: the whole
        gradient reaching c_t, through c_{t+1} and through h_t),
        ``first_nonfinite_step``."""
        d_out, truncate = self._check_backward(d_out, truncate)
        T, B = self._shape
        if isinstance(d_hT, (tuple, list)):
            if len(d_hT) != 2 or d_cT is not None:
                raise TypeError(f"{self._label()}: d_hT must be an array or a pair (d_hT, d_cT)")
            d_hT, d_cT = d_hT
        d_hT = self._check_state(d_hT, "d_hT", B)
        d_cT = self._check_state(d_cT, "d_cT", B)
        dt = self.dtype
        dx = self._dx_buffer(T, B)
        dh0 = np.empty((B, self.hidden_size), dt)
        dc0 = np.empty((B, self.hidden_size), dt)
        norms = np.empty(T)
        cnorms = np.empty(T)
        self._cache_ok = False
        b = self._bufs
        first = kernels().lstm_backward(dx, dh0, dc0, self._gw_ih, self._gw_hh, self._gb_ih,
                                        self._gb_hh, norms, d_out, d_hT, d_cT, self._x, self._h0,
                                        self._c0, b["out"], b["cs"], b["gates"], self._w_ih,
                                        self._w_hh, truncate, bool(stop_on_nonfinite),
                                        cell_norms=cnorms)
        stopped = first >= 0 and stop_on_nonfinite
        self.dh0, self.dc0 = (None, None) if stopped else (dh0, dc0)
        self.timestep_cell_grad_norms = cnorms
        self._record_backward(first, stop_on_nonfinite, norms)
        return dx


class GRU(_Recurrent):
    """GRU with PyTorch's gates r, z, n:
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h_t = (1 - z) * n + z * h_{t-1}."""

    G = 3
    _kind = "gru"
    _consumes = True
    _single_ok = False

    def __init__(self, input_size, hidden_size, bias=True, init=None, recurrent_init=None,
                 bias_init=None, dtype="float32", seed=None):
        super().__init__(input_size, hidden_size, bias, init, recurrent_init, bias_init, dtype, seed, "GRU")
        self._finalize()

    def _buffer_shapes(self, T, B):
        H = self.hidden_size
        return {"out": (T, B, H), "gates": (T, B, 4 * H)}

    def forward(self, x, h0=None, stop_on_nonfinite=False):
        """x (T, B, I), h0 None / (B, H) / (1, B, H) -> (out (T, B, H), h_T (B, H))."""
        x = self._check_x(x)
        T, B, _ = x.shape
        h0 = self._check_state(h0, "h0", B)
        bufs = self._seq_buffers(T, B)
        self._x = None
        first = kernels().gru_forward(bufs["out"], bufs["gates"], x, h0, self._w_ih, self._w_hh,
                                      self._b_ih, self._b_hh, bool(stop_on_nonfinite))
        self._x, self._h0, self._cache_ok = x, h0, True
        self._record_forward(first, stop_on_nonfinite)
        return bufs["out"], bufs["out"][T - 1]

    def backward(self, d_out, d_hT=None, truncate=None, stop_on_nonfinite=False):
        """BPTT (consumes the gate cache): accumulates the parameter gradients,
        returns dx (T, B, I); sets ``dh0``, ``timestep_grad_norms``,
        ``first_nonfinite_step``."""
        d_out, truncate = self._check_backward(d_out, truncate)
        T, B = self._shape
        d_hT = self._check_state(d_hT, "d_hT", B)
        dt = self.dtype
        dx = self._dx_buffer(T, B)
        dh0 = np.empty((B, self.hidden_size), dt)
        norms = np.empty(T)
        self._cache_ok = False
        b = self._bufs
        first = kernels().gru_backward(dx, dh0, self._gw_ih, self._gw_hh, self._gb_ih, self._gb_hh,
                                       norms, d_out, d_hT, self._x, self._h0, b["out"], b["gates"],
                                       self._w_ih, self._w_hh, truncate, bool(stop_on_nonfinite))
        stopped = first >= 0 and stop_on_nonfinite
        self.dh0 = None if stopped else dh0
        self._record_backward(first, stop_on_nonfinite, norms)
        return dx


# ------------------------------------------------------------------ adapters
class _SeqAdapter(Module):
    def __init__(self, rnn, who):
        if not isinstance(rnn, _Recurrent):
            raise TypeError(f"{who}: expected a gradcore.nn RNN, LSTM or GRU, got {type(rnn).__name__}")
        self.add_module("rnn", rnn)
        self.dtype = rnn.dtype
        self._finalize()

    def _bind(self):
        self._rnn = self._children["rnn"]

    def _label(self):
        return f"{type(self).__name__}({self._children['rnn']._label()})" if "rnn" in self._children \
            else type(self).__name__


class LastStep(_SeqAdapter):
    """Sequential-friendly wrapper: forward(x (T, B, I)) -> h_T (B, H) (zero
    initial state); backward(dy (B, H)) -> dx, with dy as dL/dh_T. The
    recurrent layer is child ``"rnn"``; ``truncate`` applies to its backward."""

    def __init__(self, rnn, truncate=None):
        super().__init__(rnn, "LastStep")
        self.truncate = truncate

    def forward(self, x):
        _, hT = self._rnn.forward(x)
        return hT[0] if isinstance(hT, tuple) else hT

    def backward(self, dy):
        if self._rnn._x is None:
            raise RuntimeError(f"{self._label()}: backward called before forward")
        return self._rnn.backward(None, d_hT=dy, truncate=self.truncate)


class AllSteps(_SeqAdapter):
    """Sequential-friendly wrapper: forward(x) -> all states (T, B, H);
    backward(d_out (T, B, H)) -> dx. Follow it with ``TimeDistributed(Dense(...))``
    for a head on every step."""

    def __init__(self, rnn, truncate=None):
        super().__init__(rnn, "AllSteps")
        self.truncate = truncate

    def forward(self, x):
        out, _ = self._rnn.forward(x)
        return out

    def backward(self, dy):
        if self._rnn._x is None:
            raise RuntimeError(f"{self._label()}: backward called before forward")
        return self._rnn.backward(dy, truncate=self.truncate)


class TimeDistributed(Module):
    """Apply a (B, D) -> (B, O) layer to every step of a (T, B, D) input as one
    (T*B, D) batch (one GEMM for a Dense head); child ``"layer"``."""

    def __init__(self, layer):
        if not isinstance(layer, Module):
            raise TypeError(f"TimeDistributed: layer must be a gradcore.nn.Module, got {type(layer).__name__}")
        self.add_module("layer", layer)
        self.dtype = layer.dtype
        self._tb = None
        self._finalize()

    def _bind(self):
        self._layer = self._children["layer"]

    def forward(self, x):
        if not isinstance(x, np.ndarray) or x.ndim != 3:
            raise ValueError(f"TimeDistributed: expected a 3-D input (T, B, D), got "
                             f"{getattr(x, 'shape', type(x).__name__)}")
        T, B, D = x.shape
        y = self._layer.forward(np.ascontiguousarray(x).reshape(T * B, D))
        self._tb = (T, B)
        return y.reshape(T, B, -1)

    def backward(self, dy):
        if self._tb is None:
            raise RuntimeError("TimeDistributed: backward called before forward")
        T, B = self._tb
        if not isinstance(dy, np.ndarray) or dy.ndim != 3 or dy.shape[:2] != (T, B):
            raise ValueError(f"TimeDistributed: dy must have shape ({T}, {B}, O), got "
                             f"{getattr(dy, 'shape', type(dy).__name__)}")
        dx = self._layer.backward(np.ascontiguousarray(dy).reshape(T * B, -1))
        return None if dx is None else dx.reshape(T, B, -1)
