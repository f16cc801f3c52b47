"""The same models on the C kernels and on the NumPy reference give the same
results (set_backend / use_backend switch a live model)."""

import numpy as np
import pytest

import gradcore
from gradcore import losses, nn, optim

pytestmark = pytest.mark.kernel


def _train(backend, dtype, norm, residual, opt_name, steps=5):
    with gradcore.use_backend(backend):
        model = nn.MLP([6, 12, 12, 3], activation="tanh", norm=norm, residual=residual, dtype=dtype, seed=0)
        # eps well above float32 rounding noise: the bias before a BatchNorm has a
        # true gradient of 0, and Adam would turn its rounding noise into full steps
        opt = optim.Adam(model, lr=1e-2, eps=1e-4) if opt_name == "adam" else optim.SGD(model, lr=0.05, momentum=0.9)
        rng = np.random.default_rng(1)
        x = rng.normal(size=(16, 6)).astype(dtype)
        labels = rng.integers(0, 3, size=16)
        trace = []
        for _ in range(steps):
            model.zero_grad()
            loss, d = losses.softmax_cross_entropy(model(x), labels)
            model.backward(d)
            trace.append((loss, opt.step(clip_norm=1.0)))
        return model.arena.data.copy(), model.arena.grad.copy(), np.array(trace)


@pytest.mark.parametrize("norm", [None, "layer", "batch"])
@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("opt_name", ["adam", "sgd"])
def test_c_equals_numpy_training(dtype, norm, residual, opt_name):
    pc, gc, tc = _train("c", dtype, norm, residual, opt_name)
    pn, gn, tn = _train("numpy", dtype, norm, residual, opt_name)
    tol = 2e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(tc, tn, rtol=tol, atol=tol)
    np.testing.assert_allclose(pc, pn, rtol=tol, atol=tol)
    np.testing.assert_allclose(gc, gn, rtol=tol * 10, atol=tol)


def test_switch_backend_on_a_live_model(dtype):
    model = nn.MLP([4, 8, 8, 2], activation="sigmoid", norm="layer", dtype=dtype, seed=3)
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(dtype)
    dy = np.ones((5, 2), dtype)
    out = {}
    for b in ("c", "numpy"):
        with gradcore.use_backend(b):
            model.zero_grad()
            y = model(x).copy()
            dx = model.backward(dy).copy()
            out[b] = (y, dx, model.arena.grad.copy())
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for a, b in zip(out["c"], out["numpy"]):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
