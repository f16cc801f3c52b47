"""Reference Elman RNN forward and BPTT (NumPy), step by step.

Same names, signatures and in-place contract as the C kernels in
``gradcore._kernels`` (see docs/architecture.md, "Recurrent networks"): one
NumPy matmul per step and per weight, written the obvious way. The helpers
here (argument checks, truncation rule, step norms) are shared by the LSTM and
GRU references.
"""

from __future__ import annotations

import numpy as np

from .._contract import RNN_NONLINEARITIES, RecurrentArgs as RecArgs, check_float_array, check_nonlinearity
from .._contract import check_truncate as _check_truncate


def check_truncate(truncate):
    """None -> 0 (full BPTT, the kernels' code); otherwise an int >= 1."""
    return _check_truncate(truncate) or 0


def cut(t, k):
    """True when no gradient crosses from step t to t-1 (t starts a window)."""
    return k > 0 and t > 0 and t % k == 0


def step_norm(dh):
    return float(np.sqrt(np.sum(np.square(dh.astype(np.float64)))))


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _act(v, act):
    if act == "tanh":
        return np.tanh(v)
    if act == "relu":
        return np.where(v < 0, v.dtype.type(0), v)
    return v


def check_inputs(a, G, x, w_ih, w_hh, h0):
    """The arguments every G-gate recurrent call shares, in the kernels'
    order: x (T, B, I), w_hh (G*H, H), w_ih (G*H, I), h0 (B, H) or None."""
    T, B, I, H = a.T, a.B, a.I, a.H
    a.arr(x, "x", (T, B, I))
    a.arr(w_hh, "w_hh", (G * H, H))
    a.arr(w_ih, "w_ih", (G * H, I))
    a.arr(h0, "h0", (B, H), optional=True)


def check_biases(a, G, b_ih, b_hh):
    """b_ih, b_hh (G*H,) or None."""
    a.arr(b_ih, "b_ih", (G * a.H,), optional=True)
    a.arr(b_hh, "b_hh", (G * a.H,), optional=True)


def check_param_grads(a, G, dw_ih, dw_hh, db_ih, db_hh):
    """The parameter-gradient outputs of a G-gate backward (db_* may be None)."""
    H = a.H
    a.arr(dw_ih, "dw_ih", (G * H, a.I), writable=True)
    a.arr(dw_hh, "dw_hh", (G * H, H), writable=True)
    a.arr(db_ih, "db_ih", (G * H,), writable=True, optional=True)
    a.arr(db_hh, "db_hh", (G * H,), writable=True, optional=True)


def preact(x_t, h, w_ih, w_hh, b_ih, b_hh):
    """x_t W_ih^T (+ h W_hh^T) (+ b_ih) (+ b_hh); None terms are skipped."""
    v = x_t @ w_ih.T
    if h is not None:
        v = v + h @ w_hh.T
    if b_ih is not None:
        v = v + b_ih
    if b_hh is not None:
        v = v + b_hh
    return v


def run_forward(T, step, state, stop_on_nonfinite):
    """The forward loop of every cell: ``state = step(t, state)`` for t = 0 ..
    T-1 (``state``: the tuple of the cell's states); returns the first step
    whose states are non-finite (-1 if none), and stops there if asked."""
    first = -1
    with np.errstate(all="ignore"):
        for t in range(T):
            state = step(t, state)
            first = first_nonfinite(first, t, *state)
            if first == t and stop_on_nonfinite:
                break
    return first


def accumulate(t, a, x, out, h0, gw_ih, gw_hh, gx, w_ih):
    """Step t's share of the weight gradients and dx, from the gradient ``a``
    of its pre-activations; returns a's column sums (float64, for the biases)."""
    gw_ih += a.T @ x[t]
    hprev = out[t - 1] if t > 0 else h0
    if hprev is not None:
        gw_hh += a.T @ hprev
    gx[t] = a @ w_ih
    return a.sum(axis=0, dtype=np.float64)


def backward_sums(dw_ih, dw_hh, T, B, I, dt):
    """The weight-gradient sums, dx and the step norms a backward fills."""
    return np.zeros_like(dw_ih), np.zeros_like(dw_hh), np.zeros((T, B, I), dtype=dt), np.full(T, np.nan)


def step_grad(t, carry, d_out, norms):
    """dL/dh_t: the carry from step t+1 plus d_out[t]; its norm goes to norms[t]."""
    dh = carry if d_out is None else d_out[t] + carry
    norms[t] = step_norm(dh)
    return dh


def first_nonfinite(first, t, *grads):
    """t if no earlier step was non-finite and one of ``grads`` is, else first."""
    if first < 0 and not all(np.isfinite(g).all() for g in grads):
        return t
    return first


def stop_at(first, *norm_pairs):
    """End a backward at step ``first``: only the step norms are written."""
    for out, norms in norm_pairs:
        if out is not None:
            out[:] = norms
    return first


def run_backward(T, d_hT, zeros, d_out, norms, stop_on_nonfinite, step):
    """The BPTT loop of the one-carry cells (Elman, GRU), for t = T-1 .. 0:
    dh = dL/dh_t, the carry from step t+1 plus d_out[t] (the carry into step
    T-1 is d_hT, or ``zeros``), its norm into norms[t]. The first step with a
    non-finite dh is recorded; with ``stop_on_nonfinite`` the loop ends there,
    before any gradient of that step. Otherwise ``step(t, dh)`` accumulates
    step t's gradients and returns the carry into step t-1. Returns (first
    non-finite step or -1, whether it stopped, the carry out of step 0 =
    dL/dh0)."""
    carry = d_hT.copy() if d_hT is not None else zeros.copy()
    first = -1
    with np.errstate(all="ignore"):
        for t in range(T - 1, -1, -1):
            dh = step_grad(t, carry, d_out, norms)
            first = first_nonfinite(first, t, dh)
            if first == t and stop_on_nonfinite:
                return first, True, None
            carry = step(t, dh)
    return first, False, carry


def finish_backward(dx, dh0, dw_ih, dw_hh, db_ih, db_hh, step_norms, gx, gh0, gw_ih, gw_hh, gb_ih, gb_hh,
                    norms):
    """The end of every recurrent backward: the weight gradients accumulated
    over the steps are added to dw_ih / dw_hh, the bias sums (float64) to
    db_ih / db_hh (rounded once to their dtype); dx, dh0 and step_norms are
    set (each output only when given)."""
    dw_ih += gw_ih
    dw_hh += gw_hh
    if db_ih is not None:
        db_ih[:] = (db_ih.astype(np.float64) + gb_ih).astype(db_ih.dtype)
    if db_hh is not None:
        db_hh[:] = (db_hh.astype(np.float64) + gb_hh).astype(db_hh.dtype)
    if dx is not None:
        dx[:] = gx
    if dh0 is not None:
        dh0[:] = gh0
    if step_norms is not None:
        step_norms[:] = norms


def rnn_forward(out, x, h0, w_ih, w_hh, b_ih, b_hh, act, stop_on_nonfinite=False):
    """h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh); returns the first
    step with a non-finite state, or -1."""
    a = RecArgs(x, w_hh, 1)
    T, B, I, H = a.T, a.B, a.I, a.H
    check_nonlinearity(act, "act")
    check_inputs(a, 1, x, w_ih, w_hh, h0)
    check_biases(a, 1, b_ih, b_hh)
    a.arr(out, "out", (T, B, H), writable=True)

    def step(t, state):
        out[t] = _act(preact(x[t], state[0], w_ih, w_hh, b_ih, b_hh), act)
        return (out[t],)

    return run_forward(T, step, (h0,), stop_on_nonfinite)


def rnn_backward(dx, dh0, dw_ih, dw_hh, db_ih, db_hh, dz, step_norms, d_out, d_hT, x, h0, out,
                 w_ih, w_hh, act, truncate=None, stop_on_nonfinite=False):
    """BPTT step by step; accumulates dw_ih, dw_hh, db_ih, db_hh, overwrites
    dx, dh0; returns the first step (backward order) with a non-finite dh."""
    a = RecArgs(x, w_hh, 1)
    T, B, I, H = a.T, a.B, a.I, a.H
    check_nonlinearity(act, "act")
    k = check_truncate(truncate)
    check_inputs(a, 1, x, w_ih, w_hh, h0)
    a.arr(out, "out", (T, B, H))
    a.arr(d_out, "d_out", (T, B, H), optional=True)
    a.arr(d_hT, "d_hT", (B, H), optional=True)
    a.arr(dx, "dx", (T, B, I), writable=True, optional=True)
    a.arr(dh0, "dh0", (B, H), writable=True, optional=True)
    check_param_grads(a, 1, dw_ih, dw_hh, db_ih, db_hh)
    a.arr(dz, "dz", (T, B, H), writable=True, optional=True)
    a.norms(step_norms, "step_norms")
    dt = a.dtype
    gw_ih, gw_hh, gx, norms = backward_sums(dw_ih, dw_hh, T, B, I, dt)
    gb = np.zeros(H, dtype=np.float64)
    zeros = np.zeros((B, H), dtype=dt)

    def step(t, dh):
        nonlocal gb
        h = out[t]
        if act == "tanh":
            z = dh * (1 - h * h)
        elif act == "relu":
            z = np.where(h > 0, dh, dt.type(0))
        else:
            z = dh.copy()
        if dz is not None:
            dz[t] = z
        gb += accumulate(t, z, x, out, h0, gw_ih, gw_hh, gx, w_ih)
        return zeros if cut(t, k) else z @ w_hh

    first, stopped, gh0 = run_backward(T, d_hT, zeros, d_out, norms, stop_on_nonfinite, step)
    if stopped:
        return stop_at(first, (step_norms, norms))
    finish_backward(dx, dh0, dw_ih, dw_hh, db_ih, db_hh, step_norms, gx, gh0, gw_ih, gw_hh, gb, gb, norms)
    return first


def recurrent_activation(y, x, which):
    """y = tanh(x) or sigmoid(x) (the element functions of the fused cells)."""
    if which not in ("tanh", "sigmoid"):
        raise ValueError(f"which: expected 'tanh' or 'sigmoid', got {which!r}")
    check_float_array(x, "x", False)
    check_float_array(y, "y", True)
    if x.dtype != y.dtype or x.shape != y.shape:
        raise ValueError(f"y: expected dtype {x.dtype} and shape {x.shape}, got {y.dtype} {y.shape}")
    with np.errstate(over="ignore"):
        y[...] = np.tanh(x) if which == "tanh" else sigmoid(x)
