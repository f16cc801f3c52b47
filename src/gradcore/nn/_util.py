"""Validation helpers shared by the layers (messages name the layer)."""

from __future__ import annotations

import numbers

import numpy as np

from .. import _contract
from .._contract import overlaps

_MAX_CACHED_SHAPES = 4


def check_size(value, name: str, who: str) -> int:
    """An int >= 1 (layer sizes)."""
    return _contract.check_positive_int(value, name, who)


def check_activation(act, who: str) -> str:
    """One of the dense activations (``gradcore._contract.ACTIVATIONS``)."""
    return _contract.check_activation(act, "activation", who)


check_real = _contract.check_real


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
    return native_contiguous(x, who, what)


def native_contiguous(a: np.ndarray, who: str, name: str) -> np.ndarray:
    """Refuse a byte-swapped array; return ``a`` C-contiguous and aligned (a
    same-dtype copy only when it was not)."""
    if not a.dtype.isnative:
        raise TypeError(f"{who}: expected native byte order {name}, got {a.dtype.str}")
    if not a.flags.c_contiguous or not a.flags.aligned:
        a = np.ascontiguousarray(a)
    return a


def check_dy(dy, who: str, expected: np.ndarray) -> np.ndarray:
    """Validate an output gradient against the last output ``expected``."""
    if not isinstance(dy, np.ndarray):
        raise TypeError(f"{who}: expected dy as a {expected.dtype} numpy array of shape {expected.shape}, "
                        f"got {type(dy).__name__}")
    if dy.dtype != expected.dtype:
        raise TypeError(f"{who}: expected {expected.dtype} dy, got {dy.dtype} (convert it explicitly)")
    if dy.shape != expected.shape:
        raise ValueError(f"{who}: dy has shape {dy.shape}, but the last forward output has shape {expected.shape}")
    return native_contiguous(dy, who, "dy")


def backward_dy(m, dy, cache) -> np.ndarray:
    """The start of a layer's backward: refuse it before a forward (``cache``
    None), validate ``dy`` against the last output ``m._y`` (cheap check first)."""
    if cache is None:
        raise RuntimeError(f"{m._label()}: backward called before forward")
    y = m._y
    if dy.__class__ is not np.ndarray or dy.dtype is not m.dtype or dy.shape != y.shape:
        dy = check_dy(dy, m._label(), y)
    return dy


def run_kernel(kernel, args: list, k: int, fix, *fix_args):
    """Call ``kernel(*args)``. A kernel refuses a bad argument (TypeError /
    ValueError) before it writes anything; then ``args[k] = fix(args[k],
    *fix_args)`` names the fault in the layer's words or fixes the array's
    layout (a copy), and the call runs once more. Returns ``args[k]`` as used."""
    try:
        kernel(*args)
    except (TypeError, ValueError):
        args[k] = fix(args[k], *fix_args)
        kernel(*args)
    return args[k]


def fresh_dy(dy, m, *outputs) -> np.ndarray:
    """``dy`` checked against the last output ``m._y``, copied when it
    overlaps one of the backward's ``outputs`` (e.g. the layer's own dx fed
    back as dy; pointer ranges)."""
    dy = check_dy(dy, m._label(), m._y)
    if any(o is not None and overlaps(dy, o) for o in outputs):
        dy = dy.copy()
    return dy


def seed_rng(seed, who: str) -> np.random.Generator:
    """None, an int >= 0 or a numpy Generator -> a Generator (errors name ``seed``)."""
    return _contract.seed_arg(seed, "seed", who)


#: ``[n]``, bumped whenever a layer's forward cache may change outside a fused
#: MLP's own pass: by the ``forward`` of every Dense a fused MLP has bound, every emptying of caches
#: (``clear_cache``, copies, pickles, ``inference``) and every install of a
#: fused MLP's caches into its children (another MLP may share them). While
#: it stands still, no child of a fused MLP can have replaced the caches the
#: MLP installed.
CACHE_EPOCH = [0]


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
