"""Reference GRU forward and BPTT (NumPy), step by step.

Gates r, z, n (PyTorch order), n = tanh(W_in x + b_in + r * (W_hn h + b_hn)),
h = (1 - z) * n + z * h_prev. Same names, signatures and in-place contract as
the C kernels: ``gates`` (T, B, 4H) holds [r, z, n, hn] after forward and
[dA_r, dA_z, dA_n, r * dA_n] after backward.
"""

from __future__ import annotations

import numpy as np

from .rnn import (RecArgs, check_biases, check_inputs, check_param_grads, backward_sums, check_truncate, cut,
                  finish_backward, run_backward, run_forward, sigmoid, stop_at)


def gru_forward(out, gates, x, h0, w_ih, w_hh, b_ih, b_hh, stop_on_nonfinite=False):
    """Returns the first step with a non-finite state, or -1."""
    a = RecArgs(x, w_hh, 3)
    T, B, I, H = a.T, a.B, a.I, a.H
    check_inputs(a, 3, x, w_ih, w_hh, h0)
    check_biases(a, 3, b_ih, b_hh)
    a.arr(out, "out", (T, B, H), writable=True)
    a.arr(gates, "gates", (T, B, 4 * H), writable=True)
    dt = a.dtype

    def step(t, state):
        h = state[0]
        gi = x[t] @ w_ih.T
        gh = h @ w_hh.T
        if b_ih is not None:
            gi = gi + b_ih
        if b_hh is not None:
            gh = gh + b_hh
        r = sigmoid(gi[:, :H] + gh[:, :H])
        z = sigmoid(gi[:, H : 2 * H] + gh[:, H : 2 * H])
        hn = gh[:, 2 * H :]
        n = np.tanh(gi[:, 2 * H :] + r * hn)
        gates[t] = np.concatenate([r, z, n, hn], axis=1)
        out[t] = (1 - z) * n + z * h
        return (out[t],)

    h_start = h0 if h0 is not None else np.zeros((B, H), dtype=dt)
    return run_forward(T, step, (h_start,), stop_on_nonfinite)


def gru_backward(dx, dh0, dw_ih, dw_hh, db_ih, db_hh, step_norms, d_out, d_hT, x, h0, out, gates,
                 w_ih, w_hh, truncate=None, stop_on_nonfinite=False):
    """BPTT step by step (consumes ``gates``); returns the first step in
    backward order whose dh is non-finite, or -1."""
    a = RecArgs(x, w_hh, 3)
    T, B, I, H = a.T, a.B, a.I, a.H
    k = check_truncate(truncate)
    check_inputs(a, 3, x, w_ih, w_hh, h0)
    a.arr(out, "out", (T, B, H))
    a.arr(d_out, "d_out", (T, B, H), optional=True)
    a.arr(d_hT, "d_hT", (B, H), optional=True)
    a.arr(gates, "gates", (T, B, 4 * H), writable=True)
    a.arr(dx, "dx", (T, B, I), writable=True, optional=True)
    a.arr(dh0, "dh0", (B, H), writable=True, optional=True)
    check_param_grads(a, 3, dw_ih, dw_hh, db_ih, db_hh)
    a.norms(step_norms, "step_norms")
    dt = a.dtype
    zeros = np.zeros((B, H), dtype=dt)
    gw_ih, gw_hh, gx, norms = backward_sums(dw_ih, dw_hh, T, B, I, dt)
    gb_ih = np.zeros(3 * H, dtype=np.float64)
    gb_hh = np.zeros(3 * H, dtype=np.float64)

    def step(t, dh):
        nonlocal gw_ih, gw_hh, gb_ih, gb_hh
        g4 = gates[t].copy()
        r, z, n, hn = g4[:, :H], g4[:, H : 2 * H], g4[:, 2 * H : 3 * H], g4[:, 3 * H :]
        hprev = out[t - 1] if t > 0 else (h0 if h0 is not None else zeros)
        dan = dh * (1 - z) * (1 - n * n)
        dar = dan * hn * r * (1 - r)
        daz = dh * (hprev - n) * z * (1 - z)
        dhn = dan * r
        a_in = np.concatenate([dar, daz, dan], axis=1)
        a_hh = np.concatenate([dar, daz, dhn], axis=1)
        gates[t] = np.concatenate([dar, daz, dan, dhn], axis=1)
        gw_ih += a_in.T @ x[t]
        if t > 0 or h0 is not None:
            gw_hh += a_hh.T @ hprev
        gb_ih += a_in.sum(axis=0, dtype=np.float64)
        gb_hh += a_hh.sum(axis=0, dtype=np.float64)
        gx[t] = a_in @ w_ih
        return zeros if cut(t, k) else dh * z + a_hh @ w_hh

    first, stopped, gh0 = run_backward(T, d_hT, zeros, d_out, norms, stop_on_nonfinite, step)
    if stopped:
        return stop_at(first, (step_norms, norms))
    finish_backward(dx, dh0, dw_ih, dw_hh, db_ih, db_hh, step_norms, gx, gh0, gw_ih, gw_hh, gb_ih, gb_hh, norms)
    return first
