"""Argument validation shared by the Python API and the NumPy reference
backend (the C binding has its own fast copy with the same messages)."""

from __future__ import annotations

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def describe(a) -> str:
    if isinstance(a, np.ndarray):
        return f"ndarray(dtype={a.dtype}, shape={a.shape})"
    return type(a).__name__


def check_float_array(a, label: str, writable: bool = False) -> None:
    """Raise a clear error unless ``a`` is a usable float32/float64 array."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{label}: expected a float32 or float64 numpy array, got {describe(a)}")
    if a.dtype.newbyteorder("=") not in FLOAT_DTYPES:
        raise TypeError(f"{label}: expected dtype float32 or float64, got {a.dtype}")
    if not a.dtype.isnative:
        raise TypeError(f"{label}: expected native byte order, got {a.dtype.str}")
    if not a.flags.aligned:
        raise ValueError(f"{label}: array is not aligned")
    if writable:
        if not a.flags.c_contiguous:
            raise ValueError(
                f"{label}: in-place operation needs a C-contiguous array (got strides {a.strides}); "
                "use np.ascontiguousarray and copy back"
            )
        if not a.flags.writeable:
            raise ValueError(f"{label}: in-place operation needs a writeable array, got a read-only one")
