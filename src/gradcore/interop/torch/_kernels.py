"""The one place the torch recurrent modules call gradcore's recurrent
kernels (one fused forward and one fused BPTT per layer and direction).

Contract: every argument is a C-contiguous NumPy array of one float dtype
(views of torch tensors' memory; None where optional); outputs are
preallocated by the caller and written in place. ``forward`` returns the
cache ``backward`` needs; ``backward`` accumulates into ``dw_*`` / ``db_*``
(which the caller zeroes), overwrites ``dx`` / ``dh0`` / ``dc0``, fills
``step_norms`` (and ``cell_norms`` for LSTM) and returns the first
non-finite step in backward order (-1 if none). LSTM and GRU backward
consume the gate cache; ``backward`` is called at most once per cache
(the caller re-runs ``forward`` for a second backward).

If the binding's names or argument lists change, this file is the only one
to adapt.
"""

from __future__ import annotations

import numpy as np

from ... import _kernels as K

GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}
ACT = {"RNN_TANH": "tanh", "RNN_RELU": "relu"}


def forward(mode, out, x, h0, c0, w_ih, w_hh, b_ih, b_hh):
    """Run the fused forward into ``out`` (T, B, H); returns the cache."""
    T, B, _ = x.shape
    H = w_hh.shape[1]
    if mode == "LSTM":
        cs = np.empty((T, B, H), dtype=x.dtype)
        gates = np.empty((T, B, 4 * H), dtype=x.dtype)
        K.lstm_forward(out, cs, gates, x, h0, c0, w_ih, w_hh, b_ih, b_hh)
        return {"cs": cs, "gates": gates}
    if mode == "GRU":
        gates = np.empty((T, B, 4 * H), dtype=x.dtype)
        K.gru_forward(out, gates, x, h0, w_ih, w_hh, b_ih, b_hh)
        return {"gates": gates}
    K.rnn_forward(out, x, h0, w_ih, w_hh, b_ih, b_hh, ACT[mode])
    return {}


def last_cell(mode, cache):
    """The cell state after the last step (LSTM), a view of the cache."""
    return cache["cs"][-1] if mode == "LSTM" else None


def backward(mode, cache, x, h0, c0, out, w_ih, w_hh, d_out, d_hT, d_cT,
             dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, step_norms, cell_norms):
    """BPTT over the whole sequence (see the module docstring)."""
    if mode == "LSTM":
        return K.lstm_backward(dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, step_norms, d_out, d_hT, d_cT,
                               x, h0, c0, out, cache["cs"], cache["gates"], w_ih, w_hh, cell_norms=cell_norms)
    if mode == "GRU":
        return K.gru_backward(dx, dh0, dw_ih, dw_hh, db_ih, db_hh, step_norms, d_out, d_hT, x, h0, out,
                              cache["gates"], w_ih, w_hh)
    return K.rnn_backward(dx, dh0, dw_ih, dw_hh, db_ih, db_hh, None, step_norms, d_out, d_hT, x, h0, out,
                          w_ih, w_hh, ACT[mode])


def consumes_cache(mode) -> bool:
    return mode in ("LSTM", "GRU")
