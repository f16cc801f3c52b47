"""The recurrent driver: one layer, one direction, one fused C call per pass.

:class:`_Driver` is the one forward / backward of RNN, LSTM and GRU over a
time-major sequence x (T, B, I) with states (B, H): one kernel call for the
forward, one for BPTT, driven by the cell's :class:`_Cell` entry in
:data:`CELLS` (gate count, sequence buffers, states, the kernel calls). A
one-layer, one-direction layer (``gradcore.nn.RNN`` ...) is its own driver;
a stacked or bidirectional layer runs one driver per layer and direction
(:mod:`gradcore.nn._stack`); the cells (:mod:`gradcore.nn.rnn_cells`) run it
with T = 1.

A driver object provides: ``_cell``, ``input_size``, ``hidden_size``,
``dtype``, ``nonlinearity`` (RNN), ``p`` / ``g`` (its own parameter and
gradient views, local names ``weight_ih`` ...), ``_where`` ((layer,
direction), for the records) and ``_label()``; ``_bind_views()`` caches the
views the kernel calls read and ``_reset_driver()`` sets up the records.

Contract of ``_run_forward(x, h0, stop, _unit=True)`` / ``_run_backward(d_out,
d_hT, truncate, stop, d_cT, _unit=True)``: exactly the public forward / backward of a
one-layer layer (see :mod:`gradcore.nn.rnn`): forward returns the same arrays
(views of its buffers) on every call with the same (T, B), dx is a buffer
reused likewise, dh0 / the step norms are fresh; LSTM/GRU backward consumes the
gate cache; a stopped or interrupted pass leaves the documented state.
A layer uses the two as its ``forward`` / ``backward`` (one Python frame on
the one-layer path); without ``_unit`` they hand any other configuration or
layout to the layer's ``_stack_forward`` / ``_stack_backward``.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Tuple

import numpy as np

from .. import _contract
from ..backend import kernels
from ._recurrent_checks import DriverChecks
from ._recurrent_records import bind as _bind_records, settled

__all__ = ["NonFiniteStepError", "CELLS", "check_bias", "split_state_grads"]

_ndarray = np.ndarray


class NonFiniteStepError(FloatingPointError):
    """A recurrent pass met NaN/Inf at ``step`` and stopped there
    (``phase`` is ``"forward"`` (a state) or ``"backward"`` (a gradient));
    ``layer`` and ``direction`` (0 forward, 1 reverse) say where, ``step``
    is in real time (the input's step index) for both directions."""

    def __init__(self, step, phase, who, layer=0, direction=0):
        self.step = step
        self.phase = phase
        self.layer = layer
        self.direction = direction
        what = "state" if phase == "forward" else "gradient dL/dh_t"
        super().__init__(f"{who}: non-finite {what} at step {step} ({phase} stopped there; "
                         "gradients left unchanged)")


def check_bias(bias, who, single_ok):
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


def split_state_grads(m, d_hT, d_cT):
    """(d_hT, d_cT) from backward's arguments: LSTM takes d_cT or d_hT as a
    pair (d_hT, d_cT); the other cells refuse d_cT."""
    if m._cell.n_states == 2:
        if isinstance(d_hT, (tuple, list)):
            if len(d_hT) != 2 or d_cT is not None:
                raise TypeError(f"{m._label()}: d_hT must be an array or a pair (d_hT, d_cT)")
            return d_hT[0], d_hT[1]
    elif d_cT is not None:
        raise TypeError(f"{m._label()}: d_cT is for LSTM only")
    return d_hT, d_cT


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
    forward: Callable     # (K, driver, bufs, x, h0, c0, stop) -> first non-finite step
    backward: Callable    # (K, driver, bufs, dx, dh0, dc0, norms, cnorms, d_out, d_hT, d_cT, k, stop)


def _rnn_forward(K, m, b, x, h0, c0, stop):
    return K.rnn_forward(b["out"], x, h0, m._w_ih, m._w_hh, m._b_ih, m._b_hh,
                                 m.nonlinearity, stop)


def _rnn_backward(K, m, b, dx, dh0, dc0, norms, cnorms, d_out, d_hT, d_cT, k, stop):
    return K.rnn_backward(dx, dh0, m._gw_ih, m._gw_hh, m._gb_ih, m._gb_hh, b["dz"], norms,
                                  d_out, d_hT, m._x, m._h0, b["out"], m._w_ih, m._w_hh,
                                  m.nonlinearity, k, stop)


def _lstm_forward(K, m, b, x, h0, c0, stop):
    return K.lstm_forward(b["out"], b["cs"], b["gates"], x, h0, c0, m._w_ih, m._w_hh,
                                  m._b_ih, m._b_hh, stop)


def _lstm_backward(K, m, b, dx, dh0, dc0, norms, cnorms, d_out, d_hT, d_cT, k, stop):
    return K.lstm_backward(dx, dh0, dc0, m._gw_ih, m._gw_hh, m._gb_ih, m._gb_hh, norms,
                                   d_out, d_hT, d_cT, m._x, m._h0, m._c0, b["out"], b["cs"],
                                   b["gates"], m._w_ih, m._w_hh, k, stop, cell_norms=cnorms)


def _gru_forward(K, m, b, x, h0, c0, stop):
    return K.gru_forward(b["out"], b["gates"], x, h0, m._w_ih, m._w_hh, m._b_ih, m._b_hh,
                                 stop)


def _gru_backward(K, m, b, dx, dh0, dc0, norms, cnorms, d_out, d_hT, d_cT, k, stop):
    return K.gru_backward(dx, dh0, m._gw_ih, m._gw_hh, m._gb_ih, m._gb_hh, norms, d_out,
                                  d_hT, m._x, m._h0, b["out"], b["gates"], m._w_ih, m._w_hh, k,
                                  stop)


CELLS = {
    "rnn": _Cell(1, (("out", 1), ("dz", 1)), 1, False, True, _rnn_forward, _rnn_backward),
    "lstm": _Cell(4, (("out", 1), ("cs", 1), ("gates", 4)), 2, True, True, _lstm_forward,
                  _lstm_backward),
    "gru": _Cell(3, (("out", 1), ("gates", 4)), 1, True, False, _gru_forward, _gru_backward),
}


# ------------------------------------------------------------------- driver
@_bind_records
class _Driver(DriverChecks):
    """One layer and direction: forward, BPTT, their checks, buffers and
    records (see the module docstring for what the host object provides)."""

    _where = (0, 0)
    _general = False     # True: every call goes through the stack path
    _layout = None       # set by the stack path's forward (its backward then follows it)
    # the backward's array records (dh0, dc0, timestep_grad_norms,
    # timestep_cell_grad_norms: copied out of the plan's scratch when first
    # read) are bound by the records module's class decorator

    def __getstate__(self):
        get = getattr(super(), "__getstate__", None)  # (object has none before Python 3.11)
        return settled(get() if get is not None else dict(self.__dict__))

    def _compact(self, h0):
        """h0 in the compact one-layer layout ((B, H), LSTM a tuple of them)."""
        if self._cell.n_states == 2:
            return type(h0) is tuple and len(h0) == 2 and type(h0[0]) is _ndarray and h0[0].ndim == 2
        return type(h0) is _ndarray and h0.ndim == 2

    def _reset_driver(self):
        self._shape = self._bufs = self._x = self._h0 = self._c0 = None
        self._plan = self._plan_k = None
        self._cache_ok = False
        self._dx = self._dx_key = self._dshape = self._returned = None
        self.timestep_grad_norms = self.dh0 = self.first_nonfinite = None
        self.first_nonfinite_step = self.first_nonfinite_state_step = None
        self.first_nonfinite_grad_step = None
        if self._cell.n_states == 2:
            self.dc0 = None
            self.timestep_cell_grad_norms = None

    def _bind_views(self, names=("weight_ih", "weight_hh", "bias_ih", "bias_hh")):
        p, g = self.p, self.g
        wi, wh, bi, bh = names
        self._w_ih, self._w_hh, self._b_ih, self._b_hh = p[wi], p[wh], p.get(bi), p.get(bh)
        self._gw_ih, self._gw_hh, self._gb_ih, self._gb_hh = g[wi], g[wh], g.get(bi), g.get(bh)
        self._plan = self._plan_k = None   # the plan holds the old views: bind a new one

    # --------------------------------------------------------------- forward
    def _run_forward(self, x, h0=None, stop_on_nonfinite=False, _unit=False):
        """x (T, B, I) / (B, T, I) when batch_first / unbatched (T, I); h0 None
        or (L*D, B, H) (one layer and direction: also (B, H)); LSTM a pair
        (h, c) -> (out, h_n) (LSTM: (out, (h_n, c_n))), see
        :mod:`gradcore.nn.rnn` for the layouts. The returned arrays are the
        layer's buffers, overwritten (and returned again) by the next forward
        of that shape; a state taken from them may be passed back as h0."""
        K = kernels()           # the active backend, read once per pass
        if h0 is None and self._plan is not None:
            # the common case in one compiled call: the kernel and the records below
            out = self._plan.run_forward(self, x, K, stop_on_nonfinite, False)
            if out is not None:
                return out
        if not _unit:
            if (self._general or type(x) is not _ndarray or x.ndim != 3
                    or (h0 is not None and not self._compact(h0))):
                return self._stack_forward(x, h0, stop_on_nonfinite)
        elif type(x) is not _ndarray or x.ndim != 3:
            x = self._check_x(x)
        self._layout = None
        if x.dtype is not self.dtype:
            x = self._check_x(x)
        T, B, I = x.shape
        if I != self.input_size or not T or not B:
            x = self._check_x(x)
        h, c = (None, None) if h0 is None else self._initial_states(h0, B)
        s = self._shape
        bufs = self._bufs if s is not None and s[0] == T and s[1] == B else self._seq_buffers(T, B)
        stop = True if stop_on_nonfinite else False
        try:
            first = self._plan.forward(x, h, c, stop) if self._plan_k is K else \
                self._cell_forward(K, bufs, x, h, c, stop)
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
            self.first_nonfinite_state_step = self.first_nonfinite_step = self.first_nonfinite = None
        else:
            self._forward_nonfinite(first, stop)
        return self._returned

    def _cell_forward(self, K, bufs, x, h, c, stop):
        """The forward kernel call of the cell table; a backend with plans (the
        C one) first binds this shape's, which the next passes call directly."""
        make = getattr(K, "_RecurrentPlan", None)
        if make is None:
            return self._cell.forward(K, self, bufs, x, h, c, stop)
        self._plan = make(self._cell.G, bufs, self._w_ih, self._w_hh, self._b_ih, self._b_hh,
                          self._gw_ih, self._gw_hh, self._gb_ih, self._gb_hh,
                          getattr(self, "nonlinearity", None))
        self._plan_k = K
        plan = self._plan
        plan.fast = not self._general          # it may serve the layer's own calls
        plan.returned = self._returned
        plan.dx = self._dx if self._dx_key is self._shape else None
        return self._plan.forward(x, h, c, stop)

    def _forward_interruptible(self, bufs, x, h, c, stop):
        try:
            return self._cell.forward(kernels(), self, bufs, x, h, c, stop)
        except KeyboardInterrupt:
            self._drop_cache()
            raise

    def _drop_cache(self):
        self._x = None
        self._cache_ok = False

    def _initial_states(self, h0, B):
        if self._cell.n_states == 2:
            if not (isinstance(h0, (tuple, list)) and len(h0) == 2):
                raise TypeError(f"{self._label()}: h0 must be None or a pair (h, c), "
                                f"got {type(h0).__name__}")
            return (self._check_state(h0[0], "h0[0] (h)", B, own=True),
                    self._check_state(h0[1], "h0[1] (c)", B, own=True))
        return self._check_state(h0, "h0", B, own=True), None

    def _forward_nonfinite(self, first, stop):
        self.first_nonfinite_state_step = self.first_nonfinite_step = int(first)
        self.first_nonfinite = (*self._where, int(first))
        if stop:
            self._drop_cache()
            raise NonFiniteStepError(int(first), "forward", self._label(), *self._where)

    # -------------------------------------------------------------- backward
    def _run_backward(self, d_out, d_hT=None, truncate=None, stop_on_nonfinite=False, d_cT=None,
                      _unit=False):
        """BPTT: accumulates the parameter gradients, returns dx (the layout
        of x); sets ``dh0``, ``timestep_grad_norms`` (||dL/dh_t||),
        ``first_nonfinite`` / ``first_nonfinite_step``; LSTM also ``dc0`` and
        ``timestep_cell_grad_norms`` (||dL/dc_t||: the whole gradient
        reaching c_t, through c_{t+1} and through h_t), and takes ``d_cT``
        (or ``d_hT`` as a pair (d_hT, d_cT)). LSTM and GRU consume the
        forward's gate cache."""
        K = kernels()
        if truncate is None and self._plan is not None:
            # the common case in one compiled call: the kernel and the records below
            dx = self._plan.run_backward(self, d_out, K, stop_on_nonfinite, False, d_hT, d_cT)
            if dx is not None:
                return dx
        if self._layout is not None and not _unit:
            return self._stack_backward(d_out, d_hT, truncate, stop_on_nonfinite, d_cT)
        cell = self._cell
        if self._x is None or not self._cache_ok:
            self._check_cache()
        T, B = shape = self._shape
        if d_out is not None and (type(d_out) is not _ndarray or d_out.dtype is not self.dtype
                                  or d_out.shape != self._dshape):
            d_out = self._check_d_out(d_out, T, B)
        if truncate is not None and (type(truncate) is not int or not 1 <= truncate <= 2**62):
            truncate = _contract.check_truncate(truncate, self._label())
        if d_hT is not None or d_cT is not None:
            d_hT, d_cT = self._state_grads(d_hT, d_cT, B)
        dx = self._dx if self._dx_key is shape else self._dx_buffer(T, B)
        stop = True if stop_on_nonfinite else False
        try:
            if self._plan_k is K:
                first, dh0, norms, dc0, cnorms = self._plan.backward(
                    dx, d_out, d_hT, d_cT, self._x, self._h0, self._c0, truncate, stop)
            else:
                first, dh0, norms, dc0, cnorms = self._cell_backward(K, dx, d_out, d_hT, d_cT,
                                                                     truncate, stop)
        except (TypeError, ValueError):
            # refused before the kernel wrote anything: fix a layout and retry
            if d_out is None:
                raise
            d_out = self._check_d_out(d_out, T, B, force=True)
            first, dh0, norms, dc0, cnorms = self._backward_interruptible(dx, d_out, d_hT, d_cT,
                                                                          truncate, stop)
        except KeyboardInterrupt:
            self._interrupted_backward()
            raise
        if cell.consumes:
            self._cache_ok = False
        self.timestep_grad_norms = norms
        if first < 0:
            self.dh0 = dh0
            self.first_nonfinite_grad_step = self.first_nonfinite = None
            if cnorms is not None:
                self.dc0, self.timestep_cell_grad_norms = dc0, cnorms
        else:
            self._backward_nonfinite(first, stop, dh0, dc0, cnorms)
        return dx

    def _state_grads(self, d_hT, d_cT, B):
        """backward's d_hT / d_cT checked (LSTM: d_hT may be the pair)."""
        if d_cT is not None or type(d_hT) is tuple or type(d_hT) is list:
            d_hT, d_cT = split_state_grads(self, d_hT, d_cT)
        d_cT = self._check_state(d_cT, "d_cT", B)
        return self._check_state(d_hT, "d_hT", B), d_cT

    def _backward_nonfinite(self, first, stop, dh0, dc0, cnorms):
        self.dh0 = None if stop else dh0
        if self._cell.n_states == 2:
            self.dc0 = None if stop else dc0
            self.timestep_cell_grad_norms = cnorms
        self.first_nonfinite_grad_step = self.first_nonfinite_step = int(first)
        self.first_nonfinite = (*self._where, int(first))
        if stop:
            raise NonFiniteStepError(int(first), "backward", self._label(), *self._where)

    def _cell_backward(self, K, dx, d_out, d_hT, d_cT, truncate, stop):
        """BPTT through the cell table -> (first, dh0, step norms, dc0, cell
        norms); dh0 / dc0 / the norms are fresh (a caller may keep them)."""
        T, B = self._shape
        dt, hs = self.dtype, (B, self.hidden_size)
        dh0, norms = np.empty(hs, dt), np.empty(T)
        dc0, cnorms = (np.empty(hs, dt), np.empty(T)) if self._cell.n_states == 2 else (None, None)
        first = self._cell.backward(K, self, self._bufs, dx, dh0, dc0, norms, cnorms, d_out, d_hT,
                                    d_cT, truncate, stop)
        return first, dh0, norms, dc0, cnorms

    def _backward_interruptible(self, *args):
        try:
            return self._cell_backward(kernels(), *args)
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
        if self._cell.consumes:
            self._cache_ok = False

    # --------------------------------------------------------------- buffers
    def _buffer_shapes(self, T, B):
        H = self.hidden_size
        return {name: (T, B, w * H) for name, w in self._cell.buffers}

    def _dx_buffer(self, T, B):
        """dx (T, B, I), owned by the driver and reused by the next backward
        with the same shape (copy it to keep it)."""
        dx = self._dx
        if dx is None or dx.shape[:2] != (T, B):
            dx = self._dx = np.empty((T, B, self.input_size), self.dtype)
        self._dx_key = self._shape     # the (T, B) this dx was checked for
        if self._plan is not None:
            self._plan.dx = dx
        return dx

    def _seq_buffers(self, T, B):
        if self._shape != (T, B):
            self._bufs = self._plan = self._plan_k = None   # drop the old (possibly large) buffers first
            self._bufs = {k: np.empty(shape, self.dtype) for k, shape in self._buffer_shapes(T, B).items()}
            self._shape = (T, B)
            self._dshape = (T, B, self.hidden_size)
            out = self._bufs["out"]    # forward's return value, built once per shape
            self._returned = (out, (out[T - 1], self._bufs["cs"][T - 1])) if self._cell.n_states == 2 \
                else (out, out[T - 1])
            self._x = None             # the old cache is gone with its buffers
            self._cache_ok = False
        return self._bufs
