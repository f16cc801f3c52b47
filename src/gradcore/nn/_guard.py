"""The thread guard of a model tree: ``forward`` / ``backward`` of every
:class:`~gradcore.nn.module.Module` subclass are wrapped so that a model
serves one thread at a time (see the contract in :mod:`gradcore.nn.module`).

The wrapper is generated with the wrapped method's own signature (as
``dataclasses`` generates ``__init__``), so a call costs one plain Python
call plus a few attribute reads and writes: no ``*args`` / ``**kwargs``
packing. Methods whose signature cannot be read get a generic wrapper with
the same checks."""

from __future__ import annotations

import functools
import inspect
import keyword
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


def _admit(m, g, me, what):
    """The slow half of the guard (the fast path handles "not busy, and the
    last forward ran in this thread"): raise :class:`ConcurrentUseError`
    when another thread is inside the tree, for a ``backward`` whose
    ``forward`` ran in another thread (its caches would be that thread's),
    and for a ``forward`` while the thread of the last one is alive (its
    outputs are layer-owned buffers). Returns normally when the call may run."""
    busy = g.busy
    if busy:
        raise ConcurrentUseError(
            f"{m._label()}.{what}: called from thread {me} while thread {busy} is running this "
            "model; a model serves one thread at a time (layers reuse their buffers) - give each "
            "thread its own model")
    if g.fwd and g.fwd != me:
        if what != "forward":
            raise ConcurrentUseError(
                f"{m._label()}.backward: called from thread {me}, but the last forward ran in "
                f"thread {g.fwd} (its caches are that thread's); a model serves one thread at a "
                "time - give each thread its own model")
        if _thread_alive(g.fwd):  # its outputs (layer-owned buffers) may still be in use
            raise ConcurrentUseError(
                f"{m._label()}.forward: called from thread {me} while thread {g.fwd}, which ran "
                "the last forward, is still alive; a model serves one thread at a time (layers "
                "reuse their output buffers) - give each thread its own model, or hand it over "
                "with model.clear_cache() in the thread that is done with it")


# The wrapper's body; {params} / {args} are the wrapped method's parameters
# and the matching call. Nested calls of the thread already inside the tree
# pass straight through (containers call their children unwrapped anyway).
_BODY = """
def _gc_make(_gc_fn, _gc_ident, _gc_admit, _gc_what):
    def {name}({params}):
        _gc_g = {self}._gc_guard
        if _gc_g is None:
            return _gc_fn({args})
        _gc_me = _gc_ident()
        if _gc_g.busy != 0 or _gc_g.fwd != _gc_me:
            if _gc_g.busy == _gc_me:
                return _gc_fn({args})
            _gc_admit({self}, _gc_g, _gc_me, _gc_what)
        _gc_g.busy = _gc_me
        try:
            return _gc_fn({args})
        finally:
            _gc_g.busy = 0
{set_fwd}
    return {name}
"""


def _signature_text(fn):
    """(params, call args, self name) of ``fn``'s signature as source text, or
    None when it cannot be written out (no signature, odd names)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    P = inspect.Parameter
    params, args, star = [], [], False
    for p in sig.parameters.values():
        if not p.name.isidentifier() or keyword.iskeyword(p.name) or p.name.startswith("_gc_"):
            return None
        opt = "" if p.default is P.empty else "=None"   # the real defaults are copied below
        if p.kind is P.POSITIONAL_ONLY or p.kind is P.POSITIONAL_OR_KEYWORD:
            params.append(p.name + opt)
            args.append(p.name)
        elif p.kind is P.VAR_POSITIONAL:
            params.append("*" + p.name)
            args.append("*" + p.name)
            star = True
        elif p.kind is P.KEYWORD_ONLY:
            if not star:
                params.append("*")
                star = True
            params.append(p.name + opt)
            args.append(f"{p.name}={p.name}")
        else:
            params.append("**" + p.name)
            args.append("**" + p.name)
    kinds = [p.kind for p in sig.parameters.values()]
    if not kinds or kinds[0] not in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD):
        return None
    if P.POSITIONAL_ONLY in kinds:
        last = max(i for i, k in enumerate(kinds) if k is P.POSITIONAL_ONLY)
        params.insert(last + 1, "/")
    return ", ".join(params), ", ".join(args), next(iter(sig.parameters))


def _guarded(fn, what: str):
    """Wrap ``forward`` / ``backward``: refuse a call while another thread is
    inside this module's tree, and a ``backward`` whose ``forward`` ran in
    another thread (its caches would be that thread's). One plain call and
    a few attribute reads and writes per outermost call; nested calls of the
    same thread pass straight through (and containers call their children
    unwrapped)."""
    text = _signature_text(fn)
    if text is None:
        call = _generic(fn, what)
    else:
        params, args, self_name = text
        name = getattr(fn, "__name__", what)
        if not name.isidentifier() or keyword.iskeyword(name):
            name = what
        set_fwd = "            _gc_g.fwd = _gc_me" if what == "forward" else ""
        src = _BODY.format(name=name, params=params, args=args, self=self_name, set_fwd=set_fwd)
        ns: dict = {}
        exec(compile(src, f"<gradcore guard of {what}>", "exec"), ns)
        call = ns["_gc_make"](fn, get_ident, _admit, what)
        call.__defaults__ = getattr(fn, "__defaults__", None)
        call.__kwdefaults__ = getattr(fn, "__kwdefaults__", None)
    functools.update_wrapper(call, fn)
    call._gc_guarded = True  # marks a wrapped method
    return call


def self_guarded(body):
    """Decorator for a ``forward`` / ``backward`` that makes the guard's check
    itself on its common path and calls a guarded ``body`` otherwise: the
    Module leaves it unwrapped, and :func:`unguarded` returns ``body``
    (which a container then calls within its own guarded call)."""

    def mark(fn):
        functools.update_wrapper(fn, body, assigned=("__doc__",))
        fn._gc_guarded = True
        return fn

    return mark


def _generic(fn, what):
    """The guard for a method whose signature cannot be written out."""

    def call(self, *args, **kwargs):
        g = self._gc_guard
        if g is None:
            return fn(self, *args, **kwargs)
        me = get_ident()
        if g.busy != 0 or g.fwd != me:
            if g.busy == me:
                return fn(self, *args, **kwargs)
            _admit(self, g, me, what)
        g.busy = me
        try:
            return fn(self, *args, **kwargs)
        finally:
            g.busy = 0
            if what == "forward":
                g.fwd = me

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
