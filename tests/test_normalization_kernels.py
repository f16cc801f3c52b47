import numpy as np
import pytest

import gradcore.reference as R
from gradcore import _kernels as K
from _fd import numgrad
from _impls import IMPLS, assert_bad_input, run_simd_paths

DT = [np.float32, np.float64]
DT_IDS = ["f32", "f64"]


def _tol(dtype):
    return dict(rtol=1e-4, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-12)


def _ln(mod, x, gamma, beta, eps=1e-5):
    B, D = x.shape
    y, mean, rstd = np.empty_like(x), np.empty(B, x.dtype), np.empty(B, x.dtype)
    mod.layernorm_forward(y, mean, rstd, x, gamma, beta, eps)
    return y, mean, rstd


# ---------------------------------------------------------------- LayerNorm

@pytest.mark.kernel
@pytest.mark.parametrize("dtype", DT, ids=DT_IDS)
@pytest.mark.parametrize("affine", ["both", "gamma", "beta", "none"])
@pytest.mark.parametrize("D", [1, 7, 37, 300])
def test_layernorm_c_matches_reference(dtype, affine, D):
    rng = np.random.default_rng(D)
    B = 6
    x = (rng.standard_normal((B, D)) * 3 + 1).astype(dtype)
    gamma = rng.standard_normal(D).astype(dtype) if affine in ("both", "gamma") else None
    beta = rng.standard_normal(D).astype(dtype) if affine in ("both", "beta") else None
    dy = rng.standard_normal((B, D)).astype(dtype)
    res = {}
    for name, mod in (("c", K), ("r", R)):
        y, mean, rstd = _ln(mod, x, gamma, beta)
        dx = np.empty_like(x)
        dg = np.full(D, 0.5, dtype) if gamma is not None else None
        db = np.full(D, 0.5, dtype) if beta is not None else None
        mod.layernorm_backward(dx, dg, db, dy, x, mean, rstd, gamma)
        res[name] = (y, mean, rstd, dx, dg, db)
    for a, r in zip(res["c"], res["r"]):
        if r is not None:
            np.testing.assert_allclose(a, r, **_tol(dtype))


@pytest.mark.parametrize("K_", IMPLS)
@pytest.mark.parametrize("affine", [True, False])
def test_layernorm_finite_differences(K_, affine):
    rng = np.random.default_rng(1)
    B, D = 3, 6
    x = rng.standard_normal((B, D))
    gamma = rng.standard_normal(D) if affine else None
    beta = rng.standard_normal(D) if affine else None
    dy = rng.standard_normal((B, D))
    y, mean, rstd = np.empty((B, D)), np.empty(B), np.empty(B)

    def f():
        K_.layernorm_forward(y, mean, rstd, x, gamma, beta, 1e-5)
        return float((y * dy).sum())

    f()
    dx = np.empty_like(x)
    dg = np.zeros(D) if affine else None
    db = np.zeros(D) if affine else None
    K_.layernorm_backward(dx, dg, db, dy, x, mean, rstd, gamma)
    np.testing.assert_allclose(dx, numgrad(f, x), atol=1e-7)
    if affine:
        np.testing.assert_allclose(dg, numgrad(f, gamma), atol=1e-7)
        np.testing.assert_allclose(db, numgrad(f, beta), atol=1e-7)


@pytest.mark.kernel
def test_layernorm_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 12))
    g, b = rng.standard_normal(12), rng.standard_normal(12)
    y, _, _ = _ln(K, x, g, b, 1e-5)
    ln = torch.nn.LayerNorm(12, eps=1e-5, dtype=torch.float64)
    with torch.no_grad():
        ln.weight.copy_(torch.from_numpy(g))
        ln.bias.copy_(torch.from_numpy(b))
    np.testing.assert_allclose(y, ln(torch.from_numpy(x)).detach().numpy(), rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- BatchNorm

def _bn_fwd(mod, x, gamma, beta, rm, rv, training, momentum=0.1, eps=1e-5):
    D = x.shape[1]
    y, sm, sr = np.empty_like(x), np.empty(D, x.dtype), np.empty(D, x.dtype)
    mod.batchnorm_forward(y, x, gamma, beta, rm, rv, sm, sr, training, momentum, eps)
    return y, sm, sr


@pytest.mark.kernel
@pytest.mark.parametrize("dtype", DT, ids=DT_IDS)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("D", [1, 9, 130])
def test_batchnorm_c_matches_reference(dtype, training, affine, D):
    rng = np.random.default_rng(D + 10)
    B = 7
    x = (rng.standard_normal((B, D)) * 2 - 1).astype(dtype)
    gamma = rng.standard_normal(D).astype(dtype) if affine else None
    beta = rng.standard_normal(D).astype(dtype) if affine else None
    dy = rng.standard_normal((B, D)).astype(dtype)
    rm0 = rng.standard_normal(D).astype(dtype)
    rv0 = (rng.random(D) + 0.5).astype(dtype)
    res = {}
    for name, mod in (("c", K), ("r", R)):
        rm, rv = rm0.copy(), rv0.copy()
        y, sm, sr = _bn_fwd(mod, x, gamma, beta, rm, rv, training)
        dx = np.empty_like(x)
        dg = np.ones(D, dtype) if affine else None
        db = np.ones(D, dtype) if affine else None
        mod.batchnorm_backward(dx, dg, db, dy, x, sm, sr, gamma, training)
        res[name] = (y, sm, sr, rm, rv, dx, dg, db)
    for a, r in zip(res["c"], res["r"]):
        if r is not None:
            np.testing.assert_allclose(a, r, **_tol(dtype))
    if not training:
        np.testing.assert_array_equal(res["c"][3], rm0)  # eval leaves running stats alone


@pytest.mark.parametrize("K_", IMPLS)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm_finite_differences(K_, training, affine):
    rng = np.random.default_rng(3)
    B, D = 5, 4
    x = rng.standard_normal((B, D))
    gamma = rng.standard_normal(D) if affine else None
    beta = rng.standard_normal(D) if affine else None
    rm, rv = rng.standard_normal(D), rng.random(D) + 0.5
    dy = rng.standard_normal((B, D))
    y, sm, sr = np.empty((B, D)), np.empty(D), np.empty(D)

    def f():
        # running stats are outputs, not inputs, in training: use copies
        K_.batchnorm_forward(y, x, gamma, beta, rm.copy(), rv.copy(), sm, sr, training, 0.1, 1e-5)
        return float((y * dy).sum())

    f()
    dx = np.empty_like(x)
    dg = np.zeros(D) if affine else None
    db = np.zeros(D) if affine else None
    K_.batchnorm_backward(dx, dg, db, dy, x, sm, sr, gamma, training)
    np.testing.assert_allclose(dx, numgrad(f, x), atol=1e-7)
    if affine:
        np.testing.assert_allclose(dg, numgrad(f, gamma), atol=1e-7)
        np.testing.assert_allclose(db, numgrad(f, beta), atol=1e-7)


@pytest.mark.kernel
def test_batchnorm_matches_torch_running_stats():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    D = 6
    bn = torch.nn.BatchNorm1d(D, momentum=0.3, eps=1e-5, dtype=torch.float64)
    g, b = rng.standard_normal(D), rng.standard_normal(D)
    with torch.no_grad():
        bn.weight.copy_(torch.from_numpy(g))
        bn.bias.copy_(torch.from_numpy(b))
    rm, rv = np.zeros(D), np.ones(D)
    for step in range(3):
        x = rng.standard_normal((8, D)) * (step + 1)
        y, _, _ = _bn_fwd(K, x, g, b, rm, rv, True, momentum=0.3)
        yt = bn.train()(torch.from_numpy(x)).detach().numpy()
        np.testing.assert_allclose(y, yt, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(rm, bn.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(rv, bn.running_var.numpy(), rtol=1e-12)
    x = rng.standard_normal((4, D))
    y, _, _ = _bn_fwd(K, x, g, b, rm, rv, False)
    np.testing.assert_allclose(y, bn.eval()(torch.from_numpy(x)).detach().numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.kernel
@pytest.mark.parametrize("dtype", DT, ids=DT_IDS)
def test_simd_paths_identical(dtype):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((11, 45)).astype(dtype)
    dy = rng.standard_normal((11, 45)).astype(dtype)
    g, b = rng.standard_normal(45).astype(dtype), rng.standard_normal(45).astype(dtype)

    def run():
        y, mean, rstd = _ln(K, x, g, b)
        dx, dg, db = np.empty_like(x), np.zeros_like(g), np.zeros_like(b)
        K.layernorm_backward(dx, dg, db, dy, x, mean, rstd, g)
        rm, rv = np.zeros_like(g), np.ones_like(g)
        y2, sm, sr = _bn_fwd(K, x, g, b, rm, rv, True)
        dx2, dg2, db2 = np.empty_like(x), np.zeros_like(g), np.zeros_like(b)
        K.batchnorm_backward(dx2, dg2, db2, dy, x, sm, sr, g, True)
        return y, mean, rstd, dx, dg, db, y2, sm, sr, rm, rv, dx2, dg2, db2

    outs = run_simd_paths(run)
    for other in outs[1:]:
        for a, b_ in zip(outs[0], other):
            np.testing.assert_array_equal(a, b_)


@pytest.mark.parametrize("K_", IMPLS)
def test_bad_input(K_):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((4, 3)).astype(np.float32)
    g, b = np.ones(3, np.float32), np.zeros(3, np.float32)
    y, mean, rstd = np.zeros((4, 3), np.float32), np.zeros(4, np.float32), np.zeros(4, np.float32)
    arrays = dict(x=x, g=g, b=b, y=y, mean=mean, rstd=rstd)
    F = K_.layernorm_forward
    base = dict(y=y, mean=mean, rstd=rstd, x=x, gamma=g, beta=b, eps=1e-5)
    assert_bad_input(F, {**base, "eps": -1.0}, arrays, ValueError, "eps")
    assert_bad_input(F, {**base, "eps": float("nan")}, arrays, ValueError, "eps")
    assert_bad_input(F, {**base, "gamma": np.ones(4, np.float32)}, arrays, ValueError, r"gamma: expected shape \(3,\)")
    assert_bad_input(F, {**base, "mean": np.zeros(3, np.float32)}, arrays, ValueError, r"mean: expected shape \(4,\)")
    assert_bad_input(F, {**base, "rstd": np.zeros(4)}, arrays, TypeError, "rstd: expected dtype float32")
    rm, rv, sm, sr = np.zeros(3, np.float32), np.ones(3, np.float32), np.zeros(3, np.float32), np.zeros(3, np.float32)
    arrays.update(rm=rm, rv=rv, sm=sm, sr=sr)
    BF = K_.batchnorm_forward
    base = dict(y=y, x=x, gamma=g, beta=b, running_mean=rm, running_var=rv, save_mean=sm, save_rstd=sr,
                training=True, momentum=0.1, eps=1e-5)
    assert_bad_input(BF, {**base, "momentum": 1.5}, arrays, ValueError, "momentum")
    assert_bad_input(BF, {**base, "x": x[:1].copy(), "y": y[:1].copy()}, arrays, ValueError, "more than 1 value per channel")
    assert_bad_input(BF, {**base, "running_var": None}, arrays, ValueError, "running_mean, running_var")
    assert_bad_input(BF, {**base, "training": False, "running_mean": None, "running_var": None}, arrays, TypeError, "running_mean")
    assert_bad_input(BF, {**base, "save_rstd": np.zeros(4, np.float32)}, arrays, ValueError, "save_rstd: expected shape")
    dy = np.ones((4, 3), np.float32)
    arrays["dy"] = dy
    BB = K_.batchnorm_backward
    base = dict(dx=y, dgamma=g, dbeta=b, dy=dy, x=x, save_mean=sm, save_rstd=sr, gamma=g, training=True)
    assert_bad_input(BB, {**base, "dy": np.ones((4, 3))}, arrays, TypeError, "dy: expected dtype float32")
    ro = np.zeros(3, np.float32)
    ro.flags.writeable = False
    assert_bad_input(BB, {**base, "dgamma": ro}, arrays, ValueError, "dgamma: .*read-only")
