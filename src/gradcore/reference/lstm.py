"""Reference LSTM forward and BPTT (NumPy), step by step.

Gates i, f, g, o (PyTorch order); same names, signatures and in-place
contract as the C kernels (``gates`` holds the activated gates after forward
and is overwritten with the pre-activation gradients by backward).
"""

from __future__ import annotations

import numpy as np

from .rnn import (RecArgs, check_biases, check_inputs, check_param_grads, accumulate, backward_sums,
                  check_truncate, cut, finish_backward, first_nonfinite, preact, run_forward, sigmoid,
                  step_grad, step_norm, stop_at)


def lstm_forward(out, cs, gates, x, h0, c0, w_ih, w_hh, b_ih, b_hh, stop_on_nonfinite=False):
    """c_t = f c_{t-1} + i g, h_t = o tanh(c_t); returns the first step whose
    h or c is non-finite, or -1."""
    a = RecArgs(x, w_hh, 4)
    T, B, I, H = a.T, a.B, a.I, a.H
    check_inputs(a, 4, x, w_ih, w_hh, h0)
    a.arr(c0, "c0", (B, H), optional=True)
    check_biases(a, 4, b_ih, b_hh)
    a.arr(out, "out", (T, B, H), writable=True)
    a.arr(cs, "cs", (T, B, H), writable=True)
    a.arr(gates, "gates", (T, B, 4 * H), writable=True)

    def step(t, state):
        h, c = state
        v = preact(x[t], h, w_ih, w_hh, b_ih, b_hh)
        i = sigmoid(v[:, :H])
        f = sigmoid(v[:, H : 2 * H])
        g = np.tanh(v[:, 2 * H : 3 * H])
        o = sigmoid(v[:, 3 * H :])
        cn = i * g if c is None else f * c + i * g
        gates[t] = np.concatenate([i, f, g, o], axis=1)
        cs[t] = cn
        out[t] = o * np.tanh(cn)
        return out[t], cs[t]

    return run_forward(T, step, (h0, c0), stop_on_nonfinite)


def lstm_backward(dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, step_norms, d_out, d_hT, d_cT, x, h0,
                  c0, out, cs, gates, w_ih, w_hh, truncate=None, stop_on_nonfinite=False,
                  cell_norms=None):
    """BPTT step by step (consumes ``gates``); ``cell_norms`` (T,) or None
    receives ||dL/dc_t||. Returns the first step in backward order whose dh
    or dc is non-finite, or -1."""
    a = RecArgs(x, w_hh, 4)
    T, B, I, H = a.T, a.B, a.I, a.H
    k = check_truncate(truncate)
    check_inputs(a, 4, x, w_ih, w_hh, h0)
    a.arr(c0, "c0", (B, H), optional=True)
    a.arr(out, "out", (T, B, H))
    a.arr(cs, "cs", (T, B, H))
    a.arr(d_out, "d_out", (T, B, H), optional=True)
    a.arr(d_hT, "d_hT", (B, H), optional=True)
    a.arr(d_cT, "d_cT", (B, H), optional=True)
    a.arr(gates, "gates", (T, B, 4 * H), writable=True)
    a.arr(dx, "dx", (T, B, I), writable=True, optional=True)
    a.arr(dh0, "dh0", (B, H), writable=True, optional=True)
    a.arr(dc0, "dc0", (B, H), writable=True, optional=True)
    check_param_grads(a, 4, dw_ih, dw_hh, db_ih, db_hh)
    a.norms(step_norms, "step_norms")
    a.norms(cell_norms, "cell_norms")
    dt = a.dtype
    zeros = np.zeros((B, H), dtype=dt)
    gw_ih, gw_hh, gx, norms = backward_sums(dw_ih, dw_hh, T, B, I, dt)
    gb = np.zeros(4 * H, dtype=np.float64)
    gh0 = gc0 = None
    cnorms = np.full(T, np.nan)
    carry_h = d_hT.copy() if d_hT is not None else zeros.copy()
    carry_c = d_cT.copy() if d_cT is not None else zeros.copy()
    first = -1
    with np.errstate(all="ignore"):
        for t in range(T - 1, -1, -1):
            dh = step_grad(t, carry_h, d_out, norms)
            g4 = gates[t].copy()
            i, f, g, o = g4[:, :H], g4[:, H : 2 * H], g4[:, 2 * H : 3 * H], g4[:, 3 * H :]
            cprev = cs[t - 1] if t > 0 else (c0 if c0 is not None else zeros)
            tc = np.tanh(cs[t])
            dc = carry_c + dh * o * (1 - tc * tc)
            cnorms[t] = step_norm(dc)
            da = np.concatenate(
                [dc * g * i * (1 - i), dc * cprev * f * (1 - f), dc * i * (1 - g * g), dh * tc * o * (1 - o)],
                axis=1,
            )
            gates[t] = da
            carry_c = dc * f
            first = first_nonfinite(first, t, dh, dc)
            if first == t and stop_on_nonfinite:
                return stop_at(first, (step_norms, norms), (cell_norms, cnorms))
            gb += accumulate(t, da, x, out, h0, gw_ih, gw_hh, gx, w_ih)
            if t > 0 and not cut(t, k):
                carry_h = da @ w_hh
            elif t > 0:
                carry_h = zeros.copy()
                carry_c = zeros.copy()
            else:
                gh0 = da @ w_hh
                gc0 = carry_c
    finish_backward(dx, dh0, dw_ih, dw_hh, db_ih, db_hh, step_norms, gx, gh0, gw_ih, gw_hh, gb, gb, norms)
    if dc0 is not None:
        dc0[:] = gc0
    if cell_norms is not None:
        cell_norms[:] = cnorms
    return first
