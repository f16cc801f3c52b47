import numpy as np
import pytest

from _fd import numgrad
from gradcore import losses

pytestmark = pytest.mark.kernel  # runs the C kernels (also under AddressSanitizer in CI)


def _fd(f, x, h=1e-6):
    """Central differences of f(x) with respect to x (modified in place and restored)."""
    return numgrad(lambda: f(x), x, h)


def _data(seed=0, shape=(4, 3)):
    rng = np.random.default_rng(seed)
    return rng.normal(size=shape), rng.normal(size=shape), rng.uniform(size=shape)


def test_mse_value_and_gradcheck(backend):
    pred, target, _ = _data()
    loss, d = losses.mse(pred, target)
    assert loss == pytest.approx(np.mean((pred - target) ** 2), rel=1e-14)
    np.testing.assert_allclose(d, _fd(lambda p: losses.mse(p, target)[0], pred.copy()), rtol=1e-6, atol=1e-9)
    assert d.shape == pred.shape and d.dtype == pred.dtype


def test_bce_value_gradcheck_and_stability(backend):
    z, _, t = _data(1)
    loss, d = losses.bce_with_logits(z, t)
    s = 1 / (1 + np.exp(-z))
    assert loss == pytest.approx(np.mean(-(t * np.log(s) + (1 - t) * np.log(1 - s))), rel=1e-12)
    np.testing.assert_allclose(d, _fd(lambda p: losses.bce_with_logits(p, t)[0], z.copy()), rtol=1e-6, atol=1e-9)
    big = np.array([[1000.0, -1000.0]])
    loss, d = losses.bce_with_logits(big, np.array([[0.0, 1.0]]))
    assert loss == pytest.approx(1000.0) and np.all(np.isfinite(d))
    np.testing.assert_allclose(d, [[0.5, -0.5]])


def test_softmax_cross_entropy_value_gradcheck_and_stability(backend):
    z, _, _ = _data(2, (5, 4))
    labels = np.array([0, 3, 1, 1, 2])
    loss, d = losses.softmax_cross_entropy(z, labels)
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    assert loss == pytest.approx(-np.mean(np.log(p[np.arange(5), labels])), rel=1e-12)
    np.testing.assert_allclose(d, _fd(lambda q: losses.softmax_cross_entropy(q, labels)[0], z.copy()),
                               rtol=1e-6, atol=1e-9)
    loss32, d32 = losses.softmax_cross_entropy(z.astype(np.float32), labels.astype(np.int32))
    assert d32.dtype == np.float32 and loss32 == pytest.approx(loss, rel=1e-5)
    big = np.array([[1000.0, 0.0, -1000.0]])
    loss, d = losses.softmax_cross_entropy(big, np.array([1]))
    assert loss == pytest.approx(1000.0) and np.all(np.isfinite(d))


@pytest.mark.parametrize("name", ["mse", "bce_with_logits"])
def test_float32_matches_float64(backend, name):
    pred, target, t01 = _data(3)
    tgt = target if name == "mse" else t01
    f = getattr(losses, name)
    l64, d64 = f(pred, tgt)
    l32, d32 = f(pred.astype(np.float32), tgt.astype(np.float32))
    assert l32 == pytest.approx(l64, rel=1e-5)
    np.testing.assert_allclose(d32, d64, rtol=1e-5, atol=1e-7)


def test_nan_propagates(backend):
    pred = np.array([[np.nan, 1.0]])
    loss, d = losses.mse(pred, np.zeros((1, 2)))
    assert np.isnan(loss) and np.isnan(d[0, 0]) and d[0, 1] == 1.0


def test_loss_bad_input(backend):
    p32 = np.zeros((2, 3), np.float32)
    with pytest.raises(TypeError, match=r"target: expected dtype float32 \(pred's dtype\), got float64"):
        losses.mse(p32, np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"target: expected shape \(2, 3\) \(pred's shape\), got \(3, 2\)"):
        losses.mse(p32, np.zeros((3, 2), np.float32))
    with pytest.raises(TypeError, match="pred: expected a float32 or float64 numpy array, got list"):
        losses.mse([1.0], np.zeros(1))
    with pytest.raises(TypeError, match="expected dtype float32 or float64, got int64"):
        losses.bce_with_logits(np.zeros(3, np.int64), np.zeros(3))
    with pytest.raises(ValueError, match="non-empty"):
        losses.mse(np.zeros((0, 2)), np.zeros((0, 2)))
    with pytest.raises(ValueError, match=r"labels: class index 3 at position 1 is out of range \[0, 3\)"):
        losses.softmax_cross_entropy(p32, np.array([0, 3]))
    with pytest.raises(ValueError, match=r"labels: class index -1 at position 0"):
        losses.softmax_cross_entropy(p32, np.array([-1, 0]))
    with pytest.raises(TypeError, match="labels: expected integer class indices, got dtype float64"):
        losses.softmax_cross_entropy(p32, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"labels: expected shape \(2,\)"):
        losses.softmax_cross_entropy(p32, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="logits: expected a 2-D array"):
        losses.softmax_cross_entropy(np.zeros(3, np.float32), np.array([0]))
