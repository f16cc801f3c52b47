"""Regression cases for defects found by feeding the API bad, unusual and
aliased inputs: each reproducer is one case, so none can come back unnoticed.
Bad-input cases assert that the message names the argument and that nothing
was changed."""

import math
import os
import tempfile

import numpy as np
import pytest

import gradcore
from gradcore.backend import kernels


def _readonly_arrays():
    """(label, read-only float32 array) pairs: memmap mode 'r', bytes-backed,
    and a plain array with the writeable flag off."""
    path = os.path.join(tempfile.mkdtemp(), "m")
    np.full(8, 2.0, "f4").tofile(path)
    plain = np.full(8, 2.0, "f4")
    plain.flags.writeable = False
    return [
        ("memmap", np.memmap(path, mode="r", dtype="f4")),
        ("bytes", np.frombuffer(np.full(8, 2.0, "f4").tobytes(), dtype="f4")),
        ("flag", plain),
    ]


# ---------------------------------------------------------------- BufferList
@pytest.mark.parametrize("kind", ["memmap", "bytes", "flag"])
@pytest.mark.parametrize("op", ["scale_", "clamp_"])
def test_bufferlist_readonly_never_written(backend, kind, op):
    arr = dict(_readonly_arrays())[kind]
    before = np.array(arr)
    bl = kernels().BufferList([arr])  # writable=False: reading is fine
    assert bl.norm(2.0, False, False)[0] == pytest.approx(float(np.linalg.norm(before)))
    with pytest.raises(ValueError, match=rf"BufferList.{op}: .*writable=False"):
        getattr(bl, op)(0.5)
    with pytest.raises(ValueError, match=r"arrays\[0\]: in-place operation needs a writeable array"):
        kernels().BufferList([arr], "arrays", None, True)
    np.testing.assert_array_equal(np.array(arr), before)


def test_bufferlist_noncontiguous_no_hidden_copy(backend):
    a = np.arange(1.0, 9.0)
    view = a[::2]
    bl = kernels().BufferList([view])
    with pytest.raises(ValueError, match="writable=False"):
        bl.scale_(0.5)
    with pytest.raises(ValueError, match=r"arrays\[0\]: in-place operation needs a C-contiguous array"):
        kernels().BufferList([view], "arrays", None, True)
    np.testing.assert_array_equal(a, np.arange(1.0, 9.0))


@pytest.mark.parametrize("c", [-1.0, math.nan])
def test_bufferlist_clamp_bound(backend, c):
    a = np.array([-3.0, 0.5, 3.0])
    bl = kernels().BufferList([a], "arrays", None, True)
    with pytest.raises(ValueError, match="c: expected a number >= 0"):
        bl.clamp_(c)
    np.testing.assert_array_equal(a, [-3.0, 0.5, 3.0])


@pytest.mark.parametrize("factor", [math.inf, math.nan])
def test_bufferlist_scale_nonfinite_factor(backend, factor):
    a = np.array([1.0, 2.0])
    with pytest.raises(ValueError, match="factor: expected a finite number"):
        kernels().BufferList([a], "arrays", None, True).scale_(factor)
    np.testing.assert_array_equal(a, [1.0, 2.0])


# ------------------------------------------------------------ clip underflow
def test_clip_norm_float32_tiny_coefficient():  # the C backend (the reference is not overflow-safe)
    a = np.full(1000, 3e38, "f4")
    norm = gradcore.clip_grad_norm_(a, 1e-9)
    assert norm == pytest.approx(3e38 * math.sqrt(1000), rel=1e-6)
    assert np.all(a > 0)
    assert gradcore.global_norm(a) == pytest.approx(1e-9, rel=1e-6)


def test_clip_norm_float64_coefficient_below_double_range():
    a = np.full(16, 1e300)
    gradcore.clip_grad_norm_(a, 1e-300, eps=0.0)  # coefficient 2.5e-601 is not a double
    assert gradcore.global_norm(a) == pytest.approx(1e-300, rel=1e-12)


def test_scale_float32_subnormal_factor_matches_exact(backend):
    a = np.array([3e38, 1e30, -2e35], "f4")
    expect = (a.astype(np.float64) * 1e-60).astype(np.float32)
    kernels().BufferList([a], "arrays", None, True).scale_(1e-60)
    np.testing.assert_array_equal(a, expect)


# ------------------------------------------------------------------ aliasing
def test_alias_same_array_twice_counted_once(backend):
    g = np.array([3.0, 4.0])
    assert gradcore.global_norm([g, g]) == 5.0
    assert gradcore.global_norm([g, g[:]]) == 5.0
    assert gradcore.global_norm([g, g.reshape(1, 2)]) == 5.0
    st = gradcore.grad_stats([g, g])
    np.testing.assert_array_equal(st.per_array, [5.0, 5.0])
    assert st.norm == 5.0
    assert gradcore.clip_grad_norm_([g, g], 1.0, eps=0.0) == 5.0
    np.testing.assert_allclose(g, [0.6, 0.8])  # scaled once, not twice


def test_alias_dict_and_list_share(backend):
    g = np.array([3.0, 4.0])
    h = np.array([12.0])
    assert gradcore.global_norm({"a": g, "b": h, "c": g}) == 13.0
    assert gradcore.clip_grad_value_([g, g, h], 3.5) == 2  # 4 -> 3.5 and 12 -> 3.5, each once
    np.testing.assert_array_equal(g, [3.0, 3.5])


def test_alias_nonfinite_counted_once(backend):
    g = np.array([1.0, np.nan, np.inf])
    st = gradcore.grad_stats([g, g])
    assert (st.n_nan, st.n_inf, st.first_nonfinite) == (1, 1, (0, 1))


def test_alias_interleaved_views_are_fine(backend):
    a = np.arange(8.0)
    assert gradcore.global_norm([a[::2], a[1::2]]) == pytest.approx(float(np.linalg.norm(a)))


@pytest.mark.parametrize("fn", ["global_norm", "grad_stats", "clip_grad_norm_", "clip_grad_value_"])
def test_alias_partial_overlap_refused(backend, fn):
    a = np.arange(1.0, 9.0)
    call = {
        "global_norm": lambda x: gradcore.global_norm(x),
        "grad_stats": lambda x: gradcore.grad_stats(x),
        "clip_grad_norm_": lambda x: gradcore.clip_grad_norm_(x, 1.0),
        "clip_grad_value_": lambda x: gradcore.clip_grad_value_(x, 1.0),
    }[fn]
    with pytest.raises(ValueError, match=r"arrays\[0\] and arrays\[1\] share memory only in part"):
        call([a, a[2:]])
    with pytest.raises(ValueError, match=r"arrays\['w'\] and arrays\['v'\] share memory only in part"):
        call({"w": a[:5], "v": a[3:]})
    with pytest.raises(ValueError, match="share memory only in part"):
        call([a, a.view(np.float32)])
    np.testing.assert_array_equal(a, np.arange(1.0, 9.0))


def test_alias_arena_and_its_views_refused(backend):
    m = gradcore.nn.Dense(3, 2, seed=0, dtype="float64")
    m.arena.grad[:] = 10.0
    with pytest.raises(ValueError, match=r"arrays\[0\] and arrays\[1\] share memory only in part"):
        gradcore.clip_grad_norm_([m.arena.grad] + list(m.gradients().values()), 1.0)
    assert np.all(m.arena.grad == 10.0)


def test_aliases_public_helper():
    g = np.zeros(3)
    assert gradcore.clip.aliases([g, np.ones(2), g, g[:]]) == {2: 0, 3: 0}
    assert gradcore.clip.aliases({"a": g, "b": np.ones(1)}) == {}
    with pytest.raises(ValueError, match=r"grads\[0\] and grads\[1\]"):
        gradcore.clip.aliases([g, g[1:]], name="grads")


# --------------------------------------------------------- numbers as numbers
def test_clip_refuses_bool_and_str(backend):
    a = np.array([3.0, 4.0])
    with pytest.raises(TypeError, match="ord: expected a number"):
        gradcore.global_norm(a, ord=True)
    with pytest.raises(TypeError, match="ord: expected a number"):
        gradcore.global_norm(a, ord="2")
    with pytest.raises(TypeError, match="max_norm: expected a finite number"):
        gradcore.clip_grad_norm_(a, "1")
    with pytest.raises(TypeError, match="max_norm: expected a finite number"):
        gradcore.clip_grad_norm_(a, True)
    with pytest.raises(TypeError, match="clip_value: expected a finite number"):
        gradcore.clip_grad_value_(a, np.bool_(True))
    with pytest.raises(TypeError, match="eps: expected a finite number"):
        gradcore.clip_grad_norm_(a, 1.0, eps="0")
    np.testing.assert_array_equal(a, [3.0, 4.0])


def test_clip_accepts_numpy_scalars(backend):
    a = np.array([3.0, 4.0])
    assert gradcore.global_norm(a, ord=np.int64(1)) == 7.0
    assert gradcore.clip_grad_norm_(a, np.float32(1), eps=np.float64(0)) == 5.0
    assert gradcore.clip_grad_value_(a, np.float32(0.7)) == 1


# ------------------------------------------------------- output/input overlap
def test_dense_forward_on_a_view_of_its_output(backend):
    d = gradcore.nn.Dense(4, 4, "tanh", seed=0, dtype="float64")
    x = np.random.default_rng(0).standard_normal((3, 4))
    expect = d(d(x).copy()).copy()
    y = d(x)
    np.testing.assert_array_equal(d(y[:]), expect)
    y = d(x)
    np.testing.assert_array_equal(d(y.reshape(3, 4)), expect)


def test_dense_backward_fed_its_own_dx(backend):
    d = gradcore.nn.Dense(4, 4, "tanh", seed=0, dtype="float64")
    x = np.random.default_rng(1).standard_normal((3, 4))
    d(x)
    dx = d.backward(np.ones((3, 4))).copy()
    expect = d.backward(dx.copy()).copy()
    d.zero_grad()
    d(x)
    own = d.backward(np.ones((3, 4)))
    np.testing.assert_array_equal(d.backward(own), expect)


def test_activation_layer_on_a_partial_view_of_its_output(backend):
    a = gradcore.nn.Activation("tanh", dtype="float64")
    x = np.linspace(-2, 2, 8).reshape(2, 4)
    y = a(x)
    part = y.reshape(-1)[:8].reshape(2, 4)  # same memory, different object
    np.testing.assert_allclose(a(part), np.tanh(np.tanh(x)))


@pytest.mark.parametrize("case", ["y_is_x", "y_overlaps_x", "y_is_w", "y_is_b"])
def test_dense_forward_kernel_refuses_overlap(backend, case):
    buf = np.arange(24.0).reshape(6, 4) / 10
    x, w = buf[:3].copy(), np.eye(4)
    b = np.zeros(4)
    y = np.empty((3, 4))
    args = {"y_is_x": (x, x, w, b, "x"), "y_overlaps_x": (buf[1:4], buf[:3], w, b, "x"),
            "y_is_w": (w[:3], x, w, b, "w"), "y_is_b": (y, x, w, y[0], "b")}[case]
    yy, xx, ww, bb, name = args
    snapshot = [a.copy() for a in (xx, ww, bb)]
    with pytest.raises(ValueError, match=rf"y: output overlaps argument {name}"):
        kernels().dense_forward(yy, xx, ww, bb, "tanh", 0.0)
    for a, s in zip((xx, ww, bb), snapshot):
        np.testing.assert_array_equal(a, s)


def test_dense_backward_kernel_refuses_overlap(backend):
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((3, 4)), rng.standard_normal((4, 4))
    y, dy = np.tanh(x @ w.T), rng.standard_normal((3, 4))
    dw, db = np.zeros((4, 4)), np.zeros(4)
    with pytest.raises(ValueError, match="dx: output overlaps argument dy"):
        kernels().dense_backward(dy, dw, db, dy, x, w, y, "tanh", 0.0, np.empty((3, 4)))
    with pytest.raises(ValueError, match="dw: output overlaps argument w"):
        kernels().dense_backward(None, w, db, dy, x, w, y, "tanh", 0.0, np.empty((3, 4)))
    assert not dw.any() and not db.any()
    dz = dy.copy()  # dz may be dy exactly (documented)
    kernels().dense_backward(None, dw, db, dz, x, w, y, "tanh", 0.0, dz)


# --------------------------------------------------------- initializer range
F32_OVERFLOW = [
    ("Dense init", lambda: gradcore.nn.Dense(3, 2, init=1e39), "init: constant"),
    ("Dense bias_init", lambda: gradcore.nn.Dense(3, 2, bias_init=1e39), "bias_init: constant"),
    ("RNN recurrent_init", lambda: gradcore.nn.RNN(3, 4, recurrent_init=1e39), "recurrent_init: constant"),
    ("RNN init", lambda: gradcore.nn.RNN(3, 4, init=-1e39), "init: constant"),
    ("GRU bias_init", lambda: gradcore.nn.GRU(3, 4, bias_init=1e39), "bias_init: constant"),
    ("LSTM forget_bias", lambda: gradcore.nn.LSTM(3, 4, forget_bias=1e39), "forget_bias=1e\\+39 overflows float32"),
    ("scaled", lambda: gradcore.nn.scaled("orthogonal", 1e300)((4, 4), 0, "float32"), "scaled\\(.*overflow float32"),
    # random draws on 16 x 16 (on 2 x 2 all four values fit float32 in about 1 draw of 50-200)
    ("constant", lambda: gradcore.init.constant(1e39)((2, 2)), "constant\\(value=1e\\+39\\).*overflow float32"),
    ("normal", lambda: gradcore.init.normal(1e39)((16, 16)), "normal\\(std=1e\\+39.*overflow float32"),
    ("xavier_uniform", lambda: gradcore.init.xavier_uniform(1e39)((16, 16)), "xavier_uniform.*overflow"),
    ("xavier_normal", lambda: gradcore.init.xavier_normal(1e39)((16, 16)), "xavier_normal.*overflow"),
    ("orthogonal", lambda: gradcore.init.orthogonal(1e39)((2, 2)), "orthogonal.*overflow"),
    ("identity", lambda: gradcore.init.identity(1e39)((2, 2)), "identity.*overflow"),
]


@pytest.mark.parametrize("case", F32_OVERFLOW, ids=[c[0] for c in F32_OVERFLOW])
def test_float32_initializer_overflow_is_an_error(case):
    import warnings

    _, make, msg = case
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an error, not NumPy's overflow warning
        with pytest.raises(ValueError, match=msg):
            make()


def test_float64_initializers_still_take_large_values():
    assert np.all(gradcore.init.constant(1e39)((2, 2), dtype="float64") == 1e39)
    assert np.isfinite(gradcore.nn.Dense(3, 2, init=1e39, dtype="float64").p["weight"]).all()


def test_nan_leaky_relu_slope_refused():
    with pytest.raises(ValueError, match="he_normal a: expected a finite number"):
        gradcore.init.he_normal(nonlinearity="leaky_relu", a=math.nan)
    with pytest.raises(ValueError, match="he_uniform a: expected a finite number"):
        gradcore.init.he_uniform(nonlinearity="leaky_relu", a=math.inf)
    with pytest.raises(ValueError, match="calculate_gain: param"):
        gradcore.init.calculate_gain("leaky_relu", math.nan)
    assert gradcore.init.calculate_gain("leaky_relu", np.float32(0.0)) == pytest.approx(math.sqrt(2))


# ------------------------------------------------------------------- dtypes
@pytest.mark.parametrize("task", ["adding", "temporal_order", "copy_task"])
@pytest.mark.parametrize("dt", ["int32", np.int64, "float16", None, bool])
def test_tasks_refuse_non_float_dtypes(task, dt):
    with pytest.raises(TypeError, match="dtype: expected 'float32' or 'float64'"):
        getattr(gradcore.tasks, task)(dtype=dt)


@pytest.mark.parametrize("make", [
    lambda: gradcore.nn.Dense(2, 2, dtype=None),
    lambda: gradcore.nn.RNN(2, 2, dtype=None),
    lambda: gradcore.nn.Activation("relu", dtype=None),
    lambda: gradcore.init.constant(1.0)((2,), dtype=None),
])
def test_dtype_none_refused(make):
    with pytest.raises(TypeError, match="dtype: expected 'float32' or 'float64', got None"):
        make()


# ----------------------------------------------------- one derivative for all
@pytest.mark.parametrize("act", ["identity", "relu", "leaky_relu", "tanh", "sigmoid"])
def test_experiment_activation_grad_is_the_kernels(backend, act):
    from gradcore.experiments._build import activation_grad

    y = np.array([[-1.0, -0.0, 0.0, 0.5, np.nan, np.inf, -np.inf, 2.0]])
    if act in ("tanh", "sigmoid"):
        y = np.array([[-0.9, 0.0, 0.3, 0.7, np.nan, 0.99, 0.01, 0.5]])
    dy = np.arange(1.0, 9.0).reshape(1, 8)
    got = activation_grad(act, y, dy, 0.01)
    expect = np.empty_like(dy)
    kernels().activation_backward(expect, dy, y, act, 0.01)
    np.testing.assert_array_equal(got, expect)
    if act == "relu":
        assert got[0, 4] == dy[0, 4]  # NaN output: dy passes, like PyTorch


# -------------------------------------------------- tasks: counts and seeds
def test_tasks_arguments():
    with pytest.raises(ValueError, match="n_batches: expected an int >= 1, got -1"):
        gradcore.tasks.adding(n_batches=-1)
    with pytest.raises(TypeError, match="seed must be an int >= 0"):
        gradcore.tasks.adding(seed="x")
    with pytest.raises(ValueError, match="seed must be an int >= 0"):
        gradcore.tasks.temporal_order(seed=-1)
    assert len(list(gradcore.tasks.adding(T=4, n_batches=np.int64(2)))) == 2
    with pytest.raises(ValueError, match="T: expected an integer >= 1, got 0"):
        gradcore.tasks.copy_baseline(T=0, n_symbols=0)
    with pytest.raises(ValueError, match="T: expected an integer >= 1, got -20"):
        gradcore.tasks.copy_baseline(T=-20)
    with pytest.raises(ValueError, match="n_symbols: expected an integer >= 1, got 0"):
        gradcore.tasks.copy_baseline(T=5, n_symbols=0)


def test_layer_seed_errors_name_seed():
    with pytest.raises(ValueError, match="Dense: seed must be an int >= 0"):
        gradcore.nn.Dense(2, 2, seed=-1)
    with pytest.raises(TypeError, match="Dense: seed must be an int >= 0"):
        gradcore.nn.Dense(2, 2, seed="x")
    gradcore.nn.Dense(2, 2, seed=np.int64(3))


# --------------------------------------------------------------- concurrency
def _two_threads(target):
    import threading

    errors, box = [], {}
    ts = [threading.Thread(target=target, args=(k, errors, box)) for k in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return errors, box


def test_module_used_from_two_threads_at_once_raises():
    import threading

    d = gradcore.nn.Dense(4, 4, "tanh", seed=0)
    inside, release = threading.Event(), threading.Event()
    real = type(d).forward.__wrapped__

    class Slow(gradcore.nn.Dense):
        def forward(self, x):
            inside.set()
            release.wait(5)
            return real(self, x)

    s = Slow(4, 4, "tanh", seed=0)
    x = np.ones((2, 4), "f4")
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("y", s(x)))
    t.start()
    assert inside.wait(5)
    with pytest.raises(gradcore.ConcurrentUseError, match=r"Slow\(4 -> 4, tanh\)\.forward: called from thread .* one thread"):
        s(x)
    release.set()
    t.join()
    assert out["y"].shape == (2, 4)
    d(x)  # the other module is unaffected


def test_backward_after_another_threads_forward_raises():
    import threading

    m = gradcore.nn.MLP([3, 5, 2], seed=0)
    x = np.ones((4, 3), "f4")
    t = threading.Thread(target=lambda: m(x))
    t.start()
    t.join()
    m(x)  # the thread that ran forward has ended: handing over is fine
    caught = []

    def probe():
        try:
            m(x)
        except gradcore.ConcurrentUseError as exc:
            caught.append(str(exc))

    t = threading.Thread(target=probe)  # this (live) thread ran the last forward
    t.start()
    t.join()
    assert len(caught) == 1 and "is still alive" in caught[0] and "clear_cache()" in caught[0]
    m.clear_cache()  # hands the model over explicitly
    done = threading.Event()
    hold = threading.Event()

    def other():
        m(x)
        done.set()
        hold.wait(5)

    t = threading.Thread(target=other)
    t.start()
    assert done.wait(5)
    with pytest.raises(gradcore.ConcurrentUseError, match="backward: called from thread .* last forward ran in"):
        m.backward(np.ones((4, 2), "f4"))
    with pytest.raises(gradcore.ConcurrentUseError, match="is still alive"):
        m(x)  # its output buffers may still be in use there
    hold.set()
    t.join()
    m(x)
    m.backward(np.ones((4, 2), "f4"))


def test_separate_models_in_threads_match_sequential():
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((8, 6)).astype("f4") for _ in range(20)]

    def run(k, errors, box):
        m = gradcore.nn.MLP([6, 16, 3], seed=k)
        try:
            box[k] = [m(x).copy() for x in xs]
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    errors, box = _two_threads(run)
    assert not errors
    for k in range(2):
        m = gradcore.nn.MLP([6, 16, 3], seed=k)
        for x, y in zip(xs, box[k]):
            np.testing.assert_array_equal(m(x), y)


def test_copied_model_has_its_own_guard():
    import copy
    import threading

    m = gradcore.nn.MLP([3, 4, 2], seed=0)
    x = np.ones((2, 3), "f4")
    m(x)
    c = copy.deepcopy(m)
    t = threading.Thread(target=lambda: c(x))  # a copy is a separate model
    t.start()
    t.join()
    assert c._gc_guard is not m._gc_guard
    assert all(mod._gc_guard is c._gc_guard for _, mod in c.named_modules())


def test_use_backend_is_per_thread():
    import threading

    barrier = threading.Barrier(2)
    seen = {}

    def run(name):
        with gradcore.use_backend(name):
            barrier.wait(5)  # both blocks are open at once
            seen[name] = gradcore.get_backend()
            barrier.wait(5)
        seen[name + " after"] = gradcore.get_backend()

    ts = [threading.Thread(target=run, args=(n,)) for n in ("numpy", "c")]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert seen == {"numpy": "numpy", "c": "c", "numpy after": "c", "c after": "c"}
    assert gradcore.get_backend() == "c"


def test_use_backend_nests_and_restores():
    ub = gradcore.use_backend("numpy")
    with ub:
        with ub:
            assert gradcore.get_backend() == "numpy"
        with gradcore.use_backend("c"):
            assert gradcore.get_backend() == "c"
        assert gradcore.get_backend() == "numpy"
    assert gradcore.get_backend() == "c"
    with pytest.raises(ValueError, match="unknown backend 'cuda'"):
        gradcore.use_backend("cuda")


def test_sweep_threads_run_on_the_callers_backend():
    from gradcore.experiments import sweep

    with gradcore.use_backend("numpy"):
        res = sweep(lambda a: (a, gradcore.get_backend()), {"a": [1, 2, 3]}, n_jobs=2, backend="threads")
    assert [v[1] for v in res.values] == ["numpy"] * 3


# ------------------------------------------------- NumPy scalars, bad numbers
def _mlp():
    return gradcore.nn.MLP([2, 4, 1], seed=0)


def _batches(n=3):
    return [(np.ones((3, 2), "f4"), np.ones((3, 1), "f4"))] * n


def test_train_and_monitor_accept_numpy_scalars():
    res = gradcore.train(_mlp(), _batches(), steps=np.int64(2), clip_norm=np.float32(1),
                         clip_value=np.float32(0.5), progress=False)
    assert len(res.losses) == 2
    mon = gradcore.GradMonitor(_mlp(), explode_factor=np.float32(10), window=np.int64(5))
    assert (mon.explode_factor, mon.window) == (10.0, 5)
    mon.after_backward(step=np.int64(0), loss=np.float32(0.5))
    mon.after_step(np.float64(0.5))


@pytest.mark.parametrize("kwargs, exc, msg", [
    (dict(steps=True), TypeError, "steps: expected an int >= 1"),
    (dict(steps="3"), TypeError, "steps: expected an int >= 1"),
    (dict(steps=-1), ValueError, "steps: expected an int >= 1"),
    (dict(clip_norm="1"), TypeError, "clip_norm: expected a finite number > 0"),
    (dict(clip_norm=True), TypeError, "clip_norm: expected a finite number > 0"),
    (dict(clip_value=-1.0), ValueError, "clip_value: expected a finite number > 0"),
])
def test_train_bad_numbers(kwargs, exc, msg):
    m = _mlp()
    before = m.arena.data.copy()
    with pytest.raises(exc, match=msg):
        gradcore.train(m, _batches(), progress=False, **kwargs)
    np.testing.assert_array_equal(m.arena.data, before)


def test_train_batches_none():
    with pytest.raises(TypeError, match="batches: expected an iterable of"):
        gradcore.train(_mlp(), None)


def test_monitor_bad_arguments():
    with pytest.raises(TypeError, match="window: expected an int >= 2"):
        gradcore.GradMonitor(_mlp(), window=5.0)
    with pytest.raises(TypeError, match="explode_factor: expected a finite number"):
        gradcore.GradMonitor(_mlp(), explode_factor="10")
    mon = gradcore.GradMonitor(_mlp())
    with pytest.raises(TypeError, match="step: expected an int >= 0"):
        mon.after_backward(step="a")
    with pytest.raises(TypeError, match="loss: expected a real number"):
        mon.after_backward(loss="x")
    mon.after_backward()
    with pytest.raises(ValueError, match="clip_coef: expected a finite number >= 0.0 and <= 1.0"):
        mon.after_step(clip_coef=-1)
    with pytest.raises(ValueError, match="clip_coef"):
        mon.after_step(clip_coef=math.nan)
    mon.after_step(None)  # a skipped step


def test_experiment_argument_errors():
    from gradcore import experiments

    with pytest.raises(TypeError, match="w: expected a finite number"):
        experiments.chain(w="a")
    with pytest.raises(ValueError, match="depth: expected an int >= 1, got 0"):
        experiments.initialization_study(depth=0)
    with pytest.raises(TypeError, match=r"inits: expected a list of initializer specs.*\['he'\]"):
        experiments.initialization_study(inits="he")
    with pytest.raises(TypeError, match="scheduler: expected None, an address string"):
        experiments.sweep(lambda a: a, {"a": [1, 2]}, backend="dask", scheduler=42)


def test_write_report_none_creates_nothing(tmp_path):
    from gradcore.experiments.report import write_report

    out = tmp_path / "rep"
    with pytest.raises(TypeError, match="results: expected a dict"):
        write_report(None, out)
    assert not out.exists()


def test_minmaxscaler_feature_range():
    from gradcore.data import MinMaxScaler

    with pytest.raises(TypeError, match="feature_range must be a pair of numbers"):
        MinMaxScaler(feature_range=None)
    with pytest.raises(TypeError, match="feature_range must be a pair of numbers"):
        MinMaxScaler(feature_range=(0, 1, 2))
    MinMaxScaler(feature_range=(np.float32(-1), 1))


def test_rnn_truncate_beyond_int64_is_full_bptt(backend):
    r = gradcore.nn.RNN(2, 3, seed=0, dtype="float64")
    x = np.random.default_rng(0).standard_normal((4, 2, 2))
    out, _ = r(x)
    dx_full = r.backward(np.ones_like(out)).copy()
    r.zero_grad()
    r(x)
    np.testing.assert_array_equal(r.backward(np.ones_like(out), truncate=2**64), dx_full)


# ------------------------------------------------------------------- the CLI
@pytest.mark.parametrize("argv", [
    lambda d: ["sweep", str(d)],                                   # a directory, not a TOML file
    lambda d: ["chain", "--out", str(d / "afile")],                # --out is a file
    lambda d: ["chain", "--plot", str(d / "afile" / "x" / "y.png")],  # cannot be created
])
def test_cli_file_errors_are_one_line(tmp_path, capsys, argv):
    from gradcore.cli import main

    (tmp_path / "afile").write_text("x")
    assert main(argv(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and "error:" in err


def test_cli_huge_size_is_one_line(capsys, monkeypatch):
    from gradcore import cli

    def huge(*a, **k):
        raise MemoryError("Unable to allocate 298. GiB for an array")

    import gradcore.experiments as ex

    monkeypatch.setattr(ex, "bptt_profile", huge, raising=False)
    monkeypatch.setattr(ex, "bptt", huge, raising=False)
    rc = cli.main(["bptt", "--T", "10000000000"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err and "out of memory" in err
    assert len(err.strip().splitlines()) == 1


def test_numpy_scalars_in_experiment_helpers():
    from gradcore.experiments._build import resolve_init

    w = resolve_init(np.float32(0.5))((2, 2), 0, "float64")
    assert np.all(w == 0.5)
    with pytest.raises(TypeError, match="init: expected a name"):
        resolve_init(np.bool_(True))


def test_adaptive_clip_pair_given_twice_clipped_once():
    p, g = np.ones(4), np.full(4, 10.0)
    p2, g2 = np.ones(4), np.full(4, 10.0)
    gradcore.adaptive_clip_([p2], [g2], clipping=0.01)
    gradcore.adaptive_clip_([p, p], [g, g], clipping=0.01)
    np.testing.assert_array_equal(g, g2)
    with pytest.raises(ValueError, match=r"grads\[1\] is the same array as grads\[0\] but params\[1\]"):
        gradcore.adaptive_clip_([p, np.ones(4)], [g, g], clipping=0.01)
    with pytest.raises(ValueError, match=r"grads\[0\] and grads\[1\] share memory only in part"):
        gradcore.adaptive_clip_([np.ones(4), np.ones(2)], [g, g[2:]], clipping=0.01)


def test_optimizer_folded_clip_tiny_coefficient_float32():  # C backend (overflow-safe norm)
    m = gradcore.nn.Dense(4, 4, seed=0)
    opt = gradcore.optim.SGD(m, lr=1.0)
    m.arena.grad[:] = 3e38
    opt.step(clip_norm=1e-30)  # coefficient ~8e-70: would be 0 as a float32
    assert gradcore.global_norm(m.arena.grad) == pytest.approx(1e-30, rel=1e-5)
    assert np.all(m.arena.grad > 0)
