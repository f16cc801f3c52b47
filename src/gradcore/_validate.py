"""Argument validation shared by the Python API and the NumPy reference
backend (the C binding has its own fast copy with the same messages)."""

from __future__ import annotations

import math

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


def in_bounds(v: float, lo=None, hi=None, lo_open=False, hi_open=False) -> bool:
    """``v`` is finite and within ``[lo, hi]`` (open ends where asked; ``None``: no bound)."""
    ok = math.isfinite(v)
    if ok and lo is not None:
        ok = v > lo if lo_open else v >= lo
    if ok and hi is not None:
        ok = v < hi if hi_open else v <= hi
    return ok


def bounds_text(lo=None, hi=None, lo_open=False, hi_open=False) -> str:
    """``"finite number >= 0.0 and < 1.0"`` for error messages."""
    cond = []
    if lo is not None:
        cond.append(f"{'>' if lo_open else '>='} {lo}")
    if hi is not None:
        cond.append(f"{'<' if hi_open else '<='} {hi}")
    return "finite number" + (" " + " and ".join(cond) if cond else "")
