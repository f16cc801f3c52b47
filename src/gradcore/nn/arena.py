"""The parameter arena: one contiguous buffer for all parameters of a model,
one for all their gradients.

Contract
--------
``Arena(specs, dtype)`` takes ``specs``, a list of ``(name, shape)`` pairs
(names unique, shapes tuples of ints >= 0), and allocates

- ``data``: flat 1-D C-contiguous buffer holding every parameter, in spec order;
- ``grad``: flat buffer of the same size and layout, zero-initialised;
- ``params`` / ``grads``: dicts name -> view of ``data`` / ``grad`` reshaped to
  the spec's shape (writing through a view writes the arena, and vice versa);
- ``offsets``: dict name -> ``(start, stop)`` into the flat buffers.

Global norms, clipping and optimizer steps then run as single passes over
``data`` / ``grad``; ``views(flat)`` gives the same name -> view mapping for
any other buffer with this layout (optimizer state from ``zeros()``).
The buffers start 64-byte aligned (one cache line, a full AVX-512 vector).

``data`` and ``grad`` are two parts of one block. From 1 MiB on, a block
(and an optimizer-state buffer from ``zeros()``) lies in its own private
anonymous mapping that starts on a 2 MiB boundary and is advised for
transparent huge pages (Linux; elsewhere, or where the advice is refused,
plain pages with the same contents). NumPy advises its own allocations
from 4 MiB on; below that the buffers of a mid-size model span hundreds of
4 KiB pages, whose page walks a step after other work pays for
(docs/performance.md, "Dense-network kernels").
"""

from __future__ import annotations

import mmap
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np

from ..init import as_float_dtype

_ALIGN = 64
_HUGE_PAGE = 2 << 20  # a transparent huge page on x86-64 and arm64 Linux
HUGE_MIN_BYTES = 1 << 20  # buffers from this size on are laid out for huge pages


def _round_up(n: int, step: int) -> int:
    return -(-n // step) * step


def _huge_zeros(nbytes: int) -> Optional[np.ndarray]:
    """``nbytes`` zero bytes starting on a 2 MiB boundary of a private
    anonymous mapping advised for transparent huge pages, or None where
    such a mapping cannot be made (no ``MADV_HUGEPAGE`` on this platform,
    or the mapping failed). A refused advice still gives the zeroed memory."""
    advice = getattr(mmap, "MADV_HUGEPAGE", None)
    if advice is None:
        return None
    span = _round_up(nbytes, _HUGE_PAGE)
    try:
        mm = mmap.mmap(-1, span + _HUGE_PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    except (OSError, ValueError):
        return None
    raw = np.frombuffer(mm, np.uint8)  # the array keeps the mapping alive
    start = (-raw.ctypes.data) % _HUGE_PAGE
    try:
        mm.madvise(advice, start, span)
    except OSError:
        pass
    return raw[start:start + nbytes]


def aligned_zeros(n: int, dtype: np.dtype) -> np.ndarray:
    """A zero-filled 1-D array of ``n`` elements whose data starts 64-byte
    aligned (from ``HUGE_MIN_BYTES`` on: 2 MiB aligned, on huge pages where
    the platform gives them; see the module docstring)."""
    itemsize = dtype.itemsize
    nbytes = n * itemsize
    raw = _huge_zeros(nbytes) if nbytes >= HUGE_MIN_BYTES else None
    if raw is None:
        raw = np.zeros(nbytes + _ALIGN, dtype=np.uint8)
        start = (-raw.ctypes.data) % _ALIGN
        raw = raw[start:start + nbytes]
    return raw.view(dtype)


def _check_shape(name: str, shape) -> Tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__iter__") \
            or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in shape):
        raise TypeError(f"Arena: shape of {name!r} must be a tuple of ints, got {shape!r}")
    shp = tuple(int(s) for s in shape)
    if any(s < 0 for s in shp):
        raise ValueError(f"Arena: shape of {name!r} must have sizes >= 0, got {shp}")
    return shp


class Arena:
    """One flat parameter buffer and one flat gradient buffer for a list of
    named parameter shapes (see the module docstring for the contract).

    >>> a = Arena([("weight", (2, 3)), ("bias", (2,))], "float64")
    >>> a.size, a.offsets["bias"]
    (8, (6, 8))
    >>> a.params["weight"][:] = 1.0
    >>> float(a.data.sum())
    6.0
    """

    __slots__ = ("specs", "dtype", "size", "data", "grad", "params", "grads", "offsets")

    def __init__(self, specs: Iterable[Tuple[str, tuple]], dtype="float32"):
        self.dtype = as_float_dtype(dtype, "Arena dtype")
        checked: List[Tuple[str, Tuple[int, ...]]] = []
        seen = set()
        for item in specs:
            try:
                name, shape = item
            except (TypeError, ValueError):
                raise TypeError(f"Arena: each spec must be a (name, shape) pair, got {item!r}") from None
            if not isinstance(name, str):
                raise TypeError(f"Arena: parameter names must be str, got {name!r}")
            if name in seen:
                raise ValueError(f"Arena: duplicate parameter name {name!r}")
            seen.add(name)
            checked.append((name, _check_shape(name, shape)))
        self.specs = checked
        self._allocate()

    @property
    def names(self) -> List[str]:
        """Parameter names in layout order."""
        return [name for name, _ in self.specs]

    def views(self, flat: np.ndarray) -> Dict[str, np.ndarray]:
        """name -> view of ``flat`` (a 1-D buffer with this arena's layout)."""
        if not isinstance(flat, np.ndarray) or flat.ndim != 1 or flat.size != self.size:
            raise ValueError(
                f"Arena.views: expected a 1-D array of {self.size} elements, got "
                f"{getattr(flat, 'shape', type(flat).__name__)}"
            )
        out = {}
        for name, shape in self.specs:
            start, stop = self.offsets[name]
            out[name] = flat[start:stop].reshape(shape)
        return out

    def zeros(self) -> np.ndarray:
        """A new zero-filled, aligned flat buffer with this layout (optimizer state)."""
        return aligned_zeros(self.size, self.dtype)

    def zero_grad(self) -> None:
        """Set every gradient to zero (one pass over ``grad``)."""
        self.grad.fill(0)

    def __len__(self) -> int:
        return len(self.specs)

    # A copied or unpickled arena rebuilds its views over its own (aligned)
    # buffers; pickling the views themselves would detach them.
    def __getstate__(self):
        return {"specs": self.specs, "dtype": self.dtype.str, "data": self.data, "grad": self.grad}

    def _allocate(self):
        """Lay the specs out in order: offsets, size, zeroed data and grad
        buffers and the per-name views of both."""
        self.offsets: Dict[str, Tuple[int, int]] = {}
        pos = 0
        for name, shape in self.specs:
            n = int(np.prod(shape, dtype=np.int64))
            self.offsets[name] = (pos, pos + n)
            pos += n
        self.size = pos
        gap = _round_up(pos * self.dtype.itemsize, _ALIGN) // self.dtype.itemsize
        block = aligned_zeros(gap + pos, self.dtype)  # data, then grad at the next cache line
        self.data = block[:pos]
        self.grad = block[gap:gap + pos]
        self.params = self.views(self.data)
        self.grads = self.views(self.grad)

    def __setstate__(self, state):
        self.specs = [(name, tuple(shape)) for name, shape in state["specs"]]
        self.dtype = np.dtype(state["dtype"])
        self._allocate()
        self.data[...] = state["data"]
        self.grad[...] = state["grad"]

    def __repr__(self) -> str:
        return f"Arena({len(self.specs)} parameters, {self.size} values, dtype={self.dtype})"
