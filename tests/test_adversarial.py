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
