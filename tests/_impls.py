"""The kernel implementations under test: the NumPy reference and the C binding."""

import pytest

import gradcore.reference as reference

try:
    from gradcore import _kernels as ckernels
except ImportError:  # pragma: no cover - the extension is always built in CI
    ckernels = None


def impl_params():
    params = [pytest.param(reference, id="numpy")]
    if ckernels is not None and hasattr(ckernels, "dense_forward"):
        params.append(pytest.param(ckernels, id="c", marks=pytest.mark.kernel))
    return params
