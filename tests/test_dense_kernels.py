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
