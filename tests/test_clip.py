"""gradcore.clip: global_norm, grad_stats, clip_grad_norm_, clip_grad_value_.

Tests taking the ``backend`` fixture run on the C kernels and on the NumPy
reference (the semantics agree there); overflow/underflow safety is a property
of the C kernels only (the reference accumulates float32 in float32).
"""

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gradcore
from gradcore import NonFiniteGradientError

F32_1E20 = float(np.float32(1e20))
EPS64 = 2.0**-53

pytestmark = pytest.mark.kernel  # also run under AddressSanitizer + UBSan in CI


def exact_l2(arrays):
    return math.hypot(*[float(v) for a in arrays for v in np.asarray(a, np.float64).ravel()])


# ---- textbook numbers -------------------------------------------------------


def test_textbook_16_12_8(backend, dtype):
    g = np.array([16.0, 12.0, -8.0], dtype)
    norm = gradcore.clip_grad_norm_(g, max_norm=5.0)
    assert norm == pytest.approx(21.540659228538015, rel=1e-7)
    np.testing.assert_allclose(g, [3.7139, 2.7854, -1.8570], atol=1e-4)


def test_textbook_3_4(backend, dtype):
    g = np.array([3.0, 4.0], dtype)
    assert gradcore.clip_grad_norm_(g, max_norm=2.0) == pytest.approx(5.0, rel=1e-7)
    np.testing.assert_allclose(g, [1.2, 1.6], rtol=1e-6)


def test_textbook_two_arrays(backend, dtype):
    a = np.array([100.0, 0.0], dtype)
    b = np.array([0.0, 0.1], dtype)
    norm = gradcore.clip_grad_norm_([a, b], max_norm=1.0)
    assert norm == pytest.approx(100.00005, rel=1e-7)
    np.testing.assert_allclose(a, [1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(b, [0.0, 0.001], atol=1e-8)


def rel_tol(backend, dtype):
    """The C kernels accumulate in float64; the reference float32 in float32."""
    return 1e-6 if backend == "numpy" and dtype == np.float32 else 1e-13


def test_global_norm_all_ords(backend, dtype):
    arrays = [np.array([3.0, -4.0], dtype), np.array([[12.0]], dtype)]
    rel = rel_tol(backend, dtype)
    assert gradcore.global_norm(arrays) == pytest.approx(13.0, rel=rel)
    assert gradcore.global_norm(arrays, ord=1) == pytest.approx(19.0, rel=rel)
    assert gradcore.global_norm(arrays, ord=math.inf) == 12.0
    assert gradcore.global_norm(arrays, ord=3) == pytest.approx((27 + 64 + 1728) ** (1 / 3), rel=rel)
    assert gradcore.global_norm(arrays, ord=0.5) == pytest.approx((3**0.5 + 2 + 12**0.5) ** 2, rel=rel)


def test_input_forms(backend):
    a = np.array([3.0, 0.0])
    b = np.array([0.0, 4.0], np.float32)
    assert gradcore.global_norm(a) == 3.0
    assert gradcore.global_norm((a, b)) == 5.0
    assert gradcore.global_norm([a, b]) == 5.0
    assert gradcore.global_norm({"w": a, "b": b}) == 5.0


def test_mixed_dtypes_clip(backend):
    a = np.array([30.0, 0.0], np.float64)
    b = np.array([0.0, 40.0], np.float32)
    norm = gradcore.clip_grad_norm_({"a": a, "b": b}, 5.0)
    assert norm == pytest.approx(50.0, rel=1e-12)
    np.testing.assert_allclose(a, [3.0, 0.0], rtol=1e-6)
    np.testing.assert_allclose(b, [0.0, 4.0], rtol=1e-6)
    assert a.dtype == np.float64 and b.dtype == np.float32


# ---- grad_stats -------------------------------------------------------------


def test_grad_stats_fields(backend, dtype):
    arrays = [np.array([3.0, -4.0], dtype), np.zeros((2, 2), dtype), np.array([-12.0], dtype)]
    s = gradcore.grad_stats(arrays)
    assert isinstance(s, gradcore.GradStats)
    assert s.norm == pytest.approx(13.0, rel=1e-12)
    assert s.per_array.dtype == np.float64
    np.testing.assert_allclose(s.per_array, [5.0, 0.0, 12.0], rtol=1e-12)
    assert s.max_abs == 12.0
    assert (s.n_nan, s.n_inf, s.first_nonfinite, s.finite) == (0, 0, None, True)


def test_grad_stats_mixed_dtype_per_array_order(backend):
    arrays = [np.array([1.0], np.float32), np.array([2.0]), np.array([3.0], np.float32), np.array([-4.0])]
    s = gradcore.grad_stats(arrays, ord=1)
    np.testing.assert_array_equal(s.per_array, [1.0, 2.0, 3.0, 4.0])
    assert s.norm == 10.0 and s.max_abs == 4.0


# ---- empty and zero-size ----------------------------------------------------


@pytest.mark.parametrize("empty", [[], (), {}], ids=["list", "tuple", "dict"])
def test_empty_input(backend, empty):
    assert gradcore.global_norm(empty) == 0.0
    assert gradcore.clip_grad_norm_(empty, 1.0) == 0.0
    assert gradcore.clip_grad_value_(empty, 1.0) == 0
    s = gradcore.grad_stats(empty)
    assert (s.norm, s.max_abs, s.n_nan, s.n_inf, s.first_nonfinite, s.finite) == (0.0, 0.0, 0, 0, None, True)
    assert s.per_array.shape == (0,)


def test_zero_size_arrays(backend, dtype):
    z = np.empty((0, 3), dtype)
    g = np.array([3.0, 4.0], dtype)
    for o in (2, 1, math.inf, 3):
        assert gradcore.global_norm([z], ord=o) == 0.0
    s = gradcore.grad_stats([z, g, np.empty(0, dtype)])
    np.testing.assert_array_equal(s.per_array, [0.0, 5.0, 0.0])
    assert gradcore.clip_grad_norm_([z, g], 1.0) == pytest.approx(5.0)
    np.testing.assert_allclose(g, [0.6, 0.8], rtol=1e-6)
    assert gradcore.clip_grad_value_([z, np.array([2.0, -3.0], dtype)], 1.0) == 2


def test_all_zero_gradients_with_zero_eps(backend):
    g = np.zeros(4)
    assert gradcore.clip_grad_norm_(g, 0.0, eps=0.0) == 0.0
    np.testing.assert_array_equal(g, 0.0)


# ---- clipping semantics -----------------------------------------------------


def test_no_write_below_threshold(backend, dtype):
    g = np.array([0.3, -0.4], dtype)
    before = g.copy()
    assert gradcore.clip_grad_norm_(g, 0.5 + 2e-6) == pytest.approx(0.5)
    assert g.tobytes() == before.tobytes()


def test_eps_in_the_coefficient(backend):
    g = np.array([3.0, 4.0])
    gradcore.clip_grad_norm_(g, 1.0, eps=0.5)
    np.testing.assert_allclose(g, np.array([3.0, 4.0]) / 5.5, rtol=1e-15)


def test_clip_grad_value(backend, dtype):
    a = np.array([-3.0, -1.0, 0.5, 2.0, np.inf, -np.inf, np.nan], dtype)
    b = np.array([[1.0, 1.5]], dtype)
    changed = gradcore.clip_grad_value_([a, b], 1.0)
    assert changed == 5  # -3, 2, inf, -inf, 1.5; NaN is left alone and not counted
    np.testing.assert_array_equal(a[:6], [-1.0, -1.0, 0.5, 1.0, 1.0, -1.0])
    assert np.isnan(a[6])
    np.testing.assert_array_equal(b, [[1.0, 1.0]])


def test_clip_grad_value_error_if_nonfinite(backend, dtype):
    a = np.array([5.0, -5.0], dtype)
    b = np.array([1.0, np.nan, 7.0], dtype)
    before = [a.copy(), b.copy()]
    with pytest.raises(NonFiniteGradientError) as ei:
        gradcore.clip_grad_value_({"a": a, "b": b}, 1.0, error_if_nonfinite=True)
    assert (ei.value.array_index, ei.value.flat_index, ei.value.n_nan, ei.value.n_inf) == ("b", 1, 1, 0)
    np.testing.assert_array_equal(a, before[0])
    np.testing.assert_array_equal(b, before[1])


# ---- non-finite values: detection and location ------------------------------

ORDS = [2.0, 1.0, math.inf, 3.0, 0.5]


@pytest.mark.parametrize("ord", ORDS, ids=["l2", "l1", "linf", "p3", "p0.5"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_planted_nonfinite_located(backend, dtype, ord, bad):
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal(s).astype(dtype) for s in [(7,), (40, 50), (3, 33), (5000,)]]
    arrays[2][1, 4] = bad  # flat index 37
    arrays[3][4000] = bad
    before = [a.copy() for a in arrays]
    s = gradcore.grad_stats(arrays, ord=ord)
    assert s.first_nonfinite == (2, 37)
    assert not s.finite
    if np.isnan(bad):
        assert (s.n_nan, s.n_inf) == (2, 0)
        assert math.isnan(s.norm)
        assert math.isnan(s.per_array[2]) and math.isnan(s.per_array[3])
    else:
        assert (s.n_nan, s.n_inf) == (0, 2)
        assert s.norm == math.inf
        assert s.per_array[2] == math.inf and s.per_array[3] == math.inf
        assert s.max_abs == math.inf
    assert np.isfinite(s.per_array[:2]).all()
    np.testing.assert_allclose(s.per_array[:2], [gradcore.global_norm(a, ord) for a in arrays[:2]], rtol=1e-6)
    g = gradcore.global_norm(arrays, ord)
    assert math.isnan(g) if np.isnan(bad) else g == math.inf

    # clipping leaves every array unchanged and returns the non-finite norm ...
    n = gradcore.clip_grad_norm_(arrays, 1.0, ord=ord)
    assert math.isnan(n) if np.isnan(bad) else n == math.inf
    for a, b in zip(arrays, before):
        assert a.tobytes() == b.tobytes()
    # ... or raises, saying where
    with pytest.raises(NonFiniteGradientError) as ei:
        gradcore.clip_grad_norm_(arrays, 1.0, ord=ord, error_if_nonfinite=True)
    e = ei.value
    assert (e.array_index, e.flat_index) == (2, 37)
    assert (e.n_nan, e.n_inf) == ((2, 0) if np.isnan(bad) else (0, 2))
    assert isinstance(e, FloatingPointError) and isinstance(e, RuntimeError)
    assert "array 2, flat index 37" in str(e)
    for a, b in zip(arrays, before):
        assert a.tobytes() == b.tobytes()


def test_nan_and_inf_together_first_and_counts(backend, dtype):
    a = np.ones(100, dtype)
    b = np.ones(100, dtype)
    a[50] = np.nan
    b[3] = np.inf
    b[7] = np.nan
    s = gradcore.grad_stats([b, a])
    assert (s.n_nan, s.n_inf, s.first_nonfinite) == (2, 1, (0, 3))
    assert math.isnan(s.norm)
    assert s.max_abs == math.inf


def test_dict_keys_in_results_and_errors(backend, dtype):
    grads = {"layer1.weight": np.ones((4, 4), dtype), "layer1.bias": np.ones(4, dtype), "out.weight": np.ones(9, dtype)}
    grads["layer1.bias"][2] = np.inf
    s = gradcore.grad_stats(grads)
    assert s.first_nonfinite == ("layer1.bias", 2)
    with pytest.raises(NonFiniteGradientError) as ei:
        gradcore.clip_grad_norm_(grads, 1.0, error_if_nonfinite=True)
    assert ei.value.array_index == "layer1.bias" and ei.value.flat_index == 2
    assert "'layer1.bias'" in str(ei.value)


def test_mixed_dtype_first_nonfinite_is_earliest_array(backend):
    arrays = [np.ones(3), np.ones(3, np.float32), np.ones(3)]
    arrays[2][0] = np.nan
    arrays[1][2] = np.nan
    assert gradcore.grad_stats(arrays).first_nonfinite == (1, 2)


# ---- overflow / underflow (C kernels) ---------------------------------------


def test_float32_1e20_norm_and_clip():
    arrays = [np.full((100, 10), 1e20, np.float32), np.full(24, -1e20, np.float32)]
    expected = F32_1E20 * math.sqrt(1024)
    s = gradcore.grad_stats(arrays)
    assert s.finite and s.norm == pytest.approx(expected, rel=1e-14)
    np.testing.assert_allclose(s.per_array, [F32_1E20 * math.sqrt(1000), F32_1E20 * math.sqrt(24)], rtol=1e-14)
    assert gradcore.clip_grad_norm_(arrays, 1.0) == pytest.approx(expected, rel=1e-14)
    assert exact_l2(arrays) == pytest.approx(1.0, rel=1e-6)
    np.testing.assert_allclose(arrays[0], 1 / 32, rtol=1e-6)
    np.testing.assert_allclose(arrays[1], -1 / 32, rtol=1e-6)


def test_float64_1e200_norm_and_clip():
    arrays = [np.full(1000, 1e200), np.full((2, 12), -1e200)]
    expected = 1e200 * math.sqrt(1024)
    s = gradcore.grad_stats(arrays)
    assert s.finite and s.norm == pytest.approx(expected, rel=1e-14)
    np.testing.assert_allclose(s.per_array, [1e200 * math.sqrt(1000), 1e200 * math.sqrt(24)], rtol=1e-14)
    assert gradcore.clip_grad_norm_(arrays, 1.0) == pytest.approx(expected, rel=1e-14)
    np.testing.assert_allclose(arrays[0], 1 / 32, rtol=1e-14)
    assert exact_l2(arrays) == pytest.approx(1.0, rel=1e-14)


def test_float64_1e_minus_200_norm():
    arrays = [np.full(1000, 1e-200), np.full(24, -1e-200)]
    s = gradcore.grad_stats(arrays)
    assert s.norm == pytest.approx(1e-200 * math.sqrt(1024), rel=1e-14)
    np.testing.assert_allclose(s.per_array, [1e-200 * math.sqrt(1000), 1e-200 * math.sqrt(24)], rtol=1e-14)
    g = np.full(16, 1e-200)
    gradcore.clip_grad_norm_(g, 1e-201, eps=0.0)
    np.testing.assert_allclose(g, 1e-201 / 4, rtol=1e-14)


def test_float64_overflow_only_in_the_total():
    # each buffer's sum of squares is finite, their sum is not
    arrays = [np.array([1.3e154]), np.array([-1.3e154])]
    assert gradcore.global_norm(arrays) == pytest.approx(1.3e154 * math.sqrt(2), rel=1e-15)


def test_float64_tiny_next_to_normal_per_array():
    arrays = [np.full(100, 3e-200), np.array([3.0, 4.0])]
    s = gradcore.grad_stats(arrays)
    assert s.norm == pytest.approx(5.0, rel=1e-15)
    assert s.per_array[0] == pytest.approx(3e-199, rel=1e-14)


def test_overflowing_buffer_next_to_nan():
    arrays = [np.full(10, 1e200), np.array([1.0, np.nan])]
    s = gradcore.grad_stats(arrays)
    assert math.isnan(s.norm) and s.first_nonfinite == (1, 1) and (s.n_nan, s.n_inf) == (1, 0)
    assert s.per_array[0] == pytest.approx(1e200 * math.sqrt(10), rel=1e-14)


@pytest.mark.parametrize("ord", [1.0, math.inf, 3.0])
def test_float64_huge_other_ords(ord):
    a = np.full(100, 1e307)
    expected = 1e307 * 100 ** (1 / ord) if not math.isinf(ord) else 1e307
    assert gradcore.global_norm(a, ord) == pytest.approx(expected, rel=1e-13)


# ---- hypothesis properties (exact reference: math.hypot / math.fsum) --------

# Error bound of the C kernel's L2 norm, relative to the exact value, for
# n <= 4096 elements: lanes sum at most GC_BLOCK/GC_NACC = 256 terms,
# the block totals n/GC_BLOCK, the lane tree 4 levels, the sqrt 1/2 ulp;
# (256 + 1 + 4 + 1) * 2^-53 < 300 * 2^-53.
L2_BOUND = 300 * EPS64


def arrays_strategy(dtype, elements, max_arrays=5, max_size=400):
    shapes = hnp.array_shapes(min_dims=1, max_dims=2, min_side=0, max_side=20)
    return st.lists(hnp.arrays(dtype, shapes, elements=elements), min_size=0, max_size=max_arrays)


moderate64 = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
moderate32 = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, width=32)
wide64 = st.floats(-1e300, 1e300, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(arrays=st.one_of(arrays_strategy(np.float64, wide64), arrays_strategy(np.float32, moderate32)))
def test_property_l2_accuracy(arrays):
    exact = exact_l2(arrays)
    got = gradcore.global_norm(arrays)
    assert abs(got - exact) <= L2_BOUND * exact


@settings(max_examples=40, deadline=None)
@given(arrays=arrays_strategy(np.float64, moderate64))
def test_property_l1_and_inf_accuracy(arrays):
    vals = [abs(float(v)) for a in arrays for v in a.ravel()]
    exact1 = math.fsum(vals)
    assert abs(gradcore.global_norm(arrays, 1) - exact1) <= L2_BOUND * exact1
    assert gradcore.global_norm(arrays, math.inf) == (max(vals) if vals else 0.0)


@settings(max_examples=60, deadline=None)
@given(arrays=arrays_strategy(np.float64, moderate64, max_size=200),
       max_norm=st.floats(1e-3, 1e3))
def test_property_clip(arrays, max_norm):
    before = [a.copy() for a in arrays]
    norm = gradcore.clip_grad_norm_(arrays, max_norm)
    assert abs(norm - exact_l2(before)) <= L2_BOUND * exact_l2(before)
    after = exact_l2(arrays)
    assert after <= max_norm * (1 + 1e-6)
    if norm + 1e-6 <= max_norm:  # below the threshold: bit-identical
        for a, b in zip(arrays, before):
            assert a.tobytes() == b.tobytes()
        return
    # direction preserved: cosine 1
    x = np.concatenate([b.ravel() for b in before])
    y = np.concatenate([a.ravel() for a in arrays])
    cos = math.fsum(x * y) / (exact_l2([x]) * exact_l2([y]))
    assert cos == pytest.approx(1.0, abs=1e-12)
    # Clipping twice == clipping once, up to what eps implies: after one clip
    # the norm is max_norm * norm / (norm + eps), so a second call scales by
    # max_norm / (that + eps), within eps / max_norm of 1 (and within rounding
    # of 1 when eps = 0: the computed norm of the clipped arrays is max_norm
    # up to the norm's error bound).
    once = [a.copy() for a in arrays]
    gradcore.clip_grad_norm_(arrays, max_norm)
    for a, b in zip(arrays, once):
        np.testing.assert_allclose(a, b, rtol=1e-6 / max_norm + 1e-13, atol=0)
    exact = [b.copy() for b in before]
    gradcore.clip_grad_norm_(exact, max_norm, eps=0.0)
    once = [a.copy() for a in exact]
    gradcore.clip_grad_norm_(exact, max_norm, eps=0.0)
    for a, b in zip(exact, once):  # coefficient within the norm's error bound of 1
        np.testing.assert_allclose(a, b, rtol=L2_BOUND + 4 * EPS64, atol=0)


@settings(max_examples=40, deadline=None)
@given(arrays=arrays_strategy(np.float32, moderate32, max_size=200), max_norm=st.floats(1e-3, 1e3))
def test_property_clip_float32(arrays, max_norm):
    before = [a.copy() for a in arrays]
    norm = gradcore.clip_grad_norm_(arrays, max_norm)
    assume(norm > 0)
    assert exact_l2(arrays) <= max_norm * (1 + 1e-6)
    if norm + 1e-6 <= max_norm:
        for a, b in zip(arrays, before):
            assert a.tobytes() == b.tobytes()


@settings(max_examples=40, deadline=None)
@given(arrays=arrays_strategy(np.float64, moderate64, max_size=100), clip=st.floats(0, 1e6))
def test_property_clip_value_matches_numpy(arrays, clip):
    expected = [np.clip(a, -clip, clip) for a in arrays]
    changed = sum(int(np.count_nonzero(e != a)) for e, a in zip(expected, arrays))
    assert gradcore.clip_grad_value_(arrays, clip) == changed
    for a, e in zip(arrays, expected):
        np.testing.assert_array_equal(a, e)
