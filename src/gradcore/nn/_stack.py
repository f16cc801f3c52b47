"""Stacked, bidirectional, batch-first and unbatched recurrent passes.

``forward(layer, x, h0, stop)`` / ``backward(layer, d_out, d_hT, truncate,
stop, d_cT)`` run a ``gradcore.nn.RNN / LSTM / GRU`` of any configuration as
one fused forward and one fused BPTT call per layer and direction (the
drivers of :mod:`gradcore.nn._recurrent`): layer k > 0 reads the
concatenated outputs of layer k - 1 (forward direction first), the reverse
direction runs on a time-reversed copy of its input, and backward walks the
layers top-down, summing the two directions' input gradients. Every
argument is checked here, before any driver runs, so a bad argument changes
nothing.

Layouts (the layer's ``batch_first`` and the input's rank): x (T, B, I),
(B, T, I) or unbatched (T, I); out likewise with D*H features; states
(L*D, B, H) (unbatched (L*D, H)). A layer with L*D == 1 also takes and, by
default, returns its state without the leading axis ((B, H), unbatched
(H,)); it returns (1, B, H) when h0 came in that layout. ``d_out`` and
``d_hT`` come in the layout of the output and of the returned state;
``dh0`` / ``dc0`` are set in the latter. Records are in real time: row
``layer * D + direction`` of the (L*D, T) norms, ``first_nonfinite =
(layer, direction, step)`` for the first driver (in run order) that met
NaN/Inf.

The loop over layers and directions itself is stateless and shared with
the PyTorch modules (:mod:`gradcore.interop.torch._stack`):
:func:`run_layers` / :func:`run_layers_backward` take one callback per
layer and direction and a ``take(shape)`` allocator, and do the reversed
copies, the joins and splits of the two directions and the sum of their
input gradients.
"""

from __future__ import annotations

import numpy as np

from .. import _contract
from ._recurrent import NonFiniteStepError, _Driver, split_state_grads
from ._recurrent_records import peek

__all__ = ["forward", "backward", "Unit", "run_layers", "run_layers_backward"]

_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def suffix(layer, direction, single):
    """The torch-style name suffix of one layer and direction ("" when the
    layer has one of each and keeps gradcore's short names)."""
    return "" if single else f"_l{layer}" + ("_reverse" if direction else "")


class Unit(_Driver):
    """The driver of one layer and direction of a stacked layer: views of the
    owner's parameters and gradients under their local names."""

    def __init__(self, owner, layer, direction):
        self._cell = owner._cell
        self.input_size = owner.input_size if layer == 0 else owner.num_directions * owner.hidden_size
        self.hidden_size = owner.hidden_size
        self.dtype = owner.dtype
        self.nonlinearity = getattr(owner, "nonlinearity", None)
        self._where = (layer, direction)
        self._name = f"{owner._label()} layer {layer}" + (" reverse" if direction else "")
        sfx = suffix(layer, direction, False)
        self.p = {n: owner.p[n + sfx] for n in _NAMES if n + sfx in owner.p}
        self.g = {n: owner.g[n + sfx] for n in _NAMES if n + sfx in owner.g}
        self._reset_driver()
        self._bind_views()

    def _label(self):
        return self._name


# ------------------------------------------------------- the shared loop
def run_layers(L, D, x, run, take, out=None, between=None):
    """Forward through ``L`` layers x ``D`` directions; returns the top
    layer's output, time-major (T, B, D*H).

    ``run(k, layer, d, inp, dest) -> y``: one fused forward of row ``k =
    layer * D + d`` on the C-contiguous time-major ``inp`` (the reverse
    direction gets a time-reversed copy), returning its (T, B, H) output,
    written into ``dest`` when that is given (``out`` itself for the top
    layer of a one-direction stack; else None). ``take(shape)`` allocates a
    buffer of the stack's dtype (the reversed copies, the joined outputs);
    None: fresh NumPy arrays.
    The top layer of a bidirectional stack is joined into ``out`` when given.
    ``between(layer, joined) -> next input`` (None: the joined output
    itself) runs between layers (dropout)."""
    inp = x
    for layer in range(L):
        last = layer == L - 1
        if D == 1:
            joined = run(layer, layer, 0, inp, out if last else None)
        else:
            if take is None:
                xr = np.ascontiguousarray(inp[::-1])
            else:
                xr = take(inp.shape)
                np.copyto(xr, inp[::-1])
            y0 = run(2 * layer, layer, 0, inp, None)
            y1 = run(2 * layer + 1, layer, 1, xr, None)
            T, B, H = y0.shape
            if last and out is not None:
                joined = out
            else:
                joined = np.empty((T, B, 2 * H), y0.dtype) if take is None else take((T, B, 2 * H))
            joined[:, :, :H] = y0
            joined[:, :, H:] = y1[::-1]
        if not last and between is not None:
            joined = between(layer, joined)
        inp = joined
    return inp


def run_layers_backward(L, D, d_top, run, take, dx=None, want_dx=True, between=None):
    """BPTT through the stack, top layer first; returns the gradient of the
    stack's input (written into ``dx`` when given), or None when
    ``want_dx`` is False (the bottom layer then computes no input gradient).

    ``run(k, layer, d, d_out, dest, need_dx) -> dx_k``: one fused BPTT of
    row ``k`` with ``d_out`` its output's gradient (C-contiguous, in the
    row's own time order; None for no gradient), returning its input
    gradient (into ``dest`` when given, None when ``need_dx`` is False).
    ``between(layer, total)`` scales layer ``layer``'s input gradient in
    place (dropout, ``layer >= 1``). The reverse direction's input gradient
    is in reversed time: it is reversed while the two are summed. ``take``:
    as for :func:`run_layers` (the split top gradient, the sums)."""
    g = d_top
    for layer in range(L - 1, -1, -1):
        bottom = layer == 0
        need = want_dx or not bottom
        if D == 1:
            total = run(layer, layer, 0, g, dx if bottom else None, need)
        else:
            if g is None:
                g0 = g1 = None
            elif take is None:
                H = g.shape[2] // 2
                g0, g1 = np.ascontiguousarray(g[:, :, :H]), np.ascontiguousarray(g[::-1, :, H:])
            else:
                T, B, F = g.shape
                H = F // 2
                g0, g1 = take((T, B, H)), take((T, B, H))
                np.copyto(g0, g[:, :, :H])
                np.copyto(g1, g[::-1, :, H:])
            dx0 = run(2 * layer, layer, 0, g0, None, need)
            dx1 = run(2 * layer + 1, layer, 1, g1, None, need)
            if not need:
                return None
            if bottom and dx is not None:
                total = np.add(dx0, dx1[::-1], out=dx)
            elif take is None:
                total = np.add(dx0, dx1[::-1])
            else:
                total = np.add(dx0, dx1[::-1], out=take(dx0.shape))
        if not need:
            return None
        if not bottom and between is not None:
            between(layer, total)
        g = total
    return g


# ----------------------------------------------------------------- layouts
def _input(m, x):
    """x in the layer's layout -> (time-major C-contiguous (T, B, I), batched)."""
    who = m._label()
    I = m.input_size
    want = f"(B, T, {I})" if m.batch_first else f"(T, B, {I})"
    x = m._check_array(x, "x", f"{want} or unbatched (T, {I})")
    if x.ndim not in (2, 3):
        layout = "batch_first" if m.batch_first else "time-major"
        raise ValueError(f"{who}: expected a 3-D x {want} ({layout}) or a 2-D unbatched x (T, {I}), "
                         f"got shape {x.shape}")
    if x.shape[-1] != I:
        raise ValueError(f"{who}: expected x with {I} features in the last axis, got shape {x.shape}")
    batched = x.ndim == 3
    if not batched:
        x = x[:, None, :]
    elif m.batch_first:
        x = x.transpose(1, 0, 2)
    if x.shape[0] < 1:
        raise ValueError(f"{who}: the sequence is empty (T = 0, x shape {x.shape}); need T >= 1")
    if x.shape[1] < 1:
        raise ValueError(f"{who}: the batch is empty (B = 0, x shape {x.shape}); need B >= 1")
    return np.ascontiguousarray(x), batched


def _state(m, s, name, B, batched):
    """A state in the full or (L*D == 1) compact layout -> ((L*D, B, H) view, full)."""
    if s is None:
        return None, None
    H, LD = m.hidden_size, m.num_layers * m.num_directions
    full = (LD, B, H) if batched else (LD, H)
    compact = ((B, H) if batched else (H,)) if LD == 1 else None
    text = f"{full}" + (f" or {compact}" if compact else "")
    s = m._check_array(s, name, text)
    if s.shape == full:
        return (s if batched else s[:, None, :]), True
    if compact is not None and s.shape == compact:
        return s.reshape(1, B, H), False
    raise ValueError(f"{m._label()}: expected {name} of shape {text} (num_layers * num_directions"
                     f"{', batch' if batched else ''}, hidden_size), got {s.shape}")


def _states(m, h0, B, batched, names=("h0", "h0[0] (h)", "h0[1] (c)")):
    """h0 (LSTM: a pair) -> (h (L*D, B, H) or None, c or None, full)."""
    if h0 is None:
        return None, None, False
    if m._cell.n_states == 2:
        if not (isinstance(h0, (tuple, list)) and len(h0) == 2):
            raise TypeError(f"{m._label()}: {names[0]} must be None or a pair (h, c), got {type(h0).__name__}")
        h, full = _state(m, h0[0], names[1], B, batched)
        c, cfull = _state(m, h0[1], names[2], B, batched)
        if full is None or cfull is None:
            full = bool(full or cfull)
        elif full != cfull:
            raise ValueError(f"{m._label()}: {names[1]} and {names[2]} must have the same layout, "
                             f"got shapes {np.shape(h0[0])} and {np.shape(h0[1])}")
        return h, c, full
    h, full = _state(m, h0, names[0], B, batched)
    return h, None, bool(full)


def _state_out(s, batched, full):
    """(L*D, B, H) -> the layout the caller uses."""
    if not full:
        s = s[0]
        return s if batched else s[0]
    return s if batched else s[:, 0]


def _seq_out(m, out, batched):
    """Time-major (T, B, F) -> the layer's layout."""
    if not batched:
        return out[:, 0]
    return np.ascontiguousarray(out.transpose(1, 0, 2)) if m.batch_first else out


# ----------------------------------------------------------------- forward
def forward(m, x, h0, stop):
    x, batched = _input(m, x)
    T, B = x.shape[0], x.shape[1]
    h, c, full = _states(m, h0, B, batched)
    units = m._unit_list()
    full = full or len(units) > 1
    D, H = m.num_directions, m.hidden_size
    lstm = m._cell.n_states == 2
    hN = np.empty((len(units), B, H), m.dtype)
    cN = np.empty_like(hN) if lstm else None
    m._layout = None
    first = None

    def run(k, layer, d, inp, dest):
        nonlocal first
        u = units[k]
        s0 = (None if h is None else h[k], None if c is None else c[k]) if lstm else (None if h is None else h[k])
        try:
            out, hT = u._run_forward(inp, s0, stop, _unit=True)
        except NonFiniteStepError as e:
            for v in units:
                v._drop_cache()
            _record(m, "state", (layer, d, _real(e.step, d, T)))
            raise NonFiniteStepError(_real(e.step, d, T), "forward", m._label(), layer, d) from None
        except BaseException:
            for v in units:
                v._drop_cache()
            raise
        if lstm:
            hN[k], cN[k] = hT
        else:
            hN[k] = hT
        if first is None and u.first_nonfinite_step is not None:
            first = (layer, d, _real(u.first_nonfinite_step, d, T))
        return out

    inp = run_layers(m.num_layers, D, x, run, None)
    m._layout = (T, B, batched, full)
    m.timestep_grad_norms = m.first_nonfinite_grad_step = None
    if lstm:
        m.timestep_cell_grad_norms = None
    _record(m, "state", first)
    out = _seq_out(m, inp, batched)
    if lstm:
        return out, (_state_out(hN, batched, full), _state_out(cN, batched, full))
    return out, _state_out(hN, batched, full)


def _real(step, direction, T):
    return step if direction == 0 else T - 1 - step


def _record(m, what, first):
    step = None if first is None else first[2]
    m.first_nonfinite = first
    m.first_nonfinite_step = step
    setattr(m, f"first_nonfinite_{what}_step", step)


# ---------------------------------------------------------------- backward
def backward(m, d_out, d_hT, truncate, stop, d_cT):
    who = m._label()
    if m._layout is None:
        raise RuntimeError(f"{who}: backward called before forward")
    units = m._unit_list()
    for u in units:
        if u._x is None or not u._cache_ok:
            u._check_cache()
    T, B, batched, full = m._layout
    D, H, L = m.num_directions, m.hidden_size, m.num_layers
    lstm = m._cell.n_states == 2
    if d_out is not None:
        d_out = _d_out(m, d_out, T, B, batched)
    if truncate is not None:
        truncate = _contract.check_truncate(truncate, who)
    d_hT, d_cT = split_state_grads(m, d_hT, d_cT)
    dh = None if d_hT is None else _state(m, d_hT, "d_hT", B, batched)[0]
    dc = None if d_cT is None else _state(m, d_cT, "d_cT", B, batched)[0]
    saved = m.flat_gradients().copy() if stop and len(units) > 1 else None
    norms = np.full((len(units), T), np.nan)
    cnorms = np.full((len(units), T), np.nan) if lstm else None
    dh0 = np.empty((len(units), B, H), m.dtype)
    dc0 = np.empty_like(dh0) if lstm else None
    first = None

    def run(k, layer, d, g, dest, need):
        nonlocal first
        u = units[k]
        step_d = u._run_backward(g, None if dh is None else dh[k], truncate, stop,
                                 None if dc is None else dc[k], _unit=True)
        # copied straight out of the pass's records (a pending one stays unread)
        un = peek(u, "timestep_grad_norms")
        norms[k] = un if d == 0 else un[::-1]
        if lstm:
            un = peek(u, "timestep_cell_grad_norms")
            cnorms[k] = un if d == 0 else un[::-1]
            dc0[k] = peek(u, "dc0")
        dh0[k] = peek(u, "dh0")
        if first is None and u.first_nonfinite_step is not None:
            first = (layer, d, _real(u.first_nonfinite_step, d, T))
        return step_d

    try:
        grad = run_layers_backward(L, D, d_out, run, None)
    except NonFiniteStepError as e:
        if saved is not None:
            m.flat_gradients()[...] = saved
        _consume(units)
        layer, d = e.layer, e.direction
        u = units[layer * D + d]
        _record(m, "grad", (layer, d, _real(e.step, d, T)))
        norms[layer * D + d] = u.timestep_grad_norms[::1 - 2 * d]
        m.timestep_grad_norms = norms[0] if len(units) == 1 else norms
        m.dh0 = None
        if lstm:
            cnorms[layer * D + d] = u.timestep_cell_grad_norms[::1 - 2 * d]
            m.timestep_cell_grad_norms = cnorms[0] if len(units) == 1 else cnorms
            m.dc0 = None
        raise NonFiniteStepError(_real(e.step, d, T), "backward", who, layer, d) from None
    except KeyboardInterrupt:
        for name in m.p:
            m.g[name][...] = 0
        _consume(units)
        m.dh0 = m.timestep_grad_norms = None
        if lstm:
            m.dc0 = m.timestep_cell_grad_norms = None
        raise
    _record(m, "grad", first)
    one = len(units) == 1
    m.timestep_grad_norms = norms[0] if one else norms
    m.dh0 = _state_out(dh0, batched, full)
    if lstm:
        m.timestep_cell_grad_norms = cnorms[0] if one else cnorms
        m.dc0 = _state_out(dc0, batched, full)
    return _seq_out(m, grad, batched)


def _consume(units):
    for u in units:
        if u._cell.consumes:
            u._cache_ok = False


def _d_out(m, d_out, T, B, batched):
    """d_out in the output's layout -> time-major C-contiguous (T, B, D*H)."""
    F = m.num_directions * m.hidden_size
    want = ((B, T, F) if m.batch_first else (T, B, F)) if batched else (T, F)
    d_out = m._check_array(d_out, "d_out", f"{want} or None")
    if d_out.shape != want:
        raise ValueError(f"{m._label()}: d_out has shape {d_out.shape}, but the last forward output "
                         f"has shape {want}")
    if not batched:
        d_out = d_out[:, None, :]
    elif m.batch_first:
        d_out = d_out.transpose(1, 0, 2)
    return np.ascontiguousarray(d_out)
