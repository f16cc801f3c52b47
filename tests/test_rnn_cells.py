"""RNNCell / LSTMCell / GRUCell against torch.nn.*Cell and central
differences; a cell is a one-step layer; bad input; the docstring examples."""

import doctest

import numpy as np
import pytest

from gradcore import nn

from _fd import numgrad

try:
    import torch
except ImportError:  # pragma: no cover - torch is optional
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")

CELLS = {"rnn": (nn.RNNCell, "RNNCell"), "lstm": (nn.LSTMCell, "LSTMCell"), "gru": (nn.GRUCell, "GRUCell")}
TOL = {"float32": dict(rtol=1e-5, atol=1e-6), "float64": dict(rtol=1e-10, atol=1e-12)}


def _make(kind, I, H, bias=True, act="tanh", dtype="float64", seed=0):
    kw = {"nonlinearity": act} if kind == "rnn" else {}
    return CELLS[kind][0](I, H, bias=bias, dtype=dtype, seed=seed, **kw)


CONFIGS = [(kind, bias, act, dtype, hx, batched)
           for kind in CELLS for bias in (True, False)
           for act in (("tanh", "relu") if kind == "rnn" else ("tanh",))
           for dtype in ("float32", "float64") for hx in (False, True) for batched in (True, False)]


@needs_torch
@pytest.mark.parametrize("kind,bias,act,dtype,with_hx,batched", CONFIGS)
def test_cell_matches_torch(kind, bias, act, dtype, with_hx, batched):
    B, I, H = 3, 4, 5
    lstm = kind == "lstm"
    c = _make(kind, I, H, bias, act, dtype, seed=1)
    kw = {"nonlinearity": act} if kind == "rnn" else {}
    t = getattr(torch.nn, CELLS[kind][1])(I, H, bias=bias, **kw)
    t = t.double() if dtype == "float64" else t.float()
    t.load_state_dict({k: torch.from_numpy(v) for k, v in c.torch_state_dict().items()})
    rng = np.random.default_rng(2)
    lead = (B,) if batched else ()
    x = rng.standard_normal(lead + (I,)).astype(dtype)
    h = rng.standard_normal(lead + (H,)).astype(dtype) if with_hx else None
    cc = rng.standard_normal(lead + (H,)).astype(dtype) if with_hx and lstm else None
    dh = rng.standard_normal(lead + (H,)).astype(dtype)
    dc = rng.standard_normal(lead + (H,)).astype(dtype) if lstm else None
    xt = torch.from_numpy(x.copy()).requires_grad_()
    ht = None if h is None else torch.from_numpy(h.copy()).requires_grad_()
    ct = None if cc is None else torch.from_numpy(cc.copy()).requires_grad_()
    if lstm:
        h1t, c1t = t(xt, None if ht is None else (ht, ct))
        ((h1t * torch.from_numpy(dh)).sum() + (c1t * torch.from_numpy(dc)).sum()).backward()
        h1, c1 = c.forward(x, None if h is None else (h, cc))
        np.testing.assert_allclose(c1, c1t.detach().numpy(), **TOL[dtype])
    else:
        h1t = t(xt, ht)
        (h1t * torch.from_numpy(dh)).sum().backward()
        h1 = c.forward(x, h)
    assert h1.shape == lead + (H,)
    np.testing.assert_allclose(h1, h1t.detach().numpy(), **TOL[dtype])
    dx = c.backward(dh, dc)
    assert dx.shape == x.shape
    np.testing.assert_allclose(dx, xt.grad.numpy(), **TOL[dtype])
    g = c.gradients()
    for name, p in t.named_parameters():
        np.testing.assert_allclose(g[name], p.grad.numpy(), err_msg=name, **TOL[dtype])
    if with_hx:
        np.testing.assert_allclose(c.dh0, ht.grad.numpy(), **TOL[dtype])
        if lstm:
            np.testing.assert_allclose(c.dc0, ct.grad.numpy(), **TOL[dtype])
    other = _make(kind, I, H, bias, act, dtype, seed=9).load_torch(t)
    for k, v in t.state_dict().items():
        np.testing.assert_array_equal(other.torch_state_dict()[k], v.numpy())


@pytest.mark.parametrize("kind", CELLS)
def test_cell_central_differences(kind):
    B, I, H = 2, 3, 4
    lstm = kind == "lstm"
    c = _make(kind, I, H, seed=3)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((B, I))
    h = rng.standard_normal((B, H)) * 0.5
    cc = rng.standard_normal((B, H)) * 0.5 if lstm else None
    dh = rng.standard_normal((B, H))
    dc = rng.standard_normal((B, H)) if lstm else None

    def f():
        if lstm:
            h1, c1 = c.forward(x, (h, cc))
            return float(np.sum(h1 * dh) + np.sum(c1 * dc))
        return float(np.sum(c.forward(x, h) * dh))

    c.zero_grad()
    f()
    dx = c.backward((dh, dc) if lstm else dh).copy()
    grad, dh0 = c.arena.grad.copy(), c.dh0.copy()
    dc0 = c.dc0.copy() if lstm else None
    np.testing.assert_allclose(grad, numgrad(f, c.arena.data), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dx, numgrad(f, x), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dh0, numgrad(f, h), rtol=1e-6, atol=1e-8)
    if lstm:
        np.testing.assert_allclose(dc0, numgrad(f, cc), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("kind", CELLS)
def test_cell_is_a_one_step_layer_and_steps_a_stream(kind):
    I, H = 3, 4
    lstm = kind == "lstm"
    c = _make(kind, I, H, seed=5)
    layer = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind](I, H, dtype="float64", seed=5)
    np.testing.assert_array_equal(c.arena.data, layer.arena.data)   # same draws, same names
    x = np.random.default_rng(6).standard_normal((7, 2, I))
    out, _ = layer.forward(x)
    state = None
    for t in range(7):
        state = c.forward(x[t], state)          # the cell's own buffer passed back as hx
        h = state[0] if lstm else state
        np.testing.assert_array_equal(h, out[t])
    layer.zero_grad()
    layer.forward(x[:1])
    d = np.ones((2, H))
    ref = layer.backward(None, d).copy()
    c.zero_grad()
    c.forward(x[0])
    np.testing.assert_array_equal(c.backward(d), ref[0])
    np.testing.assert_array_equal(c.arena.grad, layer.arena.grad)


@pytest.mark.parametrize("kind", CELLS)
def test_cell_bad_input_names_the_argument_and_changes_nothing(kind):
    I, H = 3, 4
    lstm = kind == "lstm"
    c = _make(kind, I, H, seed=7)
    with pytest.raises(RuntimeError, match="before forward"):
        c.backward(np.ones((2, H)))
    x = np.ones((2, I))
    out = c.forward(x)
    before = (out[0] if lstm else out).copy()
    params = c.arena.data.copy()
    good = np.zeros((2, H))
    bad = [
        (ValueError, "x of shape", dict(x=np.ones((2, 4)))),
        (ValueError, "x of shape", dict(x=np.ones((1, 2, I)))),
        (ValueError, "batch is empty", dict(x=np.ones((0, I)))),
        (TypeError, "float64 x", dict(x=x.astype(np.float32))),
        (TypeError, "numpy array", dict(x=[1.0, 2.0, 3.0])),
        (ValueError, "hx", dict(x=x, hx=(np.zeros((3, H)), good) if lstm else np.zeros((3, H)))),
        (ValueError, "hx", dict(x=x, hx=(np.zeros((H,)), good) if lstm else np.zeros((H,)))),
    ]
    if lstm:
        bad.append((TypeError, "pair", dict(x=x, hx=good)))
    for exc, msg, kw in bad:
        with pytest.raises(exc, match=msg):
            c.forward(**kw)
    with pytest.raises(ValueError, match="dh"):
        c.backward(np.ones((3, H)))
    with pytest.raises(TypeError, match="dh"):
        c.backward(None)
    if not lstm:
        with pytest.raises(TypeError, match="dc"):
            c.backward(good, good)
    np.testing.assert_array_equal(c.arena.data, params)
    assert not c.arena.grad.any()
    np.testing.assert_array_equal(out[0] if lstm else out, before)
    assert c.backward(np.ones((2, H))).shape == (2, I)


@needs_torch
def test_cell_load_torch_checks_the_configuration():
    c = nn.RNNCell(3, 4, seed=0)
    before = c.arena.data.copy()
    with pytest.raises(ValueError, match="nonlinearity"):
        c.load_torch(torch.nn.RNNCell(3, 4, nonlinearity="relu"))
    with pytest.raises(ValueError, match="bias"):
        c.load_torch(torch.nn.RNNCell(3, 4, bias=False))
    with pytest.raises(ValueError, match="hidden_size"):
        c.load_torch(torch.nn.RNNCell(3, 5))
    with pytest.raises(ValueError, match="torch.nn.RNNCell"):
        c.load_torch(torch.nn.GRUCell(3, 4))
    with pytest.raises(KeyError, match="weight_ih"):
        c.load_torch_state_dict({"weight_ih_l0": np.zeros((4, 3))})
    np.testing.assert_array_equal(c.arena.data, before)
    assert "RNNCell(3, 4, tanh)" in repr(c)


@needs_torch
def test_docstring_examples_run():
    from gradcore.interop import torch_state
    from gradcore.nn import rnn, rnn_cells, seq

    for mod in (rnn, rnn_cells, torch_state, seq):
        assert doctest.testmod(mod, extraglobs={"np": np}).failed == 0, mod.__name__
