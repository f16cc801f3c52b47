"""The one-layer path of gradcore.interop.torch.RNN / LSTM / GRU (one layer,
one direction, no hx) against torch.nn.*: gradients that accumulate over
two backwards, weights whose memory or dtype changes between calls,
create_graph, graphs without anything to differentiate, thread safety of
the buffer pool, the error path after a first good call."""

import threading

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

import gradcore.interop.torch as gt  # noqa: E402

KINDS = {"rnn_tanh": (gt.RNN, torch.nn.RNN, {}), "rnn_relu": (gt.RNN, torch.nn.RNN, {"nonlinearity": "relu"}),
         "lstm": (gt.LSTM, torch.nn.LSTM, {}), "gru": (gt.GRU, torch.nn.GRU, {})}
TOL = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float64: dict(rtol=1e-10, atol=1e-10)}


def pair(kind, dtype=torch.float64, **kw):
    ours_cls, torch_cls, extra = KINDS[kind]
    torch.manual_seed(0)
    ours = ours_cls(3, 5, **extra, **kw).to(dtype)
    ref = torch_cls(3, 5, **extra, **kw).to(dtype)
    ref.load_state_dict(ours.state_dict())
    return ours, ref


def loss_of(module, x):
    out, h = module(x)
    h = h[0] if isinstance(h, tuple) else h
    g = torch.Generator().manual_seed(3)
    return (out * torch.randn(out.shape, generator=g, dtype=out.dtype)).sum() + h.pow(2).sum()


def inputs(dtype=torch.float64, shape=(6, 2, 3), seed=1):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("bias", [True, False])
def test_gradients_accumulate_over_two_backwards(kind, bias):
    ours, ref = pair(kind, bias=bias)
    for m in (ours, ref):
        m.zero_grad()
        loss_of(m, inputs(seed=1)).backward()
        loss_of(m, inputs(seed=2)).backward()  # no zero_grad: added into .grad
    for (name, a), b in zip(ours.named_parameters(), ref.parameters()):
        torch.testing.assert_close(a.grad, b.grad, **TOL[torch.float64], msg=name)
    assert len({p.grad.data_ptr() for p in ours.parameters()}) == len(list(ours.parameters()))


@pytest.mark.parametrize("kind", list(KINDS))
def test_weights_replaced_or_converted_between_calls(kind):
    ours, ref = pair(kind, torch.float32)
    x = inputs(torch.float32)
    torch.testing.assert_close(ours(x)[0], ref(x)[0], **TOL[torch.float32])
    new = torch.randn_like(ours.weight_hh_l0)
    ours.weight_hh_l0.data = new.clone()  # new memory under the same Parameter
    ref.weight_hh_l0.data = new.clone()
    torch.testing.assert_close(ours(x)[0], ref(x)[0], **TOL[torch.float32])
    with torch.no_grad():
        ours.weight_ih_l0.mul_(0.5), ref.weight_ih_l0.mul_(0.5)  # same memory, new values
    torch.testing.assert_close(ours(x)[0], ref(x)[0], **TOL[torch.float32])
    ours.double(), ref.double()
    xd = x.double()
    a, b = loss_of(ours, xd), loss_of(ref, xd)
    a.backward(), b.backward()
    torch.testing.assert_close(a, b, **TOL[torch.float64])
    with pytest.raises(TypeError, match=r"input: expected dtype torch\.float64 .* got torch\.float32"):
        ours(x)


@pytest.mark.parametrize("kind", list(KINDS))
def test_create_graph_and_input_gradient(kind):
    ours, ref = pair(kind)
    grads = []
    for m in (ours, ref):
        x = inputs().requires_grad_(True)
        loss = loss_of(m, x)
        gs = torch.autograd.grad(loss, [x] + list(m.parameters()), create_graph=True)
        grads.append(gs)
    for a, b in zip(*grads):
        torch.testing.assert_close(a.detach(), b.detach(), **TOL[torch.float64])


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh"])
def test_nothing_to_differentiate_gives_buffers_back(kind):
    ours, ref = pair(kind)
    x = inputs()
    loss_of(ours, x).backward()  # fills the pool
    free = sum(len(v) for v in ours._gc_views[2].free.values())
    for p in ours.parameters():
        p.requires_grad_(False)
    out, _ = ours(x)  # grad mode on, but nothing requires grad: no graph
    assert out.grad_fn is None and not out.requires_grad
    assert sum(len(v) for v in ours._gc_views[2].free.values()) == free
    torch.testing.assert_close(out, ref(x)[0], **TOL[torch.float64])


@pytest.mark.parametrize("kind", list(KINDS))
def test_threads_sharing_a_module(kind):
    ours, ref = pair(kind)
    xs = [inputs(seed=s) for s in range(8)]
    want = []
    for x in xs:
        ref.zero_grad()
        loss_of(ref, x).backward()
        want.append((loss_of(ref, x).detach(), ref.weight_hh_l0.grad.clone()))
    got = [None] * len(xs)
    errors = []

    def work(i):
        try:
            for _ in range(5):
                x = xs[i].clone().requires_grad_(True)
                loss = loss_of(ours, x)
                g = torch.autograd.grad(loss, [ours.weight_hh_l0])[0]
                got[i] = (loss.detach(), g)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for (la, ga), (lb, gb) in zip(got, want):
        torch.testing.assert_close(la, lb, **TOL[torch.float64])
        torch.testing.assert_close(ga, gb, **TOL[torch.float64])


def test_bad_input_after_good_calls_names_the_fault():
    lstm = gt.LSTM(3, 5)
    lstm(inputs(torch.float32))
    with pytest.raises(ValueError, match=r"input: expected input_size 3"):
        lstm(torch.randn(6, 2, 4))
    with pytest.raises(ValueError, match=r"at least one step"):
        lstm(torch.randn(0, 2, 3))
    with pytest.raises(TypeError, match=r"input: expected a torch\.Tensor"):
        lstm(np.zeros((6, 2, 3), np.float32))
    with pytest.raises(NotImplementedError, match=r"on device meta"):
        lstm(torch.randn(6, 2, 3, device="meta"))
    lstm.weight_hh_l0.data = lstm.weight_hh_l0.data.double()
    with pytest.raises(TypeError, match=r"weight_hh_l0: expected dtype torch\.float32"):
        lstm(inputs(torch.float32))


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("layout", [{}, {"num_layers": 2}, {"bidirectional": True}, {"batch_first": True}])
def test_output_changed_in_place_before_backward_raises(kind, layout):
    # one direction: the BPTT reads the returned output's memory: changed in
    # place, it would bend the gradients silently; torch's in-place error is
    # raised instead. Two directions: the BPTT reads its own copies, and the
    # gradients match torch's after the change
    ours, ref = pair(kind, **layout)
    out, _ = ours(inputs())
    out.mul_(2)
    if layout.get("bidirectional"):
        out.sum().backward()
        (ref(inputs())[0] * 2).sum().backward()
        for p, q in zip(ours.parameters(), ref.parameters()):
            torch.testing.assert_close(p.grad, q.grad)
        ours.zero_grad()
    else:
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            out.sum().backward()
    # unchanged, the same graph shape backpropagates (and a fresh call still works)
    out, _ = ours(inputs())
    (out * 2).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in ours.parameters())


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("shape", [(6, 2, 3), (6, 3)])
def test_first_call_without_gradients_matches_torch(kind, shape):
    # a fresh module under no_grad, and frozen weights, batched and unbatched
    ours, ref = pair(kind)
    x = inputs(shape=shape)
    with torch.no_grad():
        got, want = ours(x), ref(x)
    torch.testing.assert_close(got[0], want[0], **TOL[torch.float64])
    ours2, ref2 = pair(kind)
    ours2.requires_grad_(False)
    torch.testing.assert_close(ours2(x)[0], ref2(x)[0], **TOL[torch.float64])


@pytest.mark.parametrize("nonlinearity", ["rnn_tanh", "rnn_relu"])
@pytest.mark.parametrize("layout", [{}, {"num_layers": 2}])
def test_weight_transposed_in_its_own_memory_is_refused(nonlinearity, layout):
    # w.data = w.data.t() on a square weight keeps the data pointer (not the
    # strides): the cached views must not be reused, and the kernels cannot
    # read a non-contiguous weight, so the module names it
    ours, ref = pair(nonlinearity, **layout)
    x = inputs()
    ours(x)  # views of the weights now cached
    w = ours.weight_hh_l0
    ptr = w.data_ptr()
    w.data = w.data.t()
    assert ours.weight_hh_l0.data_ptr() == ptr
    with pytest.raises(NotImplementedError, match=r"non-contiguous weight_hh_l0 .*torch\.nn\.RNN"):
        ours(x)
    w.data = w.data.contiguous()  # the transposed values in their own memory: as torch computes them
    ref.weight_hh_l0.data = ref.weight_hh_l0.data.t().contiguous()
    torch.testing.assert_close(ours(x)[0], ref(x)[0], **TOL[torch.float64])


def test_second_backward_of_an_elman_layer_reuses_its_states():
    ours, ref = pair("rnn_tanh")
    x = inputs()
    for m in (ours, ref):
        loss = loss_of(m, x)
        loss.backward(retain_graph=True)
        loss.backward()
    for p, q in zip(ours.parameters(), ref.parameters()):
        torch.testing.assert_close(p.grad, q.grad, **TOL[torch.float64])


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("cls", ["RNN", "LSTM", "GRU"])
def test_second_derivatives_raise_instead_of_being_dropped(cls, num_layers):
    """The fused BPTT has no derivative of its own (torch's
    once_differentiable): a gradient penalty through the module
    (create_graph=True, then a second backward into every leaf) raises
    instead of giving gradients that miss the layer's second-order part;
    first derivatives under create_graph still match torch.nn.*."""
    import gradcore.interop.torch as gt

    torch.manual_seed(0)
    m = getattr(gt, cls)(3, 4, num_layers=num_layers).double()
    ref = getattr(torch.nn, cls)(3, 4, num_layers=num_layers).double()
    ref.load_state_dict(m.state_dict())
    head = torch.nn.Linear(4, 1).double()
    x = torch.randn(5, 2, 3, dtype=torch.double)
    grads = []
    for r in (m, ref):
        loss = head(r(x)[0]).sum()
        grads.append(torch.autograd.grad(loss, [head.weight, r.weight_hh_l0], create_graph=True))
    for u, v in zip(*grads):
        torch.testing.assert_close(u, v, rtol=1e-10, atol=1e-12)
    penalty = sum((g ** 2).sum() for g in grads[0])
    with pytest.raises(RuntimeError, match="once_differentiable"):
        penalty.backward()
