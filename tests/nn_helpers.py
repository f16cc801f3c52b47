"""Shared helpers for the gradcore.nn tests: gradient checks by central finite
differences (tests/_fd.py)."""

import numpy as np

from _fd import central_diff, numgrad


def loss_of(model, x, dy):
    return float(np.sum(model(x) * dy))


def gradcheck(model, x, seed=0, h=1e-6, max_params=60, rtol=1e-6, atol=1e-8, check_dx=True):
    """Compare backward() with central differences of L = sum(model(x) * dy)
    for (a sample of) every parameter and every input element (float64)."""
    rng = np.random.default_rng(seed)
    y = model(x)
    dy = rng.normal(size=y.shape)
    model.zero_grad()
    model(x)
    dx = model.backward(dy)
    dx = None if dx is None else dx.copy()
    analytic = model.arena.grad.copy()
    data = model.arena.data
    idx = np.arange(data.size)
    if data.size > max_params:
        idx = rng.choice(data.size, max_params, replace=False)

    def f():
        return loss_of(model, x, dy)

    for i in idx:
        num = central_diff(f, data, i, h)
        assert abs(num - analytic[i]) <= atol + rtol * max(abs(num), 1.0) * 10, \
            f"param {i}: numeric {num} vs analytic {analytic[i]}"
    if check_dx and dx is not None:
        num_dx = numgrad(f, x, h).reshape(-1)
        np.testing.assert_allclose(dx.reshape(-1), num_dx, rtol=rtol * 10, atol=atol * 10)
    return analytic, dx
