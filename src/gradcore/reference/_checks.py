"""Argument checks shared by the dense-network reference kernels.

Same rules and messages as the C binding: every array of one call has the
same float dtype, outputs are C-contiguous and writeable, shapes match, and
everything is checked before anything is written.
"""

from __future__ import annotations

import math

import numpy as np

from .._validate import check_float_array

ACTIVATIONS = ("identity", "relu", "leaky_relu", "tanh", "sigmoid")


def check_act(act) -> int:
    if act not in ACTIVATIONS:
        raise ValueError(f"act: unknown activation {act!r}; valid activations: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS.index(act)


def check_slope(slope) -> float:
    s = check_number(slope, "slope")
    if not (s >= 0.0) or math.isinf(s):
        raise ValueError(f"slope: expected a finite number >= 0, got {slope!r}")
    return s


def check_number(value, name: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    return float(value)


def check_range(value, name: str, lo=None, hi=None, lo_open=False, hi_open=False) -> float:
    """A finite number in [lo, hi] (open ends where asked)."""
    v = check_number(value, name)
    ok = math.isfinite(v)
    if ok and lo is not None:
        ok = v > lo if lo_open else v >= lo
    if ok and hi is not None:
        ok = v < hi if hi_open else v <= hi
    if not ok:
        lo_s = "" if lo is None else (f"> {lo}" if lo_open else f">= {lo}")
        hi_s = "" if hi is None else (f"< {hi}" if hi_open else f"<= {hi}")
        cond = " and ".join(s for s in (lo_s, hi_s) if s)
        raise ValueError(f"{name}: expected a finite number{' ' + cond if cond else ''}, got {value!r}")
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
