"""Gradient norms, statistics and clipping over many arrays at once.

``arrays`` is one ndarray, a list/tuple of ndarrays, or a dict name -> ndarray;
float32 and float64 may be mixed. Each function makes one C call per dtype
(never a Python loop over the arrays) with the GIL released.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from ._contract import real_arg, resolve_aliases
from .backend import kernels
from .errors import NonFiniteGradientError


@dataclass(frozen=True)
class GradStats:
    """Statistics of a set of gradient arrays (see :func:`grad_stats`)."""

    norm: float
    per_array: np.ndarray
    max_abs: float
    n_nan: int
    n_inf: int
    first_nonfinite: Optional[tuple]
    finite: bool


def _as_list(arrays: Any, name: str = "arrays"):
    """Return (list_of_arrays, keys_or_None)."""
    if isinstance(arrays, np.ndarray):
        return [arrays], None
    if isinstance(arrays, dict):
        return list(arrays.values()), list(arrays.keys())
    if isinstance(arrays, (list, tuple)):
        return list(arrays), None
    raise TypeError(
        f"{name}: expected an ndarray, a list/tuple of ndarrays or a dict of name -> ndarray, "
        f"got {type(arrays).__name__}"
    )


def _check_ord(ord, name: str = "ord") -> float:
    """A norm order: any real scalar > 0 (inf allowed); bool and str refused."""
    if isinstance(ord, (bool, np.bool_)) or not isinstance(ord, numbers.Real):
        raise TypeError(f"{name}: expected a number (2, 1, inf or any finite p > 0), "
                        f"got {ord!r} ({type(ord).__name__})")
    p = float(ord)
    if not (p > 0.0):
        raise ValueError(f"{name}: expected 2, 1, inf or any finite p > 0, got {ord!r}")
    return p


def _check_threshold(value, name: str) -> float:
    return real_arg(value, name, lo=0)


def aliases(arrays: Any, name: str = "arrays") -> dict:
    """``{j: i}`` for every array ``j`` of ``arrays`` that is the same memory
    as an earlier array ``i``; raises ``ValueError`` naming both when two
    arrays share memory only in part. Every function here counts such a
    duplicate once (its norm, its scaling and clamping), so tied parameters
    and a gradient given twice are not clipped twice; wrappers (e.g. the
    PyTorch interop) can call this to report or drop duplicates themselves.

    >>> import numpy as np, gradcore
    >>> g = np.array([3.0, 4.0])
    >>> gradcore.clip.aliases([g, g])
    {1: 0}
    >>> gradcore.global_norm([g, g])
    5.0
    """
    items, keys = _as_list(arrays, name)
    return resolve_aliases(items, name, keys)


def buffers(arrays: Any, writable: bool = False, name: str = "arrays"):
    """Validate ``arrays`` once and return the backend's BufferList for them."""
    items, keys = _as_list(arrays, name)
    return kernels().BufferList(items, name, keys, writable)


def _first(first, keys):
    if first is None:
        return None
    i, flat = first
    return (keys[i] if keys is not None else int(i), int(flat))


def global_norm(arrays: Any, ord: float = 2.0) -> float:
    """The ord-norm of all arrays taken together (as if concatenated).

    >>> import numpy as np, gradcore
    >>> gradcore.global_norm([np.array([3.0, 4.0]), np.array([12.0])])
    13.0
    """
    p = _check_ord(ord)
    norm, *_ = buffers(arrays).norm(p, False, False)
    return float(norm)


def grad_stats(arrays: Any, ord: float = 2.0) -> GradStats:
    """Norm, per-array norms, max |g|, NaN/Inf counts and where the first
    non-finite value is (``(array_index or key, flat_index)``)."""
    p = _check_ord(ord)
    bl = buffers(arrays)
    norm, per, max_abs, n_nan, n_inf, first = bl.norm(p, True)
    return GradStats(
        norm=float(norm),
        per_array=per,
        max_abs=float(max_abs),
        n_nan=int(n_nan),
        n_inf=int(n_inf),
        first_nonfinite=_first(first, bl.keys),
        finite=not (n_nan or n_inf),
    )


def clip_coefficient(norm: float, max_norm: float, eps: float = 1e-6) -> float:
    """``max_norm / (norm + eps)`` capped at 1 (1 means: leave unchanged)."""
    denom = norm + eps
    if not denom > 0.0:  # all-zero gradients with eps == 0: nothing to scale
        return 1.0
    coef = max_norm / denom
    return coef if coef < 1.0 else 1.0


def clip_grad_norm_(arrays: Any, max_norm: float, ord: float = 2.0,
                    error_if_nonfinite: bool = False, eps: float = 1e-6) -> float:
    """Scale all arrays in place so their global ord-norm is at most ``max_norm``.

    Returns the norm before clipping. Scales by ``max_norm / (norm + eps)`` only
    when that is < 1; otherwise writes nothing. With a non-finite norm, raises
    :class:`NonFiniteGradientError` if ``error_if_nonfinite``, else leaves every
    array unchanged and returns the non-finite norm.

    >>> import numpy as np, gradcore
    >>> g = np.array([3.0, 4.0])
    >>> gradcore.clip_grad_norm_(g, max_norm=2.0)
    5.0
    >>> g
    array([1.2, 1.6])
    """
    max_norm = _check_threshold(max_norm, "max_norm")
    p = _check_ord(ord)
    eps = _check_threshold(eps, "eps")
    bl = buffers(arrays, writable=True)
    norm, _, _, n_nan, n_inf, first = bl.norm(p, False, False)
    if not math.isfinite(norm):
        if error_if_nonfinite:
            idx = _first(first, bl.keys) or (None, None)  # None: a backend overflowed without NaN/Inf
            raise NonFiniteGradientError(norm, idx[0], idx[1], int(n_nan), int(n_inf))
        return float(norm)
    coef = clip_coefficient(norm, max_norm, eps)
    if coef < 1.0:
        _scale_by(bl, coef, max_norm, norm + eps)
    return float(norm)


def _scale_by(bl, coef: float, max_norm: float, denom: float) -> None:
    """Scale by ``coef = max_norm / denom`` so the result is what exact
    arithmetic rounds to: the kernels apply a float32 coefficient that is not
    a normal float32 in double; a coefficient that underflows even in double
    (max_norm tiny against a huge norm) is applied as two factors, an exact
    power of two 2^-e with denom = m 2^e, then max_norm / m."""
    if coef >= 2.0 ** -960 or max_norm == 0.0:
        bl.scale_(coef)
        return
    m, e = math.frexp(denom)
    bl.scale_(math.ldexp(1.0, -e))
    bl.scale_(max_norm / m)


def clip_grad_value_(arrays: Any, clip_value: float, error_if_nonfinite: bool = False) -> int:
    """Clamp every element to ``[-clip_value, clip_value]`` in place; return how
    many elements changed. NaN stays NaN (with ``error_if_nonfinite`` a NaN/Inf
    raises :class:`NonFiniteGradientError` before anything is written)."""
    c = _check_threshold(clip_value, "clip_value")
    bl = buffers(arrays, writable=True)
    if error_if_nonfinite:
        norm, _, _, n_nan, n_inf, first = bl.norm(math.inf, False, False)
        if n_nan or n_inf:
            idx = _first(first, bl.keys)
            raise NonFiniteGradientError(norm, idx[0], idx[1], int(n_nan), int(n_inf))
    return int(bl.clamp_(c))
