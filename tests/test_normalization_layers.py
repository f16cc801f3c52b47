import numpy as np
import pytest

from gradcore import nn
from nn_helpers import gradcheck

pytestmark = pytest.mark.kernel


def _x(B, I, dtype=np.float64, seed=1):
    return np.random.default_rng(seed).normal(size=(B, I)).astype(dtype)


@pytest.mark.parametrize("affine", [True, False])
def test_layernorm_gradcheck_and_formula(backend, affine):
    ln = nn.LayerNorm(5, elementwise_affine=affine, dtype="float64")
    if affine:
        ln.p["weight"][:] = np.linspace(0.5, 1.5, 5)
        ln.p["bias"][:] = np.linspace(-1, 1, 5)
    x = _x(4, 5) * 3 + 1
    y = ln(x).copy()
    xhat = (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + 1e-5)
    expect = xhat * ln.p["weight"] + ln.p["bias"] if affine else xhat
    np.testing.assert_allclose(y, expect, rtol=1e-12, atol=1e-12)
    gradcheck(ln, x)


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_gradcheck(backend, affine, training):
    bn = nn.BatchNorm1d(3, affine=affine, dtype="float64")
    if affine:
        bn.p["weight"][:] = [0.5, 1.0, 2.0]
        bn.p["bias"][:] = [0.1, -0.2, 0.3]
    bn._buffers["running_mean"][:] = [0.1, 0.2, -0.3]
    bn._buffers["running_var"][:] = [1.5, 0.5, 2.0]
    bn.train(training)
    gradcheck(bn, _x(6, 3) * 2)


def test_batchnorm_matches_torch(backend):
    torch = pytest.importorskip("torch")
    bn = nn.BatchNorm1d(4, momentum=0.2, dtype="float64")
    tb = torch.nn.BatchNorm1d(4, momentum=0.2).double()
    rng = np.random.default_rng(0)
    for step in range(3):
        x = rng.normal(size=(8, 4)) * 2 + step
        dy = rng.normal(size=(8, 4))
        xt = torch.from_numpy(x).requires_grad_(True)
        out = tb(xt)
        out.backward(torch.from_numpy(dy))
        bn.zero_grad()
        np.testing.assert_allclose(bn(x), out.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(bn.backward(dy), xt.grad.numpy(), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(bn.g["weight"], tb.weight.grad.numpy(), rtol=1e-10, atol=1e-12)
        tb.weight.grad = None
        tb.bias.grad = None
    sd = bn.state_dict()
    tsd = tb.state_dict()
    assert list(sd) == list(tsd)
    for k in sd:
        np.testing.assert_allclose(sd[k], tsd[k].numpy(), rtol=1e-12, err_msg=k)
    bn.eval()
    tb.eval()
    x = rng.normal(size=(1, 4))
    np.testing.assert_allclose(bn(x), tb(torch.from_numpy(x)).detach().numpy(), rtol=1e-10)


def test_batchnorm_modes_and_errors(backend):
    bn = nn.BatchNorm1d(2, dtype="float64")
    with pytest.raises(ValueError, match="at least 2 rows"):
        bn(np.ones((1, 2)))
    x = np.array([[1.0, 2.0], [3.0, 6.0]])
    bn(x)
    assert int(bn.buffers()["num_batches_tracked"]) == 1
    np.testing.assert_allclose(bn.buffers()["running_mean"], [0.2, 0.4])
    np.testing.assert_allclose(bn.buffers()["running_var"], [0.9 + 0.1 * 2.0, 0.9 + 0.1 * 8.0])
    bn.eval()
    rm = bn.buffers()["running_mean"].copy()
    y = bn(np.ones((1, 2)))  # eval works with one row and leaves the statistics alone
    np.testing.assert_allclose(y[0], (1 - rm) / np.sqrt(bn.buffers()["running_var"] + 1e-5))
    np.testing.assert_array_equal(bn.buffers()["running_mean"], rm)
    cum = nn.BatchNorm1d(2, momentum=None, dtype="float64")
    cum(x)
    cum(x + 2)
    np.testing.assert_allclose(cum.buffers()["running_mean"], [(2 + 4) / 2, (4 + 6) / 2])
    free = nn.BatchNorm1d(2, track_running_stats=False, dtype="float64").eval()
    assert free.buffers() == {}
    np.testing.assert_allclose(free(x).mean(0), [0, 0], atol=1e-12)


def test_norm_layers_input_errors_change_nothing(backend):
    ln = nn.LayerNorm(3, dtype="float64")
    bn = nn.BatchNorm1d(3, dtype="float64")
    for layer in (ln, bn):
        before = layer.state_dict()
        with pytest.raises(ValueError, match=r"expected input of shape \(B, 3\), got \(4, 2\)"):
            layer(np.ones((4, 2)))
        with pytest.raises(TypeError, match="expected float64 input, got float32"):
            layer(np.ones((4, 3), np.float32))
        with pytest.raises(RuntimeError, match="backward called before forward"):
            layer.backward(np.ones((4, 3)))
        for k, v in layer.state_dict().items():
            np.testing.assert_array_equal(v, before[k])
    with pytest.raises(ValueError, match="features: expected an integer >= 1"):
        nn.LayerNorm(0)
    with pytest.raises(ValueError, match="momentum: expected a finite number >= 0.0 and <= 1.0"):
        nn.BatchNorm1d(3, momentum=1.5)
    with pytest.raises(ValueError, match="eps: expected a finite number >= 0.0"):
        nn.LayerNorm(3, eps=float("nan"))


def test_norm_nan_propagates(backend):
    ln = nn.LayerNorm(3, dtype="float64")
    x = np.array([[1.0, np.nan, 2.0], [1.0, 2.0, 4.0]])
    y = ln(x)
    assert np.isnan(y[0]).all() and np.isfinite(y[1]).all()
