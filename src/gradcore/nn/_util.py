"""Validation helpers shared by the layers (messages name the layer)."""

from __future__ import annotations

import numbers

import numpy as np

from .._validate import bounds_text, in_bounds, seed_arg
from ..reference._checks import ACTIVATIONS

_MAX_CACHED_SHAPES = 4


def check_size(value, name: str, who: str) -> int:
    """An int >= 1 (layer sizes)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{who}: {name} must be an int >= 1, got {value!r}")
    if value < 1:
        raise ValueError(f"{who}: {name} must be >= 1, got {value}")
    return int(value)


def check_activation(act, who: str) -> str:
    if act not in ACTIVATIONS:
        raise ValueError(f"{who}: unknown activation {act!r}; valid activations: {', '.join(ACTIVATIONS)}")
    return act


def check_real(value, name: str, who: str, lo=None, lo_open=False, hi=None, hi_open=False) -> float:
    """A finite real number within the given bounds (NaN is rejected)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{who}: {name} must be a real number, got {value!r}")
    v = float(value)
    if not in_bounds(v, lo, hi, lo_open, hi_open):
        raise ValueError(f"{who}: {name} must be a {bounds_text(lo, hi, lo_open, hi_open)}, got {value!r}")
    return v


def check_input(x, who: str, dtype: np.dtype, features: int, what: str = "input") -> np.ndarray:
    """Validate a layer input (B, features) of ``dtype``; returns it C-contiguous
    (a same-dtype copy only when it was not contiguous; never a dtype conversion)."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{who}: expected {what} as a {dtype} numpy array of shape (B, {features}), "
                        f"got {type(x).__name__}")
    if x.dtype != dtype:
        raise TypeError(f"{who}: expected {dtype} {what}, got {x.dtype} (convert it explicitly, "
                        f"e.g. x.astype(np.{dtype}); gradcore never converts silently)")
    if x.ndim != 2 or x.shape[1] != features:
        raise ValueError(f"{who}: expected {what} of shape (B, {features}), got {x.shape}")
    if x.shape[0] < 1:
        raise ValueError(f"{who}: expected a batch of at least 1 row, got {what} of shape {x.shape}")
    if not x.dtype.isnative:
        raise TypeError(f"{who}: expected native byte order {what}, got {x.dtype.str}")
    if not x.flags.c_contiguous or not x.flags.aligned:
        x = np.ascontiguousarray(x)
    return x


def check_dy(dy, who: str, expected: np.ndarray) -> np.ndarray:
    """Validate an output gradient against the last output ``expected``."""
    if not isinstance(dy, np.ndarray):
        raise TypeError(f"{who}: expected dy as a {expected.dtype} numpy array of shape {expected.shape}, "
                        f"got {type(dy).__name__}")
    if dy.dtype != expected.dtype:
        raise TypeError(f"{who}: expected {expected.dtype} dy, got {dy.dtype} (convert it explicitly)")
    if dy.shape != expected.shape:
        raise ValueError(f"{who}: dy has shape {dy.shape}, but the last forward output has shape {expected.shape}")
    if not dy.dtype.isnative:
        raise TypeError(f"{who}: expected native byte order dy, got {dy.dtype.str}")
    if not dy.flags.c_contiguous or not dy.flags.aligned:
        dy = np.ascontiguousarray(dy)
    return dy


def seed_rng(seed, who: str) -> np.random.Generator:
    """None, an int >= 0 or a numpy Generator -> a Generator (errors name ``seed``)."""
    return seed_arg(seed, "seed", who)


class ShapeCache:
    """Preallocated work buffers keyed by input shape (a few kept, oldest dropped)."""

    __slots__ = ("entries",)

    def __init__(self):
        self.entries = {}

    def get(self, key, make):
        bufs = self.entries.get(key)
        if bufs is None:
            if len(self.entries) >= _MAX_CACHED_SHAPES:
                self.entries.pop(next(iter(self.entries)))
            bufs = self.entries[key] = make()
        return bufs

    def clear(self):
        self.entries.clear()
