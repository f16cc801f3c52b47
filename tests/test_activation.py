import numpy as np
import pytest
from scipy.special import expit

import gradcore.reference as R
from gradcore import _kernels as K
from _fd import numgrad
from _impls import IMPLS, SIMD_LEVELS, assert_bad_input, run_simd_paths, simd_level, tol

ACTS = R.ACTIVATIONS


def _f32_sample():
    """Every 1021st float32 bit pattern (all exponents, both signs) plus a dense
    grid over [-20, 20] where tanh/sigmoid are not saturated."""
    bits = np.arange(0, 2**32, 1021, dtype=np.uint64).astype(np.uint32)
    x = bits.view(np.float32)
    x = x[np.isfinite(x)]
    return np.concatenate([x, np.linspace(-20, 20, 400_001, dtype=np.float32)])


def _f64_sample():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 2**63, 300_000, dtype=np.uint64).view(np.float64)
    x = x[np.isfinite(x)] * np.where(rng.random(x[np.isfinite(x)].size) < 0.5, -1, 1)
    return np.concatenate([x, np.linspace(-40, 40, 200_001)])


@pytest.mark.kernel
@pytest.mark.parametrize("level", SIMD_LEVELS)
@pytest.mark.parametrize("act,exact", [("tanh", np.tanh), ("sigmoid", expit)])
def test_float32_accuracy_whole_range(level, act, exact):
    x = _f32_sample()
    y = np.empty_like(x)
    with simd_level(level):
        K.activation_forward(y, x, act)
    err = np.abs(y.astype(np.float64) - exact(x.astype(np.float64)))
    assert err.max() <= 1e-6, (act, float(err.max()), float(x[np.argmax(err)]))


@pytest.mark.kernel
@pytest.mark.parametrize("act,exact", [("tanh", np.tanh), ("sigmoid", expit)])
def test_float64_accuracy(act, exact):
    x = _f64_sample()
    y = np.empty_like(x)
    K.activation_forward(y, x, act)
    # float64 exact values from long double where available, else the same
    # function in float64 (libm): error bound 1e-14 either way.
    xl = x.astype(np.longdouble)
    with np.errstate(over="ignore"):
        ref = np.tanh(xl) if act == "tanh" else 1 / (1 + np.exp(-xl))
    err = np.abs(y.astype(np.longdouble) - ref)
    assert float(err.max()) <= 1e-14


SPECIAL = [np.inf, -np.inf, np.nan, -np.nan, 0.0, -0.0, 5e-324, -5e-324, 1e-45, -1e-45, 1e-310, 88.7, -88.7,
           104.0, -104.0, 3e38, -3e38]


@pytest.mark.parametrize("K_", IMPLS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("act", ACTS)
def test_special_values(K_, dtype, act):
    with np.errstate(over="ignore", under="ignore"):
        x = np.array(SPECIAL, dtype=dtype)
    y = np.empty_like(x)
    K_.activation_forward(y, x, act, slope=0.1)
    # NaN propagates
    assert np.isnan(y[2]) and np.isnan(y[3])
    expect = {
        "identity": (np.inf, -np.inf),
        "relu": (np.inf, 0.0),
        "leaky_relu": (np.inf, -np.inf),
        "tanh": (1.0, -1.0),
        "sigmoid": (1.0, 0.0),
    }[act]
    assert y[0] == expect[0] and y[1] == expect[1]
    # -0.0 keeps its sign where act(-0.0) = -0.0
    if act in ("identity", "tanh", "relu", "leaky_relu"):
        assert y[5] == 0 and np.signbit(y[5])
    finite = np.isfinite(y)
    assert finite[[4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]].all()
    if act == "tanh":  # tanh of a subnormal is itself
        np.testing.assert_array_equal(y[6:10], x[6:10])
    if act == "sigmoid":
        assert (y[finite] >= 0).all() and (y[finite] <= 1).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.kernel
def test_c_matches_reference(dtype, act):
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((13, 37)) * 4).astype(dtype)
    dy = rng.standard_normal((13, 37)).astype(dtype)
    y_c, y_r = np.empty_like(x), np.empty_like(x)
    K.activation_forward(y_c, x, act, slope=0.2)
    R.activation_forward(y_r, x, act, slope=0.2)
    np.testing.assert_allclose(y_c, y_r, **tol(dtype))
    dx_c, dx_r = np.empty_like(x), np.empty_like(x)
    K.activation_backward(dx_c, dy, y_r, act, slope=0.2)
    R.activation_backward(dx_r, dy, y_r, act, slope=0.2)
    np.testing.assert_allclose(dx_c, dx_r, **tol(dtype))


@pytest.mark.kernel
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("act", ACTS)
def test_simd_paths_identical(dtype, act):
    rng = np.random.default_rng(8)
    x = (rng.standard_normal(1003) * 6).astype(dtype)
    dy = rng.standard_normal(1003).astype(dtype)

    def run():
        y = np.empty_like(x)
        dx = np.empty_like(x)
        K.activation_forward(y, x, act, 0.3)
        K.activation_backward(dx, dy, y, act, 0.3)
        return y, dx

    outs = run_simd_paths(run)
    for y, dx in outs[1:]:
        np.testing.assert_array_equal(y, outs[0][0])
        np.testing.assert_array_equal(dx, outs[0][1])


def _special(dtype):
    """NaNs (quiet, signed, with payloads), infinities, signed zeros,
    subnormals and the float32 clamps (10 for tanh, 110 for sigmoid)."""
    it = np.uint32 if dtype == np.float32 else np.uint64
    nans = np.array([0x7FC00000, 0xFFC00001, 0x7FC12345], it) if dtype == np.float32 else \
        np.array([0x7FF8000000000000, 0xFFF8000000000001, 0x7FF8000000012345], it)
    fi = np.finfo(dtype)
    vals = np.array([0.0, -0.0, np.inf, -np.inf, fi.smallest_subnormal, -fi.smallest_subnormal,
                     fi.tiny, 9.999, 10.0, 10.001, 109.9, 110.0, 110.1, -110.1, 1e4, -1e4, 0.5, -3.0],
                    dtype)
    return np.concatenate([nans.view(dtype), vals, -vals])


@pytest.mark.kernel
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("act", ["tanh", "sigmoid"])
def test_special_values_identical_on_every_path(dtype, act):
    """Every special value gives the same bits on every SIMD path (dense and
    recurrent copies alike); float32 tanh / sigmoid give a NaN back with its
    own bits (float64 is libm: some NaN)."""
    x = np.tile(_special(dtype), 3)  # long enough for the vector loops and their tails

    def run():
        y, yr = np.empty_like(x), np.empty_like(x)
        K.activation_forward(y, x, act, 0.01)
        K.recurrent_activation(yr, x, act)
        return y.tobytes(), yr.tobytes()

    outs = run_simd_paths(run)
    assert all(o == outs[0] for o in outs[1:])
    y = np.frombuffer(outs[0][0], dtype)
    assert outs[0][0] == outs[0][1]
    nan = np.isnan(x)
    assert np.isnan(y[nan]).all()
    if dtype == np.float32:
        assert y[nan].tobytes() == x[nan].tobytes()
    x64 = x[~nan].astype(np.float64)
    with np.errstate(over="ignore"):
        ref = np.tanh(x64) if act == "tanh" else 1.0 / (1.0 + np.exp(-x64))
    np.testing.assert_allclose(y[~nan], ref, rtol=0, atol=1e-6 if dtype == np.float32 else 1e-14)


@pytest.mark.parametrize("K_", IMPLS)
@pytest.mark.parametrize("act", ACTS)
def test_backward_finite_differences(K_, act):
    rng = np.random.default_rng(9)
    x = rng.standard_normal(11) * 2
    x[np.abs(x) < 1e-3] = 0.5  # keep relu kinks away from the stencil
    dy = rng.standard_normal(11)
    y = np.empty_like(x)

    def f():
        K_.activation_forward(y, x, act, 0.1)
        return float((y * dy).sum())

    f()
    dx = np.empty_like(x)
    K_.activation_backward(dx, dy, y, act, 0.1)
    np.testing.assert_allclose(dx, numgrad(f, x), atol=1e-8)


@pytest.mark.parametrize("K_", IMPLS)
def test_in_place(K_):
    x = np.linspace(-3, 3, 50)
    expected = np.tanh(x)
    K_.activation_forward(x, x, "tanh")
    np.testing.assert_allclose(x, expected, rtol=1e-14)
    dy = np.ones_like(x)
    K_.activation_backward(dy, dy, x, "tanh")
    np.testing.assert_allclose(dy, 1 - expected**2, rtol=1e-12)


@pytest.mark.parametrize("K_", IMPLS)
def test_relu_backward_passes_nan_like_torch(K_):
    y = np.array([np.nan, 1.0, 0.0, -0.0])
    dy = np.array([2.0, 3.0, 4.0, 5.0])
    dx = np.empty_like(y)
    K_.activation_backward(dx, dy, y, "relu")
    np.testing.assert_array_equal(dx, [2.0, 3.0, 0.0, 0.0])
    K_.activation_backward(dx, dy, y, "leaky_relu", slope=0.5)
    np.testing.assert_array_equal(dx, [2.0, 3.0, 2.0, 2.5])


@pytest.mark.parametrize("K_", IMPLS)
def test_bad_input(K_):
    x = np.linspace(-1, 1, 8)
    y = np.zeros(8)
    arrays = dict(x=x, y=y)
    F = K_.activation_forward
    assert_bad_input(F, dict(y=y, x=x, act="gelu"), arrays, ValueError, "act.*valid activations: identity, relu")
    assert_bad_input(F, dict(y=y, x=x, act="leaky_relu", slope=-1.0), arrays, ValueError, "slope")
    assert_bad_input(F, dict(y=y, x=x, act="relu", slope=float("nan")), arrays, ValueError, "slope")
    assert_bad_input(F, dict(y=y.astype(np.float32), x=x, act="relu"), arrays, TypeError, "y: expected dtype float64")
    assert_bad_input(F, dict(y=np.zeros(7), x=x, act="relu"), arrays, ValueError, r"y: expected shape \(8,\)")
    assert_bad_input(F, dict(y=np.zeros(16)[::2], x=x, act="relu"), arrays, ValueError, "y: .*C-contiguous")
    ro = np.zeros(8)
    ro.flags.writeable = False
    assert_bad_input(F, dict(y=ro, x=x, act="relu"), arrays, ValueError, "y: .*read-only")
    assert_bad_input(F, dict(y=y, x=x.astype(np.int64), act="relu"), arrays, TypeError, "x: expected dtype float32 or float64")
    assert_bad_input(F, dict(y=np.zeros(0), x=np.zeros(0), act="relu"), arrays, ValueError, "x: expected a non-empty")
    assert_bad_input(F, dict(y=y, x=[1.0] * 8, act="relu"), arrays, TypeError, "x: expected a float32 or float64")
    B = K_.activation_backward
    dy = np.ones(8)
    arrays = dict(x=x, y=y, dy=dy)
    assert_bad_input(B, dict(dx=y, dy=dy, y=x.astype(np.float32), act="tanh"), arrays, TypeError, "y: expected dtype float64")
    assert_bad_input(B, dict(dx=y, dy=dy, y=np.zeros(9), act="tanh"), arrays, ValueError, "y: expected shape")
    assert_bad_input(B, dict(dx=ro, dy=dy, y=x, act="tanh"), arrays, ValueError, "dx: .*read-only")


def test_activations_exported():
    assert K.ACTIVATIONS == R.ACTIVATIONS == ("identity", "relu", "leaky_relu", "tanh", "sigmoid")
