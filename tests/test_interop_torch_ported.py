"""PyTorch's own clip-gradient tests (``test_clip_grad_norm``,
``test_clip_grad_value`` of torch's nn tests), run against
``gradcore.interop.torch`` and extended to every order torch accepts (0,
negative, -inf) and to float64. Each case also compares the gradients with
what ``torch.nn.utils`` leaves in a copy of the same parameters."""

import math

import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)  # the machine may be shared: one thread keeps these tests fast

from torch import inf, nn  # noqa: E402

from gradcore.interop.torch import (  # noqa: E402
    clip_grad_norm_,
    clip_grad_value_,
    clip_grads_with_norm_,
    get_total_norm,
)

TORCH_ORDERS = [0.5, 1.5, 2, 4, "inf"]              # the orders in torch's test
MORE_ORDERS = [1, 3, 0, -1, -0.5, -2, "-inf", -inf]  # every other kind torch accepts
FOREACH = [None, True, False]
DTYPES = [torch.float32, torch.float64]


def compute_norm(l, norm_type):
    """torch's test helper for p > 0 and inf; torch itself for the others."""
    norm_type = float(norm_type)
    if norm_type == inf:
        return max(p.grad.data.abs().max() for p in l.parameters())
    if norm_type > 0:
        total_norm = 0
        for p in l.parameters():
            total_norm += p.grad.data.abs().pow(norm_type).sum()
        return pow(total_norm, 1.0 / norm_type)
    return torch.nn.utils.get_total_norm([p.grad for p in l.parameters()], norm_type)


def compare_scaling(l, grads):
    p_scale = [p.grad.data.div(g).view(-1) for p, g in zip(l.parameters(), grads)]
    scale = torch.cat(p_scale)
    torch.testing.assert_close(scale.std(), torch.zeros((), dtype=scale.dtype))  # torch's assertEqual(std, 0)
    return scale[0]


def twin(l):
    t = nn.Linear(10, 10).to(l.weight.dtype)
    t.load_state_dict(l.state_dict())
    for p, q in zip(l.parameters(), t.parameters()):
        q.grad = p.grad.clone()
    return t


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("foreach", FOREACH, ids=["foreach_none", "foreach", "no_foreach"])
@pytest.mark.parametrize("norm_type", TORCH_ORDERS + MORE_ORDERS, ids=str)
def test_clip_grad_norm(norm_type, foreach, dtype):
    l = nn.Linear(10, 10).to(dtype)
    max_norm = 2
    p_order = float(norm_type)
    homogeneous = p_order != 0  # the 0-"norm" (a count) does not scale with the gradients

    grads = torch.arange(1.0, 101, dtype=dtype).view(10, 10), torch.ones(10, dtype=dtype).div(1000)
    for p, g in zip(l.parameters(), grads):
        p._grad = g.clone().view_as(p.data)
    ref = twin(l)
    norm_before = compute_norm(l, norm_type)
    norm = clip_grad_norm_(l.parameters(), max_norm, norm_type=norm_type, foreach=foreach)
    norm_ref = torch.nn.utils.clip_grad_norm_(ref.parameters(), max_norm, norm_type=norm_type)
    norm_after = compute_norm(l, norm_type)
    torch.testing.assert_close(norm, norm_before)
    torch.testing.assert_close(norm, norm_ref)
    if homogeneous and norm_before > max_norm:
        torch.testing.assert_close(norm_after, torch.tensor(max_norm, dtype=norm_after.dtype), rtol=1e-5, atol=1e-5)
    assert norm_after <= norm_before
    compare_scaling(l, grads)
    for p, q in zip(l.parameters(), ref.parameters()):
        torch.testing.assert_close(p.grad, q.grad)

    # Small gradients should be left unchanged
    grads = torch.rand(10, 10, dtype=dtype).div(10000), torch.ones(10, dtype=dtype).div(500)
    for p, g in zip(l.parameters(), grads):
        p.grad.data.copy_(g)
    ref = twin(l)
    norm_before = compute_norm(l, norm_type)
    norm = clip_grad_norm_(l.parameters(), max_norm, norm_type=norm_type, foreach=foreach)
    torch.nn.utils.clip_grad_norm_(ref.parameters(), max_norm, norm_type=norm_type)
    norm_after = compute_norm(l, norm_type)
    torch.testing.assert_close(norm, norm_before)
    scale = compare_scaling(l, grads)
    if homogeneous:
        torch.testing.assert_close(norm_before, norm_after)
        assert norm_after <= max_norm
        torch.testing.assert_close(scale, torch.ones((), dtype=scale.dtype))
    # the 0-"norm" counts the 2 tensors: 2 / (2 + 1e-6) < 1 scales, in torch too
    for p, q in zip(l.parameters(), ref.parameters()):
        torch.testing.assert_close(p.grad, q.grad)

    # Should accept a single Tensor as input
    p1, p2 = torch.randn(10, 10, dtype=dtype), torch.randn(10, 10, dtype=dtype)
    g = torch.arange(1.0, 101, dtype=dtype).view(10, 10)
    p1._grad = g.clone()
    p2._grad = g.clone()
    clip_grad_norm_(p1, max_norm, norm_type=norm_type, foreach=foreach)
    clip_grad_norm_([p2], max_norm, norm_type=norm_type, foreach=foreach)
    assert torch.equal(p1.grad, p2.grad)

    # The split API (get_total_norm + clip_grads_with_norm_) equals clip_grad_norm_
    p3 = torch.randn(10, 10, dtype=dtype)
    p3._grad = g.clone()
    total = get_total_norm([p3.grad], norm_type=norm_type, foreach=foreach)
    torch.testing.assert_close(total, torch.nn.utils.get_total_norm([g.clone()], norm_type=norm_type))
    clip_grads_with_norm_([p3], max_norm, total, foreach=foreach)
    p4 = torch.randn(10, 10, dtype=dtype)
    p4._grad = g.clone()
    clip_grad_norm_([p4], max_norm, norm_type=norm_type, foreach=foreach)
    assert torch.equal(p3.grad, p4.grad)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("foreach", FOREACH, ids=["foreach_none", "foreach", "no_foreach"])
def test_clip_grad_value(foreach, dtype):
    l = nn.Linear(10, 10).to(dtype)
    clip_value = 2.5

    grad_w = torch.arange(-50.0, 50, dtype=dtype).view(10, 10).div_(5)
    grad_b = torch.ones(10, dtype=dtype).mul_(2)
    for grad_list in [[grad_w, grad_b], [grad_w, None]]:
        for p, g in zip(l.parameters(), grad_list):
            p._grad = g.clone().view_as(p.data) if g is not None else g
        ref = [None if p.grad is None else p.grad.clone() for p in l.parameters()]
        clip_grad_value_(l.parameters(), clip_value, foreach=foreach)
        for p in filter(lambda p: p.grad is not None, l.parameters()):
            assert p.grad.data.max() <= clip_value
            assert p.grad.data.min() >= -clip_value
        for p, r in zip(l.parameters(), ref):
            if r is not None:
                assert torch.equal(p.grad, r.clamp(-clip_value, clip_value))

    # Should accept a single Tensor as input
    p1, p2 = torch.randn(10, 10, dtype=dtype), torch.randn(10, 10, dtype=dtype)
    g = torch.arange(-50.0, 50, dtype=dtype).view(10, 10).div_(5)
    p1._grad = g.clone()
    p2._grad = g.clone()
    clip_grad_value_(p1, clip_value, foreach=foreach)
    clip_grad_value_([p2], clip_value, foreach=foreach)
    assert torch.equal(p1.grad, p2.grad)


@pytest.mark.parametrize("norm_type", TORCH_ORDERS + MORE_ORDERS, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_total_norm_random_tensors(norm_type, dtype):
    """Random gradients of many shapes (with zeros and ties of |x|), mixed
    float32/float64 when dtype is float64: torch's value to its tolerance."""
    g = torch.Generator().manual_seed(sorted(map(str, TORCH_ORDERS + MORE_ORDERS)).index(str(norm_type)))
    ts = [torch.randn(s, generator=g, dtype=dtype) * 3 for s in [(7, 5), (11,), (2, 3, 4), (1,)]]
    ts[1][3] = 0.0
    if dtype == torch.float64:
        ts.append(torch.randn(9, generator=g))
    torch.testing.assert_close(get_total_norm(ts, norm_type), torch.nn.utils.get_total_norm(ts, norm_type))
    assert math.isfinite(float(get_total_norm(ts, norm_type))) or float(norm_type) < 0
