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
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Tuple

import numpy as np

from ..init import as_float_dtype

_ALIGN = 64




def aligned_zeros(n: int, dtype: np.dtype) -> np.ndarray:
    """A zero-filled 1-D array of ``n`` elements whose data starts 64-byte aligned."""
    itemsize = dtype.itemsize
    raw = np.zeros(n * itemsize + _ALIGN, dtype=np.uint8)
    start = (-raw.ctypes.data) % _ALIGN
    return raw[start:start + n * itemsize].view(dtype)


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
        self.data = aligned_zeros(pos, self.dtype)
        self.grad = aligned_zeros(pos, self.dtype)
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
