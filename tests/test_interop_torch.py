"""gradcore.interop.torch gradient tools against torch.nn.utils: results,
memory (in place, zero-copy), aliasing, half precision, strides, bad input."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)  # the machine may be shared: one thread keeps these tests fast

import gradcore  # noqa: E402
import gradcore.interop.torch  # noqa: E402
from gradcore.interop.torch import (  # noqa: E402
    clip_grad_norm_,
    clip_grad_value_,
    clip_grads_with_norm_,
    get_total_norm,
    grad_arrays,
)

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

    def check(bad, exc, pattern, **kw):
        before = good.grad.clone()
        with pytest.raises(exc, match=pattern):
            clip_grad_norm_([good, bad], 1.0, **kw)
        assert torch.equal(good.grad, before)

    ints = torch.zeros(3)
    ints.grad = None
    i64 = torch.zeros(3, dtype=torch.int64)
    with pytest.raises(TypeError, match=r"tensors\[1\]: expected dtype torch.float32, torch.float64, torch.float16 or "
                                        r"torch.bfloat16, got torch.int64"):
        get_total_norm([good.grad, i64])
    meta = torch.zeros(3, device="meta", requires_grad=True)
    meta.grad = torch.ones(3, device="meta")
    check(meta, ValueError, r"parameters\[1\]\.grad: expected a CPU tensor, got device meta")
    sparse = torch.zeros(3, requires_grad=True)
    sparse.grad = torch.ones(3).to_sparse()
    check(sparse, TypeError, r"parameters\[1\]\.grad: expected a dense \(strided\) tensor")
    with pytest.raises(TypeError, match=r"parameters\[1\]: expected a torch.Tensor, got ndarray"):
        clip_grad_norm_([good, np.ones(3)], 1.0)
    for bad_max in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="max_norm"):
            clip_grad_norm_([good], bad_max)
    for bad in (True, "1", None):
        with pytest.raises(TypeError, match="max_norm"):
            clip_grad_norm_([good], bad)
    for bad in (True, "2", None, [2]):
        with pytest.raises(TypeError, match="norm_type"):
            clip_grad_norm_([good], 1.0, norm_type=bad)
    with pytest.raises(ValueError, match="norm_type"):
        clip_grad_norm_([good], 1.0, norm_type=float("nan"))
    with pytest.raises(TypeError, match="foreach"):
        clip_grad_norm_([good], 1.0, foreach="yes")
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="clip_value"):
            clip_grad_value_([good], bad)
    with pytest.raises(ValueError, match="total_norm"):
        clip_grads_with_norm_([good], 1.0, -3.0)
    with pytest.raises(ValueError, match="total_norm"):
        clip_grads_with_norm_([good], 1.0, torch.ones(2))
    assert torch.equal(good.grad, torch.tensor([30.0, 40.0, 0.0]))


@pytest.mark.parametrize("fn", ["clip_grad_norm_", "clip_grad_value_", "get_total_norm", "clip_grads_with_norm_"])
@pytest.mark.parametrize("bad", [None, 3, "abc"])
def test_not_an_iterable_of_tensors(fn, bad):
    f = getattr(gradcore.interop.torch, fn)
    args = {"clip_grad_norm_": (1.0,), "clip_grad_value_": (1.0,), "get_total_norm": (),
            "clip_grads_with_norm_": (1.0, 2.0)}[fn]
    what = "tensors" if fn == "get_total_norm" else "parameters"
    with pytest.raises(TypeError, match=rf"{what}: expected a torch.Tensor or an iterable of tensors, got "):
        f(bad, *args)


def test_norm_type_zero_and_negative_match_torch():
    params = make_params(torch.float64, with_empty=False)
    for p in (0, 0.0, -1, -0.5, -math.inf, "-inf"):
        ours, theirs = clone(params), clone(params)
        n1 = clip_grad_norm_(ours, 1.0, norm_type=p)
        n2 = torch.nn.utils.clip_grad_norm_(theirs, 1.0, norm_type=p)
        torch.testing.assert_close(n1, n2, rtol=1e-12, atol=0)
        for a, b in zip(ours, theirs):
            if a.grad is not None:
                torch.testing.assert_close(a.grad, b.grad, rtol=1e-12, atol=0)
    assert float(get_total_norm([torch.tensor([0.0, 2.0]), torch.zeros(3)], 0)) == 1.0  # tensors with a nonzero


def test_tied_parameter_counted_once():
    shared = torch.nn.Linear(4, 4, bias=False)
    model = torch.nn.Sequential(shared, torch.nn.Tanh(), shared)  # tied: parameters() lists it once
    model(torch.randn(3, 4)).sum().mul(50).backward()
    w = shared.weight
    expected = float(w.grad.double().norm())
    before = w.grad.clone()
    n = clip_grad_norm_([w, w], 1.0)  # the same tensor twice: one buffer
    assert float(n) == pytest.approx(expected, rel=1e-6)
    torch.testing.assert_close(w.grad, before * (1.0 / (expected + 1e-6)), rtol=1e-6, atol=0)  # scaled once
    # two parameters whose .grad is the same tensor (the same memory, views alike)
    a = torch.zeros(4, 4, requires_grad=True)
    a.grad = w.grad
    b = torch.zeros(4, 4, requires_grad=True)
    b.grad = w.grad.view(4, 4)
    assert float(get_total_norm([a.grad, b.grad])) == pytest.approx(float(w.grad.double().norm()), rel=1e-6)


def test_partial_overlap_refused_nothing_changed():
    base = torch.arange(10.0)
    a = torch.zeros(10, requires_grad=True)
    a.grad = base
    b = torch.zeros(5, requires_grad=True)
    b.grad = base[3:8]
    for f, args in ((clip_grad_norm_, (1.0,)), (clip_grad_value_, (1.0,)), (clip_grads_with_norm_, (1.0, 50.0))):
        with pytest.raises(ValueError, match=r"parameters\[0\] and parameters\[1\] share memory only in part"):
            f([a, b], *args)
        assert torch.equal(base, torch.arange(10.0))
    # interleaved views share a range but no element: accepted, both clipped
    c = torch.zeros(5, requires_grad=True)
    c.grad = base[0::2]
    d = torch.zeros(5, requires_grad=True)
    d.grad = base[1::2]
    n = clip_grad_norm_([c, d], 1.0)
    assert float(n) == pytest.approx(float(torch.arange(10.0).norm()), rel=1e-6)
    assert float(base.norm()) == pytest.approx(1.0, rel=1e-5)


@pytest.mark.parametrize("dtype", TORCH_DTYPES, ids=["f32", "f64"])
def test_non_contiguous_gradients_in_place(dtype):
    g = torch.Generator().manual_seed(3)
    p = torch.zeros(4, 6, dtype=dtype, requires_grad=True)
    p.grad = (torch.randn(6, 4, generator=g, dtype=dtype) * 10).t()  # transposed: non-contiguous
    q = torch.zeros(8, dtype=dtype, requires_grad=True)
    q.grad = (torch.randn(16, generator=g, dtype=dtype) * 10)[::2]
    grads = [p.grad, q.grad]
    ptrs = [t.data_ptr() for t in grads]
    ref = [t.clone() for t in grads]
    n = clip_grad_norm_([p, q], 1.0)
    expected = torch.nn.utils.get_total_norm(ref)
    torch.testing.assert_close(n, expected, rtol=1e-6, atol=0)
    assert p.grad is grads[0] and q.grad is grads[1] and [t.data_ptr() for t in grads] == ptrs
    assert not p.grad.is_contiguous()
    for t, r in zip(grads, ref):
        torch.testing.assert_close(t, r * (1.0 / (float(expected) + 1e-6)), rtol=1e-6, atol=1e-12)
    clip_grad_value_([p], 0.01)
    assert float(p.grad.abs().max()) <= 0.01 and p.grad is grads[0]
    p.grad[1, 2] = float("inf")
    with pytest.raises(gradcore.NonFiniteGradientError) as ei:
        clip_grad_norm_([q, p], 1.0, error_if_nonfinite=True)
    assert (ei.value.array_index, ei.value.flat_index) == (1, 1 * 6 + 2)  # logical (row-major) index


@pytest.mark.parametrize("half", [torch.float16, torch.bfloat16], ids=["f16", "bf16"])
def test_half_precision_gradients(half):
    p = torch.zeros(1000, dtype=half, requires_grad=True)
    p.grad = torch.full((1000,), 3e4, dtype=half)
    g0 = p.grad
    expected = float(p.grad.double().norm())  # 9.5e5: above float16's range
    n = clip_grad_norm_([p], 1.0)
    assert n.dtype == torch.float32 and float(n) == pytest.approx(expected, rel=1e-6)
    assert p.grad is g0 and p.grad.dtype == half  # in place
    assert float(p.grad.double().norm()) == pytest.approx(1.0, rel=1e-2)
    if half == torch.float16:  # torch's own norm overflows in float16 and zeroes the gradients
        q = torch.zeros(1000, dtype=half, requires_grad=True)
        q.grad = torch.full((1000,), 3e4, dtype=half)
        assert math.isinf(float(torch.nn.utils.clip_grad_norm_([q], 1.0)))
    r = torch.zeros(4, dtype=half, requires_grad=True)
    r.grad = torch.tensor([-5.0, 0.5, 3.0, float("nan")], dtype=half)
    clip_grad_value_([r], 1.0)
    assert r.grad[:3].tolist() == [-1.0, 0.5, 1.0] and math.isnan(float(r.grad[3]))
    # mixed with float64: norm in float64 over everything
    s = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    s.grad = torch.tensor([3.0, 4.0], dtype=torch.float64)
    t = torch.zeros(1, dtype=half, requires_grad=True)
    t.grad = torch.tensor([12.0], dtype=half)
    n = get_total_norm([s.grad, t.grad])
    assert n.dtype == torch.float64 and float(n) == 13.0


def test_clip_grad_value_in_place_nan_kept():
    w = torch.zeros(5, requires_grad=True)
    w.grad = torch.tensor([-5.0, 0.5, 3.0, float("nan"), -0.25])
    g = w.grad
    assert clip_grad_value_(w, 1.0) is None
    assert w.grad is g
    assert w.grad[[0, 1, 2, 4]].tolist() == [-1.0, 0.5, 1.0, -0.25] and math.isnan(float(w.grad[3]))
    before = w.grad.clone()
    clip_grad_value_([w], math.inf)  # no bound: nothing written
    assert torch.equal(w.grad.nan_to_num(), before.nan_to_num())


def test_split_api_nonfinite_and_no_clip():
    w = torch.zeros(2, requires_grad=True)
    w.grad = torch.tensor([3.0, 4.0])
    clip_grads_with_norm_([w], 10.0, torch.tensor(5.0))  # coefficient 1: nothing written
    assert w.grad.tolist() == [3.0, 4.0]
    clip_grads_with_norm_([w], 1.0, float("nan"))  # non-finite norm: gradients left as they are
    assert w.grad.tolist() == [3.0, 4.0]
    clip_grads_with_norm_([w], 1.0, 5.0)
    torch.testing.assert_close(w.grad, torch.tensor([0.6, 0.8]), rtol=1e-5, atol=0)
    assert float(get_total_norm([])) == 0.0
    w.grad[0] = float("nan")
    with pytest.raises(RuntimeError, match="tensors"):
        get_total_norm([w.grad], error_if_nonfinite=True)
