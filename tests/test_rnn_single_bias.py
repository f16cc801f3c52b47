"""nn.RNN's bias options: True (b_ih and b_hh, PyTorch's layout), False and
"single" (one bias, as in Pascanu et al. 2013 and Le et al. 2015)."""

import numpy as np
import pytest

from gradcore import nn
from rnn_helpers import module_gradcheck

try:
    import torch
except ImportError:  # the PyTorch comparisons skip; everything else runs
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")

ACTS = {"tanh": np.tanh, "relu": lambda v: np.maximum(v, 0), "identity": lambda v: v}


def _numpy_rnn(x, h0, w_ih, w_hh, b, act):
    """The textbook single-bias Elman RNN, one step at a time."""
    h = np.zeros((x.shape[1], w_hh.shape[0])) if h0 is None else h0.astype(np.float64)
    out = []
    for t in range(x.shape[0]):
        h = ACTS[act](x[t] @ w_ih.T + h @ w_hh.T + b)
        out.append(h)
    return np.stack(out)


def _numpy_rnn_grads(x, h0, w_ih, w_hh, out, d_out, act):
    """Hand-written BPTT of sum(out * d_out) for the single-bias RNN."""
    T, B, _ = x.shape
    dw_ih, dw_hh, db = np.zeros_like(w_ih), np.zeros_like(w_hh), np.zeros(w_hh.shape[0])
    dx = np.zeros_like(x)
    carry = np.zeros((B, w_hh.shape[0]))
    for t in range(T - 1, -1, -1):
        dh = d_out[t] + carry
        if act == "tanh":
            dz = dh * (1 - out[t] ** 2)
        elif act == "relu":
            dz = dh * (out[t] > 0)
        else:
            dz = dh
        hp = out[t - 1] if t else (np.zeros((B, w_hh.shape[0])) if h0 is None else h0)
        dw_ih += dz.T @ x[t]
        dw_hh += dz.T @ hp
        db += dz.sum(0)
        dx[t] = dz @ w_ih
        carry = dz @ w_hh
    return dx, dw_ih, dw_hh, db, carry


@pytest.mark.parametrize("act", list(ACTS))
@pytest.mark.parametrize("dtype,tol", [("float64", 1e-12), ("float32", 2e-5)])
def test_single_bias_matches_numpy_rnn(backend, act, dtype, tol):
    rng = np.random.default_rng(0)
    T, B, I, H = 7, 3, 4, 5
    rnn = nn.RNN(I, H, nonlinearity=act, bias="single", bias_init="normal", dtype=dtype, seed=1)
    assert sorted(rnn.parameters()) == ["bias_ih", "weight_hh", "weight_ih"]
    assert rnn.num_parameters() == H * I + H * H + H
    p = {k: v.astype(np.float64) for k, v in rnn.parameters().items()}
    x = rng.standard_normal((T, B, I))
    h0 = rng.standard_normal((B, H)) * 0.5
    d_out = rng.standard_normal((T, B, H))
    want = _numpy_rnn(x, h0, p["weight_ih"], p["weight_hh"], p["bias_ih"], act)
    out, hT = rnn.forward(x.astype(dtype), h0.astype(dtype))
    np.testing.assert_allclose(out, want, rtol=tol, atol=tol)
    np.testing.assert_array_equal(hT, out[-1])
    dx = rnn.backward(d_out.astype(dtype))
    gdx, gw_ih, gw_hh, gb, gh0 = _numpy_rnn_grads(x, h0, p["weight_ih"], p["weight_hh"], want, d_out, act)
    g = rnn.gradients()
    for name, a, b in [("dx", dx, gdx), ("weight_ih", g["weight_ih"], gw_ih),
                       ("weight_hh", g["weight_hh"], gw_hh), ("bias_ih", g["bias_ih"], gb),
                       ("dh0", rnn.dh0, gh0)]:
        np.testing.assert_allclose(a, b, rtol=tol * 10, atol=tol * 10 * max(1.0, np.abs(b).max()),
                                   err_msg=name)


@pytest.mark.parametrize("with_h0", [True, False], ids=["h0", "no-h0"])
def test_single_bias_gradcheck(backend, with_h0):
    rng = np.random.default_rng(2)
    rnn = nn.RNN(3, 4, bias="single", bias_init="normal", dtype="float64", seed=3)
    h0 = rng.standard_normal((2, 4)) * 0.5 if with_h0 else None
    module_gradcheck(rnn, rng.standard_normal((5, 2, 3)), h0)


def test_single_bias_equals_two_biases_summed():
    rng = np.random.default_rng(4)
    two = nn.RNN(3, 4, dtype="float64", seed=5)
    one = nn.RNN(3, 4, bias="single", dtype="float64", seed=5)
    one.p["weight_ih"][...] = two.p["weight_ih"]
    one.p["weight_hh"][...] = two.p["weight_hh"]
    one.p["bias_ih"][...] = two.p["bias_ih"] + two.p["bias_hh"]
    x = rng.standard_normal((6, 2, 3))
    np.testing.assert_allclose(one.forward(x)[0], two.forward(x)[0], rtol=1e-14, atol=1e-14)
    d_out = rng.standard_normal((6, 2, 4))
    one.backward(d_out)
    two.backward(d_out)
    np.testing.assert_allclose(one.g["bias_ih"], two.g["bias_ih"], rtol=1e-14)
    np.testing.assert_array_equal(two.g["bias_ih"], two.g["bias_hh"])


def test_bias_options_and_bad_values():
    assert sorted(nn.RNN(2, 3, bias=False).parameters()) == ["weight_hh", "weight_ih"]
    assert sorted(nn.RNN(2, 3).parameters()) == ["bias_hh", "bias_ih", "weight_hh", "weight_ih"]
    assert "bias='single'" in repr(nn.RNN(2, 3, bias="single"))
    lstm = nn.LSTM(2, 3, bias="single", forget_bias=1.0)
    assert "bias_hh" not in lstm.parameters() and (lstm.p["bias_ih"][3:6] == 1).all()
    with pytest.raises(TypeError, match="bias must be True, False or 'single'"):
        nn.RNN(2, 3, bias="one")
    with pytest.raises(TypeError, match="bias must be"):
        nn.RNN(2, 3, bias=1)
    with pytest.raises(ValueError, match="bias='single' is not available"):
        nn.GRU(2, 3, bias="single")


def test_single_bias_torch_state_dict_round_trip():
    rng = np.random.default_rng(6)
    one = nn.RNN(3, 4, bias="single", bias_init="normal", dtype="float64", seed=7)
    sd = one.torch_state_dict()
    assert sorted(sd) == ["bias_hh_l0", "bias_ih_l0", "weight_hh_l0", "weight_ih_l0"]
    assert not sd["bias_hh_l0"].any()
    sd["bias_hh_l0"] = rng.standard_normal(4)       # torch's two biases load as their sum
    other = nn.RNN(3, 4, bias="single", dtype="float64", seed=8)
    other.load_torch_state_dict(sd)
    np.testing.assert_allclose(other.p["bias_ih"], sd["bias_ih_l0"] + sd["bias_hh_l0"], rtol=1e-15)
    with pytest.raises(KeyError):
        other.load_torch_state_dict({k: v for k, v in sd.items() if k != "bias_hh_l0"})


@needs_torch
def test_single_bias_matches_torch_with_zero_hidden_bias():
    rng = np.random.default_rng(9)
    rnn = nn.RNN(3, 5, bias="single", bias_init="normal", dtype="float64", seed=10)
    tm = torch.nn.RNN(3, 5).double()
    tm.load_state_dict({k: torch.from_numpy(v) for k, v in rnn.torch_state_dict().items()})
    x = rng.standard_normal((8, 2, 3))
    out_t, _ = tm(torch.from_numpy(x))
    np.testing.assert_allclose(rnn.forward(x)[0], out_t.detach().numpy(), rtol=1e-12, atol=1e-12)
