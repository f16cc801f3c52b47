"""gradcore.nn.rnn: RNN (and what RNN, LSTM and GRU share: gradients, PyTorch
equivalence, truncation, step norms, bad input, adapters, memory)."""

import numpy as np
import pytest

import gradcore
from gradcore import init as ginit
from gradcore import nn
from rnn_helpers import make_module, module_grads, module_gradcheck, module_loss, numgrad, torch_twin

try:
    import torch
except ImportError:  # the PyTorch comparisons skip; everything else runs
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")

KINDS = ["rnn", "lstm", "gru"]


def _h0(kind, B, H, rng, dtype=np.float64):
    h = rng.standard_normal((B, H)).astype(dtype) * 0.5
    if kind == "lstm":
        return (h, rng.standard_normal((B, H)).astype(dtype) * 0.5)
    return h


# ------------------------------------------------------------ gradients
@pytest.mark.parametrize("every_step", [True, False], ids=["every-step", "last-step"])
@pytest.mark.parametrize("with_h0", [True, False], ids=["h0", "no-h0"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("kind", KINDS)
def test_gradcheck(backend, kind, bias, with_h0, every_step):
    rng = np.random.default_rng(1)
    cell = make_module(kind, 3, 4, bias=bias, seed=2)
    x = rng.standard_normal((5, 2, 3))
    h0 = _h0(kind, 2, 4, rng) if with_h0 else None
    module_gradcheck(cell, x, h0, every_step=every_step)


@pytest.mark.parametrize("nonlinearity", ["relu", "identity"])
def test_gradcheck_other_nonlinearities(backend, nonlinearity):
    rng = np.random.default_rng(3)
    cell = nn.RNN(3, 4, nonlinearity=nonlinearity, dtype="float64", seed=4)
    module_gradcheck(cell, rng.standard_normal((6, 2, 3)), rng.standard_normal((2, 4)))


@pytest.mark.parametrize("kind", KINDS)
def test_c_backend_equals_numpy_backend(kind):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((9, 3, 4))
    h0 = _h0(kind, 3, 6, rng)
    d_out = rng.standard_normal((9, 3, 6))
    d_hT = rng.standard_normal((3, 6))
    res = []
    for name in ("c", "numpy"):
        with gradcore.use_backend(name):
            cell = make_module(kind, 4, 6, seed=6)
            out, _ = cell.forward(x, h0)
            out = out.copy()
            dx = cell.backward(d_out, d_hT, truncate=4)
            res.append((out, dx, cell.arena.grad.copy(), cell.timestep_grad_norms.copy()))
    for a, b in zip(*res):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_float32_matches_float64(kind):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((30, 4, 5))
    d_out = rng.standard_normal((30, 4, 16))
    res = []
    for dt in ("float64", "float32"):
        cell = make_module(kind, 5, 16, dtype=dt, seed=8)
        out, _ = cell.forward(x.astype(dt))
        out = out.astype(np.float64)
        dx = cell.backward(d_out.astype(dt))
        res.append((out, dx.astype(np.float64), cell.arena.grad.astype(np.float64)))
    for a, b in zip(*res):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(a).max()))


# ------------------------------------------------------------ PyTorch
@needs_torch
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("kind,nonlin", [("rnn", "tanh"), ("rnn", "relu"), ("lstm", None), ("gru", None)])
def test_matches_torch(backend, kind, nonlin, bias):
    rng = np.random.default_rng(9)
    T, B, I, H = 12, 3, 4, 7
    kw = {"nonlinearity": nonlin} if kind == "rnn" else {}
    cell = make_module(kind, I, H, bias=bias, seed=10, **kw)
    tm = torch_twin(kind, cell, nonlin or "tanh")
    x = rng.standard_normal((T, B, I))
    h0 = _h0(kind, B, H, rng)
    d_out = rng.standard_normal((T, B, H))
    d_hT = rng.standard_normal((B, H))

    xt = torch.tensor(x, requires_grad=True)
    if kind == "lstm":
        ht = (torch.tensor(h0[0][None], requires_grad=True), torch.tensor(h0[1][None], requires_grad=True))
    else:
        ht = torch.tensor(h0[None], requires_grad=True)
    out_t, hn_t = tm(xt, ht)
    hT_t = hn_t[0] if kind == "lstm" else hn_t
    loss = (out_t * torch.tensor(d_out)).sum() + (hT_t[0] * torch.tensor(d_hT)).sum()
    loss.backward()

    out, hT = cell.forward(x, h0)
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=1e-12, atol=1e-12)
    hT = hT[0] if kind == "lstm" else hT
    np.testing.assert_allclose(hT, hT_t.detach().numpy()[0], rtol=1e-12, atol=1e-12)
    dx = cell.backward(d_out, d_hT)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    tgrads = {name: p.grad.numpy() for name, p in tm.named_parameters()}
    ours = cell.gradients()
    for name in ours:
        np.testing.assert_allclose(ours[name], tgrads[name + "_l0"], rtol=1e-10, atol=1e-12, err_msg=name)
    dh0_t = ht[0].grad.numpy()[0] if kind == "lstm" else ht.grad.numpy()[0]
    np.testing.assert_allclose(cell.dh0, dh0_t, rtol=1e-10, atol=1e-12)
    if kind == "lstm":
        np.testing.assert_allclose(cell.dc0, ht[1].grad.numpy()[0], rtol=1e-10, atol=1e-12)


@needs_torch
@pytest.mark.parametrize("kind", KINDS)
def test_truncation_equals_torch_detach_every_k_steps(kind):
    """truncate=k == PyTorch's usual truncated BPTT: run the sequence in
    chunks of k steps and detach the state between chunks."""
    rng = np.random.default_rng(11)
    T, B, I, H, k = 11, 2, 3, 5, 4
    cell = make_module(kind, I, H, seed=12)
    tm = torch_twin(kind, cell)
    x = rng.standard_normal((T, B, I))
    d_out = rng.standard_normal((T, B, H))
    xt = torch.tensor(x, requires_grad=True)
    state = None
    loss = 0
    for s in range(0, T, k):
        if state is not None:
            state = tuple(v.detach() for v in state) if kind == "lstm" else state.detach()
        o, state = tm(xt[s:s + k], state)
        loss = loss + (o * torch.tensor(d_out[s:s + k])).sum()
    loss.backward()
    dx, grads = module_grads(cell, x, None, d_out, None, truncate=k)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    tg = np.concatenate([p.grad.numpy().reshape(-1) for _, p in tm.named_parameters()])
    np.testing.assert_allclose(grads, tg, rtol=1e-10, atol=1e-12)


@needs_torch
@pytest.mark.parametrize("kind", KINDS)
def test_timestep_grad_norms_equal_step_by_step_torch(kind):
    """||dL/dh_t|| against a step-by-step torch loop keeping every h_t's grad."""
    rng = np.random.default_rng(13)
    T, B, I, H = 15, 3, 4, 6
    cell = make_module(kind, I, H, seed=14, init=ginit.normal(0.8), recurrent_init=ginit.normal(0.6))
    tm = torch_twin(kind, cell)
    tcell = {"rnn": torch.nn.RNNCell, "lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell}[kind](I, H).double()
    tcell.load_state_dict({k[:-3]: v for k, v in tm.state_dict().items()})
    x = rng.standard_normal((T, B, I))
    d_out = rng.standard_normal((T, B, H))
    d_hT = rng.standard_normal((B, H))
    state = None
    hs = []
    loss = 0
    for t in range(T):
        state = tcell(torch.tensor(x[t]), state)
        h = state[0] if kind == "lstm" else state
        h.retain_grad()
        hs.append(h)
        loss = loss + (h * torch.tensor(d_out[t])).sum()
    loss = loss + (hs[-1] * torch.tensor(d_hT)).sum()
    loss.backward()
    expect = np.array([np.linalg.norm(h.grad.numpy()) for h in hs])
    cell.forward(x)
    cell.backward(d_out, d_hT)
    assert cell.timestep_grad_norms.shape == (T,) and cell.timestep_grad_norms.dtype == np.float64
    np.testing.assert_allclose(cell.timestep_grad_norms, expect, rtol=1e-12)


@needs_torch
@pytest.mark.parametrize("kind", KINDS)
def test_torch_state_dict_round_trip(kind):
    cell = make_module(kind, 3, 5, seed=15, dtype="float32")
    tm = torch_twin(kind, cell)
    sd = tm.state_dict()
    other = make_module(kind, 3, 5, seed=99, dtype="float32")
    other.load_torch_state_dict(sd)
    for k, v in cell.torch_state_dict().items():
        np.testing.assert_array_equal(other.torch_state_dict()[k], v)
    before = other.arena.data.copy()
    bad = dict(sd)
    bad["weight_ih_l1"] = bad["weight_ih_l0"]
    with pytest.raises(KeyError, match="single layer"):
        other.load_torch_state_dict(bad)
    bad = dict(sd)
    bad["weight_hh_l0"] = torch.zeros(2, 2)
    with pytest.raises(ValueError, match="weight_hh_l0"):
        other.load_torch_state_dict(bad)
    np.testing.assert_array_equal(other.arena.data, before)


# ------------------------------------------------------------ closed forms
@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-12), ("float32", 2e-6)])
@pytest.mark.parametrize("w,expect", [(1.01, 2.704814), (0.99, 0.366032)])
def test_scalar_linear_rnn_gradient_is_w_to_the_T(backend, w, expect, dtype, rtol):
    cell = nn.RNN(1, 1, nonlinearity="identity", bias=False, init=0.0, recurrent_init=w, dtype=dtype)
    x = np.zeros((100, 1, 1), dtype)
    cell.forward(x, np.ones((1, 1), dtype))
    cell.backward(None, d_hT=np.ones((1, 1), dtype))
    wd = float(np.dtype(dtype).type(w))         # w as stored (float32 rounds 1.01)
    assert abs(float(cell.dh0[0, 0]) - wd**100) <= rtol * wd**100
    assert abs(float(cell.dh0[0, 0]) - expect) < (5e-7 if dtype == "float64" else 5e-6)
    # dL/dh_t = w^(T-1-t)
    np.testing.assert_allclose(cell.timestep_grad_norms, wd ** np.arange(99, -1, -1.0), rtol=rtol * 10)


def _jacobian_hT_h0(cell, x, h0):
    """dh_T/dh_0 (H x H) from one backward with B = H copies and d_hT = I."""
    H = cell.hidden_size
    xb = np.repeat(x, H, axis=1)
    hb = np.repeat(h0, H, axis=0)
    cell.forward(xb, hb)
    cell.backward(None, d_hT=np.eye(H, dtype=x.dtype))
    return cell.dh0.copy()  # row j = d h_T[j] / d h_0 = (J^T)[j] ... J[j, :]


@pytest.mark.parametrize("rho", [0.9, 1.1])
def test_orthogonal_linear_rnn_singular_values_are_rho_to_the_T(backend, rho):
    T, H = 40, 8
    cell = nn.RNN(3, H, nonlinearity="identity", bias=False,
                  recurrent_init=nn.scaled("orthogonal", spectral_radius=rho), dtype="float64", seed=16)
    w = cell.p["weight_hh"]
    np.testing.assert_allclose(w @ w.T, rho**2 * np.eye(H), atol=1e-12)
    rng = np.random.default_rng(17)
    J = _jacobian_hT_h0(cell, rng.standard_normal((T, 1, 3)), rng.standard_normal((1, H)))
    np.testing.assert_allclose(np.linalg.svd(J, compute_uv=False), rho**T, rtol=1e-9)


def test_tanh_rnn_jacobian_norm_never_exceeds_sigma_max_to_the_T(backend):
    T, H = 30, 10
    rng = np.random.default_rng(18)
    cell = nn.RNN(4, H, nonlinearity="tanh", dtype="float64", seed=19)
    a = rng.standard_normal((H, H))
    u, _, vt = np.linalg.svd(a)
    cell.p["weight_hh"][...] = u @ np.diag(np.linspace(0.9, 0.85, H)) @ vt
    x = rng.standard_normal((T, 1, 4)) * 0.3
    J = _jacobian_hT_h0(cell, x, rng.standard_normal((1, H)) * 0.3)
    top = np.linalg.svd(J, compute_uv=False)[0]
    assert 0 < top <= 0.9**T
    assert top > 0.05 * 0.9**T  # close to the bound, not trivially small


# ------------------------------------------------------------ initializers
def test_recurrent_initializers():
    r = nn.RNN(3, 6, recurrent_init="orthogonal", dtype="float64", seed=0)
    w = r.p["weight_hh"]
    np.testing.assert_allclose(w @ w.T, np.eye(6), atol=1e-12)
    r = nn.RNN(3, 6, nonlinearity="relu", recurrent_init="identity", bias_init=0.0, dtype="float64")
    np.testing.assert_array_equal(r.p["weight_hh"], np.eye(6))
    np.testing.assert_array_equal(r.p["bias_hh"], np.zeros(6))
    for rho in (0.5, 1.0, 1.3):
        r = nn.RNN(3, 6, recurrent_init=nn.scaled("normal", spectral_radius=rho), dtype="float64", seed=1)
        assert abs(np.max(np.abs(np.linalg.eigvals(r.p["weight_hh"]))) - rho) < 1e-12
    k = 1 / np.sqrt(6)
    r = nn.RNN(3, 6, seed=2)  # PyTorch's default U(-1/sqrt(H), 1/sqrt(H))
    assert all(np.abs(v).max() <= k for v in r.parameters().values())
    assert r.p["weight_ih"].dtype == np.float32
    with pytest.raises(ValueError, match="square"):
        nn.scaled("orthogonal", spectral_radius=1.0)((3, 4), 0, "float64")
    with pytest.raises(ValueError, match="spectral radius"):
        nn.scaled("zeros", spectral_radius=1.0)((3, 3), 0, "float64")
    with pytest.raises(ValueError, match="spectral_radius"):
        nn.scaled("orthogonal", spectral_radius=-1)
    a = nn.RNN(3, 5, seed=3).arena.data
    b = nn.RNN(3, 5, seed=3).arena.data
    np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------ non-finite
@pytest.mark.parametrize("kind", KINDS)
def test_first_nonfinite_step_and_stop(backend, kind):
    rng = np.random.default_rng(20)
    cell = make_module(kind, 3, 4, seed=21)
    x = rng.standard_normal((10, 2, 3))
    x[4, 0, 1] = np.nan
    cell.forward(x)
    assert cell.first_nonfinite_step == 4 and cell.first_nonfinite_state_step == 4
    with pytest.raises(nn.NonFiniteStepError) as e:
        cell.forward(x, stop_on_nonfinite=True)
    assert e.value.step == 4 and e.value.phase == "forward"
    with pytest.raises(RuntimeError, match="before forward"):
        cell.backward(np.zeros((10, 2, 4)))
    x[4, 0, 1] = 0.0
    cell.forward(x)
    assert cell.first_nonfinite_step is None
    d_out = rng.standard_normal((10, 2, 4))
    d_out[7, 1, 0] = np.inf
    cell.backward(d_out)
    assert cell.first_nonfinite_step == 7 and cell.first_nonfinite_grad_step == 7
    cell.zero_grad()
    cell.forward(x)
    with pytest.raises(nn.NonFiniteStepError) as e:
        cell.backward(d_out, stop_on_nonfinite=True)
    assert e.value.step == 7 and e.value.phase == "backward"
    assert not cell.arena.grad.any()          # gradients left unchanged
    assert np.isnan(cell.timestep_grad_norms[:7]).all()


def test_exploding_relu_rnn_detected_in_forward():
    cell = nn.RNN(1, 4, nonlinearity="relu", bias=False, init=1.0, recurrent_init=nn.scaled("identity", 1e6),
                  dtype="float32")
    x = np.ones((20, 1, 1), np.float32)
    cell.forward(x)
    # h_t ~ 1e6^t overflows float32 (max 3.4e38) first at t = 7
    assert cell.first_nonfinite_step == 7
    assert np.isfinite(cell.forward(x[:7])[0]).all()


# ------------------------------------------------------------ bad input
@pytest.mark.parametrize("kind", KINDS)
def test_bad_input_raises_and_changes_nothing(backend, kind):
    rng = np.random.default_rng(22)
    cell = make_module(kind, 3, 4, seed=23)
    with pytest.raises(RuntimeError, match="before forward"):
        cell.backward(np.zeros((5, 2, 4)))
    x = rng.standard_normal((5, 2, 3))
    out, _ = cell.forward(x)
    out_before = out.copy()
    params = cell.arena.data.copy()
    bad_forward = [
        (ValueError, "3-D", rng.standard_normal((5, 2, 3, 1))),
        (ValueError, "3 features", rng.standard_normal((5, 4))),   # 2-D: unbatched (T, I)
        (ValueError, "3 features", rng.standard_normal((5, 2, 4))),
        (ValueError, "T = 0", np.zeros((0, 2, 3))),
        (TypeError, "float32", x.astype(np.float32)),
        (TypeError, "numpy array", [[[1.0, 2.0, 3.0]]]),
    ]
    for exc, msg, bad in bad_forward:
        with pytest.raises(exc, match=msg):
            cell.forward(bad)
    bad_h0 = np.zeros((3, 4)) if kind != "lstm" else (np.zeros((3, 4)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="h0"):
        cell.forward(x, bad_h0)
    with pytest.raises(ValueError, match="d_out has shape"):
        cell.backward(np.zeros((5, 2, 5)))
    with pytest.raises(ValueError, match="d_hT"):
        cell.backward(None, d_hT=np.zeros((2, 5)))
    for t in (0, -3):
        with pytest.raises(ValueError, match="truncate"):
            cell.backward(np.zeros((5, 2, 4)), truncate=t)
    with pytest.raises(TypeError, match="truncate"):
        cell.backward(np.zeros((5, 2, 4)), truncate=2.0)
    # nothing changed: parameters, gradients, the last forward's output and cache
    np.testing.assert_array_equal(cell.arena.data, params)
    assert not cell.arena.grad.any()
    np.testing.assert_array_equal(out, out_before)
    d_out = rng.standard_normal((5, 2, 4))
    dx = cell.backward(d_out)
    ref = make_module(kind, 3, 4, seed=23)
    ref.forward(x)
    np.testing.assert_array_equal(dx, ref.backward(d_out))


def test_accepts_pytorch_state_shape_and_noncontiguous_x(backend):
    rng = np.random.default_rng(24)
    cell = nn.RNN(3, 4, dtype="float64", seed=25)
    x = rng.standard_normal((6, 3, 2)).transpose(0, 2, 1)   # (6, 2, 3), not contiguous
    h0 = rng.standard_normal((2, 4))
    a = cell.forward(x, h0)[0].copy()
    b = cell.forward(np.ascontiguousarray(x), h0[None])[0].copy()
    np.testing.assert_array_equal(a, b)


def test_constructor_arguments_checked():
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="hidden_size"):
        nn.RNN(3, 0)
    with pytest.raises(TypeError, match="input_size"):
        nn.GRU(2.5, 4)
    with pytest.raises(TypeError, match="dtype"):
        nn.LSTM(3, 4, dtype="int32")


def test_rnn_backward_can_repeat_lstm_gru_cannot():
    rng = np.random.default_rng(26)
    x = rng.standard_normal((4, 2, 3))
    d = rng.standard_normal((4, 2, 4))
    r = nn.RNN(3, 4, dtype="float64", seed=0)
    r.forward(x)
    g1 = r.backward(d).copy()
    np.testing.assert_array_equal(r.backward(d), g1)
    for cls in (nn.LSTM, nn.GRU):
        m = cls(3, 4, dtype="float64", seed=0)
        m.forward(x)
        m.backward(d)
        with pytest.raises(RuntimeError, match="call forward again"):
            m.backward(d)


# ------------------------------------------------------------ models
def _dense_backends():
    from gradcore import _kernels

    return ["numpy"] + (["c"] if hasattr(_kernels, "dense_forward") else [])


@pytest.mark.parametrize("name", _dense_backends())
@pytest.mark.parametrize("kind", KINDS)
def test_sequential_with_dense_head_on_last_step(name, kind):
    with gradcore.use_backend(name):
        rng = np.random.default_rng(27)
        model = nn.Sequential(nn.LastStep(make_module(kind, 3, 5, seed=28)),
                              nn.Dense(5, 2, dtype="float64", seed=29))
        names = list(model.parameters())
        assert names[0] == "0.rnn.weight_ih" and names[-1] == "1.bias"
        x = rng.standard_normal((6, 2, 3))
        dy = rng.standard_normal((2, 2))
        model.zero_grad()
        model.forward(x)
        dx = model.backward(dy).copy()
        analytic = model.arena.grad.copy()

        def f():
            return float(np.sum(model.forward(x) * dy))

        np.testing.assert_allclose(analytic, numgrad(f, model.arena.data), rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(dx, numgrad(f, x), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", _dense_backends())
def test_sequential_with_dense_head_on_every_step(name):
    with gradcore.use_backend(name):
        rng = np.random.default_rng(30)
        model = nn.Sequential(nn.AllSteps(nn.GRU(3, 5, dtype="float64", seed=31), truncate=3),
                              nn.TimeDistributed(nn.Dense(5, 2, activation="tanh", dtype="float64", seed=32)))
        x = rng.standard_normal((7, 2, 3))
        y = model.forward(x)
        assert y.shape == (7, 2, 2)
        dy = rng.standard_normal((7, 2, 2))
        model.zero_grad()
        model.forward(x)
        model.backward(dy)
        analytic = model.arena.grad.copy()
        # the Dense head's gradient is exact (no truncation inside it)
        head = slice(model[1].flat_parameters().size * -1, None)

        def f():
            return float(np.sum(model.forward(x) * dy))

        np.testing.assert_allclose(analytic[head], numgrad(f, model.arena.data)[head], rtol=1e-6, atol=1e-8)
        model[0].truncate = None
        model.zero_grad()
        model.forward(x)
        model.backward(dy)
        np.testing.assert_allclose(model.arena.grad, numgrad(f, model.arena.data), rtol=1e-6, atol=1e-8)


# ------------------------------------------------------------ memory
def test_memory_per_T_B_H():
    rnn = nn.RNN(8, 6, dtype="float32")
    lstm = nn.LSTM(8, 6, dtype="float32")
    gru = nn.GRU(8, 6, dtype="float64")
    x32 = np.zeros((5, 3, 8), np.float32)
    for cell, per, x in ((rnn, 2, x32), (lstm, 6, x32), (gru, 5, x32.astype(np.float64))):
        cell.forward(x)
        assert cell.memory_bytes(5, 3) == per * 5 * 3 * 6 * x.itemsize
        assert sum(b.nbytes for b in cell._bufs.values()) == cell.memory_bytes(5, 3)
    # the long-sequence case of the design: T=10000, B=32, H=256 float32
    assert nn.RNN(32, 256).memory_bytes(10000, 32) == 655_360_000
    assert nn.GRU(32, 256).memory_bytes(10000, 32) < 2 * 1024**3
    assert nn.LSTM(32, 256).memory_bytes(10000, 32) < 2 * 1024**3
