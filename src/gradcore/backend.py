"""Backend selection: the C kernels (default) or the pure-NumPy reference.

Every function and class the Python API takes from a backend exists with the
same name and signature in ``gradcore._kernels`` (C) and
``gradcore.reference`` (NumPy). ``kernels()`` returns the active one.
"""

from __future__ import annotations

import importlib
from typing import Any, Dict

_VALID = ("c", "numpy")
_state: Dict[str, Any] = {"name": "c", "module": None}


def set_backend(name: str) -> None:
    """Run the whole Python API on ``"c"`` (the compiled kernels) or ``"numpy"``
    (the pure-NumPy reference)."""
    if name not in _VALID:
        raise ValueError(f"unknown backend {name!r}; valid backends: {', '.join(_VALID)}")
    _state["name"] = name
    _state["module"] = None


def get_backend() -> str:
    """The active backend's name."""
    return _state["name"]


def kernels():
    """The active backend module (``gradcore._kernels`` or ``gradcore.reference``)."""
    mod = _state["module"]
    if mod is None:
        target = "gradcore._kernels" if _state["name"] == "c" else "gradcore.reference"
        mod = _state["module"] = importlib.import_module(target)
    return mod


class use_backend:
    """Context manager: ``with use_backend("numpy"): ...`` restores the previous backend."""

    def __init__(self, name: str):
        self.name = name
        self.previous = None

    def __enter__(self):
        self.previous = get_backend()
        set_backend(self.name)
        return self

    def __exit__(self, *exc):
        set_backend(self.previous)
        return False
