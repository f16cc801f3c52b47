import math

import numpy as np
import pytest

import gradcore.reference as R
from gradcore import _kernels as K
from _impls import IMPLS, assert_bad_input, run_simd_paths

N = 1037
STEPS = 10


def _grads(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(N).astype(dtype) for _ in range(STEPS)]


def plain_sgd(p, grads, lr, momentum, nesterov, wd, scale):
    """PyTorch SGD (dampening 0) written out, float64."""
    p = p.astype(np.float64).copy()
    buf = None
    for g in grads:
        d = g.astype(np.float64) * scale + wd * p
        if momentum:
            buf = d.copy() if buf is None else momentum * buf + d
            d = d + momentum * buf if nesterov else buf
        p = p - lr * d
    return p


def plain_adam(p, grads, lr, b1, b2, eps, wd, decoupled, scale):
    """PyTorch Adam / AdamW written out, float64."""
    p = p.astype(np.float64).copy()
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        g = g.astype(np.float64) * scale
        if decoupled:
            p = p * (1 - lr * wd)
        else:
            g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        mhat = m / (1 - b1**t)
        vhat = v / (1 - b2**t)
        p = p - lr * mhat / (np.sqrt(vhat) + eps)
    return p


SGD_CASES = [
    dict(lr=0.1, momentum=0.0, nesterov=False, wd=0.0, scale=1.0),
    dict(lr=0.05, momentum=0.9, nesterov=False, wd=0.0, scale=1.0),
    dict(lr=0.05, momentum=0.9, nesterov=True, wd=1e-2, scale=0.37),
    dict(lr=0.01, momentum=0.0, nesterov=False, wd=0.1, scale=0.5),
]
ADAM_CASES = [
    dict(lr=1e-2, b1=0.9, b2=0.999, eps=1e-8, wd=0.0, decoupled=False, scale=1.0),
    dict(lr=1e-2, b1=0.8, b2=0.99, eps=1e-6, wd=0.05, decoupled=False, scale=0.25),
    dict(lr=1e-2, b1=0.9, b2=0.999, eps=1e-8, wd=0.1, decoupled=True, scale=0.6),
]


def _tol(dtype):
    return dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("K_", IMPLS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", SGD_CASES, ids=lambda c: f"mom{c['momentum']}-nest{c['nesterov']}-wd{c['wd']}-s{c['scale']}")
def test_sgd_ten_steps_match_pytorch_formulas(K_, dtype, case):
    grads = _grads(dtype)
    p0 = np.random.default_rng(1).standard_normal(N).astype(dtype)
    p = p0.copy()
    vel = np.zeros_like(p) if case["momentum"] else None
    for g in grads:
        g_before = g.copy()
        K_.sgd_step(p, g, vel, case["lr"], case["momentum"], case["nesterov"], case["wd"], case["scale"])
        np.testing.assert_array_equal(g, g_before)  # the gradient is never written
    expected = plain_sgd(p0, grads, case["lr"], case["momentum"], case["nesterov"], case["wd"], case["scale"])
    np.testing.assert_allclose(p, expected, **_tol(dtype))


@pytest.mark.parametrize("K_", IMPLS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", ADAM_CASES, ids=lambda c: f"wd{c['wd']}-dec{c['decoupled']}-s{c['scale']}")
def test_adam_ten_steps_match_pytorch_formulas(K_, dtype, case):
    grads = _grads(dtype, seed=2)
    p0 = np.random.default_rng(3).standard_normal(N).astype(dtype)
    p, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
    for t, g in enumerate(grads, start=1):
        K_.adam_step(p, g, m, v, t, case["lr"], case["b1"], case["b2"], case["eps"], case["wd"],
                     case["decoupled"], case["scale"])
    expected = plain_adam(p0, grads, case["lr"], case["b1"], case["b2"], case["eps"], case["wd"],
                          case["decoupled"], case["scale"])
    np.testing.assert_allclose(p, expected, **_tol(dtype))


@pytest.mark.kernel
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_c_matches_reference_bitwise_close(dtype):
    grads = _grads(dtype, seed=4)
    p0 = np.random.default_rng(5).standard_normal(N).astype(dtype)
    out = []
    for mod in (K, R):
        p, m, v, vel = p0.copy(), np.zeros_like(p0), np.zeros_like(p0), np.zeros_like(p0)
        q = p0.copy()
        for t, g in enumerate(grads, start=1):
            mod.adam_step(p, g, m, v, t, 1e-3, 0.9, 0.999, 1e-8, 0.01, True, 0.5)
            mod.sgd_step(q, g, vel, 0.1, 0.9, True, 1e-3, 0.5)
        out.append((p, m, v, q, vel))
    for a, b in zip(*out):
        np.testing.assert_allclose(a, b, rtol=2e-6 if dtype == np.float32 else 1e-14, atol=1e-7 if dtype == np.float32 else 1e-15)


@pytest.mark.kernel
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_simd_paths_identical(dtype):
    grads = _grads(dtype, seed=6)
    p0 = np.random.default_rng(7).standard_normal(N).astype(dtype)

    def run():
        p, m, v, vel, q = p0.copy(), np.zeros_like(p0), np.zeros_like(p0), np.zeros_like(p0), p0.copy()
        for t, g in enumerate(grads, start=1):
            K.adam_step(p, g, m, v, t, 1e-3, 0.9, 0.999, 1e-8, 0.01, False, 0.7)
            K.sgd_step(q, g, vel, 0.1, 0.9, False, 1e-3, 0.7)
        return p, m, v, q, vel

    outs = run_simd_paths(run)
    for other in outs[1:]:
        for a, b in zip(outs[0], other):
            np.testing.assert_array_equal(a, b)


@pytest.mark.kernel
@pytest.mark.parametrize("opt", ["sgd", "sgd_nesterov", "adam", "adamw"])
def test_matches_torch_optim(opt):
    torch = pytest.importorskip("torch")
    grads = _grads(np.float64, seed=8)
    p0 = np.random.default_rng(9).standard_normal(N)
    scale = 0.4
    tp = torch.nn.Parameter(torch.from_numpy(p0.copy()))
    if opt == "sgd":
        topt = torch.optim.SGD([tp], lr=0.05, momentum=0.9, weight_decay=0.01)
    elif opt == "sgd_nesterov":
        topt = torch.optim.SGD([tp], lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)
    elif opt == "adam":
        topt = torch.optim.Adam([tp], lr=1e-2, weight_decay=0.01, foreach=False)
    else:
        topt = torch.optim.AdamW([tp], lr=1e-2, weight_decay=0.01, foreach=False)
    p, m, v, vel = p0.copy(), np.zeros(N), np.zeros(N), np.zeros(N)
    for t, g in enumerate(grads, start=1):
        tp.grad = torch.from_numpy(g * scale)
        topt.step()
        if opt.startswith("sgd"):
            K.sgd_step(p, g, vel, 0.05, 0.9, opt == "sgd_nesterov", 0.01, scale)
        else:
            K.adam_step(p, g, m, v, t, 1e-2, 0.9, 0.999, 1e-8, 0.01, opt == "adamw", scale)
    np.testing.assert_allclose(p, tp.detach().numpy(), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("K_", IMPLS)
def test_bad_input(K_):
    p = np.ones(8, np.float32)
    g = np.ones(8, np.float32)
    m, v, vel = np.zeros(8, np.float32), np.zeros(8, np.float32), np.zeros(8, np.float32)
    arrays = dict(p=p, g=g, m=m, v=v, vel=vel)
    S = K_.sgd_step
    base = dict(param=p, grad=g, velocity=vel, lr=0.1, momentum=0.9, nesterov=False, weight_decay=0.0, grad_scale=1.0)
    assert_bad_input(S, {**base, "lr": 0.0}, arrays, ValueError, "lr: expected a finite number > 0")
    assert_bad_input(S, {**base, "lr": float("nan")}, arrays, ValueError, "lr")
    assert_bad_input(S, {**base, "lr": "0.1"}, arrays, TypeError, "lr")
    assert_bad_input(S, {**base, "momentum": -0.5}, arrays, ValueError, "momentum")
    assert_bad_input(S, {**base, "grad_scale": float("inf")}, arrays, ValueError, "grad_scale")
    assert_bad_input(S, {**base, "velocity": None}, arrays, TypeError, "velocity")
    assert_bad_input(S, {**base, "momentum": 0.0, "nesterov": True}, arrays, ValueError, "nesterov")
    assert_bad_input(S, {**base, "grad": np.ones(8)}, arrays, TypeError, "grad: expected dtype float32")
    assert_bad_input(S, {**base, "grad": np.ones(9, np.float32)}, arrays, ValueError, r"grad: expected shape \(8,\)")
    assert_bad_input(S, {**base, "param": np.ones((2, 4), np.float32)}, arrays, ValueError, "param: expected a 1-D")
    ro = np.ones(8, np.float32)
    ro.flags.writeable = False
    assert_bad_input(S, {**base, "param": ro}, arrays, ValueError, "param: .*read-only")
    A = K_.adam_step
    base = dict(param=p, grad=g, m=m, v=v, step=1, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8,
                weight_decay=0.0, decoupled=False, grad_scale=1.0)
    assert_bad_input(A, {**base, "step": 0}, arrays, ValueError, "step: expected an integer >= 1")
    assert_bad_input(A, {**base, "step": 1.5}, arrays, ValueError, "step")
    assert_bad_input(A, {**base, "beta1": 1.0}, arrays, ValueError, "beta1")
    assert_bad_input(A, {**base, "beta2": -0.1}, arrays, ValueError, "beta2")
    assert_bad_input(A, {**base, "eps": float("nan")}, arrays, ValueError, "eps")
    assert_bad_input(A, {**base, "weight_decay": -1.0}, arrays, ValueError, "weight_decay")
    assert_bad_input(A, {**base, "v": ro}, arrays, ValueError, "v: .*read-only")
    assert_bad_input(A, {**base, "m": np.zeros(8)}, arrays, TypeError, "m: expected dtype float32")


@pytest.mark.parametrize("K_", IMPLS)
def test_nonfinite_gradient_propagates(K_):
    p = np.ones(4)
    g = np.array([1.0, np.nan, np.inf, 0.0])
    m, v = np.zeros(4), np.zeros(4)
    K_.adam_step(p, g, m, v, 1, 1e-3, 0.9, 0.999, 1e-8, 0.0, False, 1.0)
    assert np.isfinite(p[[0, 3]]).all() and np.isnan(p[1]) and not np.isfinite(p[2])
