"""Stacked / bidirectional / batch-first / unbatched recurrent layers against
torch.nn.RNN / LSTM / GRU (outputs, final states, every parameter gradient,
dx, dh0), central differences, the records and bad input."""

import itertools

import numpy as np
import pytest

from gradcore import nn
from gradcore.interop import torch_state

from _fd import numgrad

try:
    import torch
except ImportError:  # pragma: no cover - torch is optional
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")

KINDS = ("rnn", "lstm", "gru")
TOL = {"float32": dict(rtol=1e-5, atol=1e-5), "float64": dict(rtol=1e-10, atol=1e-10)}


def _make(kind, I, H, L, bidir, bf, bias, act, dtype, seed=0):
    cls = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind]
    kw = {"nonlinearity": act} if kind == "rnn" else {}
    return cls(I, H, num_layers=L, bias=bias, batch_first=bf, bidirectional=bidir, dtype=dtype,
               seed=seed, **kw)


def _twin(kind, m):
    cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind]
    kw = {"nonlinearity": m.nonlinearity} if kind == "rnn" else {}
    t = cls(m.input_size, m.hidden_size, num_layers=m.num_layers, bias=bool(m.bias),
            batch_first=m.batch_first, bidirectional=m.bidirectional, **kw)
    t = t.double() if m.dtype == np.float64 else t.float()
    t.load_state_dict({k: torch.from_numpy(v) for k, v in m.torch_state_dict().items()})
    return t


def _grads(m):
    """torch name -> our gradient."""
    g = m.gradients()
    return {tk: g[local] for tk, (local, _) in torch_state.entries(m).items()}


def _full(s, LD, batched):
    """Our state in torch's (L*D, [B,] H) layout."""
    want = 3 if batched else 2
    return s if s.ndim == want else s[None]


CONFIGS = [(kind, L, bidir, bf, bias, act, dtype, h0)
           for kind in KINDS for L in (1, 2, 3) for bidir in (False, True) for bf in (False, True)
           for bias in (True, False) for act in (("tanh", "relu") if kind == "rnn" else ("tanh",))
           for dtype in ("float32", "float64") for h0 in (False, True)]


@needs_torch
@pytest.mark.parametrize("kind,L,bidir,bf,bias,act,dtype,with_h0", CONFIGS)
def test_parity_with_torch(kind, L, bidir, bf, bias, act, dtype, with_h0):
    T, B, I, H = 5, 2, 3, 4
    D = 2 if bidir else 1
    lstm = kind == "lstm"
    m = _make(kind, I, H, L, bidir, bf, bias, act, dtype, seed=L * 7 + D)
    t = _twin(kind, m)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((B, T, I) if bf else (T, B, I)).astype(dtype)
    h0 = rng.standard_normal((L * D, B, H)).astype(dtype) if with_h0 else None
    c0 = rng.standard_normal((L * D, B, H)).astype(dtype) if with_h0 and lstm else None
    d_out = rng.standard_normal((B, T, D * H) if bf else (T, B, D * H)).astype(dtype)
    d_h = rng.standard_normal((L * D, B, H)).astype(dtype)
    d_c = rng.standard_normal((L * D, B, H)).astype(dtype) if lstm else None

    xt = torch.from_numpy(x.copy()).requires_grad_()
    ht = None if h0 is None else torch.from_numpy(h0.copy()).requires_grad_()
    ct = None if c0 is None else torch.from_numpy(c0.copy()).requires_grad_()
    if lstm:
        out_t, (hn_t, cn_t) = t(xt, None if ht is None else (ht, ct))
        loss = (out_t * torch.from_numpy(d_out)).sum() + (hn_t * torch.from_numpy(d_h)).sum() \
            + (cn_t * torch.from_numpy(d_c)).sum()
    else:
        out_t, hn_t = t(xt, ht)
        loss = (out_t * torch.from_numpy(d_out)).sum() + (hn_t * torch.from_numpy(d_h)).sum()
    loss.backward()

    s0 = None if h0 is None else ((h0, c0) if lstm else h0)
    out, hn = m.forward(x, s0)
    tol = TOL[dtype]
    np.testing.assert_allclose(out, out_t.detach().numpy(), **tol)
    full = with_h0 or L * D > 1
    if lstm:
        hn, cn = hn
        np.testing.assert_allclose(_full(cn, L * D, True), cn_t.detach().numpy(), **tol)
    assert hn.ndim == (3 if full else 2)
    np.testing.assert_allclose(_full(hn, L * D, True), hn_t.detach().numpy(), **tol)
    dh = d_h if full else d_h[0]
    dc = None if not lstm else (d_c if full else d_c[0])
    dx = m.backward(d_out, (dh, dc) if lstm else dh)
    np.testing.assert_allclose(dx, xt.grad.numpy(), **tol)
    for name, p in t.named_parameters():
        np.testing.assert_allclose(_grads(m)[name], p.grad.numpy(), err_msg=name, **tol)
    if with_h0:
        np.testing.assert_allclose(m.dh0, ht.grad.numpy(), **tol)
        if lstm:
            np.testing.assert_allclose(m.dc0, ct.grad.numpy(), **tol)
    norms = m.timestep_grad_norms
    assert norms.shape == ((L * D, T) if L * D > 1 else (T,)) and np.isfinite(norms).all()
    # state dicts the other way: torch -> gradcore (checked configuration)
    other = _make(kind, I, H, L, bidir, bf, bias, act, dtype, seed=99).load_torch(t)
    for k, v in t.state_dict().items():
        np.testing.assert_array_equal(other.torch_state_dict()[k], v.numpy())


@needs_torch
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("L,bidir", [(1, False), (2, False), (1, True), (2, True)])
@pytest.mark.parametrize("with_h0", [False, True])
def test_unbatched_matches_torch(kind, L, bidir, with_h0):
    T, I, H = 6, 3, 4
    D = 2 if bidir else 1
    lstm = kind == "lstm"
    m = _make(kind, I, H, L, bidir, False, True, "tanh", "float64", seed=3)
    t = _twin(kind, m)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((T, I))
    h0 = rng.standard_normal((L * D, H)) if with_h0 else None
    c0 = rng.standard_normal((L * D, H)) if with_h0 and lstm else None
    xt = torch.from_numpy(x.copy()).requires_grad_()
    hx = None if h0 is None else ((torch.from_numpy(h0), torch.from_numpy(c0)) if lstm else torch.from_numpy(h0))
    out_t, hn_t = t(xt, hx)
    hn_t = hn_t[0] if lstm else hn_t
    out_t.sum().backward()
    out, hn = m.forward(x, None if h0 is None else ((h0, c0) if lstm else h0))
    hn = hn[0] if lstm else hn
    assert out.shape == (T, D * H)
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(hn.reshape(hn_t.shape), hn_t.detach().numpy(), rtol=1e-10, atol=1e-10)
    assert hn.shape == ((L * D, H) if (with_h0 or L * D > 1) else (H,))
    dx = m.backward(np.ones((T, D * H)))
    assert dx.shape == (T, I)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-10)


def _loss(m, x, s0, d_out, d_h, d_c):
    out, hn = m.forward(x, s0)
    total = float(np.sum(out * d_out))
    if isinstance(hn, tuple):
        return total + float(np.sum(hn[0] * d_h)) + float(np.sum(hn[1] * d_c))
    return total + float(np.sum(hn * d_h))


@pytest.mark.parametrize("kind", KINDS)
def test_two_layer_bidirectional_central_differences(kind):
    T, B, I, H, L, D = 4, 2, 2, 3, 2, 2
    lstm = kind == "lstm"
    m = _make(kind, I, H, L, True, True, True, "tanh", "float64", seed=5)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((B, T, I))
    h0 = rng.standard_normal((L * D, B, H)) * 0.5
    c0 = rng.standard_normal((L * D, B, H)) * 0.5 if lstm else None
    s0 = (h0, c0) if lstm else h0
    d_out = rng.standard_normal((B, T, D * H))
    d_h = rng.standard_normal((L * D, B, H))
    d_c = rng.standard_normal((L * D, B, H)) if lstm else None
    m.zero_grad()
    m.forward(x, s0)
    dx = m.backward(d_out, (d_h, d_c) if lstm else d_h).copy()
    grad = m.arena.grad.copy()
    dh0 = m.dh0.copy()

    def f():
        return _loss(m, x, s0, d_out, d_h, d_c)

    np.testing.assert_allclose(grad, numgrad(f, m.arena.data), rtol=1e-6, atol=1e-8, err_msg="params")
    np.testing.assert_allclose(dx, numgrad(f, x), rtol=1e-6, atol=1e-8, err_msg="dx")
    np.testing.assert_allclose(dh0, numgrad(f, h0), rtol=1e-6, atol=1e-8, err_msg="dh0")
    if lstm:
        np.testing.assert_allclose(m.dc0, numgrad(f, c0), rtol=1e-6, atol=1e-8, err_msg="dc0")


@pytest.mark.parametrize("kind", KINDS)
def test_planted_nan_located_by_layer_direction_step(kind):
    T, B, I, H, L = 7, 2, 3, 4, 2
    m = _make(kind, I, H, L, True, False, True, "tanh", "float64", seed=8)
    x = np.random.default_rng(9).standard_normal((T, B, I))
    x[4, 1, 0] = np.nan
    m.forward(x)
    assert m.first_nonfinite == (0, 0, 4) and m.first_nonfinite_step == 4
    assert m.first_nonfinite_state_step == 4
    with pytest.raises(nn.NonFiniteStepError) as e:
        m.forward(x, stop_on_nonfinite=True)
    assert (e.value.layer, e.value.direction, e.value.step, e.value.phase) == (0, 0, 4, "forward")
    with pytest.raises(RuntimeError, match="before forward"):
        m.backward(np.ones((T, B, 2 * H)))
    # backward: a NaN in the reverse half of d_out at step 2 reaches the top
    # layer's reverse direction first
    x[4, 1, 0] = 0.5
    d_out = np.ones((T, B, 2 * H))
    d_out[2, 0, H + 1] = np.nan
    m.forward(x)
    m.backward(d_out)
    assert m.first_nonfinite == (1, 1, 2) and m.first_nonfinite_grad_step == 2
    assert m.timestep_grad_norms.shape == (4, T)
    m.zero_grad()
    m.forward(x)
    m.backward(np.ones((T, B, 2 * H)))     # fills the gradients
    before = m.arena.grad.copy()
    m.forward(x)
    with pytest.raises(nn.NonFiniteStepError) as e:
        m.backward(d_out, stop_on_nonfinite=True)
    assert (e.value.layer, e.value.direction, e.value.step, e.value.phase) == (1, 1, 2, "backward")
    np.testing.assert_array_equal(m.arena.grad, before)        # gradients left unchanged
    assert m.dh0 is None and m.first_nonfinite == (1, 1, 2)


@needs_torch
@pytest.mark.parametrize("kind", KINDS)
def test_truncated_stack_equals_torch_chunks_with_detach(kind):
    """A 2-layer layer with truncate=k equals torch running chunks of k steps
    and detaching every layer's state between them."""
    T, B, I, H, k = 9, 2, 3, 4, 4
    lstm = kind == "lstm"
    m = _make(kind, I, H, 2, False, False, True, "tanh", "float64", seed=10)
    t = _twin(kind, m)
    rng = np.random.default_rng(11)
    x = rng.standard_normal((T, B, I))
    d_out = rng.standard_normal((T, B, H))
    m.forward(x)
    dx = m.backward(d_out, truncate=k)
    xt = torch.from_numpy(x.copy()).requires_grad_()
    state = None
    for s in range(0, T, k):
        out, state = t(xt[s:s + k], state)
        (out * torch.from_numpy(d_out[s:s + k])).sum().backward()
        state = tuple(v.detach() for v in state) if lstm else state.detach()
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-10)
    for name, p in t.named_parameters():
        np.testing.assert_allclose(_grads(m)[name], p.grad.numpy(), rtol=1e-10, atol=1e-10, err_msg=name)


@pytest.mark.parametrize("kind", KINDS)
def test_bad_input_names_the_argument_and_changes_nothing(kind):
    T, B, I, H, L = 5, 2, 3, 4, 2
    lstm = kind == "lstm"
    m = _make(kind, I, H, L, True, True, True, "tanh", "float64", seed=12)
    with pytest.raises(RuntimeError, match="before forward"):
        m.backward(np.zeros((B, T, 2 * H)))
    rng = np.random.default_rng(13)
    x = rng.standard_normal((B, T, I))
    out, _ = m.forward(x)
    out_before, params = out.copy(), m.arena.data.copy()
    good_h = np.zeros((L * 2, B, H))
    bad = [
        (ValueError, "3-D", dict(x=np.zeros((B, T, I, 1)))),
        (ValueError, "3 features", dict(x=np.zeros((B, T, 4)))),
        (ValueError, "T = 0", dict(x=np.zeros((B, 0, I)))),
        (ValueError, "B = 0", dict(x=np.zeros((0, T, I)))),
        (TypeError, "float64 x", dict(x=x.astype(np.float32))),
        (TypeError, "numpy array", dict(x=x.tolist())),
        (ValueError, "h0", dict(x=x, h0=(np.zeros((B, L * 2, H)), good_h) if lstm else np.zeros((B, L * 2, H)))),
        (ValueError, "h0", dict(x=x, h0=(np.zeros((B, H)), good_h) if lstm else np.zeros((B, H)))),
        (TypeError, "h0", dict(x=x, h0=(good_h.astype(np.float32), good_h) if lstm else good_h.astype(np.float32))),
    ]
    for exc, msg, kw in bad:
        with pytest.raises(exc, match=msg):
            m.forward(**kw)
    with pytest.raises(ValueError, match="d_out has shape"):
        m.backward(np.zeros((T, B, 2 * H)))            # time-major d_out for a batch_first layer
    with pytest.raises(ValueError, match="d_hT"):
        m.backward(None, d_hT=np.zeros((B, H)))
    with pytest.raises(ValueError, match="truncate"):
        m.backward(np.zeros((B, T, 2 * H)), truncate=0)
    np.testing.assert_array_equal(m.arena.data, params)
    assert not m.arena.grad.any()
    np.testing.assert_array_equal(out, out_before)
    dx = m.backward(np.ones((B, T, 2 * H)))            # the cache survived
    ref = _make(kind, I, H, L, True, True, True, "tanh", "float64", seed=12)
    ref.forward(x)
    np.testing.assert_array_equal(dx, ref.backward(np.ones((B, T, 2 * H))))


@needs_torch
def test_load_torch_refuses_a_different_configuration():
    t = torch.nn.LSTM(3, 4, num_layers=2, batch_first=True)
    ok = nn.LSTM(3, 4, num_layers=2, batch_first=True, seed=0)
    before = ok.arena.data.copy()
    for kw, what in [(dict(num_layers=2), "batch_first"), (dict(num_layers=1, batch_first=True), "num_layers"),
                     (dict(num_layers=2, batch_first=True, bidirectional=True), "bidirectional"),
                     (dict(num_layers=2, batch_first=True, bias=False), "bias")]:
        m = nn.LSTM(3, 4, seed=0, **kw)
        with pytest.raises(ValueError, match=what):
            m.load_torch(t)
    with pytest.raises(ValueError, match="hidden_size"):
        nn.LSTM(3, 5, num_layers=2, batch_first=True).load_torch(t)
    with pytest.raises(ValueError, match="torch.nn.LSTM"):
        nn.LSTM(3, 4, num_layers=2, batch_first=True).load_torch(torch.nn.GRU(3, 4, 2, batch_first=True))
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNN(3, 4, nonlinearity="relu").load_torch(torch.nn.RNN(3, 4))
    np.testing.assert_array_equal(ok.arena.data, before)
    ok.load_torch(t)
    np.testing.assert_array_equal(ok.p["weight_hh_l1"], t.weight_hh_l1.detach().numpy())


def test_one_layer_keeps_names_and_answers_to_torch_names():
    m = nn.GRU(3, 4, seed=0)
    assert sorted(m.parameters()) == ["bias_hh", "bias_ih", "weight_hh", "weight_ih"]
    assert m.weight_ih_l0 is m.p["weight_ih"] and m.bias_hh_l0 is m.p["bias_hh"]
    with pytest.raises(AttributeError):
        m.weight_ih_l1
    deep = nn.GRU(3, 4, num_layers=2, bidirectional=True, seed=0)
    assert deep.weight_hh_l1_reverse.shape == (12, 4)
    assert deep.weight_ih_l1.shape == (12, 8)
    # h0 in torch's (1, B, H) layout -> the state comes back in it
    x = np.zeros((5, 2, 3), np.float32)
    _, h = m.forward(x, np.zeros((1, 2, 4), np.float32))
    assert h.shape == (1, 2, 4)
    m.backward(None, d_hT=np.ones((1, 2, 4), np.float32))
    assert m.dh0.shape == (1, 2, 4)
    _, h = m.forward(x)
    assert h.shape == (2, 4)
    assert nn.RNN(3, 4, "relu").nonlinearity == "relu"       # the earlier positional order


@pytest.mark.parametrize("kind", KINDS)
def test_stack_copies_and_pickles(kind):
    import copy
    import pickle

    m = _make(kind, 3, 4, 2, True, False, True, "tanh", "float64", seed=14)
    x = np.random.default_rng(15).standard_normal((5, 2, 3))
    out = m.forward(x)[0].copy()
    for c in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
        np.testing.assert_array_equal(c.forward(x)[0], out)
        c.p["weight_ih_l0"][...] = 0                     # the copy's own arena
        assert not np.array_equal(c.forward(x)[0], out)
    np.testing.assert_array_equal(m.forward(x)[0], out)
    m.clear_cache()
    with pytest.raises(RuntimeError, match="before forward"):
        m.backward(np.ones((5, 2, 8)))
    np.testing.assert_array_equal(m.forward(x)[0], out)


def test_last_step_of_a_bidirectional_stack_in_a_sequential():
    rnn = nn.LSTM(3, 4, num_layers=2, bidirectional=True, dtype="float64", seed=16)
    model = nn.Sequential(nn.LastStep(rnn), nn.Dense(8, 1, dtype="float64", seed=17))
    x = np.random.default_rng(18).standard_normal((6, 2, 3))
    y = model.forward(x)
    _, (h, _) = rnn.forward(x)
    top = np.concatenate([h[-2], h[-1]], axis=1)
    p = model.parameters()
    np.testing.assert_allclose(y, top @ p["1.weight"].T + p["1.bias"])
    model.forward(x)
    dx = model.backward(np.ones((2, 1)))
    assert dx.shape == x.shape and np.isfinite(dx).all()


def test_memory_bytes_counts_every_layer_and_direction():
    one = nn.LSTM(3, 4)
    deep = nn.LSTM(3, 4, num_layers=3, bidirectional=True)
    assert deep.memory_bytes(10, 2) == 6 * one.memory_bytes(10, 2)


def test_every_config_is_listed_once():
    assert len(CONFIGS) == len(set(CONFIGS)) == 384
    assert set(itertools.chain.from_iterable([(c[0],) for c in CONFIGS])) == set(KINDS)
