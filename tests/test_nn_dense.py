import numpy as np
import pytest

import gradcore
from gradcore import nn
from gradcore.reference import ACTIVATIONS
from nn_helpers import gradcheck

pytestmark = pytest.mark.kernel  # runs the C kernels (also under AddressSanitizer in CI)

ACTS = list(ACTIVATIONS)


def _x(B, I, dtype=np.float64, seed=1):
    x = np.random.default_rng(seed).normal(size=(B, I)).astype(dtype)
    x[np.abs(x) < 1e-3] = 0.5  # keep relu kinks away from the finite-difference steps
    return x


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_dense_gradcheck(backend, act, bias):
    layer = nn.Dense(4, 3, act, bias=bias, init="xavier_normal", bias_init=0.1, dtype="float64", seed=3)
    assert list(layer.parameters()) == (["weight", "bias"] if bias else ["weight"])
    gradcheck(layer, _x(5, 4))


@pytest.mark.parametrize("act", ACTS)
def test_dense_forward_formula(backend, dtype, act):
    layer = nn.Dense(6, 5, act, dtype=dtype, seed=0, bias_init="normal")
    x = _x(7, 6, dtype)
    z = x.astype(np.float64) @ layer.p["weight"].T.astype(np.float64) + layer.p["bias"]
    expect = {"identity": z, "relu": np.maximum(z, 0), "leaky_relu": np.where(z > 0, z, 0.01 * z),
              "tanh": np.tanh(z), "sigmoid": 1 / (1 + np.exp(-z))}[act]
    tol = 1e-5 if dtype == np.float32 else 1e-12
    y = layer(x)
    assert y.dtype == dtype and y.shape == (7, 5)
    np.testing.assert_allclose(y, expect, rtol=tol, atol=tol)


@pytest.mark.parametrize("act", ACTS)
def test_float32_matches_float64(backend, act):
    l64 = nn.Dense(8, 6, act, dtype="float64", seed=5, bias_init="normal")
    l32 = nn.Dense(8, 6, act, dtype="float32", seed=5, bias_init="normal")
    np.testing.assert_array_equal(l32.arena.data, l64.arena.data.astype(np.float32))
    x = _x(9, 8)
    dy = np.random.default_rng(2).normal(size=(9, 6))
    y64, y32 = l64(x).copy(), l32(x.astype(np.float32)).copy()
    dx64, dx32 = l64.backward(dy).copy(), l32.backward(dy.astype(np.float32)).copy()
    np.testing.assert_allclose(y32, y64, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dx32, dx64, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(l32.arena.grad, l64.arena.grad, rtol=1e-4, atol=1e-5)


def _chain(n, w, act="identity", dtype="float64"):
    return nn.Sequential(*[nn.Dense(1, 1, act, init=w, bias_init=0.0, dtype=dtype) for _ in range(n)])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_textbook_chain_w2(backend, dtype):
    model = _chain(5, 2.0, dtype=dtype)
    y = model(np.ones((1, 1), dtype))
    assert y[0, 0] == 32.0
    model.backward(np.ones((1, 1), dtype))
    g = model.gradients()
    assert [float(g[f"{i}.bias"][0]) for i in range(5)] == [16.0, 8.0, 4.0, 2.0, 1.0]
    assert [float(g[f"{i}.weight"][0, 0]) for i in range(5)] == [16.0] * 5
    # delta_l * a_(l-1): layer l sees a_(l-1) = 2^(l-1) and delta_l = 2^(5-l)
    assert list(g) == [f"{i}.{p}" for i in range(5) for p in ("weight", "bias")]


def test_textbook_chain_w_half(backend):
    model = _chain(5, 0.5)
    assert model(np.ones((1, 1)))[0, 0] == 0.03125
    model.backward(np.ones((1, 1)))
    g = model.gradients()
    assert [float(g[f"{i}.bias"][0]) for i in range(5)] == [0.0625, 0.125, 0.25, 0.5, 1.0]


def test_textbook_chain_20_layers(backend):
    model = _chain(20, 2.0)
    assert model(np.ones((1, 1)))[0, 0] == 2.0**20
    model.backward(np.ones((1, 1)))
    g = model.gradients()
    assert float(g["0.bias"][0]) == 2.0**19
    assert [float(g[f"{i}.bias"][0]) for i in range(20)] == [2.0 ** (19 - i) for i in range(20)]
    assert gradcore.grad_stats(model.gradients()).max_abs == 2.0**19


@pytest.mark.parametrize("w", [1.0, 2.0, 4.0])
def test_sigmoid_chain_at_zero(backend, w):
    # x = 0 and bias 0 in layer 1, bias -w/2 after it: every pre-activation is
    # z = w * 0.5 - w / 2 = 0, every output 0.5, every sigmoid'(z) = 1/4
    layers = [nn.Dense(1, 1, "sigmoid", init=w, bias_init=0.0 if i == 0 else -w * 0.5, dtype="float64")
              for i in range(5)]
    model = nn.Sequential(*layers)
    assert model(np.zeros((1, 1)))[0, 0] == 0.5
    model.backward(np.ones((1, 1)))
    g = model.gradients()
    deltas = [float(g[f"{i}.bias"][0]) for i in range(5)]
    # delta at the last layer is 1/4; each layer back multiplies it by w * 1/4
    np.testing.assert_allclose(deltas, [0.25 * (w * 0.25) ** (4 - i) for i in range(5)], rtol=1e-14)
    np.testing.assert_allclose([deltas[i] / deltas[i + 1] for i in range(4)], [w * 0.25] * 4, rtol=1e-14)


def test_dense_backward_accumulates(backend):
    layer = nn.Dense(3, 2, "tanh", dtype="float64", seed=0)
    x, dy = _x(4, 3), np.ones((4, 2))
    layer(x)
    layer.backward(dy)
    g1 = layer.arena.grad.copy()
    layer(x)
    layer.backward(dy)
    np.testing.assert_allclose(layer.arena.grad, 2 * g1, rtol=1e-14)


def test_input_grad_false_and_buffers_reused(backend):
    layer = nn.Dense(3, 2, dtype="float64", seed=0, input_grad=False)
    x = _x(4, 3)
    y1 = layer(x)
    assert layer.backward(np.ones((4, 2))) is None
    assert layer.arena.grad.any()
    y2 = layer(x + 1.0)
    assert y2 is y1  # documented: output buffers are reused per batch shape
    y3 = layer(_x(6, 3))
    assert y3.shape == (6, 2) and y3 is not y1


def test_noncontiguous_input_same_result(backend):
    layer = nn.Dense(3, 2, "relu", dtype="float64", seed=0)
    base = _x(8, 3)
    x = base[::2]
    assert not x.flags.c_contiguous
    np.testing.assert_array_equal(layer(x).copy(), layer(np.ascontiguousarray(x)))


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_nan_inf_propagate_and_show_in_grad_stats(backend, dtype):
    model = nn.Sequential(nn.Dense(3, 4, "tanh", dtype=dtype, seed=0), nn.Dense(4, 2, dtype=dtype, seed=1))
    x = np.ones((2, 3), dtype)
    x[0, 1] = np.nan
    x[1, 2] = np.inf
    y = model(x)
    assert np.isnan(y).any()
    model.backward(np.ones((2, 2), dtype))
    st = gradcore.grad_stats(model.gradients())
    assert not st.finite and st.n_nan > 0
    assert st.first_nonfinite[0] == "0.weight"


def test_dense_backward_errors(backend):
    layer = nn.Dense(3, 2, dtype="float32")
    with pytest.raises(RuntimeError, match=r"Dense\(3 -> 2, identity\): backward called before forward"):
        layer.backward(np.ones((4, 2), np.float32))
    layer(np.ones((4, 3), np.float32))
    before = layer.arena.grad.copy()
    with pytest.raises(ValueError, match=r"Dense\(3 -> 2, identity\): dy has shape \(4, 3\), but the last "
                                         r"forward output has shape \(4, 2\)"):
        layer.backward(np.ones((4, 3), np.float32))
    with pytest.raises(TypeError, match="expected float32 dy, got float64"):
        layer.backward(np.ones((4, 2)))
    with pytest.raises(TypeError, match="expected dy as a float32 numpy array"):
        layer.backward([[1.0, 2.0]] * 4)
    np.testing.assert_array_equal(layer.arena.grad, before)


def test_dense_input_errors(backend):
    layer = nn.Dense(3, 2, "relu", dtype="float32", seed=0)
    y = layer(np.ones((4, 3), np.float32)).copy()
    params = layer.arena.data.copy()
    with pytest.raises(TypeError, match=r"Dense\(3 -> 2, relu\): expected float32 input, got float64"):
        layer(np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"Dense\(3 -> 2, relu\): expected input of shape \(B, 3\), got \(4, 5\)"):
        layer(np.ones((4, 5), np.float32))
    with pytest.raises(ValueError, match=r"expected input of shape \(B, 3\), got \(3,\)"):
        layer(np.ones(3, np.float32))
    with pytest.raises(ValueError, match="at least 1 row"):
        layer(np.ones((0, 3), np.float32))
    with pytest.raises(TypeError, match="got list"):
        layer([[1.0, 2.0, 3.0]])
    with pytest.raises(TypeError, match="expected float32 input, got int64"):
        layer(np.ones((4, 3), np.int64))
    np.testing.assert_array_equal(layer.arena.data, params)
    # the last good output buffer was not touched by the failed calls
    np.testing.assert_array_equal(layer(np.ones((4, 3), np.float32)), y)


@pytest.mark.parametrize(
    "kwargs, exc, msg",
    [
        (dict(in_features=0, out_features=2), ValueError, "in_features: expected an integer >= 1, got 0"),
        (dict(in_features=2, out_features=-1), ValueError, "out_features: expected an integer >= 1"),
        (dict(in_features=2.5, out_features=2), TypeError, "in_features: expected an integer"),
        (dict(in_features=2, out_features=2, activation="gelu"), ValueError,
         "unknown activation 'gelu'; valid activations: identity, relu, leaky_relu, tanh, sigmoid"),
        (dict(in_features=2, out_features=2, init="he"), ValueError, "unknown initializer 'he'; valid names"),
        (dict(in_features=2, out_features=2, dtype="float16"), TypeError, "expected 'float32' or 'float64'"),
        (dict(in_features=2, out_features=2, slope=float("nan")), ValueError, "slope: expected a finite number"),
        (dict(in_features=2, out_features=2, seed="x"), TypeError, "seed must be an int"),
    ],
)
def test_dense_constructor_errors(kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        nn.Dense(**kwargs)


def test_default_init_and_seed():
    a = nn.Dense(200, 300, "relu", seed=1, dtype="float64")
    assert a.p["weight"].std() == pytest.approx(np.sqrt(2 / 200), rel=0.02)
    assert not a.p["bias"].any()
    b = nn.Dense(200, 300, "tanh", seed=1, dtype="float64")
    bound = np.sqrt(6 / 500)
    assert np.abs(b.p["weight"]).max() <= bound and np.abs(b.p["weight"]).max() > 0.99 * bound
    np.testing.assert_array_equal(nn.Dense(5, 4, seed=7).arena.data, nn.Dense(5, 4, seed=7).arena.data)
    assert not np.array_equal(nn.Dense(5, 4, seed=7).arena.data, nn.Dense(5, 4, seed=8).arena.data)
    custom = nn.Dense(2, 2, init=gradcore.init.identity(), bias_init=gradcore.init.constant(3.0))
    np.testing.assert_array_equal(custom.p["weight"], np.eye(2))
    np.testing.assert_array_equal(custom.p["bias"], [3.0, 3.0])


def test_dense_matches_torch_linear(backend):
    torch = pytest.importorskip("torch")
    layer = nn.Dense(5, 3, "tanh", dtype="float64", seed=0, bias_init="normal")
    lin = torch.nn.Linear(5, 3).double()
    lin.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})
    x = _x(4, 5)
    dy = np.random.default_rng(0).normal(size=(4, 3))
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    out = torch.tanh(lin(xt))
    out.backward(torch.from_numpy(dy))
    np.testing.assert_allclose(layer(x), out.detach().numpy(), rtol=1e-12)
    dx = layer.backward(dy)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(layer.g["weight"], lin.weight.grad.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(layer.g["bias"], lin.bias.grad.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("act", ACTS)
def test_activation_layer_gradcheck(backend, act):
    layer = nn.Activation(act, dtype="float64")
    assert layer.arena.size == 0 and layer.parameters() == {}
    x = _x(3, 4)
    _, dx = gradcheck(layer, x)
    assert dx is not None
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        nn.Activation("swish")


def test_clip_on_dict_and_flat(backend):
    model = _chain(5, 2.0)
    model(np.ones((1, 1)))
    model.backward(np.ones((1, 1)))
    g0 = model.arena.grad.copy()
    norm = gradcore.clip_grad_norm_(model.gradients(), max_norm=1.0)
    assert norm == pytest.approx(np.linalg.norm(g0), rel=1e-12)
    np.testing.assert_allclose(np.linalg.norm(model.arena.grad), 1.0, rtol=1e-5)
    model.arena.grad[:] = g0
    norm2 = gradcore.clip_grad_norm_(model.arena.grad, max_norm=1.0)
    assert norm2 == pytest.approx(norm, rel=1e-12)
    np.testing.assert_allclose(model.arena.grad, g0 * (1.0 / (norm + 1e-6)), rtol=1e-12)


def test_layer_applied_to_its_own_output(backend):
    layer = nn.Dense(3, 3, "tanh", dtype="float64", seed=0)
    x = _x(2, 3)
    w, b = layer.p["weight"], layer.p["bias"]
    expect = np.tanh(np.tanh(x @ w.T + b) @ w.T + b)
    np.testing.assert_allclose(layer(layer(x)), expect, rtol=1e-14)


def test_sequential_fed_its_own_output_matches_copies(backend):
    """y = m(m(x)) with the output buffer itself fed back, then backward (its
    own dx fed back as dy too): the same outputs and gradients as with copies
    (the first layer's cached input is not the last layer's output buffer)."""
    results = []
    for fresh in (False, True):
        m = nn.Sequential(nn.Dense(4, 4, "tanh", dtype="float64", seed=0),
                          nn.Dense(4, 4, "tanh", dtype="float64", seed=1))
        y = m.forward(_x(3, 4))
        y2 = m.forward(y.copy() if fresh else y).copy()
        dx = m.backward(np.ones((3, 4)))
        dx2 = m.backward(dx.copy() if fresh else dx).copy()
        results.append((y2, dx2, m.flat_gradients().copy()))
    for got, want in zip(*results):
        np.testing.assert_array_equal(got, want)
    m = nn.Sequential(nn.Dense(4, 4, "tanh", dtype="float64", seed=0))
    y = m.forward(_x(3, 4))
    np.testing.assert_array_equal(m.forward(y[:, :]), m.forward(y.copy()))   # a view of it too
    # an output of an earlier batch size, fed back after a forward of another size
    results = []
    for fresh in (False, True):
        m = nn.Sequential(nn.Dense(4, 4, "tanh", dtype="float64", seed=0),
                          nn.Dense(4, 4, "tanh", dtype="float64", seed=1))
        y3 = m.forward(_x(3, 4))
        m.forward(_x(5, 4))
        m.forward(y3.copy() if fresh else y3)
        m.zero_grad()
        m.backward(np.ones((3, 4)))
        results.append(m.flat_gradients().copy())
    np.testing.assert_array_equal(*results)
