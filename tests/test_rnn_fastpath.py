"""The one-layer recurrent layers' common call (time-major x, no initial
state, no truncation; d_out and / or (B, H) final-state gradients) runs through a compiled pass plan
on the C backend. It must leave exactly the state the general driver path
leaves, honour the thread guard, and drop out of copies and pickles."""

import copy
import pickle
import threading

import numpy as np
import pytest

import gradcore
from gradcore import nn

KINDS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
RECORDS = ("dh0", "dc0", "timestep_grad_norms", "timestep_cell_grad_norms", "first_nonfinite",
           "first_nonfinite_step", "first_nonfinite_state_step", "first_nonfinite_grad_step")


class Sub(np.ndarray):
    """An ndarray subclass: the plan leaves it to the general path."""


def _state(m, out, dx):
    rec = {k: getattr(m, k, "absent") for k in RECORDS}
    rec = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in rec.items()}
    return np.array(out[0]), np.array(dx), m.arena.grad.copy(), rec


def _same(a, b):
    for u, v in zip(a[:3], b[:3]):
        np.testing.assert_array_equal(u, v)
    assert a[3].keys() == b[3].keys()
    for k in a[3]:
        u, v = a[3][k], b[3][k]
        if isinstance(u, np.ndarray):
            np.testing.assert_array_equal(u, v, err_msg=k)
        else:
            assert u == v, k


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("nonfinite", [False, True])
@pytest.mark.parametrize("grads", ["d_out", "final", "both"])
def test_plan_path_leaves_the_general_paths_state(kind, dtype, nonfinite, grads):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 5)).astype(dtype)
    d = rng.standard_normal((4, 3, 6)).astype(dtype)
    dh, dc = rng.standard_normal((2, 3, 6)).astype(dtype)
    if nonfinite:
        x[2, 1, 0] = np.nan

    def args(view):
        a = (d.view(view) if grads != "final" else None,)
        if grads == "d_out":
            return a, {}
        k = {"d_hT": dh.view(view)}
        if kind == "lstm":
            k["d_cT"] = dc.view(view)
        return a, k

    fast, slow = (KINDS[kind](5, 6, dtype=dtype, seed=1) for _ in range(2))
    for _ in range(3):      # the first call binds the plan; later ones run it
        a = fast.forward(x)
        pa, ka = args(np.ndarray)
        a = _state(fast, a, fast.backward(*pa, **ka))
        b = slow.forward(x.view(Sub))
        pb, kb = args(Sub)
        b = _state(slow, b, slow.backward(*pb, **kb))
        _same(a, b)
    assert fast._plan is not None
    if nonfinite:
        assert fast.first_nonfinite is not None and fast.first_nonfinite_state_step == 2


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_plan_path_refusals_are_the_layers(kind):
    m = KINDS[kind](5, 6, seed=0)
    x = np.ones((4, 3, 5), np.float32)
    m.forward(x)
    m.backward(np.ones((4, 3, 6), np.float32))
    with pytest.raises(TypeError, match=r"expected float32 x, got float64"):
        m.forward(x.astype(np.float64))
    m.forward(np.asfortranarray(x))          # same shape, not contiguous: copied, runs
    with pytest.raises(ValueError, match=r"d_out has shape \(4, 3, 5\), but the last forward"):
        m.backward(np.ones((4, 3, 5), np.float32))
    if kind != "rnn":
        m.backward(np.ones((4, 3, 6), np.float32))
        with pytest.raises(RuntimeError, match="consumed"):
            m.backward(np.ones((4, 3, 6), np.float32))


def test_plan_path_honours_the_thread_guard():
    m = nn.LSTM(3, 4, seed=0)
    x = np.ones((2, 1, 3), np.float32)
    d = np.ones((2, 1, 4), np.float32)
    m.forward(x)
    m.backward(d)                             # the plan is bound
    done, hold = threading.Event(), threading.Event()

    def other():
        m.forward(x)
        done.set()
        hold.wait(5)

    m.clear_cache()
    t = threading.Thread(target=other)
    t.start()
    assert done.wait(5)
    try:
        with pytest.raises(gradcore.ConcurrentUseError, match="last forward ran in"):
            m.backward(d)
        with pytest.raises(gradcore.ConcurrentUseError, match="is still alive"):
            m.forward(x)
    finally:
        hold.set()
        t.join()
    m.forward(x)
    m.backward(d)


def test_plan_is_dropped_by_copies_pickles_and_clear_cache():
    m = nn.GRU(3, 4, seed=0)
    x = np.ones((2, 1, 3), np.float32)
    out, _ = m.forward(x)
    assert m._plan is not None
    for c in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
        assert c._plan is None
        np.testing.assert_array_equal(c.forward(x)[0], out)
        c.backward(np.ones((2, 1, 4), np.float32))
    assert m.clear_cache()._plan is None


def test_plan_follows_the_backend_and_the_arena():
    m = nn.RNN(3, 4, dtype="float64", seed=0)
    x = np.random.default_rng(0).standard_normal((3, 2, 3))
    ref = m.forward(x)[0].copy()
    with gradcore.use_backend("numpy"):
        np.testing.assert_allclose(m.forward(x)[0], ref, rtol=1e-12)
        m.backward(np.ones((3, 2, 4)))
    plan = m._plan
    net = nn.LastStep(m)                      # re-homes the weights: the old plan is dropped
    assert m._plan is None
    m.p["weight_hh"][...] = 0
    h = np.tanh(x @ m.p["weight_ih"].T + m.p["bias_ih"] + m.p["bias_hh"])
    for _ in range(2):
        np.testing.assert_allclose(net.forward(x), h[-1], rtol=1e-12)
    assert m._plan is not None and m._plan is not plan


@pytest.mark.parametrize("scope", ["set_backend", "use_backend"])
def test_plan_path_reads_the_active_backend_itself(monkeypatch, scope):
    from gradcore import reference
    m = nn.RNN(3, 4, dtype="float64", seed=0)
    x = np.random.default_rng(1).standard_normal((3, 2, 3))
    d = np.ones((3, 2, 4))
    for _ in range(2):                         # the plan is bound and runs
        ref = m.forward(x)[0].copy()
        m.backward(d)
    assert m._plan is not None
    calls = []
    for name in ("rnn_forward", "rnn_backward"):
        fn = getattr(reference, name)
        monkeypatch.setattr(reference, name, lambda *a, _fn=fn, _n=name, **k: calls.append(_n) or _fn(*a, **k))
    if scope == "set_backend":
        before = gradcore.get_backend()
        gradcore.set_backend("numpy")
        try:
            np.testing.assert_allclose(m.forward(x)[0], ref, rtol=1e-12)
            m.backward(d)
        finally:
            gradcore.set_backend(before)
    else:
        with gradcore.use_backend("numpy"):
            np.testing.assert_allclose(m.forward(x)[0], ref, rtol=1e-12)
            m.backward(d)
    assert calls == ["rnn_forward", "rnn_backward"]
    calls.clear()
    m.forward(x)                               # back on the C backend: the plan again
    m.backward(d)
    assert calls == []


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_plan_path_records_are_new_arrays_the_caller_keeps(kind):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 3, 5)).astype(np.float32)
    d = rng.standard_normal((4, 3, 6)).astype(np.float32)
    m = KINDS[kind](5, 6, seed=1)
    names = ["dh0", "timestep_grad_norms"] + (["dc0", "timestep_cell_grad_norms"] if kind == "lstm" else [])
    for _ in range(2):
        m.forward(x)
        m.backward(d)
    assert m._plan is not None
    first = {n: getattr(m, n) for n in names}
    for n, v in first.items():
        assert type(v) is np.ndarray and v.flags.owndata and getattr(m, n) is v, n
    kept = {n: v.copy() for n, v in first.items()}
    unread = copy.copy(m)                     # taken before the next passes run
    for scale in (2.0, 3.0, 1.0):             # every scratch set comes round again
        m.forward(scale * x)
        m.backward(scale * d)
    for n in names:
        np.testing.assert_array_equal(first[n], kept[n], err_msg=n)
        assert getattr(m, n) is not first[n]
        np.testing.assert_array_equal(getattr(m, n), kept[n], err_msg=n)   # the same pass again
        np.testing.assert_array_equal(getattr(unread, n), kept[n], err_msg=n)
    m.forward(2 * x)
    m.backward(2 * d)                         # records left unread, then copied / pickled
    ref = KINDS[kind](5, 6, seed=1)
    ref.forward((2 * x).view(Sub))
    ref.backward((2 * d).view(Sub))           # the general path
    for c in (copy.deepcopy(m), pickle.loads(pickle.dumps(m)), m):
        for n in names:
            v = getattr(c, n)
            assert type(v) is np.ndarray, n
            np.testing.assert_array_equal(v, getattr(ref, n), err_msg=n)
    m.forward(x)
    assert m.timestep_grad_norms is None and m.dh0 is not None    # forward keeps dh0, as before


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_the_common_call_is_served_by_the_plan(kind):
    m = KINDS[kind](5, 6, seed=0)
    x = np.ones((4, 3, 5), np.float32)
    d = np.ones((4, 3, 6), np.float32)
    m.forward(x)
    m.backward(d)                             # the plan is bound

    def driver(*a, **k):
        raise AssertionError("the guarded driver ran")

    m._guarded_forward = m._guarded_backward = driver
    dh = np.ones((3, 6), np.float32)
    final = {"d_hT": dh, "d_cT": dh} if kind == "lstm" else {"d_hT": dh}
    for _ in range(2):
        m.forward(x)
        m.backward(d)
        m.forward(x)
        m.backward(None, **final)             # the loss on the final state
        m.forward(x)
        m.backward(d, d_hT=dh)
    m.forward(x)
    with pytest.raises(AssertionError, match="driver ran"):
        m.backward(d, truncate=2)             # not a common call
    with pytest.raises(AssertionError, match="driver ran"):
        m.backward(None, d_hT=dh[None])       # (1, B, H): the driver's conversion
    if kind != "lstm":
        with pytest.raises(AssertionError, match="driver ran"):
            m.backward(None, d_cT=dh)         # refused by the driver, with its message


@pytest.mark.parametrize("how", ["copy", "deepcopy", "pickle"])
def test_copies_hold_the_records_of_the_pass_before_them(how):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 2, 4))
    d = rng.standard_normal((3, 2, 5))
    m = nn.LSTM(4, 5, dtype="float64", seed=2)
    names = ["dh0", "dc0", "timestep_grad_norms", "timestep_cell_grad_norms"]
    for _ in range(2):
        m.forward(x)
        m.backward(d)
    assert m._plan is not None
    c = {"copy": copy.copy, "deepcopy": copy.deepcopy,
         "pickle": lambda o: pickle.loads(pickle.dumps(o))}[how](m)   # records left unread
    kept = {n: getattr(m, n).copy() for n in names}
    for scale in (2.0, 3.0):                  # both scratch sets rewritten with other values
        m.forward(scale * x)
        m.backward(scale * d)
    for n in names:
        assert not np.array_equal(getattr(m, n), kept[n]), n
        np.testing.assert_array_equal(getattr(c, n), kept[n], err_msg=n)


@pytest.mark.parametrize("which", ["compiled", "python"])
def test_record_descriptor_compiled_and_python_fallback_agree(which):
    from gradcore import _kernels
    from gradcore.nn import _recurrent_records as rr
    desc = {"compiled": _kernels._Record, "python": rr._PyRecord}[which]

    class Holder:
        dh0 = desc("dh0")

    h = Holder()
    with pytest.raises(AttributeError, match=r"^'Holder' object has no attribute 'dh0'$"):
        h.dh0
    scratch = np.arange(6.0).reshape(2, 3)
    h.__dict__["dh0"] = _kernels._PendingRecord(scratch)
    assert rr.peek(h, "dh0") is scratch                  # not settled by a peek
    v = h.dh0
    assert type(v) is np.ndarray and v is not scratch and h.dh0 is v and h.__dict__["dh0"] is v
    np.testing.assert_array_equal(v, scratch)
    h.dh0 = None
    assert h.dh0 is None and rr.peek(h, "dh0") is None
    del h.dh0
    with pytest.raises(AttributeError):
        del h.dh0
    assert Holder.dh0.name == "dh0"


def _runs_ok(code):
    """``code`` run by a fresh interpreter prints ok."""
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.split() == ["ok"], out.stderr


def test_records_without_the_compiled_binding_use_the_python_descriptor():
    code = ("import sys; sys.modules['gradcore._kernels'] = None\n"
            "import copy, pickle, numpy as np, gradcore\n"
            "from gradcore import nn\n"
            "from gradcore.nn import _recurrent_records as rr\n"
            "gradcore.set_backend('numpy')\n"
            "assert all(isinstance(c.__dict__['dh0'], rr._PyRecord) for c in rr._BOUND)\n"
            "m = nn.LSTM(3, 4, num_layers=2, dtype='float64', seed=0)\n"
            "m.forward(np.ones((2, 1, 3))); m.backward(np.ones((2, 1, 4)))\n"
            "c = pickle.loads(pickle.dumps(m))\n"
            "np.testing.assert_array_equal(c.dh0, m.dh0)\n"
            "np.testing.assert_array_equal(copy.deepcopy(m).timestep_cell_grad_norms, m.timestep_cell_grad_norms)\n"
            "print('ok')\n")
    _runs_ok(code)


def test_import_leaves_the_binding_unloaded_and_the_backend_switches_the_records():
    code = ("import sys, numpy as np, gradcore\n"
            "from gradcore import nn\n"
            "from gradcore.nn import _recurrent_records as rr\n"
            "assert 'gradcore._kernels' not in sys.modules\n"
            "assert isinstance(nn.LSTM.dh0, rr._PyRecord)\n"
            "m = nn.LSTM(3, 4, seed=0)\n"
            "m.forward(np.ones((2, 1, 3), np.float32)); m.backward(np.ones((2, 1, 4), np.float32))\n"
            "K = sys.modules['gradcore._kernels']\n"
            "assert isinstance(nn.LSTM.dh0, K._Record) and isinstance(nn.GRU.timestep_grad_norms, K._Record)\n"
            "assert type(m.timestep_grad_norms) is np.ndarray and m.timestep_grad_norms.shape == (2,)\n"
            "print('ok')\n")
    _runs_ok(code)
