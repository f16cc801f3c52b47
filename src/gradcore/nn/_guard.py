"""The thread guard of a model tree: ``forward`` / ``backward`` of every
:class:`~gradcore.nn.module.Module` subclass are wrapped so that a model
serves one thread at a time (see the contract in :mod:`gradcore.nn.module`)."""

from __future__ import annotations

import functools
import threading
from threading import get_ident

from ..errors import ConcurrentUseError


class _Guard:
    """Which thread is inside a model tree (``busy``) and which ran its last
    forward (``fwd``); one per tree, shared by every module of it. A copy or
    unpickled model gets a fresh one (shared by its modules)."""

    __slots__ = ("busy", "fwd")

    def __init__(self):
        self.busy = 0
        self.fwd = 0

    def __reduce__(self):
        return (_Guard, ())


def _guarded(fn, what: str):
    """Wrap ``forward`` / ``backward``: refuse a call while another thread is
    inside this module's tree, and a ``backward`` whose ``forward`` ran in
    another thread (its caches would be that thread's). A few attribute reads
    and writes per outermost call; nested calls of the same thread pass
    straight through (and containers call their children unwrapped)."""
    is_fwd = what == "forward"

    @functools.wraps(fn)
    def call(self, *args, **kwargs):
        g = self._gc_guard
        if g is None:
            return fn(self, *args, **kwargs)
        me = get_ident()
        busy = g.busy
        if busy == me:
            return fn(self, *args, **kwargs)
        if busy:
            raise ConcurrentUseError(
                f"{self._label()}.{what}: called from thread {me} while thread {busy} is running this "
                "model; a model serves one thread at a time (layers reuse their buffers) - give each "
                "thread its own model")
        if g.fwd and g.fwd != me:
            if not is_fwd:
                raise ConcurrentUseError(
                    f"{self._label()}.backward: called from thread {me}, but the last forward ran in "
                    f"thread {g.fwd} (its caches are that thread's); a model serves one thread at a "
                    "time - give each thread its own model")
            if _thread_alive(g.fwd):  # its outputs (layer-owned buffers) may still be in use
                raise ConcurrentUseError(
                    f"{self._label()}.forward: called from thread {me} while thread {g.fwd}, which ran "
                    "the last forward, is still alive; a model serves one thread at a time (layers "
                    "reuse their output buffers) - give each thread its own model, or hand it over "
                    "with model.clear_cache() in the thread that is done with it")
        g.busy = me
        try:
            return fn(self, *args, **kwargs)
        finally:
            g.busy = 0
            if is_fwd:
                g.fwd = me

    call._gc_guarded = True  # type: ignore[attr-defined]  # marks a wrapped method
    return call


def _thread_alive(ident: int) -> bool:
    return any(t.ident == ident for t in threading.enumerate())


def unguarded(method):
    """The bound ``forward`` / ``backward`` of a module without the thread
    guard, for containers calling their children inside their own guarded
    call (the tree shares one guard, so the check is made once)."""
    fn = getattr(method, "__func__", None)
    raw = getattr(fn, "__wrapped__", None) if getattr(fn, "_gc_guarded", False) else None
    return raw.__get__(method.__self__) if raw is not None else method

