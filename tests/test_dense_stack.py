"""The dense-stack kernels (a chain of dense layers in one call) and the fused
path of a plain MLP that uses them."""

import copy
import pickle

import numpy as np
import pytest

import gradcore
import gradcore.reference as R
from gradcore import _kernels as K
from gradcore import nn
from gradcore._contract import ACTIVATION_CODES, STACK_COLS
from _fd import numgrad
from _impls import IMPLS, assert_bad_input, run_simd_paths, tol


def _stack(dtype, sizes, acts, bias, seed=0):
    """theta (every weight then bias, in layer order), layout rows and the
    per-layer (w, b) views."""
    rng = np.random.default_rng(seed)
    rows, parts, pos = [], [], 0
    for l, (I, O) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = rng.standard_normal((O, I)) / np.sqrt(I)
        parts.append(w.ravel())
        wo, pos = pos, pos + O * I
        bo = -1
        if bias[l]:
            parts.append(rng.standard_normal(O) * 0.1)
            bo, pos = pos, pos + O
        rows.append([I, O, wo, bo, ACTIVATION_CODES[acts[l]]])
    theta = np.concatenate(parts).astype(dtype)
    layout = np.array(rows, np.int64)
    views = [(theta[wo:wo + O * I].reshape(O, I), None if bo < 0 else theta[bo:bo + O])
             for I, O, wo, bo, _ in rows]
    return theta, layout, views


CASES = [
    ([3, 5, 4, 2], ["relu", "tanh", "identity"], [True, False, True]),
    ([7, 7], ["sigmoid"], [True]),
    ([2, 9, 1, 6, 6, 3], ["leaky_relu", "relu", "tanh", "sigmoid", "identity"], [True, True, False, True, True]),
]


def _run(mod, dtype, sizes, acts, bias, B=4, want_dx=True, slope=0.1):
    theta, layout, _ = _stack(dtype, sizes, acts, bias)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((B, sizes[0])).astype(dtype)
    dy = rng.standard_normal((B, sizes[-1])).astype(dtype)
    ys = np.empty(B * sum(sizes[1:]), dtype)
    mod.dense_stack_forward(ys, x, theta, layout, slope)
    grad = np.full(theta.shape, 0.5, dtype)  # accumulates
    work = np.empty(2 * B * max(sizes), dtype)
    dx = np.empty((B, sizes[0]), dtype) if want_dx else None
    mod.dense_stack_backward(dx, grad, work, dy, x, theta, ys, layout, slope)
    return ys, grad, dx


def _layer_by_layer(dtype, sizes, acts, bias, B=4, slope=0.1):
    """The same chain through one dense_forward / dense_backward per layer."""
    theta, layout, views = _stack(dtype, sizes, acts, bias)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((B, sizes[0])).astype(dtype)
    dy = rng.standard_normal((B, sizes[-1])).astype(dtype)
    hs, ys = [x], []
    for (w, b), act in zip(views, acts):
        y = np.empty((B, w.shape[0]), dtype)
        K.dense_forward(y, hs[-1], w, b, act, slope)
        ys.append(y)
        hs.append(y)
    grad = np.full(theta.shape, 0.5, dtype)
    g = dy
    for l in range(len(views) - 1, -1, -1):
        I, O, wo, bo, _ = layout[l]
        dx = np.empty((B, I), dtype)
        K.dense_backward(dx, grad[wo:wo + O * I].reshape(O, I), None if bo < 0 else grad[bo:bo + O], g,
                         hs[l], views[l][0], ys[l], acts[l], slope, np.empty((B, O), dtype))
        g = dx
    return np.concatenate([y.ravel() for y in ys]), grad, g


@pytest.mark.kernel
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_c_matches_reference(dtype, case):
    sizes, acts, bias = CASES[case]
    c, r = _run(K, dtype, sizes, acts, bias), _run(R, dtype, sizes, acts, bias)
    t = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else tol(dtype)
    for a, b in zip(c, r):
        np.testing.assert_allclose(a, b, **t)


@pytest.mark.kernel
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_c_is_bit_identical_to_layer_calls_on_every_simd_path(dtype, case):
    sizes, acts, bias = CASES[case]
    for got, want in zip(run_simd_paths(lambda: _run(K, dtype, sizes, acts, bias)),
                         run_simd_paths(lambda: _layer_by_layer(dtype, sizes, acts, bias))):
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("K_", IMPLS)
def test_dx_may_be_skipped(K_):
    sizes, acts, bias = CASES[0]
    with_dx, without = _run(K_, np.float64, sizes, acts, bias), _run(K_, np.float64, sizes, acts, bias, want_dx=False)
    assert without[2] is None
    np.testing.assert_array_equal(with_dx[1], without[1])


@pytest.mark.parametrize("K_", IMPLS)
def test_finite_differences(K_):
    sizes, acts, bias = [3, 4, 4, 2], ["tanh", "leaky_relu", "sigmoid"], [True, False, True]
    theta, layout, _ = _stack(np.float64, sizes, acts, bias)
    rng = np.random.default_rng(2)
    B = 3
    x = rng.standard_normal((B, 3))
    dy = rng.standard_normal((B, 2))
    ys = np.empty(B * 10)

    def f():
        K_.dense_stack_forward(ys, x, theta, layout, 0.1)
        return float((ys[-B * 2:].reshape(B, 2) * dy).sum())

    f()
    grad, dx = np.zeros_like(theta), np.empty_like(x)
    K_.dense_stack_backward(dx, grad, np.empty(2 * B * 4), dy, x, theta, ys, layout, 0.1)
    np.testing.assert_allclose(grad, numgrad(f, theta), atol=1e-7)
    np.testing.assert_allclose(dx, numgrad(f, x), atol=1e-7)


@pytest.mark.parametrize("K_", IMPLS)
def test_bad_input(K_):
    sizes, acts, bias = CASES[0]
    theta, layout, _ = _stack(np.float32, sizes, acts, bias)
    B = 4
    x = np.ones((B, 3), np.float32)
    dy = np.ones((B, 2), np.float32)
    ys = np.zeros(B * 11, np.float32)
    grad, work, dx = np.zeros_like(theta), np.zeros(2 * B * 5, np.float32), np.zeros_like(x)
    arrays = dict(x=x, dy=dy, ys=ys, grad=grad, work=work, dx=dx, theta=theta, layout=layout)
    F = K_.dense_stack_forward
    base = dict(ys=ys, x=x, theta=theta, layout=layout, slope=0.1)

    def bad_layout(row, col, value):
        lay = layout.copy()
        lay[row, col] = value
        return lay

    assert_bad_input(F, {**base, "layout": layout.astype(np.int32)}, arrays, TypeError, "layout: expected a native int64")
    assert_bad_input(F, {**base, "layout": layout[:, :4].copy()}, arrays, TypeError, rf"layout: .*\(L >= 1, {STACK_COLS}\)")
    assert_bad_input(F, {**base, "layout": layout[:0].copy()}, arrays, TypeError, "layout: expected")
    assert_bad_input(F, {**base, "layout": bad_layout(1, 0, 4)}, arrays, ValueError, r"layout\[1\]: expected I = 5")
    assert_bad_input(F, {**base, "layout": bad_layout(2, 4, 9)}, arrays, ValueError, r"layout\[2\]: expected an activation code")
    assert_bad_input(F, {**base, "layout": bad_layout(2, 2, theta.size - 3)}, arrays, ValueError, r"layout\[2\]: weight .* outside")
    assert_bad_input(F, {**base, "layout": bad_layout(0, 3, theta.size)}, arrays, ValueError, r"layout\[0\]: bias .* outside")
    assert_bad_input(F, {**base, "layout": bad_layout(0, 1, 0)}, arrays, ValueError, r"layout\[0\]: expected sizes")
    assert_bad_input(F, {**base, "x": np.ones((B, 4), np.float32)}, arrays, ValueError, r"x: expected shape \(B, 3\)")
    assert_bad_input(F, {**base, "x": np.ones((B, 3))}, arrays, TypeError, "theta: expected dtype float64")
    assert_bad_input(F, {**base, "ys": np.zeros(B * 11 - 1, np.float32)}, arrays, ValueError, r"ys: expected shape \(44,\)")
    assert_bad_input(F, {**base, "ys": theta}, arrays, ValueError, "ys: ")
    assert_bad_input(F, {**base, "theta": theta.reshape(1, -1)}, arrays, ValueError, "theta: expected a 1-D")
    assert_bad_input(F, {**base, "slope": -1.0}, arrays, ValueError, "slope")
    Bk = K_.dense_stack_backward
    base = dict(dx=dx, grad=grad, work=work, dy=dy, x=x, theta=theta, ys=ys, layout=layout, slope=0.1)
    assert_bad_input(Bk, {**base, "work": np.zeros(2 * B * 5 - 1, np.float32)}, arrays, ValueError, "work: expected a 1-D array of at least 40")
    # a 2-D work is refused for its shape (it holds enough values), in the contract's words
    assert_bad_input(Bk, {**base, "work": np.zeros((B, 10), np.float32)}, arrays, ValueError,
                     r"work: expected a 1-D array, got shape \(4, 10\)$")
    assert_bad_input(Bk, {**base, "work": np.zeros((2, 3), np.float32)}, arrays, ValueError,
                     r"work: expected a 1-D array, got shape \(2, 3\)$")
    assert_bad_input(Bk, {**base, "grad": np.zeros(theta.size + 1, np.float32)}, arrays, ValueError, "grad: expected shape")
    assert_bad_input(Bk, {**base, "dy": np.zeros((B, 3), np.float32)}, arrays, ValueError, r"dy: expected shape \(4, 2\)")
    assert_bad_input(Bk, {**base, "dx": np.zeros((B, 2), np.float32)}, arrays, ValueError, r"dx: expected shape \(4, 3\)")
    assert_bad_input(Bk, {**base, "grad": theta}, arrays, ValueError, "grad: output overlaps argument theta")
    assert_bad_input(Bk, {**base, "work": ys[:40]}, arrays, ValueError, "work: output overlaps argument ys")
    ro = np.zeros_like(theta)
    ro.flags.writeable = False
    assert_bad_input(Bk, {**base, "grad": ro}, arrays, ValueError, "grad: .*read-only")


@pytest.mark.kernel
def test_sizes_beyond_the_blas_int_are_a_size_error():
    """B or a layer size over 2^31 - 1 is the BLAS-range error the layer
    kernels give, not "invalid argument" (checked on the C stack passes'
    own checks, which run before any array is touched)."""
    big = 2**31
    check = K._dense_stack_check
    check(np.array([[3, 4, 0, 12, 1], [4, 2, 16, -1, 0]]), 24, 5)  # a valid call: no error
    for layout, n, B in [(np.array([[3, 4, 0, 12, 1]]), 16, big),
                         (np.array([[big, 1, 0, -1, 0]]), big, 2),
                         (np.array([[1, big, 0, -1, 3]]), big, 2),
                         (np.array([[2, 3, 0, -1, 0], [3, big, 6, -1, 0]]), 6 + 3 * big, 1)]:
        with pytest.raises(K.KernelError, match="exceeds the 32-bit BLAS integer range"):
            check(layout, n, B)
    with pytest.raises(K.KernelError, match="invalid argument"):  # a bad layout stays an argument error
        check(np.array([[big, 1, 0, -1, 0]]), big - 1, 2)
    with pytest.raises(K.KernelError, match="invalid argument"):
        check(np.array([[3, 4, 0, 12, 1]]), 16, -1)
    check(np.array([[3, 4, 0, 12, 1]]), 16, 2**31 - 1)  # the largest B BLAS takes


# ------------------------------------------------------------ the MLP path
def _mlp(fused, dtype="float32", sizes=(5, 8, 8, 3), **kw):
    m = nn.MLP(list(sizes), activation="tanh", dtype=dtype, seed=3, **kw)
    if not fused:
        m._stack_layout = None  # the layer-by-layer Sequential path
    return m


def _step(m, seed=4, B=6):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((B, m.sizes[0])).astype(m.dtype)
    dy = rng.standard_normal((B, m.sizes[-1])).astype(m.dtype)
    y = m.forward(x).copy()
    dx = m.backward(dy)
    return y, None if dx is None else dx.copy(), m.flat_gradients().copy()


@pytest.mark.parametrize("backend", ["c", "numpy"])
@pytest.mark.parametrize("input_grad", [True, False])
def test_fused_mlp_matches_layer_by_layer(backend, input_grad):
    with gradcore.use_backend(backend):
        a, b = _mlp(True, input_grad=input_grad), _mlp(False, input_grad=input_grad)
        assert a._stack_layout is not None
        for _ in range(2):  # gradients accumulate over calls
            for u, v in zip(_step(a), _step(b)):
                if v is None:
                    assert u is None
                else:
                    np.testing.assert_array_equal(u, v)


def test_only_plain_mlps_are_fused():
    assert _mlp(True, norm="layer")._stack_layout is None
    assert _mlp(True, residual=True)._stack_layout is None
    assert _mlp(True)._stack_layout is not None


def test_layer_backward_after_mlp_forward():
    """Each layer's own cache is set by the fused forward, like a Sequential's."""
    a, b = _mlp(True), _mlp(False)
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    g = np.ones((4, 3), np.float32)
    outs = []
    for m in (a, b):
        m.forward(x)
        outs.append([m[2].backward(g).copy(), m[1].backward(np.ones((4, 8), np.float32)).copy(),
                     m.flat_gradients().copy()])
    for u, v in zip(*outs):
        np.testing.assert_array_equal(u, v)


def test_copies_and_inference_keep_the_fused_path():
    m = _mlp(True, dtype="float64")
    ref = _step(copy.deepcopy(m))
    for c in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
        assert c._stack_layout is not None and np.shares_memory(c._theta, c.arena.data)
        for u, v in zip(_step(c), ref):
            np.testing.assert_array_equal(u, v)
    x = np.ones((2, 5))
    y = m.forward(x).copy()
    z = m.inference(np.ones((7, 5)))
    assert z.shape == (7, 3)
    np.testing.assert_array_equal(m.forward(x), y)


def test_mlp_inside_a_container_uses_the_new_arena():
    inner = _mlp(True, dtype="float64")
    outer = nn.Sequential(nn.Dense(4, 5, dtype="float64", seed=0), inner)
    assert np.shares_memory(inner._theta, outer.arena.data)
    x = np.random.default_rng(0).standard_normal((3, 4))
    outer.forward(x)
    outer.backward(np.ones((3, 3)))
    flat = _mlp(False, dtype="float64")
    flat.load_state_dict(inner.state_dict())
    h = outer[0].forward(x).copy()
    flat.forward(h)
    flat.backward(np.ones((3, 3)))
    np.testing.assert_array_equal(inner.flat_gradients(), flat.flat_gradients())


def test_fused_mlp_own_output_and_dx_fed_back():
    """Its own output as the next input and its own dx as dy: the same as
    passing copies (the kernels never see an output overlap an input)."""
    a, b = _mlp(True, sizes=(4, 4, 4)), _mlp(True, sizes=(4, 4, 4))
    x = np.ones((3, 4), np.float32)
    res = []
    for m, fresh in ((a, False), (b, True)):
        y = m.forward(x)
        y2 = m.forward(y.copy() if fresh else y).copy()
        dx = m.backward(np.ones((3, 4), np.float32))
        dx2 = m.backward(dx.copy() if fresh else dx).copy()
        res.append((y2, dx2, m.flat_gradients().copy()))
    for u, v in zip(*res):
        np.testing.assert_array_equal(u, v)


def test_fused_mlp_errors_name_the_layer():
    m = _mlp(True)
    with pytest.raises(RuntimeError, match=r"Dense\(8 -> 3, identity\): backward called before forward"):
        m.backward(np.ones((2, 3), np.float32))
    with pytest.raises(TypeError, match=r"Dense\(5 -> 8, tanh\): expected float32 input"):
        m.forward(np.ones((2, 5)))
    m.forward(np.ones((2, 5), np.float32))
    with pytest.raises(ValueError, match=r"Dense\(8 -> 3, identity\): dy has shape \(2, 4\)"):
        m.backward(np.ones((2, 4), np.float32))
    before = m.flat_gradients().copy()
    with pytest.raises(TypeError, match="expected float32 dy"):
        m.backward(np.ones((2, 3)))
    np.testing.assert_array_equal(m.flat_gradients(), before)


def test_layer_run_on_its_own_between_mlp_calls():
    """A layer's own forward between two MLP forwards: the layers' caches are
    the MLP's again after the second, as with a Sequential."""
    rng = np.random.default_rng(5)
    x, h = rng.standard_normal((4, 5)).astype(np.float32), rng.standard_normal((4, 8)).astype(np.float32)
    res = []
    for m in (_mlp(True), _mlp(False)):
        m.forward(x)
        m[1].forward(h)
        m[0].forward(np.ones((2, 5), np.float32))  # a new shape: the first layer's own buffers
        m.forward(x)
        g = m[1].backward(np.ones((4, 8), np.float32)).copy()
        g0 = m[0].backward(g).copy()
        dx = m.backward(np.ones((4, 3), np.float32)).copy()
        res.append((g, g0, dx, m.flat_gradients().copy()))
    for u, v in zip(*res):
        np.testing.assert_array_equal(u, v)


def test_layer_caches_emptied_between_mlp_calls_are_installed_again():
    """A child's clear_cache, or an inference, between two MLP forwards: the
    second forward gives the layers the MLP's caches back (a child's own
    backward then works as with a Sequential); with nothing in between the
    per-layer test is skipped and the caches stay installed."""
    from gradcore.nn._util import CACHE_EPOCH

    rng = np.random.default_rng(6)
    x = rng.standard_normal((4, 5)).astype(np.float32)
    res = []
    for m in (_mlp(True), _mlp(False)):
        m.forward(x)
        m[1].clear_cache()
        m.inference(np.ones((3, 5), np.float32))
        m.forward(x)
        g = m[1].backward(np.ones((4, 8), np.float32)).copy()
        m.forward(x)
        if m._stack_layout is not None:
            assert m._st.epoch == CACHE_EPOCH[0]  # nothing replaced a cache since the last test
        g0 = m[0].backward(m[1].backward(np.ones((4, 8), np.float32))).copy()
        res.append((g, g0, m.flat_gradients().copy()))
    for u, v in zip(*res):
        np.testing.assert_array_equal(u, v)


def test_mlps_sharing_their_layers_install_their_own_caches():
    """Two MLPs over the same Dense children (copy.copy): each forward gives
    the children that MLP's caches, so a child's backward reads its inputs."""
    rng = np.random.default_rng(7)
    x1, x2 = rng.standard_normal((2, 4, 5)).astype(np.float32)
    dy = np.ones((4, 8), np.float32)

    def child_grads(m):
        m.flat_gradients().fill(0)
        return m[1].backward(dy).copy(), m.flat_gradients().copy()

    ref = nn.MLP([5, 8, 8, 8], seed=0)
    ref.forward(x1)
    want = child_grads(ref)
    m = nn.MLP([5, 8, 8, 8], seed=0)
    c = copy.copy(m)
    for order in ((m, c, m), (m, c, m, c, m)):
        for net in order:
            net.forward(x1 if net is m else x2)
        for u, v in zip(child_grads(m), want):
            np.testing.assert_array_equal(u, v)


def test_only_the_layers_of_a_fused_mlp_move_the_cache_epoch():
    """A Dense no fused MLP owns (a head, another model) leaves CACHE_EPOCH
    alone, so an MLP beside it keeps skipping its per-layer test."""
    from gradcore.nn._util import CACHE_EPOCH

    m, head = _mlp(True), nn.Dense(3, 2, seed=0)
    x = np.ones((4, 5), np.float32)
    y = m.forward(x)
    e = CACHE_EPOCH[0]
    head.forward(y)
    assert CACHE_EPOCH[0] == e and m._st.epoch == e
    m[1].forward(np.ones((4, 8), np.float32))
    assert CACHE_EPOCH[0] > e  # a layer of the MLP ran by itself: the MLP looks again
