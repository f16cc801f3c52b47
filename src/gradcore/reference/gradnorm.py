"""Reference norms and in-place clipping over many arrays (NumPy).

The obvious way: per-array ``np.vdot`` (float32 accumulates in float32 here,
and nothing is overflow-safe), then in-place ``*=`` and ``np.clip``. NaN/Inf
are counted only when the norm is not finite; ``stats=False`` skips max |x|
(returned as None), so the norm used by clipping is one pass per array.
"""

from __future__ import annotations

import math

import numpy as np

from .._contract import FLOAT_DTYPES, check_float_array, resolve_aliases

_F32_MIN, _F32_MAX = float(np.finfo(np.float32).tiny), float(np.finfo(np.float32).max)


def combine_norms(a: float, b: float, ord: float) -> float:
    """The ord-norm of the concatenation of two parts with norms a and b."""
    if math.isnan(a) or math.isnan(b):
        return math.nan
    if math.isinf(ord):
        return max(a, b)
    return float((a**ord + b**ord) ** (1.0 / ord))


def _usable(a, writable: bool) -> bool:
    if not isinstance(a, np.ndarray) or a.dtype not in FLOAT_DTYPES or not a.dtype.isnative:
        return False
    f = a.flags
    return f.aligned and (not writable or (f.c_contiguous and f.writeable))


def _array_norm(x: np.ndarray, ord: float) -> float:
    flat = x.reshape(-1)
    if flat.size == 0:
        return 0.0
    if ord == 2.0:
        return float(np.sqrt(np.vdot(flat, flat)))
    if ord == 1.0:
        return float(np.abs(flat).sum())
    if math.isinf(ord):
        return float(np.abs(flat).max())
    return float((np.abs(flat) ** ord).sum() ** (1.0 / ord))


class BufferList:
    """Same interface as ``gradcore._kernels.BufferList``."""

    def __init__(self, arrays, name="arrays", keys=None, writable=False):
        for i, a in enumerate(arrays):
            if not _usable(a, writable):  # the label is built only for the error
                label = f"{name}[{keys[i]!r}]" if keys is not None else f"{name}[{i}]"
                check_float_array(a, label, writable)
        self.arrays = list(arrays)
        self.keys = keys
        self.writable = bool(writable)
        self.duplicates = resolve_aliases(self.arrays, name, keys)
        self._unique = [a for i, a in enumerate(self.arrays) if i not in self.duplicates]
        self.n = len(self.arrays)
        self.size = int(sum(a.size for a in self._unique))

    def __len__(self):
        return self.n

    def norm(self, ord=2.0, per_array=True, stats=True):
        if not (ord > 0.0):
            raise ValueError(f"ord must be > 0 (2, 1, inf or any finite p > 0), got {ord!r}")
        per = np.array([_array_norm(a, ord) for a in self.arrays], dtype=np.float64)
        once = np.array([p for i, p in enumerate(per) if i not in self.duplicates], dtype=np.float64)
        if once.size == 0:
            total = 0.0
        elif math.isinf(ord):
            total = float(np.max(once))
        else:
            total = float(np.sum(once**ord) ** (1.0 / ord))
        n_nan = n_inf = 0
        first = None
        if not math.isfinite(total):  # NaN/Inf present (or, here, an overflow): count them
            n_nan = int(sum(np.isnan(a).sum() for a in self._unique))
            n_inf = int(sum(np.isinf(a).sum() for a in self._unique))
            for i, a in enumerate(self.arrays):
                bad = np.flatnonzero(~np.isfinite(a.reshape(-1)))
                if bad.size:
                    first = (i, int(bad[0]))
                    break
            if n_nan:
                total = math.nan
            elif n_inf:
                total = math.inf
        max_abs = None
        if stats:
            max_abs = 0.0
            for a in self.arrays:
                if a.size and not np.isnan(a).all():
                    max_abs = max(max_abs, float(np.nanmax(np.abs(a))))
        return total, (per if per_array else None), max_abs, n_nan, n_inf, first

    def _check_writable(self, what):
        if not self.writable:
            raise ValueError(f"BufferList.{what}: this list was built with writable=False (arrays may be "
                             "read-only or read through a contiguous copy); build it with writable=True "
                             "to modify the arrays in place")

    def scale_(self, factor):
        self._check_writable("scale_")
        factor = float(factor)
        if not math.isfinite(factor):
            raise ValueError(f"factor: expected a finite number, got {factor!r}")
        tiny32 = not (_F32_MIN <= abs(factor) <= _F32_MAX)
        for a in self._unique:
            if a.dtype == np.float32 and tiny32:  # would round to 0/subnormal: apply in double
                a[...] = a.astype(np.float64) * factor
            else:
                a *= a.dtype.type(factor)

    def clamp_(self, c):
        self._check_writable("clamp_")
        if not (float(c) >= 0.0):
            raise ValueError(f"c: expected a number >= 0 (the clamp bound), got {c!r}")
        changed = 0
        for a in self._unique:
            before = a.copy()
            np.clip(a, -a.dtype.type(c), a.dtype.type(c), out=a)
            changed += int(np.count_nonzero((a != before) & ~np.isnan(before)))
        return changed
