import numpy as np
import pytest

import gradcore.reference as R
from _fd import numgrad
from _impls import impl_params


@pytest.mark.parametrize("K", impl_params())
@pytest.mark.parametrize("act", R.ACTIVATIONS)
@pytest.mark.parametrize("bias", [True, False])
def test_dense_backward_finite_differences(K, act, bias):
    rng = np.random.default_rng(1)
    B, I, O = 3, 4, 5
    x = rng.standard_normal((B, I))
    w = rng.standard_normal((O, I))
    b = rng.standard_normal(O) if bias else None
    dy = rng.standard_normal((B, O))
    y = np.empty((B, O))

    def f():
        K.dense_forward(y, x, w, b, act, 0.1)
        return float((y * dy).sum())

    f()
    dx = np.empty_like(x)
    dw = np.zeros_like(w)
    db = np.zeros(O) if bias else None
    dz = np.empty_like(y)
    K.dense_backward(dx, dw, db, dy, x, w, y, act, 0.1, dz)
    np.testing.assert_allclose(dx, numgrad(f, x), atol=1e-7)
    np.testing.assert_allclose(dw, numgrad(f, w), atol=1e-7)
    if bias:
        np.testing.assert_allclose(db, numgrad(f, b), atol=1e-7)


from gradcore import _kernels as K  # noqa: E402
from _impls import IMPLS, assert_bad_input, run_simd_paths, tol  # noqa: E402

SHAPES = [(1, 1, 1), (5, 3, 7), (33, 70, 600)]  # O = 600 spans two db blocks


def _data(dtype, B, I, O, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((B, I)).astype(dtype)
    w = (rng.standard_normal((O, I)) / np.sqrt(I)).astype(dtype)
    b = rng.standard_normal(O).astype(dtype)
    dy = rng.standard_normal((B, O)).astype(dtype)
    return x, w, b, dy


@pytest.mark.kernel
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("act", R.ACTIVATIONS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("bias", [True, False])
def test_c_matches_reference(dtype, act, shape, bias):
    B, I, O = shape
    x, w, b, dy = _data(dtype, B, I, O)
    b = b if bias else None
    out = {}
    for name, mod in (("c", K), ("r", R)):
        y = np.empty((B, O), dtype)
        mod.dense_forward(y, x, w, b, act, 0.05)
        dw = np.full((O, I), 0.5, dtype)  # accumulates
        db = np.full(O, -0.25, dtype) if bias else None
        dx = np.empty((B, I), dtype)
        dz = np.empty((B, O), dtype)
        mod.dense_backward(dx, dw, db, dy, x, w, y, act, 0.05, dz)
        out[name] = (y, dw, db, dx, dz)
    t = tol(dtype)
    if dtype == np.float32:
        t = dict(rtol=1e-4, atol=1e-5)
    for a, r in zip(out["c"], out["r"]):
        if r is not None:
            np.testing.assert_allclose(a, r, **t)


@pytest.mark.kernel
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_float32_close_to_float64_path(dtype):
    x, w, b, dy = _data(np.float64, 16, 32, 24, seed=3)
    y64 = np.empty((16, 24))
    K.dense_forward(y64, x, w, b, "tanh", 0.0)
    y32 = np.empty((16, 24), np.float32)
    K.dense_forward(y32, x.astype(np.float32), w.astype(np.float32), b.astype(np.float32), "tanh", 0.0)
    np.testing.assert_allclose(y32, y64, atol=2e-6)


@pytest.mark.kernel
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("act", R.ACTIVATIONS)
def test_simd_paths_identical(dtype, act):
    x, w, b, dy = _data(dtype, 9, 21, 530, seed=4)

    def run():
        y = np.empty((9, 530), dtype)
        K.dense_forward(y, x, w, b, act, 0.1)
        dw = np.zeros_like(w)
        db = np.zeros_like(b)
        dx = np.empty_like(x)
        dz = np.empty_like(y)
        K.dense_backward(dx, dw, db, dy, x, w, y, act, 0.1, dz)
        return y, dw, db, dx, dz

    outs = run_simd_paths(run)
    for other in outs[1:]:
        for a, b_ in zip(outs[0], other):
            np.testing.assert_array_equal(a, b_)


@pytest.mark.parametrize("K_", IMPLS)
def test_dz_may_alias_dy_and_dx_may_be_skipped(K_):
    x, w, b, dy = _data(np.float64, 4, 3, 5, seed=5)
    y = np.empty((4, 5))
    K_.dense_forward(y, x, w, b, "sigmoid", 0.0)
    dw1, db1, dx1, dz1 = np.zeros_like(w), np.zeros_like(b), np.empty_like(x), np.empty_like(y)
    K_.dense_backward(dx1, dw1, db1, dy, x, w, y, "sigmoid", 0.0, dz1)
    dy2 = dy.copy()
    dw2, db2 = np.zeros_like(w), np.zeros_like(b)
    K_.dense_backward(None, dw2, db2, dy2, x, w, y, "sigmoid", 0.0, dy2)
    np.testing.assert_allclose(dy2, dz1, rtol=1e-15)
    np.testing.assert_allclose(dw2, dw1, rtol=1e-15)
    np.testing.assert_allclose(db2, db1, rtol=1e-15)
    # gradients accumulate
    K_.dense_backward(None, dw2, db2, dy, x, w, y, "sigmoid", 0.0, np.empty_like(y))
    np.testing.assert_allclose(dw2, 2 * dw1, rtol=1e-14)
    np.testing.assert_allclose(db2, 2 * db1, rtol=1e-14)


@pytest.mark.parametrize("K_", IMPLS)
def test_textbook_chain(K_):
    """5 stacked 1x1 identity layers, w = 2, b = 0, x = 1, dL/dy = 1."""
    w = np.array([[2.0]])
    b = np.zeros(1)
    acts = [np.ones((1, 1))]
    for _ in range(5):
        y = np.empty((1, 1))
        K_.dense_forward(y, acts[-1], w, b, "identity", 0.0)
        acts.append(y)
    assert acts[-1][0, 0] == 32.0
    d = np.ones((1, 1))
    dbs, dws = [], []
    for layer in reversed(range(5)):
        dw, db, dx = np.zeros((1, 1)), np.zeros(1), np.empty((1, 1))
        K_.dense_backward(dx, dw, db, d, acts[layer], w, acts[layer + 1], "identity", 0.0, np.empty((1, 1)))
        dbs.append(db[0])
        dws.append(dw[0, 0])
        d = dx
    assert dbs[::-1] == [16.0, 8.0, 4.0, 2.0, 1.0]
    assert dws == [16.0] * 5


@pytest.mark.parametrize("K_", IMPLS)
def test_nonfinite_propagates(K_):
    x, w, b, dy = _data(np.float32, 3, 4, 5, seed=6)
    x[1, 2] = np.nan
    y = np.empty((3, 5), np.float32)
    K_.dense_forward(y, x, w, b, "tanh", 0.0)
    assert np.isnan(y[1]).all() and np.isfinite(y[[0, 2]]).all()
    dw, db, dx = np.zeros_like(w), np.zeros_like(b), np.empty_like(x)
    K_.dense_backward(dx, dw, db, dy, x, w, y, "tanh", 0.0, np.empty_like(y))
    assert np.isnan(dw).any() and np.isnan(db).all()


@pytest.mark.parametrize("K_", IMPLS)
def test_bad_input(K_):
    x, w, b, dy = _data(np.float32, 4, 3, 5, seed=7)
    y = np.zeros((4, 5), np.float32)
    dw, db, dx, dz = np.zeros_like(w), np.zeros_like(b), np.zeros_like(x), np.zeros_like(y)
    arrays = dict(x=x, w=w, b=b, dy=dy, y=y, dw=dw, db=db, dx=dx, dz=dz)
    F = K_.dense_forward
    base = dict(y=y, x=x, w=w, b=b, act="relu", slope=0.0)
    assert_bad_input(F, {**base, "act": "softplus"}, arrays, ValueError, "valid activations")
    assert_bad_input(F, {**base, "w": w[:, :2].copy()}, arrays, ValueError, r"w: expected shape \(O, 3\)")
    assert_bad_input(F, {**base, "w": w.astype(np.float64)}, arrays, TypeError, "w: expected dtype float32")
    assert_bad_input(F, {**base, "b": np.zeros(4, np.float32)}, arrays, ValueError, r"b: expected shape \(5,\)")
    assert_bad_input(F, {**base, "y": np.zeros((4, 5))}, arrays, TypeError, "y: expected dtype float32")
    assert_bad_input(F, {**base, "y": np.zeros((5, 4), np.float32)}, arrays, ValueError, r"y: expected shape \(4, 5\)")
    assert_bad_input(F, {**base, "x": np.asfortranarray(np.ones((4, 3), np.float32))}, arrays, ValueError, "x: .*C-contiguous")
    assert_bad_input(F, {**base, "x": np.ones(3, np.float32)}, arrays, ValueError, "x: expected a 2-D")
    assert_bad_input(F, {**base, "x": np.ones((0, 3), np.float32), "y": np.ones((0, 5), np.float32)}, arrays, ValueError, "x: expected a non-empty")
    ro = np.zeros((4, 5), np.float32)
    ro.flags.writeable = False
    assert_bad_input(F, {**base, "y": ro}, arrays, ValueError, "y: .*read-only")
    Bk = K_.dense_backward
    base = dict(dx=dx, dw=dw, db=db, dy=dy, x=x, w=w, y=y, act="relu", slope=0.0, dz=dz)
    assert_bad_input(Bk, {**base, "dw": np.zeros((5, 4), np.float32)}, arrays, ValueError, r"dw: expected shape \(5, 3\)")
    assert_bad_input(Bk, {**base, "db": np.zeros(5)}, arrays, TypeError, "db: expected dtype float32")
    assert_bad_input(Bk, {**base, "dx": np.zeros((4, 4), np.float32)}, arrays, ValueError, "dx: expected shape")
    assert_bad_input(Bk, {**base, "dz": ro}, arrays, ValueError, "dz: .*read-only")
    assert_bad_input(Bk, {**base, "dy": dy[:, :4].copy()}, arrays, ValueError, "dy: expected shape")
    assert_bad_input(Bk, {**base, "slope": "0.1"}, arrays, TypeError, "slope")


@pytest.mark.kernel
def test_concurrent_calls_match_sequential():
    """No shared state: threads running dense/activation/layernorm/loss/adam
    kernels on their own arrays (GIL released) match sequential calls."""
    from concurrent.futures import ThreadPoolExecutor

    def work(seed):
        dtype = np.float32 if seed % 2 else np.float64
        x, w, b, dy = _data(dtype, 48, 64, 530, seed=seed)
        y = np.empty((48, 530), dtype)
        K.dense_forward(y, x, w, b, "tanh", 0.0)
        dw, db, dx, dz = np.zeros_like(w), np.zeros_like(b), np.empty_like(x), np.empty_like(y)
        K.dense_backward(dx, dw, db, dy, x, w, y, "tanh", 0.0, dz)
        ln, mu, rs = np.empty_like(y), np.empty(48, dtype), np.empty(48, dtype)
        K.layernorm_forward(ln, mu, rs, y, None, None, 1e-5)
        d = np.empty_like(y)
        loss = K.mse_loss(ln, dy, d)
        p, m, v = w.reshape(-1).copy(), np.zeros(w.size, dtype), np.zeros(w.size, dtype)
        K.adam_step(p, dw.reshape(-1), m, v, 1, 1e-3, 0.9, 0.999, 1e-8, 0.0, False, 0.5)
        return (y, dw, db, dx, ln, d, p, np.array([loss]))

    seeds = list(range(8))
    sequential = [work(s) for s in seeds]
    with ThreadPoolExecutor(4) as ex:
        concurrent = list(ex.map(work, seeds))
    # (a tolerance, not bit equality: a multi-threaded BLAS may split the
    # GEMMs differently when several calls run at once)
    for seq, con in zip(sequential, concurrent):
        rtol = 1e-5 if seq[0].dtype == np.float32 else 1e-12
        for a, b_ in zip(seq, con):
            np.testing.assert_allclose(b_, a, rtol=rtol, atol=1e-6)
