"""Bad input gets a clear exception naming the argument and what was
expected, and every array passed in is left exactly as it was."""

import math

import numpy as np
import pytest

import gradcore

# ---- clipping: global_norm, grad_stats, clip_grad_norm_, clip_grad_value_ ----

READERS = {
    "global_norm": lambda a: gradcore.global_norm(a),
    "grad_stats": lambda a: gradcore.grad_stats(a),
}
WRITERS = {
    "clip_grad_norm_": lambda a: gradcore.clip_grad_norm_(a, 1.0),
    "clip_grad_value_": lambda a: gradcore.clip_grad_value_(a, 1.0),
}
ALL = {**READERS, **WRITERS}


def victims():
    """A valid array that every writer would change, placed before the bad one."""
    return np.array([30.0, -40.0, 5.0]), np.array([30.0, -40.0, 5.0])


BAD_DTYPES = [np.int32, np.int64, np.bool_, np.float16, np.complex64, np.complex128, object]


@pytest.mark.parametrize("fn", ALL)
@pytest.mark.parametrize("bad_dtype", BAD_DTYPES, ids=lambda d: np.dtype(d).name)
def test_bad_dtype(backend, fn, bad_dtype):
    good, before = victims()
    bad = np.ones(4, dtype=bad_dtype)
    bad_before = bad.copy()
    with pytest.raises(TypeError, match=r"arrays\[1\]: expected dtype float32 or float64, got"):
        ALL[fn]([good, bad])
    np.testing.assert_array_equal(good, before)
    np.testing.assert_array_equal(bad, bad_before)


@pytest.mark.parametrize("fn", ALL)
@pytest.mark.parametrize("item", [[1.0, 2.0], 3.0, None, "x"], ids=["list", "float", "None", "str"])
def test_non_array_items(backend, fn, item):
    good, before = victims()
    with pytest.raises(TypeError, match=r"arrays\[1\]: expected a float32 or float64 numpy array, got"):
        ALL[fn]([good, item])
    np.testing.assert_array_equal(good, before)


@pytest.mark.parametrize("fn", ALL)
@pytest.mark.parametrize("arrays", [3.0, "abc", {1, 2}, None], ids=["float", "str", "set", "None"])
def test_bad_container(backend, fn, arrays):
    with pytest.raises(TypeError, match="arrays: expected an ndarray, a list/tuple of ndarrays or a dict"):
        ALL[fn](arrays)


def test_dict_key_named_in_error(backend):
    good, before = victims()
    with pytest.raises(TypeError, match=r"arrays\['layer2.bias'\]: expected dtype float32 or float64, got int64"):
        gradcore.clip_grad_norm_({"layer1": good, "layer2.bias": np.ones(3, np.int64)}, 1.0)
    np.testing.assert_array_equal(good, before)


@pytest.mark.parametrize("fn", WRITERS)
def test_non_contiguous_in_place(backend, fn):
    good, before = victims()
    base = np.arange(40.0).reshape(4, 10)
    base_before = base.copy()
    with pytest.raises(ValueError, match=r"arrays\[1\]: in-place operation needs a C-contiguous array"):
        WRITERS[fn]([good, base[:, ::2]])
    with pytest.raises(ValueError, match=r"arrays\[1\]: in-place operation needs a C-contiguous array"):
        WRITERS[fn]([good, base.T])
    np.testing.assert_array_equal(good, before)
    np.testing.assert_array_equal(base, base_before)


@pytest.mark.parametrize("fn", READERS)
def test_non_contiguous_is_fine_for_reading(backend, fn):
    base = np.arange(40.0).reshape(4, 10)
    r = READERS[fn]([base[:, ::2]])
    norm = r if isinstance(r, float) else r.norm
    assert norm == pytest.approx(np.linalg.norm(base[:, ::2]))


@pytest.mark.parametrize("fn", WRITERS)
def test_read_only_in_place(backend, fn):
    good, before = victims()
    ro = np.array([100.0, 200.0])
    ro.flags.writeable = False
    with pytest.raises(ValueError, match=r"arrays\[1\]: in-place operation needs a writeable array"):
        WRITERS[fn]([good, ro])
    np.testing.assert_array_equal(good, before)
    np.testing.assert_array_equal(ro, [100.0, 200.0])


@pytest.mark.parametrize("fn", ALL)
def test_byte_swapped(backend, fn):
    good, before = victims()
    with pytest.raises(TypeError, match=r"arrays\[1\]: expected native byte order"):
        ALL[fn]([good, np.ones(3, dtype=np.dtype(np.float64).newbyteorder())])
    np.testing.assert_array_equal(good, before)


@pytest.mark.parametrize("fn", ALL)
def test_unaligned(backend, fn):
    good, before = victims()
    raw = np.zeros(8 * 5 + 1, np.uint8)
    unaligned = raw[1:].view(np.float64)
    assert not unaligned.flags.aligned
    with pytest.raises(ValueError, match=r"arrays\[1\]: array is not aligned"):
        ALL[fn]([good, unaligned])
    np.testing.assert_array_equal(good, before)


@pytest.mark.parametrize("value", [-1.0, math.nan, math.inf, -math.inf])
def test_bad_max_norm(backend, value):
    good, before = victims()
    with pytest.raises(ValueError, match="max_norm: expected a finite number >= 0"):
        gradcore.clip_grad_norm_(good, value)
    np.testing.assert_array_equal(good, before)


@pytest.mark.parametrize("value", [-1.0, math.nan, math.inf])
def test_bad_clip_value(backend, value):
    good, before = victims()
    with pytest.raises(ValueError, match="clip_value: expected a finite number >= 0"):
        gradcore.clip_grad_value_(good, value)
    np.testing.assert_array_equal(good, before)


@pytest.mark.parametrize("value", [-1e-6, math.nan, math.inf])
def test_bad_eps(backend, value):
    good, before = victims()
    with pytest.raises(ValueError, match="eps: expected a finite number >= 0"):
        gradcore.clip_grad_norm_(good, 1.0, eps=value)
    np.testing.assert_array_equal(good, before)


def test_non_numeric_thresholds(backend):
    good, before = victims()
    with pytest.raises(TypeError, match="max_norm: expected a finite number >= 0, got 'big'"):
        gradcore.clip_grad_norm_(good, "big")
    with pytest.raises(TypeError, match="clip_value: expected a finite number >= 0, got None"):
        gradcore.clip_grad_value_(good, None)
    np.testing.assert_array_equal(good, before)


@pytest.mark.parametrize("ord", [0, -1, -math.inf, math.nan])
@pytest.mark.parametrize("fn", ["global_norm", "grad_stats", "clip_grad_norm_"])
def test_bad_ord(backend, fn, ord):
    good, before = victims()
    call = {
        "global_norm": lambda: gradcore.global_norm(good, ord=ord),
        "grad_stats": lambda: gradcore.grad_stats(good, ord=ord),
        "clip_grad_norm_": lambda: gradcore.clip_grad_norm_(good, 1.0, ord=ord),
    }[fn]
    with pytest.raises(ValueError, match="ord: expected 2, 1, inf or any finite p > 0"):
        call()
    with pytest.raises(TypeError, match="ord: expected a number"):
        gradcore.global_norm(good, ord="fro")
    np.testing.assert_array_equal(good, before)


def test_empty_input_is_not_an_error(backend):
    assert gradcore.global_norm([]) == 0.0
    assert gradcore.clip_grad_norm_({}, 1.0, error_if_nonfinite=True) == 0.0
    assert gradcore.clip_grad_value_([], 1.0, error_if_nonfinite=True) == 0
