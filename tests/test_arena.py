import copy
import mmap
import os
import pickle

import numpy as np
import pytest

from gradcore.nn import Arena
from gradcore.nn import arena as arena_mod


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


# ------------------------------------------------------------ huge-page layout
_LINUX_THP = hasattr(mmap, "MADV_HUGEPAGE") and os.path.isdir("/sys/kernel/mm/transparent_hugepage")


def _vm_flags(addr):
    """The VmFlags of the mapping of this process that holds addr."""
    with open("/proc/self/smaps") as f:
        inside = False
        for line in f:
            head = line.split()[0]
            if "-" in head and all(c in "0123456789abcdef-" for c in head):
                lo, hi = (int(v, 16) for v in head.split("-"))
                inside = lo <= addr < hi
            elif inside and line.startswith("VmFlags:"):
                return line.split()[1:]
    raise AssertionError(f"no mapping holds {addr:#x}")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_large_arena_lies_on_huge_pages_small_one_does_not(dtype):
    n = arena_mod.HUGE_MIN_BYTES // np.dtype(dtype).itemsize  # data alone at the threshold
    big = Arena([("w", (n - 3,)), ("b", (3,))], dtype)
    small = Arena([("w", (4, 4))], dtype)
    for a in (big, small):
        assert a.data.ctypes.data % 64 == 0 and a.grad.ctypes.data % 64 == 0
        assert not np.shares_memory(a.data, a.grad)
        assert not a.data.any() and not a.grad.any()
        assert a.data.flags.writeable and a.grad.flags.writeable
    if not _LINUX_THP:
        pytest.skip("no transparent huge pages on this platform: the plain layout above is all there is")
    assert big.data.ctypes.data % (2 << 20) == 0  # data first, grad at the next cache line
    assert big.grad.ctypes.data - big.data.ctypes.data == -(-big.size * big.dtype.itemsize // 64) * 64
    assert "hg" in _vm_flags(big.data.ctypes.data)  # advised for huge pages
    assert "hg" not in _vm_flags(small.data.ctypes.data)
    state = big.zeros()  # optimizer state (HUGE_MIN_BYTES) on huge pages too
    assert state.ctypes.data % (2 << 20) == 0 and "hg" in _vm_flags(state.ctypes.data) and not state.any()


def test_huge_page_arena_survives_copy_and_pickle():
    n = arena_mod.HUGE_MIN_BYTES // 4
    a = Arena([("w", (n,))], "float32")
    a.data[:] = np.arange(n, dtype=np.float32)
    a.grad[::1000] = 2.5
    for b in (copy.deepcopy(a), pickle.loads(pickle.dumps(a))):
        np.testing.assert_array_equal(b.data, a.data)
        np.testing.assert_array_equal(b.grad, a.grad)
        assert b.data.ctypes.data != a.data.ctypes.data and not np.shares_memory(b.data, b.grad)
        b.params["w"][0] = 9.0
        assert b.data[0] == 9.0 and a.data[0] == 0.0


def test_without_huge_page_advice_large_buffers_are_plain(monkeypatch):
    monkeypatch.delattr(mmap, "MADV_HUGEPAGE", raising=False)
    n = arena_mod.HUGE_MIN_BYTES // 4
    a = Arena([("w", (n,))], "float32")
    assert a.data.ctypes.data % 64 == 0 and a.grad.ctypes.data % 64 == 0
    assert a.data.size == n and not a.data.any() and not np.shares_memory(a.data, a.grad)
    assert a.data.base.base is None  # np.zeros owns its memory (on the mapping path: a memoryview here)
