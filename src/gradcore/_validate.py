"""Argument validation shared by the Python API and the NumPy reference
backend (the C binding has its own fast copy with the same messages)."""

from __future__ import annotations

import math
import numbers
import operator

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


def _prefix(who) -> str:
    return f"{who}: " if who else ""


def real_arg(value, name: str, lo=None, hi=None, lo_open=False, hi_open=False, who=None,
             finite: bool = True) -> float:
    """``value`` as a float: any real scalar (Python or NumPy; bool and str
    refused), finite unless ``finite=False`` (NaN is always refused), within
    the bounds. Errors name ``name`` (after ``who``: when given).

    >>> real_arg(np.float32(0.5), "lr", lo=0.0, lo_open=True)
    0.5
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{_prefix(who)}{name}: expected a {bounds_text(lo, hi, lo_open, hi_open, finite)}, "
                        f"got {value!r} ({type(value).__name__})")
    v = float(value)
    if not in_bounds(v, lo, hi, lo_open, hi_open, finite):
        raise ValueError(f"{_prefix(who)}{name}: expected a {bounds_text(lo, hi, lo_open, hi_open, finite)}, "
                         f"got {value!r}")
    return v


def int_arg(value, name: str, lo=None, hi=None, who=None) -> int:
    """``value`` as an int: any integer scalar (Python or NumPy, anything with
    ``__index__``; bool, float and str refused) within ``[lo, hi]``.

    >>> int_arg(np.int64(3), "steps", lo=1)
    3
    """
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{_prefix(who)}{name}: expected an int{_int_bounds(lo, hi)}, got {value!r} (bool)")
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{_prefix(who)}{name}: expected an int{_int_bounds(lo, hi)}, "
                        f"got {value!r} ({type(value).__name__})") from None
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ValueError(f"{_prefix(who)}{name}: expected an int{_int_bounds(lo, hi)}, got {value!r}")
    return v


def _int_bounds(lo, hi) -> str:
    cond = []
    if lo is not None:
        cond.append(f">= {lo}")
    if hi is not None:
        cond.append(f"<= {hi}")
    return (" " + " and ".join(cond)) if cond else ""


def seed_arg(seed, name: str = "seed", who=None):
    """A seed for ``np.random.default_rng``: None, an int >= 0 (Python or
    NumPy) or a ``numpy.random.Generator`` (returned as is). Returns a Generator."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        return np.random.default_rng()
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{_prefix(who)}{name}: expected an int >= 0, None or a numpy.random.Generator, "
                        f"got {seed!r} ({type(seed).__name__})")
    if seed < 0:
        raise ValueError(f"{_prefix(who)}{name}: expected an int >= 0, None or a numpy.random.Generator, "
                         f"got {seed!r}")
    return np.random.default_rng(int(seed))


def in_bounds(v: float, lo=None, hi=None, lo_open=False, hi_open=False, finite=True) -> bool:
    """``v`` is finite (or only not NaN, with ``finite=False``) and within
    ``[lo, hi]`` (open ends where asked; ``None``: no bound)."""
    ok = math.isfinite(v) if finite else not math.isnan(v)
    if ok and lo is not None:
        ok = v > lo if lo_open else v >= lo
    if ok and hi is not None:
        ok = v < hi if hi_open else v <= hi
    return ok


def bounds_text(lo=None, hi=None, lo_open=False, hi_open=False, finite=True) -> str:
    """``"finite number >= 0.0 and < 1.0"`` for error messages."""
    cond = []
    if lo is not None:
        cond.append(f"{'>' if lo_open else '>='} {lo}")
    if hi is not None:
        cond.append(f"{'<' if hi_open else '<='} {hi}")
    return ("finite number" if finite else "number") + (" " + " and ".join(cond) if cond else "")


# --------------------------------------------------------------- aliasing
def _extent(a: np.ndarray):
    """(first byte, one past the last byte) of the memory ``a`` spans."""
    start = a.__array_interface__["data"][0]
    lo = hi = start
    for n, s in zip(a.shape, a.strides):
        if s < 0:
            lo += s * (n - 1)
        else:
            hi += s * (n - 1)
    return lo, hi + a.itemsize


def _same_memory(a: np.ndarray, b: np.ndarray) -> bool:
    """``a`` and ``b`` are the same elements (the same array given twice, or a
    view of the same memory with the same layout, e.g. ``x`` and ``x[:]`` or a
    reshape of a contiguous array)."""
    if a.dtype != b.dtype or a.size != b.size:
        return False
    if a.__array_interface__["data"][0] != b.__array_interface__["data"][0]:
        return False
    if a.flags.c_contiguous and b.flags.c_contiguous:
        return True
    return a.shape == b.shape and a.strides == b.strides


def _label(name: str, keys, i: int) -> str:
    return f"{name}[{keys[i]!r}]" if keys is not None else f"{name}[{i}]"


def resolve_aliases(arrays, name: str = "arrays", keys=None) -> dict:
    """Find arrays of a list that share memory.

    Returns ``{j: i}`` for every array ``j`` that is the same memory as an
    earlier array ``i`` (the same array given twice, or an identical view):
    such an array is to be counted (normed, scaled, clamped) once. Raises
    ``ValueError`` naming both arrays when two of them share memory only in
    part (a view into another array, overlapping slices, a different dtype
    over the same bytes): no answer would count each element once. Arrays
    whose byte ranges interleave without sharing an element (``x[::2]`` and
    ``x[1::2]``) are fine. Non-ndarrays and empty arrays are ignored (the
    callers validate them). Cost: one sort of the byte ranges; the pairwise
    check runs only when two ranges overlap.

    >>> import numpy as np
    >>> x = np.zeros(4)
    >>> resolve_aliases([x, np.ones(2), x[:]])
    {2: 0}
    """
    spans = []
    for i, a in enumerate(arrays):
        if isinstance(a, np.ndarray) and a.size:
            lo, hi = _extent(a)
            spans.append((lo, hi, i))
    spans.sort()
    overlap = False
    end = None
    for lo, hi, _ in spans:
        if end is not None and lo < end:
            overlap = True
            break
        end = hi if end is None or hi > end else end
    if not overlap:
        return {}
    dups: dict = {}
    for k, (lo_i, hi_i, i) in enumerate(spans):
        for lo_j, hi_j, j in spans[k + 1:]:
            if lo_j >= hi_i:
                break
            a, b = (arrays[i], arrays[j]) if i < j else (arrays[j], arrays[i])
            first, second = min(i, j), max(i, j)
            if _same_memory(a, b):
                root = dups.get(first, first)
                prev = dups.get(second)
                dups[second] = root if prev is None else min(prev, root)
            elif np.shares_memory(a, b):
                raise ValueError(
                    f"{_label(name, keys, first)} and {_label(name, keys, second)} share memory only in part "
                    "(one is a view into the other, or the two overlap); each element must be counted once, "
                    "so pass every array once (the same array given twice is counted once)")
    # chains (a, a, a): point every duplicate at the first occurrence
    for j in sorted(dups):
        i = dups[j]
        while i in dups:
            i = dups[i]
        dups[j] = i
    return dups
