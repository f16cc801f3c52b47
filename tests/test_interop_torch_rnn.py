"""gradcore.interop.torch.RNN / LSTM / GRU against torch.nn.RNN / LSTM / GRU:
outputs, states and gradients for every configuration, gradcheck in
float64, state dicts both ways, pickling, per-step gradient norms against an
unrolled torch cell with retain_grad, clear errors for what is unsupported."""

import copy
import io
import itertools
import math
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)  # the machine may be shared: one thread keeps these tests fast

import gradcore.interop.torch as gt  # noqa: E402

KINDS = {  # name -> (our class, torch class, extra constructor kwargs)
    "rnn_tanh": (gt.RNN, torch.nn.RNN, {}),
    "rnn_relu": (gt.RNN, torch.nn.RNN, {"nonlinearity": "relu"}),
    "lstm": (gt.LSTM, torch.nn.LSTM, {}),
    "gru": (gt.GRU, torch.nn.GRU, {}),
}
TOL = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float64: dict(rtol=1e-10, atol=1e-10)}


def pair(kind, dtype, seed=0, **kw):
    ours_cls, torch_cls, extra = KINDS[kind]
    torch.manual_seed(seed)
    ours = ours_cls(4, 6, **extra, **kw).to(dtype)
    ref = torch_cls(4, 6, **extra, **kw).to(dtype)
    ref.load_state_dict(ours.state_dict())
    return ours, ref


def make_input(dtype, T, B, batch_first, unbatched, seed=1):
    g = torch.Generator().manual_seed(seed)
    shape = (T, 4) if unbatched else ((B, T, 4) if batch_first else (T, B, 4))
    return torch.randn(shape, generator=g, dtype=dtype)


def make_hx(kind, dtype, L, D, B, unbatched, seed=2):
    g = torch.Generator().manual_seed(seed)
    shape = (L * D, 6) if unbatched else (L * D, B, 6)
    h = torch.randn(shape, generator=g, dtype=dtype)
    if kind == "lstm":
        return (h, torch.randn(shape, generator=g, dtype=dtype))
    return h


def run(module, x, hx):
    x = x.clone().requires_grad_(True)
    if hx is not None:
        hx = tuple(t.clone().requires_grad_(True) for t in hx) if isinstance(hx, tuple) else hx.clone().requires_grad_(True)
    out, state = module(x, hx)
    hs = state if isinstance(state, tuple) else (state,)
    g = torch.Generator().manual_seed(5)
    loss = (out * torch.randn(out.shape, generator=g, dtype=out.dtype)).sum()
    for h in hs:
        loss = loss + (h * torch.randn(h.shape, generator=g, dtype=h.dtype)).sum()
    loss.backward()
    grads = [x.grad] + ([t.grad for t in hx] if isinstance(hx, tuple) else ([hx.grad] if hx is not None else []))
    grads += [p.grad for p in module.parameters()]
    return [out, *hs], grads


CONFIGS = list(itertools.product(KINDS, [1, 2, 3], [False, True], [False, True], [True, False]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("kind,L,bidirectional,batch_first,bias", CONFIGS,
                         ids=lambda v: str(v))
def test_parity_with_torch(kind, L, bidirectional, batch_first, bias, dtype):
    ours, ref = pair(kind, dtype, num_layers=L, bidirectional=bidirectional, batch_first=batch_first, bias=bias)
    D = 2 if bidirectional else 1
    for with_hx, unbatched in ((False, False), (True, False), (False, True), (True, True)):
        x = make_input(dtype, 5, 3, batch_first, unbatched)
        hx = make_hx(kind, dtype, L, D, 3, unbatched) if with_hx else None
        ours.zero_grad(), ref.zero_grad()
        outs1, grads1 = run(ours, x, hx)
        outs2, grads2 = run(ref, x, hx)
        for a, b in zip(outs1, outs2):
            assert a.shape == b.shape
            torch.testing.assert_close(a, b, **TOL[dtype])
        for a, b in zip(grads1, grads2):
            torch.testing.assert_close(a, b, **TOL[dtype])
        norms = ours.timestep_grad_norms
        assert norms.shape == ((5,) if L * D == 1 else (L * D, 5)) and np.all(np.isfinite(norms))


LAYOUTS = ("time-major", "batch-first", "unbatched")
# every (kind, layers, bidirectional, bias, initial state), each with one of the layouts in turn
GRADCHECK = [c + (LAYOUTS[i % 3],) for i, c in
             enumerate(itertools.product(KINDS, [1, 2], [False, True], [True, False], [False, True]))]


@pytest.mark.parametrize("kind,L,bidirectional,bias,with_hx,layout", GRADCHECK, ids=lambda v: str(v))
def test_gradcheck_float64(kind, L, bidirectional, bias, with_hx, layout):
    """Every configuration, with gradcheck's fast mode (random projections
    of the Jacobian: a full check of vJu for random u, v)."""
    _gradcheck(kind, L, bidirectional, bias, with_hx, layout, fast_mode=True)


@pytest.mark.slow
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("kind,L,bidirectional,bias,with_hx",
                         list(itertools.product(KINDS, [1, 2, 3], [False, True], [True, False], [False, True])),
                         ids=lambda v: str(v))
def test_gradcheck_float64_full_jacobian(kind, L, bidirectional, bias, with_hx, layout):
    _gradcheck(kind, L, bidirectional, bias, with_hx, layout, fast_mode=False)


def _gradcheck(kind, L, bidirectional, bias, with_hx, layout, fast_mode):
    ours_cls, _, extra = KINDS[kind]
    torch.manual_seed(0)
    m = ours_cls(2, 3, num_layers=L, bidirectional=bidirectional, bias=bias,
                 batch_first=layout == "batch-first", **extra).double()
    names = [n for n, _ in m.named_parameters()]
    D = 2 if bidirectional else 1
    x = torch.randn({"time-major": (3, 2, 2), "batch-first": (2, 3, 2), "unbatched": (3, 2)}[layout],
                    dtype=torch.float64, requires_grad=True)
    state = (L * D, 3) if layout == "unbatched" else (L * D, 2, 3)
    hs = [torch.randn(state, dtype=torch.float64, requires_grad=True)
          for _ in range((2 if kind == "lstm" else 1) if with_hx else 0)]
    params = [p.detach().clone().requires_grad_(True) for p in m.parameters()]

    def f(x, *rest):
        states, ps = rest[:len(hs)], rest[len(hs):]
        hx = None if not hs else (tuple(states) if kind == "lstm" else states[0])
        out, state = torch.func.functional_call(m, dict(zip(names, ps)), (x, hx))
        hn = state[0] if kind == "lstm" else state
        extra_out = (state[1],) if kind == "lstm" else ()
        return (out, hn) + extra_out

    assert torch.autograd.gradcheck(f, (x, *hs, *params), eps=1e-6, atol=1e-7, rtol=1e-5, fast_mode=fast_mode)


@pytest.mark.parametrize("kind", list(KINDS))
def test_state_dict_both_ways_pickle_deepcopy(kind):
    ours, ref = pair(kind, torch.float32, num_layers=2, bidirectional=True)
    assert list(ours.state_dict()) == list(ref.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in ref.named_parameters()]
    torch.manual_seed(9)
    other = KINDS[kind][1](4, 6, num_layers=2, bidirectional=True, **KINDS[kind][2])
    ours.load_state_dict(other.state_dict())  # torch -> gradcore
    back = KINDS[kind][1](4, 6, num_layers=2, bidirectional=True, **KINDS[kind][2])
    back.load_state_dict(ours.state_dict())  # gradcore -> torch
    x = make_input(torch.float32, 6, 2, False, False)
    torch.testing.assert_close(ours(x)[0], other(x)[0], **TOL[torch.float32])
    torch.testing.assert_close(back(x)[0], other(x)[0], **TOL[torch.float32])
    ours(x)[0].sum().backward()
    for clone in (pickle.loads(pickle.dumps(ours)), copy.deepcopy(ours)):
        assert type(clone) is type(ours)
        torch.testing.assert_close(clone(x)[0], ours(x)[0], rtol=0, atol=0)
    buf = io.BytesIO()
    torch.save(ours.state_dict(), buf)
    buf.seek(0)
    again = type(ours)(4, 6, num_layers=2, bidirectional=True, **KINDS[kind][2])
    again.load_state_dict(torch.load(buf))
    torch.testing.assert_close(again(x)[0], ours(x)[0], rtol=0, atol=0)
    assert repr(ours).startswith(type(ours).__name__ + "(4, 6")


LOOP_CONFIGS = {"2-layer": {}, "2-layer-bi-batch-first": {"bidirectional": True, "batch_first": True}}


def _loop_params():
    """2-layer with float64 Adam, float32 Adam and SGD by default; the rest -m slow."""
    out = []
    for config in LOOP_CONFIGS:
        for dtype, opt in ((torch.float64, "adam"), (torch.float64, "sgd"), (torch.float32, "adam"),
                           (torch.float32, "sgd")):
            slow = config != "2-layer" or (dtype, opt) == (torch.float64, "sgd")
            out.append(pytest.param(config, dtype, opt, marks=[pytest.mark.slow] if slow else [],
                                    id=f"{config}-{'f64' if dtype == torch.float64 else 'f32'}-{opt}"))
    return out


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("config,dtype,optimizer", _loop_params())
def test_training_loop_matches_torch_step_for_step(kind, config, dtype, optimizer):
    """A real loop: torch optimizer, torch loss, clipping; 50 steps, the loss
    curves equal to a relative 1e-5 (float32) / 1e-10 (float64).

    float32 Adam is the sensitive case: Adam divides each update by
    sqrt(v), so a last-bit difference in a tiny gradient entry becomes a
    difference of the size of the learning rate in that weight, which later
    steps carry on (SGD scales the same difference down with the gradient).
    Measured on this loop (2 layers, 50 steps): gradcore vs torch.nn.LSTM
    differ by at most 6.4e-7 relative (float32 Adam, both SIMD paths);
    two torch implementations, torch.nn.LSTM and an unrolled
    torch.nn.LSTMCell, differ by 2.4e-6 (they cross 1e-5 absolute at step
    37): the float32 floor between correct implementations, under 1e-5."""
    extra_cfg = LOOP_CONFIGS[config]
    D = 2 if extra_cfg.get("bidirectional") else 1
    results = []
    for cls_index in (0, 1):
        torch.manual_seed(0)
        cls, extra = KINDS[kind][cls_index], KINDS[kind][2]
        rec = cls(3, 8, num_layers=2, **extra, **extra_cfg).to(dtype)
        head = torch.nn.Linear(D * 8, 1).to(dtype)
        if cls_index == 1:  # torch: take the gradcore run's initial weights
            rec.load_state_dict(results[0][1])
            head.load_state_dict(results[0][2])
        init = (copy.deepcopy(rec.state_dict()), copy.deepcopy(head.state_dict()))
        params = list(rec.parameters()) + list(head.parameters())
        if optimizer == "adam":
            opt = torch.optim.Adam(params, lr=1e-2)
        else:
            opt = torch.optim.SGD(params, lr=1e-2, momentum=0.9)
        g = torch.Generator().manual_seed(3)
        losses = []
        for _ in range(50):
            x = torch.randn(10, 4, 3, generator=g, dtype=dtype)
            y = x.sum(0)[:, :1]
            opt.zero_grad()
            out, _ = rec(x.transpose(0, 1) if extra_cfg.get("batch_first") else x)
            last = out[:, -1] if extra_cfg.get("batch_first") else out[-1]
            loss = torch.nn.functional.mse_loss(head(last), y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            losses.append(float(loss.detach()))
        results.append((losses, *init))
    ours, theirs = np.array(results[0][0]), np.array(results[1][0])
    np.testing.assert_allclose(ours, theirs, rtol=1e-5 if dtype == torch.float32 else 1e-10, atol=0)
    if optimizer == "adam":
        assert ours[-10:].mean() < ours[:10].mean()  # it learned something


def unrolled_norms(kind, ref, x):
    """||dL/dh_t|| (and ||dL/dc_t||) from an unrolled torch cell with retain_grad."""
    cell_cls = {"rnn_tanh": torch.nn.RNNCell, "rnn_relu": torch.nn.RNNCell, "lstm": torch.nn.LSTMCell,
                "gru": torch.nn.GRUCell}[kind]
    extra = {"nonlinearity": "relu"} if kind == "rnn_relu" else {}
    cell = cell_cls(4, 6, **extra).to(x.dtype)
    cell.load_state_dict({k.replace("_l0", ""): v for k, v in ref.state_dict().items()})
    T, B, _ = x.shape
    h = torch.zeros(B, 6, dtype=x.dtype)
    c = torch.zeros(B, 6, dtype=x.dtype)
    hs, cs = [], []
    for t in range(T):
        if kind == "lstm":
            h, c = cell(x[t], (h, c))
            c.retain_grad()
            cs.append(c)
        else:
            h = cell(x[t], h)
        h.retain_grad()
        hs.append(h)
    out = torch.stack(hs)
    g = torch.Generator().manual_seed(5)
    (out * torch.randn(out.shape, generator=g, dtype=x.dtype)).sum().backward()
    hn = np.array([float(h.grad.double().norm()) for h in hs])
    cn = np.array([float(c.grad.double().norm()) for c in cs]) if cs else None
    return hn, cn


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_timestep_norms_match_unrolled_cell(kind, dtype):
    ours, ref = pair(kind, dtype)
    x = make_input(dtype, 9, 3, False, False)
    out, _ = ours(x)
    g = torch.Generator().manual_seed(5)
    (out * torch.randn(out.shape, generator=g, dtype=dtype)).sum().backward()
    hn, cn = unrolled_norms(kind, ref, x)
    rtol = 1e-5 if dtype == torch.float32 else 1e-10
    np.testing.assert_allclose(ours.timestep_grad_norms, hn, rtol=rtol)
    if kind == "lstm":
        np.testing.assert_allclose(ours.timestep_cell_grad_norms, cn, rtol=rtol, atol=1e-12)
    else:
        assert ours.timestep_cell_grad_norms is None
    assert ours.first_nonfinite_step is None and ours.first_nonfinite is None


def test_bidirectional_norms_are_in_real_time_order():
    ours, ref = pair("gru", torch.float64, bidirectional=True)
    x = make_input(torch.float64, 7, 2, False, False)
    out, _ = ours(x)
    out[:, :, 6:].sum().backward()  # only the reverse direction's outputs matter
    fwd, rev = ours.timestep_grad_norms
    assert np.all(fwd == 0.0)
    # the reverse direction's step 0 is its last: only d_out reaches it (no carry)
    assert rev[0] == pytest.approx(math.sqrt(2 * 6), rel=1e-12)
    assert rev[-1] > rev[0]


def test_first_nonfinite_step_located():
    ours, _ = pair("lstm", torch.float32, num_layers=2)
    x = make_input(torch.float32, 8, 2, False, False)
    out, _ = ours(x)
    w = torch.ones_like(out)
    w[5, 1, 2] = float("nan")
    (out * w).sum().backward()
    assert ours.first_nonfinite_step == 5
    assert ours.first_nonfinite == (1, 0, 5)  # the top layer sees it first
    assert np.isnan(ours.timestep_grad_norms[1, 5]) and np.isfinite(ours.timestep_grad_norms[1, 6])


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh"])
def test_second_backward_through_the_same_graph(kind):
    ours, _ = pair(kind, torch.float64)
    x = make_input(torch.float64, 6, 2, False, False).requires_grad_(True)
    out, _ = ours(x)
    loss = out.pow(2).sum()
    g1 = torch.autograd.grad(loss, [x] + list(ours.parameters()), retain_graph=True)
    g2 = torch.autograd.grad(loss, [x] + list(ours.parameters()))
    for a, b in zip(g1, g2):
        assert torch.equal(a, b)


def test_monitor_sees_recurrent_per_step_norms():
    torch.manual_seed(0)
    model = torch.nn.ModuleDict({"rnn": gt.LSTM(4, 6), "head": torch.nn.Linear(6, 1)})
    mon = gt.GradMonitor(model["rnn"])
    for s in range(3):
        model.zero_grad()
        out, _ = model["rnn"](make_input(torch.float32, 5, 2, False, False, seed=s))
        model["head"](out[-1]).sum().backward()
    ts = mon.history["timestep_norms"]["model"]
    assert ts.shape == (3, 5)
    np.testing.assert_array_equal(ts[-1], model["rnn"].timestep_grad_norms)
    two = gt.GRU(4, 6, num_layers=2)
    mon2 = gt.GradMonitor(two)
    two(make_input(torch.float32, 5, 2, False, False))[0].sum().backward()
    assert mon2.history["timestep_norms"]["model"].shape == (1, 2, 5)


def test_unsupported_and_bad_input_clear_errors():
    with pytest.raises(NotImplementedError, match=r"proj_size > 0 is not supported; use torch\.nn\.LSTM"):
        gt.LSTM(4, 6, proj_size=3)
    lstm = gt.LSTM(4, 6)
    x = torch.randn(5, 2, 4)
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, [5, 3])
    with pytest.raises(NotImplementedError, match=r"PackedSequence input is not supported; use torch\.nn\.LSTM"):
        lstm(packed)
    with pytest.raises(NotImplementedError, match=r"on device meta .* use torch\.nn\.LSTM"):
        lstm(torch.randn(5, 2, 4, device="meta"))
    with pytest.raises(NotImplementedError, match=r"dtype torch\.float16 .* use torch\.nn\.GRU"):
        gt.GRU(4, 6).half()(x.half())
    with pytest.raises(TypeError, match=r"input: expected dtype torch\.float32 .* got torch\.float64"):
        lstm(x.double())
    with pytest.raises(ValueError, match=r"hx\[0\] \(h_0\): expected shape \(1, 2, 6\)"):
        lstm(x, (torch.zeros(2, 2, 6), torch.zeros(1, 2, 6)))
    with pytest.raises(TypeError, match=r"hx: expected a tuple \(h_0, c_0\)"):
        lstm(x, torch.zeros(1, 2, 6))
    with pytest.raises(ValueError, match=r"input: expected input_size 4"):
        lstm(torch.randn(5, 2, 3))
    with pytest.raises(ValueError, match=r"input: expected a 2-D \(unbatched\) or 3-D tensor"):
        lstm(torch.randn(5))


def test_dropout_between_layers_is_torch_dropout():
    torch.manual_seed(0)
    ours = gt.LSTM(4, 6, num_layers=2, dropout=0.5)
    ref = torch.nn.LSTM(4, 6, num_layers=2, dropout=0.5)
    ref.load_state_dict(ours.state_dict())
    x = make_input(torch.float32, 5, 3, False, False)
    torch.manual_seed(7)
    a = ours(x)[0]
    torch.manual_seed(7)
    b = ref(x)[0]
    torch.testing.assert_close(a, b, **TOL[torch.float32])  # same masks from the same seed
    ours.eval(), ref.eval()
    torch.testing.assert_close(ours(x)[0], ref(x)[0], **TOL[torch.float32])


@pytest.mark.parametrize("kind", list(KINDS))
def test_graphs_alive_together_keep_their_buffers(kind):
    """Scratch buffers are reused from call to call: two graphs alive at once,
    a no_grad call and a call with another shape in between, then both
    backwards, give torch's gradients; buffers come back only after a backward."""
    ours, ref = pair(kind, torch.float64, num_layers=2, bidirectional=True)
    xs = [make_input(torch.float64, 5, 3, False, False, seed=s) for s in (1, 2)]
    grads = []
    for m in (ours, ref):
        m.zero_grad()
        outs = [m(x)[0] for x in xs]
        with torch.no_grad():
            m(xs[0] * 3)
        m(make_input(torch.float64, 4, 2, False, False, seed=3))[0].sum().backward()  # another shape
        m.zero_grad()
        (outs[0].pow(2).sum() + 2 * outs[1].sum()).backward()
        grads.append([p.grad.clone() for p in m.parameters()])
        if m is ours:
            before = sum(len(v) for v in ours._gc_views[2].free.values())
            out, _ = ours(xs[0])
            assert sum(len(v) for v in ours._gc_views[2].free.values()) < before  # taken from the pool
            out.sum().backward()
            assert sum(len(v) for v in ours._gc_views[2].free.values()) == before  # and given back
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, **TOL[torch.float64])


@pytest.mark.parametrize("kind", list(KINDS))
def test_pool_gets_each_buffer_back_once(kind):
    """Every scratch buffer a forward + backward took (also a second backward
    through the same graph, which re-runs the forward) goes back to the pool
    exactly once: no buffer is handed out twice to later calls."""
    ours, _ = pair(kind, torch.float64, num_layers=2, bidirectional=True)
    x = make_input(torch.float64, 5, 3, False, False, seed=1)
    for _ in range(2):
        out, _h = ours(x)
        loss = out.pow(2).sum()
        loss.backward(retain_graph=True)
        loss.backward()
    free = [a for lst in ours._gc_views[2].free.values() for a in lst]
    assert free and len({id(a) for a in free}) == len(free)
