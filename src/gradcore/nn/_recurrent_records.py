"""The backward records of a recurrent driver that hold arrays: ``dh0``,
``dc0``, ``timestep_grad_norms``, ``timestep_cell_grad_norms``
(:data:`RECORDS`, the one list of their names).

Each is an attribute kept in the instance ``__dict__`` (None, or an array
the caller may keep: every backward records new ones). The compiled pass
plan (``_kernels_recplan.pxi``) records a pending value instead: the
result still in the plan's scratch, copied out into a new array the first
time the attribute is read (and kept, so every later read returns that same
array). A record nobody reads then costs no allocation; what a reader sees
is exactly what an eager copy would have given. Copies and pickles of the
layer hold the array (:func:`settled`). :func:`peek` reads a record without
copying it out (for a caller that copies it somewhere at once).

The descriptor is the compiled ``_Record`` of the binding (a C-level get /
set of the instance dict) once the binding is loaded (:func:`binding_loaded`,
called by the backend; ``import gradcore`` itself does not load it); until
then, and on the NumPy backend without it, the Python :class:`_PyRecord`
below (which never sees a pending value: only the compiled plan records
one).

Threads: a layer is used by one thread at a time (its thread guard refuses
two passes at once). A record read from another thread while the owner runs
passes may be torn: the plan rewrites its scratch sets in turn, so a copy
taken during a later backward can mix two passes.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

__all__ = ["RECORDS", "bind", "binding_loaded", "peek", "settled"]

_ndarray = np.ndarray

RECORDS = ("dh0", "dc0", "timestep_grad_norms", "timestep_cell_grad_norms")


def _pending(v) -> bool:
    return type(v) is not _ndarray and getattr(type(v), "_gc_pending", False)


class _PyRecord:
    """Data descriptor of one record (see the module docstring); an unset
    record is a missing attribute, as a plain one would be."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __get__(self, obj, cls=None):
        if obj is None:
            return self
        d = obj.__dict__
        try:
            v = d[self.name]
        except KeyError:
            raise AttributeError(f"{type(obj).__name__!r} object has no attribute {self.name!r}") from None
        if v is None or not _pending(v):     # None or an array (the common reads)
            return v
        v = d[self.name] = v.copy()
        return v

    def __set__(self, obj, value) -> None:
        obj.__dict__[self.name] = value

    def __delete__(self, obj) -> None:
        try:
            del obj.__dict__[self.name]
        except KeyError:
            raise AttributeError(self.name) from None


_BOUND: list = []  # the classes whose record attributes bind() set


def _descriptor_type():
    """The binding's compiled ``_Record`` once the binding is loaded, else
    the Python one (``import gradcore`` does not load the binding)."""
    K = sys.modules.get("gradcore._kernels")
    return getattr(K, "_Record", _PyRecord) if K is not None else _PyRecord


def bind(cls):
    """Class decorator: give ``cls`` the record attributes of :data:`RECORDS`
    (compiled descriptors as soon as the binding is loaded: :func:`binding_loaded`)."""
    _BOUND.append(cls)
    R = _descriptor_type()
    for name in RECORDS:
        setattr(cls, name, R(name))
    return cls


def binding_loaded() -> None:
    """Rebind every bound class's records to the compiled descriptor (the
    backend calls this when it loads the binding)."""
    R = _descriptor_type()
    for cls in _BOUND:
        if not isinstance(cls.__dict__[RECORDS[0]], R):
            for name in RECORDS:
                setattr(cls, name, R(name))


def peek(obj, name: str):
    """Record ``name`` of ``obj`` as it stands: an array, None, or a pending
    record's scratch (valid until the plan's next backward but one; the
    caller copies it at once and never keeps it). The attribute is not
    settled."""
    v = obj.__dict__[name]
    return v.scratch if v is not None and _pending(v) else v


def settled(state: dict) -> dict:
    """``state`` (a copy of a driver's ``__dict__``) with every pending record
    copied out (a copy of the layer must not follow the plan's scratch)."""
    for name in RECORDS:
        v = state.get(name)
        if v is not None and _pending(v):
            state[name] = v.copy()
    return state
