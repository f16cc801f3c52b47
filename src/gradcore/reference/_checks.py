"""Argument checks shared by the dense-network reference kernels.

Same rules and messages as the C binding: every array of one call has the
same float dtype, outputs are C-contiguous and writeable, shapes match, and
everything is checked before anything is written.
"""

from __future__ import annotations

import numpy as np

from .._validate import bounds_text, check_float_array, in_bounds

ACTIVATIONS = ("identity", "relu", "leaky_relu", "tanh", "sigmoid")


def check_act(act) -> int:
    if act not in ACTIVATIONS:
        raise ValueError(f"act: unknown activation {act!r}; valid activations: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS.index(act)


def check_slope(slope) -> float:
    s = check_number(slope, "slope")
    if not in_bounds(s, lo=0.0):
        raise ValueError(f"slope: expected a finite number >= 0, got {slope!r}")
    return s


def check_number(value, name: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    return float(value)


def check_range(value, name: str, lo=None, hi=None, lo_open=False, hi_open=False) -> float:
    """A finite number in [lo, hi] (open ends where asked)."""
    v = check_number(value, name)
    if not in_bounds(v, lo, hi, lo_open, hi_open):
        raise ValueError(f"{name}: expected a {bounds_text(lo, hi, lo_open, hi_open)}, got {value!r}")
    return v


def check_array(a, name: str, dtype=None, shape=None, ndim=None, writable=False, contiguous=True,
                allow_none=False, nonempty=True):
    """Validate one float array; returns it (or None when allowed)."""
    if a is None:
        if allow_none:
            return None
        raise TypeError(f"{name}: expected a float32 or float64 numpy array, got None")
    check_float_array(a, name, writable)
    if contiguous and not a.flags.c_contiguous:
        raise ValueError(f"{name}: expected a C-contiguous array (got strides {a.strides}); "
                         "use np.ascontiguousarray")
    if dtype is not None and a.dtype != dtype:
        raise TypeError(f"{name}: expected dtype {np.dtype(dtype)} (the dtype of the other arrays), got {a.dtype}")
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array, got shape {a.shape}")
    if shape is not None and a.shape != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {a.shape}")
    if nonempty and a.size == 0:
        raise ValueError(f"{name}: expected a non-empty array, got shape {a.shape}")
    return a


def check_labels(labels, name: str, B: int, C: int):
    if not isinstance(labels, np.ndarray):
        raise TypeError(f"{name}: expected an int64 numpy array, got {type(labels).__name__}")
    if labels.dtype != np.int64:
        raise TypeError(f"{name}: expected dtype int64, got {labels.dtype}")
    if not labels.flags.c_contiguous:
        raise ValueError(f"{name}: expected a C-contiguous array (got strides {labels.strides})")
    if labels.shape != (B,):
        raise ValueError(f"{name}: expected shape ({B},), got {labels.shape}")
    if B and (labels.min() < 0 or labels.max() >= C):
        bad = int(np.flatnonzero((labels < 0) | (labels >= C))[0])
        raise ValueError(f"{name}: class index {int(labels[bad])} at position {bad} is out of range [0, {C})")
    return labels


def check_disjoint(out, oname: str, other, name: str, same_ok: bool = False) -> None:
    """Same rule as the binding: output ``out`` and argument ``other``
    (C-contiguous arrays or None) occupy disjoint memory (``same_ok``: or
    exactly the same memory)."""
    if out is None or other is None:
        return
    lo1 = out.__array_interface__["data"][0]
    lo2 = other.__array_interface__["data"][0]
    hi1, hi2 = lo1 + out.nbytes, lo2 + other.nbytes
    if lo1 < hi2 and lo2 < hi1:
        if same_ok and lo1 == lo2 and hi1 == hi2:
            return
        raise ValueError(f"{oname}: output overlaps argument {name}"
                         + (" (only exactly the same array is allowed)" if same_ok else "")
                         + "; pass a separate output array")
