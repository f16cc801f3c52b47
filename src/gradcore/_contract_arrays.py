"""The contract's array checks: float arrays of a kernel call, class labels,
memory shared between arrays of a list (aliasing), outputs overlapping their
arguments (pointer ranges) and the checks of one recurrent kernel call
(re-exported by :mod:`gradcore._contract`, where callers import them from)."""

from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple

import numpy as np

from ._contract_ranges import describe

#: The float dtypes every kernel takes (both, always; never converted silently).
FLOAT_DTYPES: Tuple[np.dtype, ...] = (np.dtype(np.float32), np.dtype(np.float64))


# ---------------------------------------------------------------- arrays
def check_float_array(a: Any, name: str, writable: bool = False) -> None:
    """Raise a clear error unless ``a`` is a usable float32/float64 array
    (native byte order, aligned; C-contiguous and writeable when ``writable``)."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name}: expected a float32 or float64 numpy array, got {describe(a)}")
    if a.dtype.newbyteorder("=") not in FLOAT_DTYPES:
        raise TypeError(f"{name}: expected dtype float32 or float64, got {a.dtype}")
    if not a.dtype.isnative:
        raise TypeError(f"{name}: expected native byte order, got {a.dtype.str}")
    if not a.flags.aligned:
        raise ValueError(f"{name}: array is not aligned")
    if writable:
        if not a.flags.c_contiguous:
            raise ValueError(
                f"{name}: in-place operation needs a C-contiguous array (got strides {a.strides}); "
                "use np.ascontiguousarray and copy back"
            )
        if not a.flags.writeable:
            raise ValueError(f"{name}: in-place operation needs a writeable array, got a read-only one")


def check_array(a: Any, name: str, dtype: Any = None, shape: Optional[Sequence[int]] = None,
                ndim: Optional[int] = None, writable: bool = False, contiguous: bool = True,
                allow_none: bool = False, nonempty: bool = True) -> Optional[np.ndarray]:
    """Validate one float array of a kernel call; returns it (or None when allowed)."""
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


def check_labels(labels: Any, name: str, B: int, C: int) -> np.ndarray:
    """Class indices: a C-contiguous int64 array of shape (B,) with values in [0, C)."""
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


# ---------------------------------------------------------------- overlap
def byte_range(a: np.ndarray) -> Tuple[int, int]:
    """``[start, end)`` address range of a C-contiguous array's bytes."""
    start = a.__array_interface__["data"][0]
    return start, start + a.nbytes


def overlaps(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether the memory bounds of two arrays intersect (O(1): NumPy's
    bounds-only ``may_share_memory``, the byte ranges for C-contiguous
    arrays; about 10x cheaper than reading two ``__array_interface__``)."""
    return np.may_share_memory(a, b)


def check_no_overlap(outputs: Sequence[Tuple[np.ndarray, str]],
                     inputs: Sequence[Tuple[np.ndarray, str]]) -> None:
    """Refuse an output that overlaps another output or any input. Arguments
    are ``(array, name)`` pairs of C-contiguous arrays (``None`` arrays skipped)."""
    outs = [(a, n, byte_range(a)) for a, n in outputs if a is not None and a.nbytes]
    ins = [(a, n, byte_range(a)) for a, n in inputs if a is not None and a.nbytes]
    for i, (_, name, (s, e)) in enumerate(outs):
        for _, other, (s2, e2) in outs[:i]:
            if s < e2 and s2 < e:
                raise ValueError(f"{name}: output overlaps argument {other}")
        for _, other, (s2, e2) in ins:
            if s < e2 and s2 < e:
                raise ValueError(f"{other}: argument overlaps output {name}")


def check_disjoint(out, oname: str, other, name: str, same_ok: bool = False) -> None:
    """Output ``out`` and argument ``other`` (C-contiguous arrays or None)
    occupy disjoint memory (``same_ok``: or exactly the same memory, an
    in-place element-wise pass). The binding has the same rule in C."""
    if out is None or other is None:
        return
    lo1, hi1 = byte_range(out)
    lo2, hi2 = byte_range(other)
    if lo1 < hi2 and lo2 < hi1:
        if same_ok and lo1 == lo2 and hi1 == hi2:
            return
        raise ValueError(f"{oname}: output overlaps argument {name}"
                         + (" (only exactly the same array is allowed)" if same_ok else "")
                         + "; pass a separate output array")


# ---------------------------------------------------------------- recurrent calls
class RecurrentArgs:
    """Argument checks of one recurrent kernel call: the dtype is taken from
    ``x`` (T, B, I), H from ``w_hh`` (G*H, H); every array is checked against
    them, and outputs may not overlap any other argument (pointer ranges).

    >>> x = np.zeros((5, 2, 3)); w_hh = np.zeros((8, 2))
    >>> a = RecurrentArgs(x, w_hh, 4)
    >>> (a.T, a.B, a.I, a.H)
    (5, 2, 3, 2)
    """

    def __init__(self, x: Any, w_hh: Any, G: int) -> None:
        check_float_array(x, "x", False)
        if x.ndim != 3:
            raise ValueError(f"x: expected a 3-D array (T, B, I) (time-major), got shape {x.shape}")
        self.dtype = x.dtype
        self.T, self.B, self.I = (int(n) for n in x.shape)
        if self.T < 1 or self.B < 1 or self.I < 1:
            raise ValueError(f"x: every dimension of (T, B, I) must be >= 1, got shape {x.shape}")
        check_float_array(w_hh, "w_hh", False)
        if w_hh.ndim != 2 or w_hh.shape[1] < 1 or w_hh.shape[0] != G * w_hh.shape[1]:
            raise ValueError(f"w_hh: expected shape ({G}*H, H) with H >= 1, got {w_hh.shape}")
        self.H = int(w_hh.shape[1])
        self.outputs: list = []
        self.inputs: list = []

    def _overlap(self, a: np.ndarray, name: str, writable: bool) -> None:
        if a.nbytes == 0:
            return
        s, e = byte_range(a)
        for _, oname, (s2, e2) in (self.outputs + self.inputs if writable else self.outputs):
            if s < e2 and s2 < e:
                if writable:
                    raise ValueError(f"{name}: output overlaps argument {oname}")
                raise ValueError(f"{name}: argument overlaps output {oname}")
        (self.outputs if writable else self.inputs).append((a, name, (s, e)))

    def arr(self, a: Any, name: str, shape: Sequence[int], writable: bool = False,
            optional: bool = False) -> None:
        """Check one array of the call (``None`` allowed only when ``optional``)."""
        shape = tuple(shape)
        if a is None:
            if optional:
                return
            raise TypeError(f"{name}: expected a {self.dtype} array of shape {shape}, got None")
        check_float_array(a, name, writable)
        if not a.flags.c_contiguous:
            raise ValueError(f"{name}: expected a C-contiguous array, got strides {a.strides}")
        if a.dtype != self.dtype:
            raise TypeError(f"{name}: expected dtype {self.dtype} (the dtype of x), got {a.dtype}")
        if a.shape != shape:
            raise ValueError(f"{name}: expected shape {shape}, got {a.shape}")
        self._overlap(a, name, writable)

    def norms(self, a: Any, name: str) -> None:
        """Check an optional float64 (T,) output of per-step gradient norms."""
        if a is None:
            return
        if not isinstance(a, np.ndarray) or a.dtype != np.float64 or a.shape != (self.T,):
            raise TypeError(f"{name}: expected a float64 array of shape ({self.T},), got {describe(a)}")
        if not a.flags.c_contiguous or not a.flags.writeable:
            raise ValueError(f"{name}: expected a C-contiguous writeable array")
        self._overlap(a, name, True)
