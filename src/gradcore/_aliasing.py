"""Shared memory among the arrays of one list: which are the same buffer
twice (kept once), and which overlap partly (refused).

Contract: :func:`unique_arrays` takes NumPy arrays (any strides, any dtype)
and returns the indices of the arrays to use, in order, with every exact
repeat of an earlier array (same start address, dtype, shape and strides)
left out; two arrays whose memory overlaps without being the same view raise
``ValueError`` naming both. The check sorts the arrays by start address and
sweeps once (O(n log n)); byte ranges that overlap are confirmed with
``np.shares_memory`` only when a strided view is involved (interleaved views
such as ``a[::2]`` / ``a[1::2]`` share a range but no element).

Used by the clipping functions so that a tensor tied into two places, or one
array passed twice, is counted in the norm and scaled once.
"""

from __future__ import annotations

from typing import Callable, List, Optional, Sequence

import numpy as np

__all__ = ["unique_arrays", "byte_range"]


def byte_range(a: np.ndarray):
    """``(start, stop)`` addresses of the bytes ``a`` can touch (stop exclusive)."""
    lo = hi = a.__array_interface__["data"][0]
    for n, st in zip(a.shape, a.strides):
        if n == 0:
            return lo, lo
        if st >= 0:
            hi += (n - 1) * st
        else:
            lo += (n - 1) * st
    return lo, hi + a.itemsize


def _signature(a: np.ndarray):
    return (a.__array_interface__["data"][0], a.dtype.str, a.shape, a.strides)


def unique_arrays(arrays: Sequence[np.ndarray], label: Optional[Callable[[int], str]] = None,
                  what: str = "arrays") -> List[int]:
    """Indices of ``arrays`` to keep (each buffer once), in their order.

    ``label(i)`` names array ``i`` in the error (default ``"{what}[i]"``).

    >>> import numpy as np
    >>> a = np.zeros(4)
    >>> unique_arrays([a, a[:], np.ones(2)])
    [0, 2]
    >>> unique_arrays([a, a[1:3]])
    Traceback (most recent call last):
    ...
    ValueError: arrays[1] overlaps arrays[0] partly (they share memory but are not the same array); pass each buffer once, or non-overlapping views
    """
    n = len(arrays)
    if n < 2:
        return list(range(n))
    name = label or (lambda i: f"{what}[{i}]")
    spans = []
    for i, a in enumerate(arrays):
        if a.size == 0:
            continue
        lo, hi = byte_range(a)
        spans.append((lo, hi, i))
    spans.sort()
    drop = set()
    # sweep: keep the open spans (those whose stop is beyond the current start)
    active: List[tuple] = []
    for lo, hi, i in spans:
        active = [s for s in active if s[1] > lo]
        a = arrays[i]
        for alo, ahi, j in active:
            b = arrays[j]
            if _signature(a) == _signature(b):
                first, second = (j, i) if j < i else (i, j)
                drop.add(second)
                continue
            contiguous = a.flags.c_contiguous and b.flags.c_contiguous
            if contiguous or np.shares_memory(a, b):
                first, second = (j, i) if j < i else (i, j)
                raise ValueError(
                    f"{name(second)} overlaps {name(first)} partly (they share memory but are not the same "
                    "array); pass each buffer once, or non-overlapping views"
                )
        active.append((lo, hi, i))
    if not drop:
        return list(range(n))
    return [i for i in range(n) if i not in drop]
