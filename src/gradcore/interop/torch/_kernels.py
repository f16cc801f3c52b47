"""The one place the torch recurrent modules call gradcore's recurrent
kernels (one fused forward and one fused BPTT per layer and direction).

Contract: every argument is a C-contiguous NumPy array of one float dtype
(views of torch tensors' memory or reused scratch; None where optional);
outputs are preallocated by the caller and written in place. ``take(shape)``
hands out a scratch array of the call's dtype. ``forward`` returns the
cache (a tuple of arrays) ``backward`` needs; ``backward`` accumulates into
``dw_*`` / ``db_*`` (which the caller zeroes), overwrites ``dx`` / ``dh0`` /
``dc0``, fills ``step_norms`` (and ``cell_norms`` for LSTM), returns the
first non-finite step in backward order (-1 if none; the scratch it takes
is recorded by ``take``). LSTM and GRU backward consume the gate cache; ``backward`` is called
at most once per cache (the caller re-runs ``forward`` for a second one).

If the binding's names or argument lists change, this file is the only one
to adapt.
"""

from __future__ import annotations

from ... import _kernels as K

ACT = {"RNN_TANH": "tanh", "RNN_RELU": "relu"}


def forward(mode, take, out, x, h0, c0, w_ih, w_hh, b_ih, b_hh):
    """Run the fused forward into ``out`` (T, B, H); returns the cache."""
    shape = out.shape
    if mode == "LSTM":
        cs = take(shape)
        gates = take((shape[0], shape[1], 4 * shape[2]))
        K.lstm_forward(out, cs, gates, x, h0, c0, w_ih, w_hh, b_ih, b_hh)
        return (cs, gates)
    if mode == "GRU":
        gates = take((shape[0], shape[1], 4 * shape[2]))
        K.gru_forward(out, gates, x, h0, w_ih, w_hh, b_ih, b_hh)
        return (gates,)
    K.rnn_forward(out, x, h0, w_ih, w_hh, b_ih, b_hh, ACT[mode])
    return ()


def backward(mode, take, cache, x, h0, c0, out, w_ih, w_hh, d_out, d_hT, d_cT,
             dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, step_norms, cell_norms):
    """BPTT over the whole sequence (see the module docstring)."""
    if mode == "LSTM":
        cs, gates = cache
        first = K.lstm_backward(dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, step_norms, d_out, d_hT, d_cT,
                                x, h0, c0, out, cs, gates, w_ih, w_hh, cell_norms=cell_norms)
        return first
    if mode == "GRU":
        first = K.gru_backward(dx, dh0, dw_ih, dw_hh, db_ih, db_hh, step_norms, d_out, d_hT, x, h0, out,
                               cache[0], w_ih, w_hh)
        return first
    dz = take(out.shape)   # the pool's taker records it with the tape's scratch
    return K.rnn_backward(dx, dh0, dw_ih, dw_hh, db_ih, db_hh, dz, step_norms, d_out, d_hT, x, h0, out,
                          w_ih, w_hh, ACT[mode])


def consumes_cache(mode) -> bool:
    return mode in ("LSTM", "GRU")


def last_cell(mode, cache):
    """The cell state after the last step (LSTM), a view of the cache."""
    return cache[0][-1] if mode == "LSTM" else None
