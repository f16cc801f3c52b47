import numpy as np
import pytest

import gradcore.reference as R
from gradcore import _kernels as K
from _fd import numgrad
from _impls import IMPLS, assert_bad_input, run_simd_paths

DT = [np.float32, np.float64]
DT_IDS = ["f32", "f64"]
LOSSES = ["mse_loss", "bce_with_logits_loss", "softmax_cross_entropy_loss"]


def _inputs(name, dtype, B=6, C=5, seed=0, scale=2.0):
    rng = np.random.default_rng(seed)
    z = (rng.standard_normal((B, C)) * scale).astype(dtype)
    if name == "mse_loss":
        t = rng.standard_normal((B, C)).astype(dtype)
    elif name == "bce_with_logits_loss":
        t = rng.random((B, C)).astype(dtype)
    else:
        t = rng.integers(0, C, B).astype(np.int64)
    return z, t


@pytest.mark.kernel
@pytest.mark.parametrize("dtype", DT, ids=DT_IDS)
@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("shape", [(1, 1), (6, 5), (33, 100)], ids=["1x1", "6x5", "33x100"])
def test_c_matches_reference(dtype, name, shape):
    z, t = _inputs(name, dtype, *shape)
    dc, dr = np.empty_like(z), np.empty_like(z)
    lc = getattr(K, name)(z, t, dc)
    lr = getattr(R, name)(z, t, dr)
    assert isinstance(lc, float)
    rtol = 1e-6 if dtype == np.float32 else 1e-13
    assert lc == pytest.approx(lr, rel=rtol, abs=1e-12)
    np.testing.assert_allclose(dc, dr, rtol=rtol * 10, atol=1e-7 if dtype == np.float32 else 1e-15)
    assert getattr(K, name)(z, t, None) == lc  # the gradient output is optional


@pytest.mark.parametrize("K_", IMPLS)
@pytest.mark.parametrize("name", LOSSES)
def test_gradient_finite_differences(K_, name):
    z, t = _inputs(name, np.float64, seed=1)
    d = np.empty_like(z)
    fn = getattr(K_, name)
    fn(z, t, d)
    np.testing.assert_allclose(d, numgrad(lambda: fn(z, t, None), z), atol=1e-8)


@pytest.mark.parametrize("K_", IMPLS)
def test_stable_for_large_logits(K_):
    z = np.array([[1e4, -1e4, 0.0], [-800.0, 800.0, 3.0]])
    lab = np.array([1, 1], dtype=np.int64)
    d = np.empty_like(z)
    loss = K_.softmax_cross_entropy_loss(z, lab, d)
    assert loss == pytest.approx((2e4 + 0.0) / 2)
    assert np.isfinite(d).all()
    np.testing.assert_allclose(d, [[0.5, -0.5, 0.0], [0.0, 0.0, 0.0]], atol=1e-12)
    t = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 1.0]])
    loss = K_.bce_with_logits_loss(z, t, d)
    # per element: max(z,0) - z t + log1p(exp(-|z|))
    expected = np.mean([0.0, 0.0, np.log(2), 0.0, 0.0, np.log1p(np.exp(-3.0))])
    assert loss == pytest.approx(expected, rel=1e-12)
    assert np.isfinite(d).all()


@pytest.mark.kernel
@pytest.mark.parametrize("name", LOSSES)
def test_matches_torch(name):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    z, t = _inputs(name, np.float64, seed=2)
    d = np.empty_like(z)
    loss = getattr(K, name)(z, t, d)
    zt = torch.from_numpy(z).requires_grad_(True)
    tt = torch.from_numpy(t)
    if name == "mse_loss":
        lt = F.mse_loss(zt, tt)
    elif name == "bce_with_logits_loss":
        lt = F.binary_cross_entropy_with_logits(zt, tt)
    else:
        lt = F.cross_entropy(zt, tt)
    lt.backward()
    assert loss == pytest.approx(lt.item(), rel=1e-12)
    np.testing.assert_allclose(d, zt.grad.numpy(), rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("K_", IMPLS)
@pytest.mark.parametrize("name", LOSSES)
def test_nan_propagates(K_, name):
    z, t = _inputs(name, np.float32, seed=3)
    z[2, 1] = np.nan
    d = np.empty_like(z)
    loss = getattr(K_, name)(z, t, d)
    assert np.isnan(loss)
    assert np.isnan(d[2, 1])


@pytest.mark.kernel
@pytest.mark.parametrize("dtype", DT, ids=DT_IDS)
@pytest.mark.parametrize("name", LOSSES)
def test_simd_paths_identical(dtype, name):
    z, t = _inputs(name, dtype, 17, 45, seed=4)

    def run():
        d = np.empty_like(z)
        return getattr(K, name)(z, t, d), d

    outs = run_simd_paths(run)
    for loss, d in outs[1:]:
        assert loss == outs[0][0]
        np.testing.assert_array_equal(d, outs[0][1])


@pytest.mark.parametrize("K_", IMPLS)
def test_bad_input(K_):
    z, t = _inputs("mse_loss", np.float32, seed=5)
    d = np.zeros_like(z)
    arrays = dict(z=z, t=t, d=d)
    assert_bad_input(K_.mse_loss, dict(pred=z, target=t.astype(np.float64), dpred=d), arrays, TypeError,
                     "target: expected dtype float32")
    assert_bad_input(K_.mse_loss, dict(pred=z, target=t[:, :4].copy(), dpred=d), arrays, ValueError, "target: expected shape")
    ro = np.zeros_like(z)
    ro.flags.writeable = False
    assert_bad_input(K_.bce_with_logits_loss, dict(logits=z, target=t, dlogits=ro), arrays, ValueError, "dlogits: .*read-only")
    assert_bad_input(K_.bce_with_logits_loss, dict(logits=z[:0], target=t[:0], dlogits=d[:0]), arrays, ValueError, "logits: expected a non-empty")
    S = K_.softmax_cross_entropy_loss
    lab = np.array([0, 1, 2, 3, 4, 0], dtype=np.int64)
    arrays["lab"] = lab
    assert_bad_input(S, dict(logits=z, labels=np.array([0, 1, 2, 3, 5, 0]), dlogits=d), arrays, ValueError,
                     r"labels: class index 5 at position 4 is out of range \[0, 5\)")
    assert_bad_input(S, dict(logits=z, labels=np.array([0, -1, 2, 3, 4, 0]), dlogits=d), arrays, ValueError, "labels: class index -1")
    assert_bad_input(S, dict(logits=z, labels=lab.astype(np.int32), dlogits=d), arrays, TypeError, "labels: expected dtype int64")
    assert_bad_input(S, dict(logits=z, labels=lab[:5], dlogits=d), arrays, ValueError, r"labels: expected shape \(6,\)")
    assert_bad_input(S, dict(logits=z[0], labels=lab, dlogits=d), arrays, ValueError, "logits: expected a 2-D")
    assert_bad_input(S, dict(logits=z, labels=lab, dlogits=np.zeros((6, 5))), arrays, TypeError, "dlogits: expected dtype float32")
