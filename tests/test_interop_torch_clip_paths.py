"""The one-pass path of gradcore.interop.torch's clipping functions (every
gradient a dense C-contiguous float32/float64 CPU tensor) gives the same
bits as the full path (``_grads.gather``) on every mix of gradients, and a
case it does not take (strided, half precision, autograd-tracked, bad
input) goes to the full path, also after good calls."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import gradcore.interop.torch as gt  # noqa: E402
from gradcore.interop.torch import clip as C  # noqa: E402


def make_params(kinds, seed):
    g = torch.Generator().manual_seed(seed)
    params = []
    for k in kinds:
        dtype = torch.float64 if k == "f64" else torch.float32
        p = torch.zeros(3, 4, dtype=torch.float16 if k == "half" else dtype, requires_grad=True)
        if k == "none":
            params.append(p)
            continue
        big = torch.randn(4, 6, generator=g, dtype=dtype) * 3
        if k == "strided":
            p.grad = big.t()[:4, :3].t()  # a (3, 4) view with strides
        elif k == "half":
            p.grad = big[:3, :4].half()
        else:
            p.grad = big[:3, :4].contiguous()
        params.append(p)
    return params


MIXES = [("f32",) * 4, ("f32", "f64", "f32"), ("f32", "none", "f64"), ("f32", "strided"), ("half", "f32"),
         ("f64",), ("none", "none")]


def both_paths(fn, kinds, seed, **kw):
    results = []
    for use_fast in (True, False):
        params = make_params(kinds, seed)
        saved = C.fast
        if not use_fast:
            C.fast = lambda *a, **k: None
        try:
            out = fn(params, **kw)
        finally:
            C.fast = saved
        results.append((out, [None if p.grad is None else p.grad.clone() for p in params]))
    return results


@pytest.mark.parametrize("kinds", MIXES, ids=lambda k: "-".join(k))
@pytest.mark.parametrize("max_norm,norm_type", [(1.0, 2.0), (100.0, 2.0), (0.5, 1.0), (2.0, float("inf")),
                                                (1.0, 3.0), (1.0, 0.0), (1.0, -2.0)])
def test_clip_grad_norm_same_bits_either_path(kinds, max_norm, norm_type):
    (a, ga), (b, gb) = both_paths(gt.clip_grad_norm_, kinds, 0, max_norm=max_norm, norm_type=norm_type)
    assert a.dtype == b.dtype and torch.equal(a, b)
    for x, y in zip(ga, gb):
        assert (x is None) == (y is None)
        if x is not None:
            assert torch.equal(x, y)


@pytest.mark.parametrize("kinds", MIXES, ids=lambda k: "-".join(k))
def test_split_api_and_value_clip_same_bits_either_path(kinds):
    def total(params):
        return gt.get_total_norm([p.grad for p in params if p.grad is not None])

    (a, _), (b, _) = both_paths(total, kinds, 1)
    assert a.dtype == b.dtype and torch.equal(a, b)
    for fn, kw in ((gt.clip_grads_with_norm_, {"max_norm": 1.0, "total_norm": 7.5}),
                   (gt.clip_grad_value_, {"clip_value": 0.7})):
        (_, ga), (_, gb) = both_paths(fn, kinds, 2, **kw)
        for x, y in zip(ga, gb):
            assert (x is None) == (y is None)
            if x is not None:
                assert torch.equal(x, y)


def test_repeated_buffer_counted_once_on_the_fast_path():
    p = torch.zeros(4, requires_grad=True)
    p.grad = torch.tensor([3.0, 0.0, 0.0, 4.0])
    norm = gt.clip_grad_norm_([p, p], 1.0)
    assert float(norm) == pytest.approx(5.0)
    torch.testing.assert_close(p.grad, torch.tensor([0.6, 0.0, 0.0, 0.8]), rtol=1e-6, atol=1e-6)


def test_bad_gradient_after_good_calls_still_refused():
    params = make_params(("f32", "f32"), 3)
    for _ in range(3):
        gt.clip_grad_norm_(params, 1.0)
    before = params[0].grad.clone()
    params[1].grad = torch.ones(3, 4).to_sparse()
    with pytest.raises(TypeError, match=r"parameters\[1\]\.grad: expected a dense"):
        gt.clip_grad_norm_(params, 1e-3)
    assert torch.equal(params[0].grad, before)  # nothing written
    buf = torch.arange(16.0)
    params[0].grad, params[1].grad = buf[:12].view(3, 4), buf[4:].view(3, 4)  # sharing memory in part
    with pytest.raises(ValueError, match=r"parameters"):
        gt.clip_grad_norm_(params, 1e-3)
    assert torch.equal(buf, torch.arange(16.0))
    with pytest.raises(TypeError, match=r"parameters\[0\]: expected a torch\.Tensor"):
        gt.clip_grad_norm_([np.zeros(3)], 1.0)


def test_nonfinite_with_error_raises_from_the_fast_path_case():
    p = torch.zeros(3, requires_grad=True)
    p.grad = torch.tensor([1.0, float("nan"), 2.0])
    with pytest.raises(RuntimeError, match=r"parameters"):
        gt.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    out = gt.clip_grad_norm_([p], 1.0)
    assert torch.isnan(out) and p.grad[0] == 1.0  # left unchanged


def test_gradients_tracked_by_autograd_take_the_full_path():
    w = torch.randn(5, requires_grad=True)
    loss = (w ** 3).sum()
    (g,) = torch.autograd.grad(loss, [w], create_graph=True)  # g requires grad
    p = torch.zeros(5, requires_grad=True)
    p.grad = g
    want = torch.linalg.vector_norm(g.detach())
    got = gt.clip_grad_norm_([p], 1e9)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(gt.get_total_norm([g]), want)
