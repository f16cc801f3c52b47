"""Limit the BLAS thread pools for a block of code.

The experiments multiply small matrices; on a busy machine a multi-threaded
OpenBLAS spin-waits and can be 10x slower than one thread. ``blas_threads(n)``
uses threadpoolctl when it is installed; otherwise, on Linux, it finds the
OpenBLAS libraries loaded in the process (NumPy's and SciPy's, which gradcore's
GEMMs use) and calls their ``*_set_num_threads`` through ctypes. Where neither
works it does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from typing import Any, List, Tuple

_PREFIXES = ("scipy_openblas", "openblas")
_SUFFIXES = ("", "64_", "_64_")


def _openblas_handles() -> List[Tuple[Any, Any]]:
    if not os.path.exists("/proc/self/maps"):
        return []
    paths = []
    try:
        with open("/proc/self/maps") as fh:
            for line in fh:
                p = line.split()[-1]
                if "openblas" in os.path.basename(p).lower() and p not in paths:
                    paths.append(p)
    except OSError:
        return []
    out = []
    for p in paths:
        try:
            lib = ctypes.CDLL(p)
        except OSError:
            continue
        for pre in _PREFIXES:
            found = None
            for suf in _SUFFIXES:
                try:
                    found = (getattr(lib, f"{pre}_set_num_threads{suf}"), getattr(lib, f"{pre}_get_num_threads{suf}"))
                    break
                except AttributeError:
                    continue
            if found:
                out.append(found)
                break
    return out


@contextlib.contextmanager
def blas_threads(n: int):
    """Run the block with at most ``n`` BLAS threads (restored afterwards)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    if threadpool_limits is not None:
        with threadpool_limits(limits=n, user_api="blas"):
            yield
        return
    handles = _openblas_handles()
    saved = []
    for setter, getter in handles:
        try:
            getter.restype = ctypes.c_int
            saved.append((setter, int(getter())))
            setter.argtypes = [ctypes.c_int]
            setter(int(n))
        except Exception:  # noqa: BLE001 - best effort: leave that library alone
            continue
    try:
        yield
    finally:
        for setter, old in saved:
            try:
                setter(old)
            except Exception:  # noqa: BLE001
                pass


def current_blas_threads() -> List[int]:
    """Thread counts of the OpenBLAS libraries found (for tests and info)."""
    out = []
    for _, getter in _openblas_handles():
        getter.restype = ctypes.c_int
        out.append(int(getter()))
    return out
