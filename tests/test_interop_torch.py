"""gradcore.interop.torch.clip_grad_norm_ against torch.nn.utils.clip_grad_norm_."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import gradcore  # noqa: E402
from gradcore.interop.torch import clip_grad_norm_, grad_arrays  # noqa: E402

TORCH_DTYPES = [torch.float32, torch.float64]


def make_params(dtype, seed=0, scale=10.0, with_none=True, with_empty=True):
    g = torch.Generator().manual_seed(seed)
    shapes = [(16, 8), (16,), (4, 3, 5), (1,)] + ([(0, 3)] if with_empty else [])
    params = []
    for s in shapes:
        p = torch.zeros(s, dtype=dtype, requires_grad=True)
        p.grad = torch.randn(s, generator=g, dtype=dtype) * scale
        params.append(p)
    if with_none:
        params.insert(2, torch.zeros(3, dtype=dtype, requires_grad=True))  # no grad: skipped
    return params


def clone(params):
    out = []
    for p in params:
        q = p.detach().clone().requires_grad_(True)
        q.grad = None if p.grad is None else p.grad.clone()
        out.append(q)
    return out


@pytest.mark.parametrize("dtype", TORCH_DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf, 3.0, "inf"])
@pytest.mark.parametrize("max_norm", [1.0, 1e6])
def test_matches_torch(dtype, norm_type, max_norm):
    # torch refuses the inf-norm of an empty gradient; gradcore takes it as 0
    ours = make_params(dtype, with_empty=float(norm_type) != math.inf)
    theirs = clone(ours)
    n1 = clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    n2 = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    assert isinstance(n1, torch.Tensor) and n1.dim() == 0 and n1.dtype == n2.dtype == dtype
    rtol = 1e-6 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(n1, n2, rtol=rtol, atol=0)
    for p, q in zip(ours, theirs):
        if p.grad is None:
            assert q.grad is None
        else:
            torch.testing.assert_close(p.grad, q.grad, rtol=rtol, atol=1e-12)


def test_zero_copy_and_generator_input():
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2))
    model(torch.randn(4, 6)).pow(2).sum().mul(100).backward()
    ptrs = [p.grad.data_ptr() for p in model.parameters()]
    expected = torch.nn.utils.clip_grad_norm_(clone(list(model.parameters())), 0.5)
    n = clip_grad_norm_(model.parameters(), 0.5)  # a generator, like model.parameters()
    torch.testing.assert_close(n, expected, rtol=1e-6, atol=0)
    assert [p.grad.data_ptr() for p in model.parameters()] == ptrs  # scaled in place
    total = math.sqrt(sum(float(p.grad.double().pow(2).sum()) for p in model.parameters()))
    assert total == pytest.approx(0.5, rel=1e-5)
    arrays = grad_arrays(list(model.parameters()))
    assert all(np.shares_memory(a, p.grad.numpy()) for a, p in zip(arrays, model.parameters()))


def test_inf_norm_with_an_empty_gradient():
    params = make_params(torch.float64)
    n = clip_grad_norm_(params, 1e9, norm_type=math.inf)
    assert float(n) == max(float(p.grad.abs().max()) for p in params if p.grad is not None and p.grad.numel())


def test_single_tensor_and_no_grads():
    p = torch.zeros(3, requires_grad=True)
    p.grad = torch.tensor([16.0, 12.0, -8.0])
    n = clip_grad_norm_(p, 5.0)
    assert float(n) == pytest.approx(21.5407, abs=1e-4)
    torch.testing.assert_close(p.grad, torch.tensor([3.7139, 2.7854, -1.8570]), atol=1e-4, rtol=0)
    q = torch.zeros(3, requires_grad=True)
    assert float(clip_grad_norm_([q], 1.0)) == 0.0 and q.grad is None
    assert float(clip_grad_norm_([], 1.0)) == 0.0


def test_mixed_dtypes_return_float64():
    a = torch.zeros(2, requires_grad=True)
    a.grad = torch.tensor([3.0, 0.0])
    b = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    b.grad = torch.tensor([0.0, 4.0], dtype=torch.float64)
    n = clip_grad_norm_([a, b], 1.0)
    assert n.dtype == torch.float64 and float(n) == 5.0
    torch.testing.assert_close(a.grad, torch.tensor([0.6, 0.0]), rtol=1e-6, atol=0)


def test_float32_overflow_safe_where_torch_is_not():
    p = torch.zeros(1000, requires_grad=True)
    p.grad = torch.full((1000,), 1e20)
    q = clone([p])[0]
    n = clip_grad_norm_([p], 1.0)
    assert math.isfinite(float(n)) and float(n) == pytest.approx(1e20 * math.sqrt(1000), rel=1e-6)
    assert float(p.grad.double().norm()) == pytest.approx(1.0, rel=1e-5)
    assert float(torch.nn.utils.clip_grad_norm_([q], 1.0)) == math.inf  # torch overflows in float32


def test_nonfinite_left_unchanged_or_raises():
    params = make_params(torch.float32, with_none=False)
    params[1].grad[5] = float("nan")
    before = [p.grad.clone() for p in params]
    n = clip_grad_norm_(params, 1.0)
    assert math.isnan(float(n))
    for p, b in zip(params, before):
        assert torch.equal(p.grad.isnan(), b.isnan()) and torch.equal(p.grad.nan_to_num(), b.nan_to_num())
    with pytest.raises(RuntimeError) as ei:  # torch code catching RuntimeError still works
        clip_grad_norm_(params, 1.0, error_if_nonfinite=True)
    assert isinstance(ei.value, gradcore.NonFiniteGradientError)
    assert (ei.value.array_index, ei.value.flat_index, ei.value.n_nan) == (1, 5, 1)


def test_bad_parameters_clear_errors_nothing_changed():
    good = torch.zeros(3, requires_grad=True)
    good.grad = torch.tensor([30.0, 40.0, 0.0])

    def check(bad, exc, pattern):
        before = good.grad.clone()
        with pytest.raises(exc, match=pattern):
            clip_grad_norm_([good, bad], 1.0)
        assert torch.equal(good.grad, before)

    half = torch.zeros(3, dtype=torch.float16, requires_grad=True)
    half.grad = torch.ones(3, dtype=torch.float16)
    check(half, TypeError, r"parameters\[1\]\.grad: expected dtype torch.float32 or torch.float64, got torch.float16")
    nc = torch.zeros(4, 6, requires_grad=True)
    nc.grad = torch.ones(6, 4).t()
    check(nc, ValueError, r"parameters\[1\]\.grad: expected a contiguous gradient")
    meta = torch.zeros(3, device="meta", requires_grad=True)
    meta.grad = torch.ones(3, device="meta")
    check(meta, ValueError, r"parameters\[1\]\.grad: expected a CPU tensor, got device meta")
    with pytest.raises(TypeError, match=r"parameters\[1\]: expected a torch.Tensor, got ndarray"):
        clip_grad_norm_([good, np.ones(3)], 1.0)
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm_([good], -1.0)
    with pytest.raises(ValueError, match="ord"):
        clip_grad_norm_([good], 1.0, norm_type=0)
