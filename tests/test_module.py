"""The Module protocol, exercised with a small NumPy test layer (independent
of the dense kernels)."""

import numpy as np
import pytest

import gradcore
from gradcore.nn import Arena, Module


class Affine(Module):
    """y = x w^T + b, plain NumPy (test double for the protocol)."""

    def __init__(self, i, o, bias=True, dtype=np.float64, seed=0):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.dtype = np.dtype(dtype)
        self._declare("weight", rng.normal(size=(o, i)).astype(dtype))
        if bias:
            self._declare("bias", rng.normal(size=(o,)).astype(dtype))
        self._declare_buffer("calls", np.zeros((), np.int64))
        self._x = None
        self.bound = 0
        self._finalize()

    def _bind(self):
        self.bound += 1

    def forward(self, x):
        self._x = x
        self._buffers["calls"] += 1
        y = x @ self.p["weight"].T
        if "bias" in self.p:
            y = y + self.p["bias"]
        return y

    def backward(self, dy):
        if self._x is None:
            raise RuntimeError("Affine: backward called before forward")
        self.g["weight"] += dy.T @ self._x
        if "bias" in self.g:
            self.g["bias"] += dy.sum(0)
        return dy @ self.p["weight"]


class Chain(Module):
    def __init__(self, *layers):
        super().__init__()
        for i, layer in enumerate(layers):
            self.add_module(str(i), layer)
        self._finalize()

    def forward(self, x):
        for _, layer in self.children():
            x = layer(x)
        return x

    def backward(self, dy):
        for _, layer in reversed(list(self.children())):
            dy = layer.backward(dy)
        return dy


class NoSuper(Module):
    def __init__(self):  # deliberately no super().__init__()
        self._declare("w", np.ones((2, 2)))
        self._finalize()


def test_single_layer_arena_views():
    layer = Affine(3, 2)
    assert isinstance(layer.arena, Arena)
    assert list(layer.parameters()) == ["weight", "bias"]
    assert list(layer.gradients()) == ["weight", "bias"]
    w = layer.parameters()["weight"]
    assert np.shares_memory(w, layer.arena.data) and w is not None
    assert np.shares_memory(layer.p["bias"], layer.arena.data)
    assert np.shares_memory(layer.g["weight"], layer.arena.grad)
    assert layer.num_parameters() == 8 and layer.arena.size == 8
    np.testing.assert_array_equal(layer.flat_parameters()[:6], w.ravel())


def test_container_rehomes_children_and_keeps_values():
    a, b = Affine(3, 4, seed=1), Affine(4, 2, bias=False, seed=2)
    wa, ba, wb = a.p["weight"].copy(), a.p["bias"].copy(), b.p["weight"].copy()
    old_arena = a.arena
    model = Chain(a, b)
    assert a.arena is model.arena and b.arena is model.arena and a.arena is not old_arena
    assert a.bound == 2 and b.bound == 2
    assert list(model.parameters()) == ["0.weight", "0.bias", "1.weight"]
    assert list(model.gradients()) == ["0.weight", "0.bias", "1.weight"]
    np.testing.assert_array_equal(model.parameters()["0.weight"], wa)
    np.testing.assert_array_equal(model.parameters()["0.bias"], ba)
    np.testing.assert_array_equal(model.parameters()["1.weight"], wb)
    np.testing.assert_array_equal(model.arena.data, np.concatenate([wa.ravel(), ba, wb.ravel()]))
    # the layer's own views are the container's arena
    assert np.shares_memory(a.p["weight"], model.arena.data)
    assert np.shares_memory(b.g["weight"], model.arena.grad)
    # child keeps names relative to itself and its contiguous slice
    assert list(b.parameters()) == ["weight"]
    assert b.flat_gradients().size == 8
    assert np.shares_memory(b.flat_gradients(), model.arena.grad[20:])


def test_nested_names_and_named_modules():
    inner = Chain(Affine(2, 2), Affine(2, 2))
    model = Chain(Affine(2, 2), inner)
    assert list(model.parameters()) == ["0.weight", "0.bias", "1.0.weight", "1.0.bias", "1.1.weight", "1.1.bias"]
    assert [n for n, _ in model.named_modules()] == ["", "0", "1", "1.0", "1.1"]
    assert list(model.buffers()) == ["0.calls", "1.0.calls", "1.1.calls"]


def test_forward_backward_accumulates_and_zero_grad():
    model = Chain(Affine(3, 4, seed=1), Affine(4, 2, seed=2))
    x = np.random.default_rng(0).normal(size=(5, 3))
    dy = np.ones((5, 2))
    model(x)
    model.backward(dy)
    g1 = model.arena.grad.copy()
    assert np.abs(g1).sum() > 0
    model(x)
    model.backward(dy)
    np.testing.assert_allclose(model.arena.grad, 2 * g1)
    # zero_grad of a child only clears its slice
    model._children["1"].zero_grad()
    np.testing.assert_allclose(model.arena.grad[:16], 2 * g1[:16])
    assert not model.arena.grad[16:].any()
    model.zero_grad()
    assert not model.arena.grad.any()
    # gradients() views are what clip_grad_norm_ sees
    model(x)
    model.backward(dy)
    norm_dict = gradcore.global_norm(model.gradients())
    norm_flat = gradcore.global_norm(model.arena.grad)
    assert norm_dict == pytest.approx(np.linalg.norm(g1), rel=1e-12)
    assert norm_flat == pytest.approx(norm_dict, rel=1e-12)


def test_backward_before_forward():
    with pytest.raises(RuntimeError, match="before forward"):
        Affine(2, 2).backward(np.ones((1, 2)))


def test_state_dict_roundtrip_copies():
    model = Chain(Affine(3, 4, seed=1), Affine(4, 2, seed=2))
    model(np.ones((1, 3)))
    sd = model.state_dict()
    assert list(sd) == ["0.weight", "0.bias", "0.calls", "1.weight", "1.bias", "1.calls"]
    assert not any(np.shares_memory(v, model.arena.data) for v in sd.values())
    assert int(sd["0.calls"]) == 1
    model.arena.data[:] = 0.0
    other = Chain(Affine(3, 4, seed=5), Affine(4, 2, seed=6))
    other.load_state_dict(sd)
    np.testing.assert_array_equal(other.p if False else other.parameters()["1.bias"], sd["1.bias"])
    assert int(other.buffers()["1.calls"]) == 1
    # views stay views after loading
    assert np.shares_memory(other._children["0"].p["weight"], other.arena.data)
    model.load_state_dict(sd)
    np.testing.assert_array_equal(model.parameters()["0.weight"], sd["0.weight"])


def _sd():
    return Chain(Affine(3, 4, seed=1), Affine(4, 2, seed=2))


@pytest.mark.parametrize(
    "edit, exc, msg",
    [
        (lambda sd: sd.pop("1.bias"), KeyError, r"missing keys \['1.bias'\]"),
        (lambda sd: sd.__setitem__("2.weight", np.zeros(1)), KeyError, r"unexpected keys \['2.weight'\]"),
        (lambda sd: sd.__setitem__("0.weight", np.zeros((3, 4))), ValueError, r"'0.weight' has shape \(3, 4\), expected \(4, 3\)"),
        (lambda sd: sd.__setitem__("1.bias", np.zeros(2, np.float32)), TypeError, "'1.bias' has dtype float32, expected float64"),
        (lambda sd: sd.__setitem__("0.calls", np.zeros((), np.float64)), TypeError, "expected int64"),
    ],
)
def test_load_state_dict_bad_input_changes_nothing(edit, exc, msg):
    model = _sd()
    before = model.arena.data.copy()
    sd = {k: np.full_like(v, 9) for k, v in model.state_dict().items()}
    edit(sd)
    with pytest.raises(exc, match=msg):
        model.load_state_dict(sd)
    np.testing.assert_array_equal(model.arena.data, before)
    assert int(model.buffers()["0.calls"]) == 0


def test_load_state_dict_non_strict():
    model = _sd()
    sd = model.state_dict()
    sd.pop("1.bias")
    sd["extra"] = np.zeros(1)
    sd["0.bias"] = np.full(4, 5.0)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert missing == ["1.bias"] and unexpected == ["extra"]
    assert np.all(model.parameters()["0.bias"] == 5.0)
    with pytest.raises(TypeError, match="expected a dict"):
        model.load_state_dict([1, 2])


def test_train_eval_recursive():
    model = Chain(Affine(2, 2), Chain(Affine(2, 2)))
    assert all(m.training for _, m in model.named_modules())
    assert model.eval() is model
    assert not any(m.training for _, m in model.named_modules())
    model.train()
    assert all(m.training for _, m in model.named_modules())


def test_declare_and_add_module_errors():
    class Bad(Module):
        pass

    m = Bad()
    with pytest.raises(TypeError, match="must be an ndarray"):
        m._declare("w", [1.0])
    with pytest.raises(TypeError, match="expected 'float32' or 'float64'"):
        m._declare("w", np.zeros(2, np.int32))
    m._declare("w", np.zeros(2))
    with pytest.raises(ValueError, match="already used"):
        m._declare("w", np.zeros(2))
    with pytest.raises(ValueError, match="without '.'"):
        m._declare("a.b", np.zeros(2))
    with pytest.raises(TypeError, match="must be a gradcore.nn.Module"):
        m.add_module("c", object())
    with pytest.raises(RuntimeError, match="_finalize"):
        m.parameters()
    with pytest.raises(NotImplementedError):
        m.forward(np.zeros(1))


def test_mixed_dtypes_and_shared_layers_rejected():
    with pytest.raises(TypeError, match="share one dtype"):
        Chain(Affine(2, 2, dtype=np.float32), Affine(2, 2, dtype=np.float64))
    layer = Affine(2, 2)
    with pytest.raises(ValueError, match="appears twice"):
        Chain(layer, layer)


def test_subclass_without_super_init_works():
    m = NoSuper()
    assert list(m.parameters()) == ["w"] and m.arena.size == 4


def test_repr_lists_children():
    text = repr(Chain(Affine(2, 2), Affine(2, 1)))
    assert "(0): Affine" in text and "(1): Affine" in text


def test_guard_keeps_any_method_signature():
    """The thread guard wraps forward/backward with their own signature:
    positional-only, defaults, *args, keyword-only and **kwargs all pass."""
    import threading

    class Odd(Module):
        def __init__(self):
            self._finalize()

        def forward(self, x, /, scale=2.0, *rest, flag=False, **kw):
            return (x * scale, rest, flag, kw)

        def backward(self, dy=None):
            return dy

    m = Odd()
    assert m.forward(1) == (2.0, (), False, {})
    assert m.forward(1, 3, 4, 5, flag=True, extra=1) == (3, (4, 5), True, {"extra": 1})
    assert m.backward() is None and m.backward(dy=7) == 7
    with pytest.raises(TypeError):
        m.forward(x=1)  # positional-only stays positional-only
    assert Odd.forward.__name__ == "forward" and Odd.forward.__wrapped__.__defaults__ == (2.0,)
    m.clear_cache()  # hand the model over to another thread
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("fwd", m.forward(1)))
    t.start()
    t.join()
    assert box["fwd"][0] == 2.0
    m.forward(1)  # the thread of the last forward has ended: handed back
    m.backward(1)

    class Generic(Module):  # a name the generated wrapper cannot use: the generic wrapper
        def __init__(self):
            self._finalize()

        def forward(self, _gc_x, *, k=1):
            return _gc_x * k

    g = Generic()
    assert g.forward(3, k=2) == 6 and Generic.forward.__wrapped__.__name__ == "forward"
