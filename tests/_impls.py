"""Shared helpers for the dense-network kernel tests: the implementations
under test (NumPy reference and C binding), SIMD levels, and a bad-input
checker that asserts nothing was written."""

import numpy as np
import pytest

import gradcore.reference as reference
from gradcore import _kernels as ckernels

IMPLS = [pytest.param(reference, id="numpy"), pytest.param(ckernels, id="c", marks=pytest.mark.kernel)]
#: every SIMD path this CPU runs (0 baseline, 1 AVX2+FMA, 2 AVX-512)
SIMD_LEVELS = [0] + ([1] if ckernels.cpu_has_avx2() else []) + ([2] if ckernels.cpu_has_avx512() else [])


def impl_params():
    return IMPLS


class simd_level:
    """Context manager: run the C kernels on one SIMD path, then restore."""

    def __init__(self, level):
        self.level = level

    def __enter__(self):
        self.previous = ckernels.simd_level()
        ckernels.set_simd(self.level)

    def __exit__(self, *exc):
        ckernels.set_simd(self.previous)
        return False


def run_simd_paths(fn):
    """Return [fn() on each available SIMD path]."""
    out = []
    for level in SIMD_LEVELS:
        with simd_level(level):
            out.append(fn())
    return out


def assert_bad_input(fn, args, arrays, exc, match):
    """fn(**args) raises exc mentioning `match` and leaves every array in
    `arrays` (a dict of the call's arrays) bit-for-bit unchanged."""
    before = {k: a.copy() for k, a in arrays.items() if isinstance(a, np.ndarray)}
    with pytest.raises(exc, match=match):
        fn(**args)
    for k, a in before.items():
        np.testing.assert_array_equal(arrays[k], a, err_msg=f"{k} was modified")
        assert np.array_equal(np.signbit(arrays[k]), np.signbit(a)) if a.dtype.kind == "f" else True


def rng_arrays(seed, dtype, *shapes, scale=1.0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(s) * scale).astype(dtype) for s in shapes]


def tol(dtype):
    return dict(rtol=2e-5, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
