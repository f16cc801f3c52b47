"""gradcore.nn.GRU: closed forms and the gate formulas.
(Gradients, PyTorch equivalence, truncation, bad input: tests/test_rnn.py.)"""

import numpy as np
import pytest

from gradcore import nn


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-12), ("float32", 1e-5)])
def test_zero_weights_gradient_is_sigmoid_bz_to_the_T(backend, dtype, rtol):
    T, B, I, H = 40, 2, 3, 4
    cell = nn.GRU(I, H, init=0.0, recurrent_init=0.0, bias_init="normal", dtype=dtype, seed=0)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((T, B, I)).astype(dtype)
    cell.forward(x, rng.standard_normal((B, H)).astype(dtype))
    cell.backward(None, d_hT=np.ones((B, H), dtype))
    b_z = (cell.p["bias_ih"][H:2 * H].astype(np.float64) + cell.p["bias_hh"][H:2 * H].astype(np.float64))
    np.testing.assert_allclose(cell.dh0, np.broadcast_to(_sigmoid(b_z) ** T, (B, H)), rtol=rtol)


def test_forward_formula_one_step():
    rng = np.random.default_rng(2)
    cell = nn.GRU(3, 4, dtype="float64", seed=3)
    x = rng.standard_normal((1, 2, 3))
    h = rng.standard_normal((2, 4))
    out, hT = cell.forward(x, h)
    p = cell.p
    gi = x[0] @ p["weight_ih"].T + p["bias_ih"]
    gh = h @ p["weight_hh"].T + p["bias_hh"]
    r = _sigmoid(gi[:, :4] + gh[:, :4])
    z = _sigmoid(gi[:, 4:8] + gh[:, 4:8])
    n = np.tanh(gi[:, 8:] + r * gh[:, 8:])
    np.testing.assert_allclose(hT, (1 - z) * n + z * h, rtol=1e-13)
    np.testing.assert_array_equal(out[0], hT)


def test_per_gate_recurrent_init():
    cell = nn.GRU(3, 5, recurrent_init=nn.scaled("orthogonal", spectral_radius=0.8), dtype="float64", seed=4)
    w = cell.p["weight_hh"]
    assert w.shape == (15, 5)
    for gate in range(3):
        blk = w[5 * gate:5 * gate + 5]
        np.testing.assert_allclose(blk @ blk.T, 0.64 * np.eye(5), atol=1e-12)
