"""Kernel level: gradcore._kernels.BufferList (csrc/gradnorm.c, csrc/clip.c)
against the NumPy reference, float32 and float64, every ord, sizes around the
vector width, the accumulator count and the block size."""

import itertools
import math

import numpy as np
import pytest

from gradcore import _kernels as K
from gradcore import reference as R

pytestmark = pytest.mark.kernel

ORDS = [2.0, 1.0, math.inf, 3.0, 0.5, 1.5]
# 0, tails of a 16-lane group, the 4096-element block boundary, several blocks
SIZES = [0, 1, 3, 15, 16, 17, 31, 255, 4095, 4096, 4097, 12289]


def make(dtype, sizes=SIZES, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(n) * scale * rng.uniform(0.1, 10)).astype(dtype) for n in sizes]


def exact_norm(arrays, ord):
    vals = [abs(float(v)) for a in arrays for v in a.ravel()]
    if not vals:
        return 0.0
    if math.isinf(ord):
        return max(vals)
    if ord == 2.0:
        return math.hypot(*vals)
    m = max(vals)
    if m == 0:
        return 0.0
    return m * math.fsum((v / m) ** ord for v in vals) ** (1 / ord)


@pytest.mark.parametrize("ord", ORDS)
def test_norm_matches_reference(dtype, ord):
    arrays = make(dtype)
    c = K.BufferList(arrays).norm(ord, True)
    r = R.BufferList(arrays).norm(ord, True)
    rtol = 2e-5 if dtype == np.float32 else 1e-12  # the reference accumulates float32 in float32
    assert c[0] == pytest.approx(r[0], rel=rtol)
    np.testing.assert_allclose(c[1], r[1], rtol=rtol)
    assert c[2] == r[2]  # max |x| is exact
    assert c[3:] == r[3:] == (0, 0, None)


@pytest.mark.parametrize("ord", ORDS)
def test_norm_accuracy_float64_accumulation(dtype, ord):
    arrays = make(dtype, seed=1)
    c = K.BufferList(arrays).norm(ord, True)
    assert c[0] == pytest.approx(exact_norm(arrays, ord), rel=1e-13)
    for a, p in zip(arrays, c[1]):
        assert p == pytest.approx(exact_norm([a], ord), rel=1e-13, abs=0)


def test_norm_per_array_false_and_stats_flag(dtype):
    arrays = make(dtype)
    full = K.BufferList(arrays).norm(2.0, True)
    lean = K.BufferList(arrays).norm(2.0, False, False)
    assert lean[1] is None and lean[2] is None and full[2] > 0
    assert lean[0] == full[0] and lean[3:] == full[3:]


def test_norm_empty_and_zero():
    for arrays in ([], [np.empty(0, np.float32)], [np.zeros(100), np.zeros(7, np.float32)]):
        for ord in ORDS:
            norm, per, mx, nn, ni, first = K.BufferList(arrays).norm(ord, True)
            assert (norm, mx, nn, ni, first) == (0.0, 0.0, 0, 0, None)
            np.testing.assert_array_equal(per, np.zeros(len(arrays)))


@pytest.mark.parametrize("ord", ORDS)
@pytest.mark.parametrize("where", [0, 5, 15, 16, 4095, 4096, 12287])
def test_nonfinite_located_at_every_position(dtype, ord, where):
    arrays = make(dtype)
    last = len(arrays) - 1
    for bad in (np.nan, np.inf):
        a = [x.copy() for x in arrays]
        a[last][where] = bad
        a[last][-1] = -np.inf
        norm, per, mx, nn, ni, first = K.BufferList(a).norm(ord, True)
        assert first == (last, where)
        assert (nn, ni) == ((1, 1) if np.isnan(bad) else (0, 2))
        assert math.isnan(norm) if np.isnan(bad) else norm == math.inf
        assert mx == math.inf
        assert np.isfinite(per[:last]).all()
        r = R.BufferList(a).norm(ord, True)
        assert (r[3], r[4], r[5]) == (nn, ni, first)


def test_nonfinite_in_several_buffers_counts(dtype):
    arrays = make(dtype, sizes=[100, 5000, 17, 33])
    arrays[1][[10, 20, 4999]] = np.nan
    arrays[3][0] = np.inf
    arrays[2][16] = -np.inf
    norm, per, mx, nn, ni, first = K.BufferList(arrays).norm(2.0, True)
    assert (nn, ni, first) == (3, 2, (1, 10))
    assert math.isnan(norm) and math.isnan(per[1]) and per[2] == per[3] == math.inf
    assert per[0] == pytest.approx(exact_norm([arrays[0]], 2.0), rel=1e-13)


def test_max_abs_ignores_nan(dtype):
    a = np.array([1.0, -7.0, np.nan, 3.0], dtype)
    assert K.BufferList([a]).norm(2.0, True)[2] == 7.0
    assert K.BufferList([np.full(40, np.nan, dtype)]).norm(2.0, True)[2] == 0.0


def test_float64_scaled_pass_extremes():
    # overflow, underflow and the two at once, in and across buffers
    cases = [
        [np.full(33, 1e300)],
        [np.full(33, 1e-300)],
        [np.full(33, 1e300), np.full(5000, 1e-300)],
        [np.array([1e-320, 3e-320])],  # subnormals
        [np.array([np.finfo(np.float64).max, np.finfo(np.float64).max])],
    ]
    cases.append([np.zeros(40), np.full(20, 1e-300), np.zeros(3)])  # zero buffers next to tiny ones
    # with stats=False max |x| is computed lazily, only for the scaled pass
    for arrays, ord, stats in itertools.product(cases, ORDS, (True, False)):
        norm, per, *_ = K.BufferList(arrays).norm(ord, True, stats)
        exp = exact_norm(arrays, ord)
        if math.isinf(exp):  # sqrt(2) * DBL_MAX is not representable
            assert norm == math.inf
            continue
        assert norm == pytest.approx(exp, rel=1e-12), (arrays, ord)
        for a, p in zip(arrays, per):
            assert p == pytest.approx(exact_norm([a], ord), rel=1e-12)


def test_float32_extremes_need_no_scaling():
    f32max = float(np.finfo(np.float32).max)
    arrays = [np.full(4097, f32max, np.float32), np.full(3, 1e-45, np.float32)]
    norm, per, mx, *_ = K.BufferList(arrays).norm(2.0, True)
    assert norm == pytest.approx(f32max * math.sqrt(4097), rel=1e-14)
    assert per[1] == pytest.approx(float(np.float32(1e-45)) * math.sqrt(3), rel=1e-14)
    assert mx == f32max


@pytest.mark.parametrize("factor", [0.5, 1e-3, 3.0, 0.0, -2.0])
def test_scale_matches_reference_bitwise(dtype, factor):
    arrays = make(dtype)
    c = [a.copy() for a in arrays]
    r = [a.copy() for a in arrays]
    K.BufferList(c, writable=True).scale_(factor)
    R.BufferList(r, writable=True).scale_(factor)
    for x, y in zip(c, r):
        assert x.tobytes() == y.tobytes()


@pytest.mark.parametrize("c", [0.0, 0.5, 1.0, 100.0])
def test_clamp_matches_reference(dtype, c):
    arrays = make(dtype)
    arrays[3][0] = np.nan
    arrays[4][5] = np.inf
    arrays[7][100] = -np.inf
    a = [x.copy() for x in arrays]
    b = [x.copy() for x in arrays]
    n1 = K.BufferList(a, writable=True).clamp_(c)
    n2 = R.BufferList(b, writable=True).clamp_(c)
    assert n1 == n2
    for x, y in zip(a, b):
        assert x.tobytes() == y.tobytes()


def test_scale_and_clamp_mixed_dtypes_one_list():
    a32 = np.arange(-20, 20, dtype=np.float32)
    a64 = np.arange(-20, 20, dtype=np.float64)
    bl = K.BufferList([a32, a64], writable=True)
    bl.scale_(0.5)
    np.testing.assert_array_equal(a32, np.arange(-20, 20) * 0.5)
    np.testing.assert_array_equal(a64, np.arange(-20, 20) * 0.5)
    assert bl.clamp_(3.0) == 2 * 27  # |x| > 3 among -10, -9.5, ..., 9.5
    assert a32.max() == 3.0 and a64.min() == -3.0


def test_buffer_list_properties():
    arrays = [np.zeros((3, 4)), np.zeros(5, np.float32)]
    bl = K.BufferList(arrays, "grads", ["w", "b"])
    assert len(bl) == 2 and bl.size == 17 and bl.keys == ["w", "b"]
    assert bl.arrays[0] is arrays[0]


def test_noncontiguous_read_through_a_copy(dtype):
    base = np.arange(60, dtype=dtype).reshape(6, 10)
    view = base[:, ::3]
    assert K.BufferList([view]).norm(2.0, False)[0] == pytest.approx(np.linalg.norm(view.astype(np.float64)))


@pytest.mark.parametrize("a,b,ord", [(3.0, 4.0, 2.0), (3.0, 4.0, 1.0), (3.0, 4.0, math.inf), (1e300, 1e300, 2.0),
                                     (0.0, 0.0, 3.0), (2.0, 0.0, 0.5)])
def test_combine_norms(a, b, ord):
    exp = exact_norm([np.array([a, b])], ord)
    assert K.combine_norms(a, b, ord) == pytest.approx(exp, rel=1e-15)
    if not (a > 1e200):  # the reference is not overflow-safe
        assert R.combine_norms(a, b, ord) == pytest.approx(exp, rel=1e-15)
    assert math.isnan(K.combine_norms(math.nan, 1.0, 2.0))
    assert K.combine_norms(math.inf, 1.0, 2.0) == math.inf


@pytest.mark.parametrize("ord", [0.0, -1.0, math.nan])
def test_bad_ord_rejected_by_both(ord):
    for mod in (K, R):
        with pytest.raises(ValueError, match="ord"):
            mod.BufferList([np.ones(3)]).norm(ord, True)
