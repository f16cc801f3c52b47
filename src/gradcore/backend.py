"""Backend selection: the C kernels (default) or the pure-NumPy reference.

Every function and class the Python API takes from a backend exists with the
same name and signature in ``gradcore._kernels`` (C) and
``gradcore.reference`` (NumPy). ``kernels()`` returns the active one.

Scope: :func:`set_backend` sets the process-wide default.
:class:`use_backend` overrides it for the current thread / ``contextvars``
context only (a ``ContextVar``, restored on exit), so two threads inside
their own ``with use_backend(...)`` blocks do not see each other's choice.
A new thread starts with no override (it sees the process default), as do
threads a thread pool reuses.
"""

from __future__ import annotations

import importlib
import sys
from contextvars import ContextVar
from typing import Any, Dict

_VALID = ("c", "numpy")
_TARGETS = {"c": "gradcore._kernels", "numpy": "gradcore.reference"}
_state: Dict[str, Any] = {"name": "c", "module": None}          # the process-wide default
# (name, module) of this context's override, or None (use the default)
_override: ContextVar = ContextVar("gradcore_backend", default=None)


def _check(name) -> str:
    if not isinstance(name, str) or name not in _VALID:
        raise ValueError(f"unknown backend {name!r}; valid backends: {', '.join(_VALID)}")
    return name


def _load(name: str):
    module = importlib.import_module(_TARGETS[name])
    if name == "c":  # the recurrent records' descriptors switch to the compiled ones
        records = sys.modules.get("gradcore.nn._recurrent_records")
        if records is not None:
            records.binding_loaded()
    return module


def set_backend(name: str) -> None:
    """Run the whole Python API on ``"c"`` (the compiled kernels) or ``"numpy"``
    (the pure-NumPy reference): the process-wide default. Inside a
    ``with use_backend(...)`` block it also replaces that block's choice
    (until the block ends)."""
    name = _check(name)
    _state["name"] = name
    _state["module"] = None
    if _override.get() is not None:
        _override.set((name, _load(name)))


def get_backend() -> str:
    """The active backend's name (this context's override, else the default)."""
    o = _override.get()
    return o[0] if o is not None else _state["name"]


def kernels():
    """The active backend module (``gradcore._kernels`` or ``gradcore.reference``)."""
    o = _override.get()
    if o is not None:
        return o[1]
    mod = _state["module"]
    if mod is None:
        mod = _state["module"] = _load(_state["name"])
    return mod


class use_backend:
    """Context manager: ``with use_backend("numpy"): ...`` runs the block on
    that backend in this thread / context only and restores the previous
    choice on exit (nesting and re-entering one instance are fine).

    >>> import gradcore
    >>> with gradcore.use_backend("numpy"):
    ...     gradcore.get_backend()
    'numpy'
    """

    def __init__(self, name: str):
        self.name = _check(name)
        self._tokens: list = []

    def __enter__(self):
        self._tokens.append(_override.set((self.name, _load(self.name))))
        return self

    def __exit__(self, *exc):
        _override.reset(self._tokens.pop())
        return False
