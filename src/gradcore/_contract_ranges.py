"""The contract's scalar checks: the message helpers every check uses and
the checks of numbers, integers, seeds and ranges (re-exported by
:mod:`gradcore._contract`, where callers import them from).

>>> check_range(0.5, "momentum", lo=0.0, hi=1.0)
0.5
>>> int_arg(3, "steps", lo=1)
3
"""

from __future__ import annotations

import math
import numbers
import operator
from typing import Any, Optional

import numpy as np

# ---------------------------------------------------------------- messages
def label(name: str, who: Optional[str] = None) -> str:
    """``"who: name"`` (or just ``name``): the head of every message."""
    return f"{who}: {name}" if who else name


def describe(a: Any) -> str:
    """Short description of an object for error messages."""
    if isinstance(a, np.ndarray):
        return f"ndarray(dtype={a.dtype}, shape={a.shape})"
    return type(a).__name__


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


# ---------------------------------------------------------------- scalars
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


def integral(value: Any, lo: int, expected: str, typed: bool = False) -> int:
    """``int(value)`` for an integer (Python or NumPy, not bool) >= ``lo``;
    else ``TypeError`` (not an integer) or ``ValueError`` (too small) saying
    ``"<expected>, got <value>"`` (with the type after it when ``typed``)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{expected}, got {value!r}" + (f" ({type(value).__name__})" if typed else ""))
    if value < lo:
        raise ValueError(f"{expected}, got {value!r}")
    return int(value)


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
    if seed is None or isinstance(seed, np.random.SeedSequence):
        return np.random.default_rng(seed)
    return np.random.default_rng(integral(seed, 0, f"{_prefix(who)}{name} must be an int >= 0, None or a "
                                              "numpy.random.Generator", typed=True))


def check_number(value: Any, name: str, who: Optional[str] = None) -> float:
    """A real number (bool refused) as a Python float; no range check."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{label(name, who)}: expected a real number, got {type(value).__name__}")
    return float(value)


def check_range(value: Any, name: str, lo: Optional[float] = None, hi: Optional[float] = None,
                lo_open: bool = False, hi_open: bool = False, who: Optional[str] = None) -> float:
    """A finite real number in ``[lo, hi]`` (open ends where asked; NaN refused)."""
    return real_arg(value, name, lo, hi, lo_open, hi_open, who)


def check_real(value: Any, name: str, who: Optional[str] = None, lo: Optional[float] = None,
               lo_open: bool = False, hi: Optional[float] = None, hi_open: bool = False) -> float:
    """:func:`check_range` with the layer label first (the layers' argument order)."""
    return check_range(value, name, lo, hi, lo_open, hi_open, who)


def check_slope(slope: Any, name: str = "slope", who: Optional[str] = None) -> float:
    """The leaky-ReLU slope: a finite number >= 0."""
    return check_range(slope, name, lo=0, who=who)


def check_positive_int(value: Any, name: str, who: Optional[str] = None, note: str = "") -> int:
    """An integer >= 1 (sizes, step counts); ``note`` is appended in parentheses."""
    extra = f" ({note})" if note else ""
    return integral(value, 1, f"{label(name, who)}: expected an integer >= 1{extra}")

