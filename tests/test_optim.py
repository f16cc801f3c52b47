import math

import numpy as np
import pytest

import gradcore
from gradcore import nn, optim

pytestmark = pytest.mark.kernel  # runs the C kernels (also under AddressSanitizer in CI)


def _grads(n, steps, seed=0):
    return np.random.default_rng(seed).normal(size=(steps, n)) * 3.0


def _np_sgd(p, grads, lr, momentum, nesterov, wd, clip):
    """PyTorch SGD (dampening 0) written out in NumPy, float64."""
    p = p.astype(np.float64).copy()
    buf = None
    for g in grads:
        g = g.astype(np.float64)
        if clip is not None:
            n = np.linalg.norm(g)
            g = g * min(1.0, clip / (n + 1e-6))
        g = g + wd * p
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + g
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g
    return p


def _np_adam(p, grads, lr, b1, b2, eps, wd, decoupled, clip):
    """PyTorch Adam / AdamW written out in NumPy, float64."""
    p = p.astype(np.float64).copy()
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        g = g.astype(np.float64)
        if clip is not None:
            n = np.linalg.norm(g)
            g = g * min(1.0, clip / (n + 1e-6))
        if wd and decoupled:
            p = p * (1 - lr * wd)
        elif wd:
            g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        denom = np.sqrt(v) / math.sqrt(1 - b2**t) + eps
        p = p - lr / (1 - b1**t) * m / denom
    return p


def _model(dtype):
    return nn.MLP([3, 4, 2], dtype=dtype, seed=0)


def _run(opt, model, grads, clip):
    norms = []
    for g in grads:
        model.arena.grad[:] = g
        norms.append(opt.step(clip_norm=clip))
    return norms


SGD_CASES = [
    dict(lr=0.1), dict(lr=0.05, momentum=0.9), dict(lr=0.05, momentum=0.9, nesterov=True),
    dict(lr=0.1, weight_decay=0.01), dict(lr=0.02, momentum=0.5, nesterov=True, weight_decay=0.1),
]


@pytest.mark.parametrize("kw", SGD_CASES)
@pytest.mark.parametrize("clip", [None, 1.0])
def test_sgd_matches_numpy_pytorch_formulas(backend, dtype, kw, clip):
    model = _model(dtype)
    p0 = model.arena.data.copy()
    grads = _grads(p0.size, 10).astype(dtype)
    opt = optim.SGD(model, **kw)
    norms = _run(opt, model, grads, clip)
    expect = _np_sgd(p0, grads, kw["lr"], kw.get("momentum", 0.0), kw.get("nesterov", False),
                     kw.get("weight_decay", 0.0), clip)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(model.arena.data, expect, rtol=tol, atol=tol)
    np.testing.assert_allclose(norms, np.linalg.norm(grads.astype(np.float64), axis=1), rtol=1e-6)
    assert opt.steps == 10 and opt.skipped == 0


ADAM_CASES = [
    dict(lr=1e-2), dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6), dict(lr=1e-2, weight_decay=0.1),
    dict(lr=1e-2, weight_decay=0.1, decoupled=True),
]


@pytest.mark.parametrize("kw", ADAM_CASES)
@pytest.mark.parametrize("clip", [None, 0.5])
def test_adam_matches_numpy_pytorch_formulas(backend, dtype, kw, clip):
    model = _model(dtype)
    p0 = model.arena.data.copy()
    grads = _grads(p0.size, 10, seed=1).astype(dtype)
    opt = optim.Adam(model, **kw)
    norms = _run(opt, model, grads, clip)
    b1, b2 = kw.get("betas", (0.9, 0.999))
    expect = _np_adam(p0, grads, kw["lr"], b1, b2, kw.get("eps", 1e-8), kw.get("weight_decay", 0.0),
                      kw.get("decoupled", False), clip)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(model.arena.data, expect, rtol=tol, atol=tol)
    np.testing.assert_allclose(norms, np.linalg.norm(grads.astype(np.float64), axis=1), rtol=1e-6)
    assert opt.t == 10


@pytest.mark.parametrize("which", ["sgd", "sgd_nesterov", "adam", "adamw"])
def test_matches_torch_optim(backend, which):
    torch = pytest.importorskip("torch")
    model = _model("float64")
    p0 = model.arena.data.copy()
    grads = _grads(p0.size, 10, seed=2)
    tp = torch.nn.Parameter(torch.from_numpy(p0.copy()))
    if which == "sgd":
        ours, theirs = optim.SGD(model, 0.05, momentum=0.9, weight_decay=0.01), \
            torch.optim.SGD([tp], lr=0.05, momentum=0.9, weight_decay=0.01)
    elif which == "sgd_nesterov":
        ours, theirs = optim.SGD(model, 0.05, momentum=0.9, nesterov=True), \
            torch.optim.SGD([tp], lr=0.05, momentum=0.9, nesterov=True)
    elif which == "adam":
        ours, theirs = optim.Adam(model, 1e-2, weight_decay=0.05), torch.optim.Adam([tp], lr=1e-2, weight_decay=0.05)
    else:
        ours, theirs = optim.Adam(model, 1e-2, weight_decay=0.05, decoupled=True), \
            torch.optim.AdamW([tp], lr=1e-2, weight_decay=0.05)
    for g in grads:
        model.arena.grad[:] = g
        n = ours.step(clip_norm=2.0)
        tp.grad = torch.from_numpy(g.copy())
        tn = torch.nn.utils.clip_grad_norm_([tp], 2.0)
        theirs.step()
        assert n == pytest.approx(float(tn), rel=1e-12)
    np.testing.assert_allclose(model.arena.data, tp.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_clip_does_not_modify_grad_and_returns_preclip_norm(backend):
    model = _model("float64")
    model.arena.grad[:] = 10.0
    g = model.arena.grad.copy()
    p = model.arena.data.copy()
    n = optim.SGD(model, lr=1.0).step(clip_norm=1.0)
    assert n == pytest.approx(10.0 * math.sqrt(g.size))
    np.testing.assert_array_equal(model.arena.grad, g)
    np.testing.assert_allclose(np.linalg.norm(p - model.arena.data), 1.0, rtol=1e-6)
    # below the threshold: no clipping at all
    model.arena.grad[:] = 1e-3
    p = model.arena.data.copy()
    optim.SGD(model, lr=1.0).step(clip_norm=1e3)
    np.testing.assert_allclose(p - model.arena.data, 1e-3, rtol=1e-12)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("cls", [optim.SGD, optim.Adam])
def test_nonfinite_gradient_skips_update(backend, bad, cls):
    model = _model("float32")
    model.arena.grad[:] = 0.5
    model.arena.grad[3] = bad
    p = model.arena.data.copy()
    opt = cls(model, lr=0.1)
    n = opt.step(clip_norm=1.0)
    assert not math.isfinite(n)
    n2 = opt.step()
    assert not math.isfinite(n2)
    np.testing.assert_array_equal(model.arena.data, p)
    assert opt.skipped == 2 and opt.steps == 0
    if cls is optim.Adam:
        assert opt.t == 0 and not opt.m.any()


def test_training_reduces_loss(backend):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]], np.float32)).astype(np.float32)
    model = nn.MLP([3, 16, 1], seed=0)
    opt = optim.Adam(model, lr=1e-2)
    first = None
    for _ in range(200):
        model.zero_grad()
        loss, d = gradcore.losses.mse(model(x), y)
        first = first if first is not None else loss
        model.backward(d)
        opt.step(clip_norm=5.0)
    assert loss < 0.05 * first


def test_optimizer_accepts_arena_and_zero_grad():
    a = nn.Arena([("w", (3,))], "float64")
    a.grad[:] = [1.0, 2.0, 3.0]
    opt = optim.SGD(a, lr=0.5)
    assert opt.step() == pytest.approx(math.sqrt(14))
    np.testing.assert_allclose(a.data, [-0.5, -1.0, -1.5])
    opt.zero_grad()
    assert not a.grad.any()


@pytest.mark.parametrize(
    "make, exc, msg",
    [
        (lambda m: optim.SGD(m, lr=0.0), ValueError, "SGD: lr: expected a finite number > 0.0, got 0.0"),
        (lambda m: optim.SGD(m, lr=-1.0), ValueError, "lr: expected a finite number > 0"),
        (lambda m: optim.SGD(m, lr=float("nan")), ValueError, "lr: expected a finite number > 0"),
        (lambda m: optim.Adam(m, lr=float("inf")), ValueError, "Adam: lr: expected a finite number"),
        (lambda m: optim.SGD(m, lr="0.1"), TypeError, "lr: expected a finite number > 0.0, got .0.1. .str."),
        (lambda m: optim.SGD(m, lr=0.1, momentum=-0.1), ValueError, "momentum: expected a finite number >= 0"),
        (lambda m: optim.SGD(m, lr=0.1, nesterov=True), ValueError, "nesterov=True needs momentum > 0"),
        (lambda m: optim.Adam(m, betas=(0.9, 1.0)), ValueError, "beta2: expected a finite number >= 0.0 and < 1.0"),
        (lambda m: optim.Adam(m, betas=0.9), TypeError, "betas must be a pair"),
        (lambda m: optim.Adam(m, weight_decay=-1), ValueError, "weight_decay: expected"),
        (lambda m: optim.SGD("model", lr=0.1), TypeError, "expected a gradcore.nn.Module or Arena"),
    ],
)
def test_optimizer_bad_arguments(make, exc, msg):
    with pytest.raises(exc, match=msg):
        make(_model("float32"))


def test_bad_clip_norm_and_lr_setter_change_nothing():
    model = _model("float32")
    model.arena.grad[:] = 1.0
    p = model.arena.data.copy()
    opt = optim.Adam(model)
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="clip_norm: expected a finite number > 0"):
            opt.step(clip_norm=bad)
    with pytest.raises(ValueError, match="lr: expected"):
        opt.lr = float("nan")
    assert opt.lr == 1e-3
    np.testing.assert_array_equal(model.arena.data, p)
    assert opt.t == 0


def test_optimizer_built_before_container_is_refused():
    layer = nn.Dense(2, 2)
    opt = optim.SGD(layer, lr=0.1)
    nn.Sequential(layer, nn.Dense(2, 1))  # re-homes the layer's parameters
    with pytest.raises(RuntimeError, match="build the optimizer after the model is complete"):
        opt.step()
