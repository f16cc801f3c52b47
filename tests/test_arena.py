import numpy as np
import pytest

from gradcore.nn import Arena


def test_layout_offsets_and_views():
    a = Arena([("0.weight", (3, 2)), ("0.bias", (3,)), ("1.weight", (1, 3)), ("1.bias", (1,))], "float64")
    assert a.size == 6 + 3 + 3 + 1
    assert a.offsets == {"0.weight": (0, 6), "0.bias": (6, 9), "1.weight": (9, 12), "1.bias": (12, 13)}
    assert a.names == ["0.weight", "0.bias", "1.weight", "1.bias"]
    assert a.data.dtype == np.float64 and a.grad.dtype == np.float64
    assert a.data.ndim == 1 and a.data.flags.c_contiguous and a.grad.flags.c_contiguous
    assert not np.shares_memory(a.data, a.grad)
    for name, shape in a.specs:
        assert a.params[name].shape == shape and a.grads[name].shape == shape
        assert np.shares_memory(a.params[name], a.data)
        assert np.shares_memory(a.grads[name], a.grad)
    # writing through a view writes the flat buffer and vice versa
    a.params["0.bias"][:] = [1.0, 2.0, 3.0]
    np.testing.assert_array_equal(a.data[6:9], [1.0, 2.0, 3.0])
    a.grad[9:12] = 7.0
    np.testing.assert_array_equal(a.grads["1.weight"], [[7.0, 7.0, 7.0]])
    assert np.all(a.data[:6] == 0) and np.all(a.grad[:9] == 0)


@pytest.mark.parametrize("dtype", ["float32", "float64", np.float32, np.dtype(np.float64)])
def test_dtype_and_alignment(dtype):
    a = Arena([("w", (5, 7)), ("b", (5,))], dtype)
    assert a.data.dtype == np.dtype(dtype)
    assert a.data.ctypes.data % 64 == 0 and a.grad.ctypes.data % 64 == 0
    z = a.zeros()
    assert z.shape == (40,) and z.dtype == a.dtype and z.ctypes.data % 64 == 0 and not z.any()


def test_views_of_other_buffer_and_zero_grad():
    a = Arena([("w", (2, 2)), ("b", (2,))], "float32")
    state = a.zeros()
    v = a.views(state)
    v["b"][:] = 3.0
    assert state[4:].tolist() == [3.0, 3.0]
    a.grad[:] = 1.0
    a.zero_grad()
    assert not a.grad.any()
    with pytest.raises(ValueError, match="1-D array of 6 elements"):
        a.views(np.zeros(5, np.float32))


def test_empty_arena():
    a = Arena([], "float32")
    assert a.size == 0 and len(a) == 0 and a.data.shape == (0,) and a.params == {}


@pytest.mark.parametrize(
    "specs, exc, msg",
    [
        ([("w", (2,)), ("w", (3,))], ValueError, "duplicate parameter name 'w'"),
        ([("w", (2, -1))], ValueError, "sizes >= 0"),
        ([("w", "ab")], TypeError, "tuple of ints"),
        ([(1, (2,))], TypeError, "names must be str"),
        (["w"], TypeError, r"\(name, shape\) pair"),
    ],
)
def test_bad_specs(specs, exc, msg):
    with pytest.raises(exc, match=msg):
        Arena(specs, "float32")


@pytest.mark.parametrize("dtype", ["float16", "int64", "complex64", "nonsense"])
def test_bad_dtype(dtype):
    with pytest.raises(TypeError, match="expected 'float32' or 'float64'"):
        Arena([("w", (2,))], dtype)
