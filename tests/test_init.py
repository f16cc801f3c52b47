import math

import numpy as np
import pytest

import gradcore.init as I

N = (400, 300)  # 120k samples: std of the sample std is ~0.2%


def test_constant_zeros_ones():
    np.testing.assert_array_equal(I.constant(2.0)((3, 2), 0, "float64"), np.full((3, 2), 2.0))
    assert I.get(0.5)((4,), None, "float32").tolist() == [0.5] * 4
    assert not I.get("zeros")((2, 2), 0, "float64").any()
    assert I.get("ones")((3,), 0, "float32").dtype == np.float32


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtype_shape_contiguity(dtype):
    for name in I.names():
        w = I.get(name)((6, 5), 1, dtype)
        assert w.dtype == np.dtype(dtype) and w.shape == (6, 5) and w.flags.c_contiguous, name


def test_normal_and_uniform_stats():
    w = I.normal(0.1, mean=0.3)(N, 0, "float64")
    assert w.mean() == pytest.approx(0.3, abs=0.002)
    assert w.std() == pytest.approx(0.1, rel=0.01)
    u = I.uniform(-2.0, 3.0)(N, 0, "float64")
    assert u.min() >= -2.0 and u.max() < 3.0
    assert u.min() < -1.99 and u.max() > 2.99
    assert u.mean() == pytest.approx(0.5, abs=0.02)


def test_fans_like_pytorch():
    assert I.fans((64, 32)) == (32, 64)
    assert I.fans((8, 4, 3, 3)) == (36, 72)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        I.fans((5,))


@pytest.mark.parametrize(
    "init, fan_std",
    [
        (I.xavier_normal(), lambda fi, fo: math.sqrt(2 / (fi + fo))),
        (I.xavier_normal(gain=2.0), lambda fi, fo: 2 * math.sqrt(2 / (fi + fo))),
        (I.he_normal(), lambda fi, fo: math.sqrt(2 / fi)),
        (I.he_normal(mode="fan_out"), lambda fi, fo: math.sqrt(2 / fo)),
        (I.he_normal(nonlinearity="tanh"), lambda fi, fo: (5 / 3) / math.sqrt(fi)),
        (I.he_normal(nonlinearity="leaky_relu", a=0.2), lambda fi, fo: math.sqrt(2 / 1.04) / math.sqrt(fi)),
        (I.lecun_normal(), lambda fi, fo: 1 / math.sqrt(fi)),
    ],
)
def test_normal_family_std(init, fan_std):
    w = init(N, 0, "float64")
    fi, fo = N[1], N[0]
    assert w.std() == pytest.approx(fan_std(fi, fo), rel=0.01)
    assert abs(w.mean()) < 0.02 * fan_std(fi, fo)


@pytest.mark.parametrize(
    "init, fan_bound",
    [
        (I.xavier_uniform(), lambda fi, fo: math.sqrt(6 / (fi + fo))),
        (I.xavier_uniform(gain=0.5), lambda fi, fo: 0.5 * math.sqrt(6 / (fi + fo))),
        (I.he_uniform(), lambda fi, fo: math.sqrt(2) * math.sqrt(3 / fi)),
        (I.he_uniform(mode="fan_out", nonlinearity="linear"), lambda fi, fo: math.sqrt(3 / fo)),
        (I.lecun_uniform(), lambda fi, fo: math.sqrt(3 / fi)),
    ],
)
def test_uniform_family_bounds(init, fan_bound):
    w = init(N, 0, "float64")
    bound = fan_bound(N[1], N[0])
    assert np.abs(w).max() <= bound
    assert np.abs(w).max() > 0.999 * bound
    assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.01)


def test_gain_matches_torch_formulas():
    assert I.calculate_gain("linear") == 1.0 and I.calculate_gain("sigmoid") == 1.0
    assert I.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert I.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert I.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01**2)))
    assert I.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    assert I.calculate_gain("selu") == 0.75
    torch = pytest.importorskip("torch")
    for nl in ("linear", "sigmoid", "tanh", "relu", "leaky_relu", "selu"):
        assert I.calculate_gain(nl) == pytest.approx(torch.nn.init.calculate_gain(nl))
    with pytest.raises(ValueError, match="unknown nonlinearity 'swish'; valid: linear"):
        I.calculate_gain("swish")


@pytest.mark.parametrize("shape", [(5, 5), (3, 7), (7, 3), (4, 2, 3)])
@pytest.mark.parametrize("gain", [1.0, 2.5])
def test_orthogonal(shape, gain):
    w = I.orthogonal(gain)(shape, 3, "float64")
    assert w.shape == shape
    m = w.reshape(shape[0], -1) / gain
    if m.shape[0] <= m.shape[1]:
        np.testing.assert_allclose(m @ m.T, np.eye(m.shape[0]), atol=1e-12)
    else:
        np.testing.assert_allclose(m.T @ m, np.eye(m.shape[1]), atol=1e-12)


def test_identity():
    np.testing.assert_array_equal(I.identity()((2, 3), 0, "float64"), np.eye(2, 3))
    np.testing.assert_array_equal(I.identity(gain=3.0)((3, 3), 0, "float32"), 3 * np.eye(3, dtype=np.float32))
    with pytest.raises(ValueError, match="2-D weight"):
        I.identity()((3,), 0, "float64")


def test_determinism_and_float32_matches_float64():
    for name in I.names():
        a = I.get(name)((20, 10), 42, "float64")
        b = I.get(name)((20, 10), np.random.default_rng(42), "float64")
        np.testing.assert_array_equal(a, b, err_msg=name)
        c = I.get(name)((20, 10), 42, "float32")
        np.testing.assert_array_equal(c, a.astype(np.float32), err_msg=name)
    d = I.get("normal")((20, 10), 43, "float64")
    assert not np.array_equal(d, I.get("normal")((20, 10), 42, "float64"))
    # one generator advances: two draws differ
    rng = np.random.default_rng(0)
    assert not np.array_equal(I.he_normal()((4, 4), rng), I.he_normal()((4, 4), rng))


def test_get_forms():
    assert isinstance(I.get("he_normal"), I.Initializer)
    assert I.get(I.he_normal).name == "he_normal"
    custom = lambda shape, rng, dtype: np.zeros(shape, dtype)  # noqa: E731
    assert I.get(custom) is custom
    init = I.xavier_uniform(gain=2.0)
    assert I.get(init) is init
    assert I.get("kaiming_normal").name == "he_normal"
    assert "he_normal(mode='fan_in'" in repr(I.get("he_normal"))


def test_bad_names_and_arguments():
    with pytest.raises(ValueError, match=r"unknown initializer 'he'; valid names: zeros, ones, normal"):
        I.get("he")
    with pytest.raises(ValueError, match="constant needs a value"):
        I.get(I.constant)
    with pytest.raises(ValueError, match="constant"):
        I.get("constant")
    with pytest.raises(TypeError, match="expected a name"):
        I.get(object())
    with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out'"):
        I.he_normal(mode="fan_avg")
    with pytest.raises(ValueError, match="unknown nonlinearity"):
        I.he_uniform(nonlinearity="gelu")
    with pytest.raises(ValueError, match="a <= b"):
        I.uniform(1.0, 0.0)
    with pytest.raises(ValueError, match="finite"):
        I.constant(float("nan"))
    with pytest.raises(ValueError, match=">= 0"):
        I.normal(-1.0)
    with pytest.raises(TypeError, match="expected 'float32' or 'float64'"):
        I.he_normal()((2, 2), 0, "int32")
    with pytest.raises(TypeError, match="rng"):
        I.he_normal()((2, 2), "seed", "float32")
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        I.get("xavier_uniform")((5,), 0, "float32")


def test_apply_checks_shape():
    bad = lambda shape, rng, dtype: np.zeros((1,), dtype)  # noqa: E731
    with pytest.raises(ValueError, match=r"returned shape \(1,\), expected \(2, 2\)"):
        I.apply(bad, (2, 2), 0, "float32", who="Dense(2 -> 2)")
    out = I.apply("he_normal", (3, 2), 0, "float32")
    assert out.dtype == np.float32 and out.shape == (3, 2)
