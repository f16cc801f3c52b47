"""LSTM.timestep_cell_grad_norms: ||dL/dc_t|| per step, recorded inside the
BPTT kernel, against central differences and torch (retain_grad on c_t)."""

import numpy as np
import pytest

from gradcore import nn

try:
    import torch
except ImportError:  # the PyTorch comparison skips; everything else runs
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")


def _sig(v):
    return 1.0 / (1.0 + np.exp(-v))


def _numpy_lstm_loss(p, x, h0, c0, d_out, d_hT, d_cT, eps):
    """sum(out * d_out) + h_T . d_hT + c_T . d_cT with eps[t] added to c_t
    before h_t = o tanh(c_t) is taken, so d loss / d eps[t] = dL/dc_t."""
    H = p["weight_hh"].shape[1]
    h, c = h0, c0
    total = 0.0
    for t in range(x.shape[0]):
        a = x[t] @ p["weight_ih"].T + p["bias_ih"] + h @ p["weight_hh"].T + p["bias_hh"]
        i, f, g, o = _sig(a[:, :H]), _sig(a[:, H:2 * H]), np.tanh(a[:, 2 * H:3 * H]), _sig(a[:, 3 * H:])
        c = f * c + i * g + eps[t]
        h = o * np.tanh(c)
        total += float(np.sum(h * d_out[t]))
    return total + float(np.sum(h * d_hT)) + float(np.sum(c * d_cT))


def _case(seed, T=6, B=2, I=3, H=4, dtype="float64"):
    rng = np.random.default_rng(seed)
    cell = nn.LSTM(I, H, dtype=dtype, seed=seed + 1)
    x = rng.standard_normal((T, B, I))
    h0, c0 = rng.standard_normal((B, H)) * 0.5, rng.standard_normal((B, H)) * 0.5
    d_out = rng.standard_normal((T, B, H))
    d_hT, d_cT = rng.standard_normal((B, H)), rng.standard_normal((B, H))
    return cell, x, h0, c0, d_out, d_hT, d_cT


def test_cell_norms_match_finite_differences(backend):
    cell, x, h0, c0, d_out, d_hT, d_cT = _case(0)
    T, B, _ = x.shape
    H = cell.hidden_size
    cell.forward(x, (h0, c0))
    cell.backward(d_out, d_hT, d_cT=d_cT)
    got = cell.timestep_cell_grad_norms
    assert got.shape == (T,) and got.dtype == np.float64
    p = {k: v.copy() for k, v in cell.parameters().items()}
    eps = np.zeros((T, B, H))
    flat = eps.reshape(-1)
    want = np.zeros(T)
    for t in range(T):
        g = np.zeros((B, H))
        for j in range(B * H):
            k = t * B * H + j
            flat[k] = 1e-6
            fp = _numpy_lstm_loss(p, x, h0, c0, d_out, d_hT, d_cT, eps)
            flat[k] = -1e-6
            fm = _numpy_lstm_loss(p, x, h0, c0, d_out, d_hT, d_cT, eps)
            flat[k] = 0.0
            g.reshape(-1)[j] = (fp - fm) / 2e-6
        want[t] = np.linalg.norm(g)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    # the last step's cell gradient includes d_cT; with d_cT = 0 it changes
    cell.forward(x, (h0, c0))
    cell.backward(d_out, d_hT)
    assert cell.timestep_cell_grad_norms[-1] != got[-1]


def test_cell_norms_float32_close_to_float64():
    res = []
    for dt in ("float64", "float32"):
        cell, x, h0, c0, d_out, d_hT, d_cT = _case(1, T=20, B=3, H=8, dtype=dt)
        cell.forward(x.astype(dt), (h0.astype(dt), c0.astype(dt)))
        cell.backward(d_out.astype(dt), d_hT.astype(dt), d_cT=d_cT.astype(dt))
        res.append(cell.timestep_cell_grad_norms.copy())
    np.testing.assert_allclose(res[1], res[0], rtol=1e-4)


def test_cell_norms_reset_by_forward_and_truncation_cuts_them(backend):
    cell, x, h0, c0, d_out, d_hT, d_cT = _case(2, T=8)
    cell.forward(x, (h0, c0))
    assert cell.timestep_cell_grad_norms is None
    cell.backward(None, d_hT, truncate=3, d_cT=d_cT)
    n = cell.timestep_cell_grad_norms
    # no loss term before the last window: nothing reaches steps 0..5
    assert (n[:6] == 0).all() and (n[6:] > 0).all()
    cell.forward(x, (h0, c0))
    assert cell.timestep_cell_grad_norms is None


@needs_torch
@pytest.mark.parametrize("with_dcT", [True, False])
def test_cell_norms_match_torch_retain_grad(backend, with_dcT):
    cell, x, h0, c0, d_out, d_hT, d_cT = _case(3, T=10, B=3, I=4, H=5)
    if not with_dcT:
        d_cT = None
    sd = cell.torch_state_dict()
    tc = torch.nn.LSTMCell(4, 5).double()
    tc.load_state_dict({k[:-3]: torch.from_numpy(v) for k, v in sd.items()})
    h, c = torch.tensor(h0), torch.tensor(c0)
    cs, loss = [], 0
    for t in range(x.shape[0]):
        h, c = tc(torch.from_numpy(x[t]), (h, c))
        c.retain_grad()
        cs.append(c)
        loss = loss + (h * torch.from_numpy(d_out[t])).sum()
    loss = loss + (h * torch.from_numpy(d_hT)).sum()
    if d_cT is not None:
        loss = loss + (c * torch.from_numpy(d_cT)).sum()
    loss.backward()
    want = np.array([float(torch.linalg.norm(ct.grad)) for ct in cs])
    cell.forward(x, (h0, c0))
    cell.backward(d_out, d_hT, d_cT=d_cT)
    np.testing.assert_allclose(cell.timestep_cell_grad_norms, want, rtol=1e-12)
