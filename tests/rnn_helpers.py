"""Shared helpers for the recurrent tests: random cases, one-call forward /
backward through a kernel module (C binding or NumPy reference), and the
truncated-BPTT surrogate loss used for finite differences."""

import numpy as np

from _fd import numgrad

GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def make_case(kind, T, B, I, H, dtype=np.float64, bias=True, h0=True, seed=0, scale=0.6):
    rng = np.random.default_rng(seed)
    G = GATES[kind]
    c = {
        "x": rng.standard_normal((T, B, I)),
        "w_ih": rng.standard_normal((G * H, I)) * scale,
        "w_hh": rng.standard_normal((G * H, H)) * scale / np.sqrt(H),
        "b_ih": rng.standard_normal(G * H) * 0.5 if bias else None,
        "b_hh": rng.standard_normal(G * H) * 0.5 if bias else None,
        "h0": rng.standard_normal((B, H)) * 0.5 if h0 else None,
        "c0": rng.standard_normal((B, H)) * 0.5 if (h0 and kind == "lstm") else None,
    }
    return {k: (None if v is None else np.ascontiguousarray(v, dtype=dtype)) for k, v in c.items()}


def grads_case(T, B, H, dtype=np.float64, seed=1, d_out=True, kind="rnn"):
    rng = np.random.default_rng(seed)
    g = {
        "d_out": rng.standard_normal((T, B, H)).astype(dtype) if d_out else None,
        "d_hT": rng.standard_normal((B, H)).astype(dtype),
        "d_cT": rng.standard_normal((B, H)).astype(dtype) if kind == "lstm" else None,
    }
    return g


def forward(K, kind, c, act="tanh", stop=False):
    T, B, _ = c["x"].shape
    H = c["w_hh"].shape[1]
    dt = c["x"].dtype
    r = {"out": np.zeros((T, B, H), dt)}
    if kind == "rnn":
        r["first"] = K.rnn_forward(r["out"], c["x"], c["h0"], c["w_ih"], c["w_hh"], c["b_ih"], c["b_hh"],
                                   act, stop)
    elif kind == "lstm":
        r["cs"] = np.zeros((T, B, H), dt)
        r["gates"] = np.zeros((T, B, 4 * H), dt)
        r["first"] = K.lstm_forward(r["out"], r["cs"], r["gates"], c["x"], c["h0"], c["c0"], c["w_ih"],
                                    c["w_hh"], c["b_ih"], c["b_hh"], stop)
    else:
        r["gates"] = np.zeros((T, B, 4 * H), dt)
        r["first"] = K.gru_forward(r["out"], r["gates"], c["x"], c["h0"], c["w_ih"], c["w_hh"],
                                   c["b_ih"], c["b_hh"], stop)
    return r


def backward(K, kind, c, f, g, act="tanh", truncate=None, stop=False, dz=None):
    """One backward call; gradients start at zero. Consumes f["gates"].
    ``dz``: the Elman backward's workspace (None: the kernel's own)."""
    T, B, I = c["x"].shape
    H = c["w_hh"].shape[1]
    dt = c["x"].dtype
    r = {
        "dx": np.zeros((T, B, I), dt),
        "dh0": np.zeros((B, H), dt),
        "dw_ih": np.zeros_like(c["w_ih"]),
        "dw_hh": np.zeros_like(c["w_hh"]),
        "db_ih": None if c["b_ih"] is None else np.zeros_like(c["b_ih"]),
        "db_hh": None if c["b_hh"] is None else np.zeros_like(c["b_hh"]),
        "norms": np.zeros(T),
    }
    if kind == "rnn":
        r["first"] = K.rnn_backward(r["dx"], r["dh0"], r["dw_ih"], r["dw_hh"], r["db_ih"], r["db_hh"],
                                    dz, r["norms"], g["d_out"], g["d_hT"], c["x"], c["h0"], f["out"],
                                    c["w_ih"], c["w_hh"], act, truncate, stop)
    elif kind == "lstm":
        r["dc0"] = np.zeros((B, H), dt)
        r["cnorms"] = np.zeros(T)
        r["first"] = K.lstm_backward(r["dx"], r["dh0"], r["dc0"], r["dw_ih"], r["dw_hh"], r["db_ih"],
                                     r["db_hh"], r["norms"], g["d_out"], g["d_hT"], g["d_cT"], c["x"],
                                     c["h0"], c["c0"], f["out"], f["cs"], f["gates"], c["w_ih"],
                                     c["w_hh"], truncate, stop, cell_norms=r["cnorms"])
    else:
        r["first"] = K.gru_backward(r["dx"], r["dh0"], r["dw_ih"], r["dw_hh"], r["db_ih"], r["db_hh"],
                                    r["norms"], g["d_out"], g["d_hT"], c["x"], c["h0"], f["out"],
                                    f["gates"], c["w_ih"], c["w_hh"], truncate, stop)
    return r


def window_starts(K, kind, c, act, k):
    """States (h, c) at the start of every window j >= 1 (from the unperturbed
    forward): truncated BPTT treats them as constants."""
    T = c["x"].shape[0]
    f = forward(K, kind, c, act)
    starts = {}
    if k:
        for s in range(k, T, k):
            starts[s] = (f["out"][s - 1].copy(), f["cs"][s - 1].copy() if kind == "lstm" else None)
    return starts


def surrogate_loss(K, kind, c, g, act, k, starts):
    """sum(out * d_out) + sum(h_T * d_hT) (+ sum(c_T * d_cT)), with the state
    detached at every window start (k None: the plain loss)."""
    T = c["x"].shape[0]
    bounds = [0] + (sorted(starts) if k else []) + [T]
    total = 0.0
    for j in range(len(bounds) - 1):
        s, e = bounds[j], bounds[j + 1]
        sub = dict(c)
        sub["x"] = np.ascontiguousarray(c["x"][s:e])
        if s > 0:
            sub["h0"], sub["c0"] = starts[s]
        f = forward(K, kind, sub, act)
        if g["d_out"] is not None:
            total += float(np.sum(f["out"] * g["d_out"][s:e]))
        if e == T:
            total += float(np.sum(f["out"][-1] * g["d_hT"]))
            if kind == "lstm" and g["d_cT"] is not None:
                total += float(np.sum(f["cs"][-1] * g["d_cT"]))
    return total


# ---------------------------------------------------------------- modules
def make_module(kind, I, H, dtype="float64", seed=0, **kw):
    from gradcore import nn

    cls = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind]
    return cls(I, H, dtype=dtype, seed=seed, **kw)


def module_loss(cell, x, h0, d_out, d_hT, d_cT=None):
    out, hT = cell.forward(x, h0)
    total = float(np.sum(out * d_out)) if d_out is not None else 0.0
    if isinstance(hT, tuple):
        total += float(np.sum(hT[0] * d_hT))
        if d_cT is not None:
            total += float(np.sum(hT[1] * d_cT))
    else:
        total += float(np.sum(hT * d_hT))
    return total


def module_grads(cell, x, h0, d_out, d_hT, d_cT=None, truncate=None):
    cell.zero_grad()
    cell.forward(x, h0)
    if d_cT is not None:
        dx = cell.backward(d_out, d_hT, truncate=truncate, d_cT=d_cT)
    else:
        dx = cell.backward(d_out, d_hT, truncate=truncate)
    return dx.copy(), cell.arena.grad.copy()


def module_gradcheck(cell, x, h0, every_step=True, seed=0):
    """backward() against central differences for every parameter, every
    input element and the initial state(s) (float64)."""
    rng = np.random.default_rng(seed)
    T, B, _ = x.shape
    H = cell.hidden_size
    lstm = cell.G == 4
    d_out = rng.standard_normal((T, B, H)) if every_step else None
    d_hT = rng.standard_normal((B, H))
    d_cT = rng.standard_normal((B, H)) if lstm else None
    dx, analytic = module_grads(cell, x, h0, d_out, d_hT, d_cT)
    dh0 = cell.dh0.copy()
    dc0 = cell.dc0.copy() if lstm else None

    def f():
        return module_loss(cell, x, h0, d_out, d_hT, d_cT)

    np.testing.assert_allclose(analytic, numgrad(f, cell.arena.data), rtol=1e-6, atol=1e-8, err_msg="params")
    np.testing.assert_allclose(dx, numgrad(f, x), rtol=1e-6, atol=1e-8, err_msg="dx")
    if h0 is not None:
        h, c = h0 if lstm else (h0, None)
        np.testing.assert_allclose(dh0, numgrad(f, h), rtol=1e-6, atol=1e-8, err_msg="dh0")
        if lstm:
            np.testing.assert_allclose(dc0, numgrad(f, c), rtol=1e-6, atol=1e-8, err_msg="dc0")
    return analytic


def torch_twin(kind, cell, nonlinearity="tanh"):
    """The torch.nn.RNN / LSTM / GRU (float64) holding ``cell``'s weights."""
    import torch

    cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind]
    kw = {"nonlinearity": nonlinearity} if kind == "rnn" else {}
    m = cls(cell.input_size, cell.hidden_size, bias=cell.bias, **kw).double()
    m.load_state_dict({k: torch.from_numpy(v.astype(np.float64)) for k, v in cell.torch_state_dict().items()})
    return m
