"""Small-call overhead: a layer's forward + backward on a tiny input against
the raw kernel calls it makes, float32, one thread.

- ``small-{rnn,lstm,gru}-T1-B1-I8-H8``: ``layer.forward(x)`` then
  ``layer.backward(d_out)`` of ``gradcore.nn.RNN/LSTM/GRU(8, 8)`` at T = 1,
  B = 1 (implementation ``gradcore``) against the same two
  ``gradcore._kernels`` calls (``*_forward``, ``*_backward``) on arrays
  allocated once, with the layer's own parameters and gradient buffers
  (implementation ``raw-kernels``). The binding validates every argument in
  both cases; the difference is the layer's Python path (checks, buffers,
  records) per call.
- ``small-dense-B1-I8-O8``: ``nn.Dense(8, 8, activation="tanh")`` forward +
  backward against ``dense_forward`` + ``dense_backward``.

Targets (the issue): each layer within 2x of its raw kernel calls, i.e. at
least 0.5x their speed. The machine's load moves both sides alike; the
ratio is what to read.
"""

from __future__ import annotations

import numpy as np

GROUP = "small"
SMOKE = "small-dense-B1-I8-O8"

T, B, I, H = 1, 1, 8, 8
RECURRENT = ("rnn", "lstm", "gru")

TARGETS = [(f"small-{k}-T{T}-B{B}-I{I}-H{H}", "raw-kernels", 0.5) for k in RECURRENT]
TARGETS.append((SMOKE, "raw-kernels", 0.5))


def _recurrent(kind, seed=0):
    from gradcore import _kernels as K, nn

    layer = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind](I, H, dtype="float32", seed=seed)
    rng = np.random.default_rng(seed + 1)
    x = rng.standard_normal((T, B, I), dtype=np.float32)
    d_out = rng.standard_normal((T, B, H), dtype=np.float32)
    p, g = layer.p, layer.g
    w_ih, w_hh, b_ih, b_hh = p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"]
    gw_ih, gw_hh, gb_ih, gb_hh = g["weight_ih"], g["weight_hh"], g["bias_ih"], g["bias_hh"]

    def e(*shape):
        return np.empty(shape, np.float32)

    out, dx, dh0, norms = e(T, B, H), e(T, B, I), e(B, H), np.empty(T)
    if kind == "rnn":
        dz = e(T, B, H)

        def raw():
            K.rnn_forward(out, x, None, w_ih, w_hh, b_ih, b_hh, "tanh", False)
            K.rnn_backward(dx, dh0, gw_ih, gw_hh, gb_ih, gb_hh, dz, norms, d_out, None, x, None, out,
                           w_ih, w_hh, "tanh", None, False)
    elif kind == "lstm":
        cs, gates, dc0, cnorms = e(T, B, H), e(T, B, 4 * H), e(B, H), np.empty(T)

        def raw():
            K.lstm_forward(out, cs, gates, x, None, None, w_ih, w_hh, b_ih, b_hh, False)
            K.lstm_backward(dx, dh0, dc0, gw_ih, gw_hh, gb_ih, gb_hh, norms, d_out, None, None, x,
                            None, None, out, cs, gates, w_ih, w_hh, None, False, cell_norms=cnorms)
    else:
        gates = e(T, B, 4 * H)

        def raw():
            K.gru_forward(out, gates, x, None, w_ih, w_hh, b_ih, b_hh, False)
            K.gru_backward(dx, dh0, gw_ih, gw_hh, gb_ih, gb_hh, norms, d_out, None, x, None, out,
                           gates, w_ih, w_hh, None, False)

    def gc():
        layer.forward(x)
        layer.backward(d_out)

    return {"gradcore": gc, "raw-kernels": raw}


def _dense(seed=0):
    from gradcore import _kernels as K, nn

    layer = nn.Dense(I, H, activation="tanh", dtype="float32", seed=seed)
    rng = np.random.default_rng(seed + 1)
    x = rng.standard_normal((B, I), dtype=np.float32)
    dy = rng.standard_normal((B, H), dtype=np.float32)
    w, b, gw, gb = layer.p["weight"], layer.p["bias"], layer.g["weight"], layer.g["bias"]
    y, dz, dx = (np.empty(s, np.float32) for s in ((B, H), (B, H), (B, I)))

    def raw():
        K.dense_forward(y, x, w, b, "tanh", 0.01)
        K.dense_backward(dx, gw, gb, dy, x, w, y, "tanh", 0.01, dz)

    def gc():
        layer.forward(x)
        layer.backward(dy)

    return {"gradcore": gc, "raw-kernels": raw}


def workloads(only=None):
    names = {f"small-{k}-T{T}-B{B}-I{I}-H{H}": (lambda k=k: _recurrent(k)) for k in RECURRENT}
    names[SMOKE] = _dense
    return {n: make() for n, make in names.items() if not only or any(o in n for o in only)}
