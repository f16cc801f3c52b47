"""gradcore.nn.LSTM: closed forms, gates, forget bias, state tuples.
(Gradients, PyTorch equivalence, truncation, bad input: tests/test_rnn.py.)"""

import numpy as np
import pytest

from gradcore import nn


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-12), ("float32", 1e-5)])
def test_zero_weights_cell_gradient_is_sigmoid_bf_to_the_T(backend, dtype, rtol):
    T, B, I, H = 50, 2, 3, 4
    cell = nn.LSTM(I, H, init=0.0, recurrent_init=0.0, bias_init="normal", dtype=dtype, seed=0)
    b_f = np.array([-1.0, 0.0, 0.5, 2.0])
    cell.p["bias_ih"][H:2 * H] = b_f
    cell.p["bias_hh"][H:2 * H] = 0.0
    rng = np.random.default_rng(1)
    x = rng.standard_normal((T, B, I)).astype(dtype)
    h0 = (rng.standard_normal((B, H)).astype(dtype), rng.standard_normal((B, H)).astype(dtype))
    cell.forward(x, h0)
    cell.backward(None, d_cT=np.ones((B, H), dtype))
    f = _sigmoid(b_f.astype(dtype).astype(np.float64))
    np.testing.assert_allclose(cell.dc0, np.broadcast_to(f**T, (B, H)), rtol=rtol)
    assert not cell.dh0.any()          # h0 reaches nothing through zero weights


def test_forward_formula_one_step():
    rng = np.random.default_rng(2)
    cell = nn.LSTM(3, 4, dtype="float64", seed=3)
    x = rng.standard_normal((1, 2, 3))
    h, c = rng.standard_normal((2, 4)), rng.standard_normal((2, 4))
    out, (hT, cT) = cell.forward(x, (h, c))
    p = cell.p
    a = x[0] @ p["weight_ih"].T + p["bias_ih"] + h @ p["weight_hh"].T + p["bias_hh"]
    i, f, g, o = _sigmoid(a[:, :4]), _sigmoid(a[:, 4:8]), np.tanh(a[:, 8:12]), _sigmoid(a[:, 12:])
    c1 = f * c + i * g
    np.testing.assert_allclose(cT, c1, rtol=1e-13)
    np.testing.assert_allclose(hT, o * np.tanh(c1), rtol=1e-13)
    np.testing.assert_array_equal(out[0], hT)


def test_forget_bias_and_per_gate_recurrent_init():
    cell = nn.LSTM(3, 5, forget_bias=1.0, recurrent_init="orthogonal", dtype="float64", seed=4)
    np.testing.assert_array_equal(cell.p["bias_ih"][5:10], np.ones(5))
    np.testing.assert_array_equal(cell.p["bias_hh"][5:10], np.zeros(5))
    w = cell.p["weight_hh"]
    assert w.shape == (20, 5)
    for gate in range(4):
        blk = w[5 * gate:5 * gate + 5]
        np.testing.assert_allclose(blk @ blk.T, np.eye(5), atol=1e-12)
    cell = nn.LSTM(3, 5, recurrent_init="identity", dtype="float64")
    np.testing.assert_array_equal(cell.p["weight_hh"], np.tile(np.eye(5), (4, 1)))
    with pytest.raises(ValueError, match="bias=True"):
        nn.LSTM(3, 5, bias=False, forget_bias=1.0)
    with pytest.raises(TypeError, match="forget_bias"):
        nn.LSTM(3, 5, forget_bias="one")


def test_state_forms(backend):
    rng = np.random.default_rng(5)
    cell = nn.LSTM(3, 4, dtype="float64", seed=6)
    x = rng.standard_normal((5, 2, 3))
    h, c = rng.standard_normal((2, 4)), rng.standard_normal((2, 4))
    a = cell.forward(x, (h, c))[0].copy()
    b = cell.forward(x, (h[None], c[None]))[0].copy()
    np.testing.assert_array_equal(a, b)
    zero = cell.forward(x)[0].copy()
    np.testing.assert_array_equal(zero, cell.forward(x, (None, None))[0])
    np.testing.assert_array_equal(zero, cell.forward(x, (np.zeros((2, 4)), np.zeros((2, 4))))[0])
    with pytest.raises(TypeError, match="pair"):
        cell.forward(x, h)
    with pytest.raises(ValueError, match="c"):
        cell.forward(x, (h, np.zeros((2, 5))))
    # d_hT may be a pair (d_hT, d_cT)
    dh, dc = rng.standard_normal((2, 4)), rng.standard_normal((2, 4))
    cell.zero_grad()
    cell.forward(x, (h, c))
    g1 = cell.backward(None, (dh, dc)).copy()
    cell.forward(x, (h, c))
    np.testing.assert_array_equal(cell.backward(None, dh, d_cT=dc), g1)
