import numpy as np
import pytest

import gradcore
from gradcore import nn
from nn_helpers import gradcheck

pytestmark = pytest.mark.kernel  # runs the C kernels (also under AddressSanitizer in CI)


def _x(B, I, dtype=np.float64, seed=1):
    x = np.random.default_rng(seed).normal(size=(B, I)).astype(dtype)
    x[np.abs(x) < 1e-3] = 0.5
    return x


def test_mlp_layout_plain():
    m = nn.MLP([4, 8, 8, 2], dtype="float64", seed=0)
    assert [type(c).__name__ for _, c in m.children()] == ["Dense"] * 3
    assert list(m.parameters()) == ["0.weight", "0.bias", "1.weight", "1.bias", "2.weight", "2.bias"]
    assert [c.activation for _, c in m.children()] == ["relu", "relu", "identity"]
    assert m.arena.size == 4 * 8 + 8 + 8 * 8 + 8 + 8 * 2 + 2
    assert m[0].arena is m.arena


@pytest.mark.parametrize("norm, kind", [("layer", "LayerNorm"), ("batch", "BatchNorm1d")])
def test_mlp_layout_norm_and_residual(norm, kind):
    m = nn.MLP([3, 5, 5, 2], norm=norm, residual=True, seed=0)
    kinds = [type(c).__name__ for _, c in m.children()]
    assert kinds == ["Dense", kind, "Activation", "Residual", "Dense"]
    assert list(m.parameters()) == ["0.weight", "0.bias", "1.weight", "1.bias",
                                    "3.block.0.weight", "3.block.0.bias", "3.block.1.weight", "3.block.1.bias",
                                    "4.weight", "4.bias"]
    m2 = nn.MLP([3, 5, 5, 2], residual=True, seed=0)
    assert [type(c).__name__ for _, c in m2.children()] == ["Dense", "Residual", "Dense"]


@pytest.mark.parametrize("norm", [None, "layer", "batch"])
@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("act", ["relu", "tanh"])
def test_mlp_gradcheck(backend, norm, residual, act):
    m = nn.MLP([3, 4, 4, 2], activation=act, output_activation="sigmoid", norm=norm, residual=residual,
               bias_init=0.1, dtype="float64", seed=2)
    gradcheck(m, _x(5, 3), max_params=40)


@pytest.mark.parametrize("bias", [True, False])
def test_residual_gradcheck(backend, bias):
    block = nn.Dense(4, 4, "tanh", bias=bias, dtype="float64", seed=0)
    r = nn.Residual(block)
    x = _x(3, 4)
    np.testing.assert_allclose(r(x), x + np.tanh(x @ block.p["weight"].T + (block.p["bias"] if bias else 0)),
                               rtol=1e-14)
    gradcheck(r, x)
    assert list(r.parameters()) == (["block.weight", "block.bias"] if bias else ["block.weight"])


def test_residual_shape_mismatch_and_before_forward():
    r = nn.Residual(nn.Dense(3, 4, dtype="float64"))
    with pytest.raises(ValueError, match=r"Residual\(Dense\(3 -> 4, identity\)\): block output shape \(2, 4\) "
                                         r"differs from its input shape \(2, 3\)"):
        r(np.ones((2, 3)))
    with pytest.raises(RuntimeError, match="backward called before forward"):
        nn.Residual(nn.Dense(3, 3)).backward(np.ones((2, 3), np.float32))
    with pytest.raises(TypeError, match="block must be a gradcore.nn.Module"):
        nn.Residual(lambda x: x)


def test_mlp_float32_matches_float64(backend):
    for norm in (None, "layer", "batch"):
        m64 = nn.MLP([6, 16, 16, 3], norm=norm, residual=True, dtype="float64", seed=4)
        m32 = nn.MLP([6, 16, 16, 3], norm=norm, residual=True, dtype="float32", seed=4)
        np.testing.assert_array_equal(m32.arena.data, m64.arena.data.astype(np.float32))
        x = _x(8, 6)
        dy = np.random.default_rng(3).normal(size=(8, 3))
        np.testing.assert_allclose(m32(x.astype(np.float32)), m64(x), rtol=1e-4, atol=1e-5)
        m32.backward(dy.astype(np.float32))
        m64.backward(dy)
        np.testing.assert_allclose(m32.arena.grad, m64.arena.grad, rtol=1e-3, atol=1e-4)


def test_mlp_matches_torch(backend):
    torch = pytest.importorskip("torch")
    m = nn.MLP([5, 7, 7, 2], activation="tanh", dtype="float64", seed=0, bias_init="normal")
    seq = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 7), torch.nn.Tanh(),
                              torch.nn.Linear(7, 2)).double()
    mapping = {"0": "0", "1": "2", "2": "4"}
    seq.load_state_dict({f"{mapping[k.split('.')[0]]}.{k.split('.')[1]}": torch.from_numpy(v)
                         for k, v in m.state_dict().items()})
    x = _x(6, 5)
    dy = np.random.default_rng(0).normal(size=(6, 2))
    out = seq(torch.from_numpy(x))
    out.backward(torch.from_numpy(dy))
    np.testing.assert_allclose(m(x), out.detach().numpy(), rtol=1e-12)
    m.backward(dy)
    for k, g in m.gradients().items():
        tk = f"{mapping[k.split('.')[0]]}.{k.split('.')[1]}"
        np.testing.assert_allclose(g, dict(seq.named_parameters())[tk].grad.numpy(), rtol=1e-10, atol=1e-13)


def test_mlp_seed_determinism_and_init():
    a = nn.MLP([10, 20, 5], seed=3)
    np.testing.assert_array_equal(a.arena.data, nn.MLP([10, 20, 5], seed=3).arena.data)
    big = nn.MLP([400, 300, 300], dtype="float64", seed=0)
    assert big[0].p["weight"].std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)
    assert big[1].p["weight"].std() == pytest.approx(np.sqrt(2 / 300), rel=0.02)
    c = nn.MLP([2, 2, 2], init=2.0, bias_init=0.5)
    assert np.all(c[0].p["weight"] == 2.0) and np.all(c[1].p["bias"] == 0.5)


@pytest.mark.parametrize(
    "kwargs, exc, msg",
    [
        (dict(sizes=[3]), ValueError, r"at least 2 entries"),
        (dict(sizes=[3, 0, 2]), ValueError, r"sizes\[1\]: expected an integer >= 1, got 0"),
        (dict(sizes="34"), TypeError, "sizes must be a list"),
        (dict(sizes=[3, 2], norm="group"), ValueError, "unknown norm 'group'; valid: None, 'layer', 'batch'"),
        (dict(sizes=[3, 2], activation="elu"), ValueError, "unknown activation 'elu'; valid activations"),
        (dict(sizes=[3, 2], output_activation="softmax"), ValueError, "unknown activation 'softmax'"),
        (dict(sizes=[3, 2], init="glorot"), ValueError, "unknown initializer 'glorot'; valid names"),
        (dict(sizes=[3, 2], dtype="int8"), TypeError, "expected 'float32' or 'float64'"),
    ],
)
def test_mlp_constructor_errors(kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        nn.MLP(**kwargs)


def test_mlp_input_errors_name_the_layer(backend):
    m = nn.MLP([3, 4, 2], seed=0)
    with pytest.raises(ValueError, match=r"Dense\(3 -> 4, relu\): expected input of shape \(B, 3\), got \(5, 4\)"):
        m(np.ones((5, 4), np.float32))
    with pytest.raises(TypeError, match=r"Dense\(3 -> 4, relu\): expected float32 input, got float64"):
        m(np.ones((5, 3)))
    m(np.ones((5, 3), np.float32))
    with pytest.raises(ValueError, match=r"Dense\(4 -> 2, identity\): dy has shape \(5, 3\)"):
        m.backward(np.ones((5, 3), np.float32))
    with pytest.raises(ValueError, match=r"LayerNorm\(4, eps=1e-05\): expected input of shape \(B, 4\)"):
        nn.LayerNorm(4)(np.ones((2, 3), np.float32))
    with pytest.raises(TypeError, match=r"BatchNorm1d\(4.*expected float64 input, got float32"):
        nn.BatchNorm1d(4, dtype="float64")(np.ones((2, 4), np.float32))


def test_sequential_basics():
    a, b = nn.Dense(2, 3, seed=0), nn.Dense(3, 1, seed=1)
    s = nn.Sequential([a, b])
    assert len(s) == 2 and s[1] is b and list(s) == [a, b]
    with pytest.raises(ValueError, match="at least one layer"):
        nn.Sequential()
    with pytest.raises(TypeError, match="layer 1 must be a gradcore.nn.Module"):
        nn.Sequential(nn.Dense(2, 2), "relu")
    with pytest.raises(TypeError, match="share one dtype"):
        nn.Sequential(nn.Dense(2, 2), nn.Dense(2, 2, dtype="float64"))


def test_train_eval_reaches_batchnorm():
    m = nn.MLP([3, 4, 2], norm="batch", seed=0)
    m.eval()
    assert not m[1].training
    m(np.ones((1, 3), np.float32))  # eval: running statistics, one row is fine
    m.train()
    with pytest.raises(ValueError, match="at least 2 rows"):
        m(np.ones((1, 3), np.float32))


def test_mlp_grad_stats_sees_explosion(backend):
    m = nn.MLP([1] + [1] * 30, activation="identity", init=2.0, dtype="float64")
    m(np.ones((1, 1)))
    m.backward(np.ones((1, 1)))
    st = gradcore.grad_stats(m.gradients())
    assert st.finite and st.max_abs == 2.0**29


def test_input_grad_false_with_residual_first_layer(backend):
    m = nn.MLP([4, 4, 2], residual=True, dtype="float64", seed=0, input_grad=False)
    assert type(m[0]).__name__ == "Residual"
    m(np.ones((3, 4)))
    assert m.backward(np.ones((3, 2))) is None
    ref = nn.MLP([4, 4, 2], residual=True, dtype="float64", seed=0)
    ref(np.ones((3, 4)))
    assert ref.backward(np.ones((3, 2))).shape == (3, 4)
    np.testing.assert_allclose(m.arena.grad, ref.arena.grad, rtol=1e-14)
