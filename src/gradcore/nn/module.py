"""The ``Module`` protocol: explicit forward/backward layers whose parameters
live in one :class:`~gradcore.nn.arena.Arena` per model.

Contract (for every layer, in gradcore and outside it)
------------------------------------------------------
- ``forward(x)`` computes the output and caches what ``backward`` needs.
  ``backward(dy)`` *accumulates* (``+=``) into the layer's gradient views and
  returns ``dx`` (the gradient with respect to ``x``). Calling ``backward``
  before any ``forward`` raises ``RuntimeError``; a ``dy`` whose shape differs
  from the last output raises ``ValueError`` naming the layer and both shapes.
- Arrays returned by ``forward`` / ``backward`` may be buffers owned by the
  layer and reused by its next call with the same batch shape (this is what
  keeps small networks fast); copy them to keep them across calls.
- In ``__init__`` a layer declares each parameter with
  ``self._declare(name, value)`` (declare a layer's weight before its bias),
  non-trainable state with ``self._declare_buffer(name, value)`` (saved in
  ``state_dict``, e.g. BatchNorm running statistics), registers child modules
  with ``self.add_module(name, child)``, and ends with ``self._finalize()``.
- ``_finalize()`` builds ONE arena for the whole module tree (pre-order: a
  module's own parameters, then each child's, in registration order) and
  re-homes every parameter of the tree into it, copying the current values.
  A container calling ``_finalize()`` therefore takes over its children's
  parameters; their old arenas are dropped. Build optimizers after the model.
- After ``_finalize()``, ``self.p[name]`` / ``self.g[name]`` are the current
  views of the layer's own parameter / gradient, ``self.arena`` the shared
  arena, and ``_bind()`` (a hook, no-op by default) is called on every module
  of the tree so a layer can cache direct views for its hot path.
- Threads: a model serves one thread at a time (its layers reuse buffers).
  ``forward`` / ``backward`` of every subclass are wrapped by a guard the
  tree shares: concurrent use, a ``backward`` after another thread's
  ``forward``, or a ``forward`` while the thread of the last one is alive
  raise :class:`~gradcore.errors.ConcurrentUseError` (``clear_cache()``
  hands the model over). Use one model per thread.
- ``parameters()`` / ``gradients()`` return dicts of full dotted names
  (``"0.weight"``, ``"0.bias"``, ``"1.weight"`` ...) -> views into the arena,
  in layer order, like PyTorch's ``named_parameters()``. A module's subtree
  occupies one contiguous slice of the arena.
- Forward caches (what ``backward`` needs, per-shape work buffers) are held
  in the attributes named in ``_forward_cache`` (name -> value meaning
  "empty") and in any :class:`~gradcore.nn._util.ShapeCache` attribute.
  ``clear_cache()`` empties them; ``copy.deepcopy`` and pickling leave them
  out, and the copy's parameters and gradients are views of the copy's own
  arena (re-bound through ``_bind()``).

The thread guard is in ``_guard.py``; caches, copies, pickles and state
dicts in ``_module_state.py`` (the methods here call them).
"""

from __future__ import annotations

from typing import Dict, Iterator, List, Mapping, Optional, Tuple

import numpy as np

from . import _module_state as _state
from ._guard import _Guard, _guarded, unguarded
from .arena import Arena, as_float_dtype

__all__ = ["Module", "FORWARD_CACHE", "unguarded"]

#: attributes the gradcore layers use for forward caches, and their empty value
FORWARD_CACHE = {"_x": None, "_y": None, "_dz": None, "_dx": None, "_xshape": None, "_shape": None,
                 "_bufs": None, "_h0": None, "_c0": None, "_tb": None, "_cache_ok": False,
                 "_plan": None, "_plan_k": None}


def _owned(out):
    """``out`` (an array, or nested tuples of arrays / None) as new arrays."""
    if isinstance(out, tuple):
        return tuple(_owned(o) for o in out)
    return None if out is None else np.array(out, copy=True)


class Module:
    """Base class of every gradcore layer and container (see module docstring).

    Threads: one module (with its children) is used by one thread at a time;
    ``forward`` / ``backward`` raise :class:`ConcurrentUseError` when another
    thread is inside the module, or when ``backward`` follows a ``forward``
    from another thread. Separate models in separate threads are safe.
    """

    _gc_guard: Optional["_Guard"] = None  # the tree's _Guard (set by _finalize)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in ("forward", "backward"):
            fn = cls.__dict__.get(name)
            if fn is not None and callable(fn) and not getattr(fn, "_gc_guarded", False):
                setattr(cls, name, _guarded(fn, name))

    #: dtype used for a parameter-free module's arena; layers set ``self.dtype``.
    dtype: np.dtype = np.dtype(np.float32)
    #: forward-cache attributes -> their empty value (see the module docstring)
    _forward_cache: Mapping[str, object] = FORWARD_CACHE
    # bookkeeping every module has (set in __new__)
    _param_names: List[str]
    _buffers: Dict[str, np.ndarray]
    _children: Dict[str, "Module"]
    _named_p: Optional[Dict[str, np.ndarray]]
    _named_g: Optional[Dict[str, np.ndarray]]
    _span: Tuple[int, int]
    _arena_prefix: str
    p: Dict[str, np.ndarray]
    g: Dict[str, np.ndarray]
    arena: Optional[Arena]
    training: bool

    def __new__(cls, *args, **kwargs):
        self = object.__new__(cls)
        # Set up the bookkeeping here so a subclass that forgets
        # ``super().__init__()`` still works.
        self._param_names = []
        self._buffers = {}
        self._children = {}
        self._named_p = None
        self._named_g = None
        self._span = (0, 0)
        self.p = {}
        self.g = {}
        self.arena = None
        self.training = True
        return self

    def __init__(self):
        pass

    # ------------------------------------------------------------------ build
    def _declare(self, name: str, value: np.ndarray) -> None:
        """Declare trainable parameter ``name`` with initial ``value`` (copied).

        Takes effect at the next ``_finalize()``; until then ``self.p[name]``
        is the copy and ``self.g[name]`` a zero array of the same shape.
        """
        self._check_local_name(name, "parameter")
        if not isinstance(value, np.ndarray):
            raise TypeError(f"{self._label()}: parameter {name!r} must be an ndarray, got {type(value).__name__}")
        as_float_dtype(value.dtype, f"{self._label()}: parameter {name!r} dtype")
        self._param_names.append(name)
        self.p[name] = np.array(value, copy=True, order="C")
        self.g[name] = np.zeros_like(self.p[name])
        self.arena = None

    def _declare_buffer(self, name: str, value: np.ndarray) -> None:
        """Declare non-trainable state ``name`` (kept in ``self._buffers``,
        saved by ``state_dict``, updated in place by the layer)."""
        self._check_local_name(name, "buffer")
        if not isinstance(value, np.ndarray):
            raise TypeError(f"{self._label()}: buffer {name!r} must be an ndarray, got {type(value).__name__}")
        self._buffers[name] = np.array(value, copy=True, order="C")

    def add_module(self, name: str, module: "Module") -> "Module":
        """Register ``module`` as child ``name`` (no dots); returns it."""
        if not isinstance(module, Module):
            raise TypeError(f"{self._label()}: child {name!r} must be a gradcore.nn.Module, "
                            f"got {type(module).__name__}")
        self._check_local_name(name, "child module")
        self._children[name] = module
        self.arena = None
        return module

    def _check_local_name(self, name, what: str) -> None:
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"{self._label()}: {what} name must be a non-empty str without '.', got {name!r}")
        if name in self._param_names or name in self._buffers or name in self._children:
            raise ValueError(f"{self._label()}: name {name!r} is already used in this module")

    def _finalize(self) -> None:
        """Build one arena for this module's whole tree and re-home every
        parameter into it (values copied); then call ``_bind()`` on each module."""
        entries: List[Tuple[Module, str, str, np.ndarray]] = []  # (module, local, dotted name, value)
        spans: List[Tuple[Module, int, int, str]] = []  # (module, index of first entry, index after last)
        seen: set = set()

        def visit(mod: Module, prefix: str) -> None:
            if id(mod) in seen:
                raise ValueError(f"{self._label()}: module {mod._label()} appears twice in the tree "
                                 "(shared layers are not supported; create two layers)")
            seen.add(id(mod))
            first = len(entries)
            for local in mod._param_names:
                entries.append((mod, local, prefix + local, mod.p[local]))
            for cname, child in mod._children.items():
                visit(child, prefix + cname + ".")
            spans.append((mod, first, len(entries), prefix))

        visit(self, "")
        dtypes = {e[3].dtype for e in entries}
        if len(dtypes) > 1:
            found = ", ".join(f"{e[2]}: {e[3].dtype}" for e in entries)
            raise TypeError(f"{self._label()}: all parameters of a model must share one dtype; found {found}")
        dtype = dtypes.pop() if dtypes else as_float_dtype(getattr(self, "dtype", np.float32))
        arena = Arena([(e[2], e[3].shape) for e in entries], dtype)
        for _, _, dotted, value in entries:
            arena.params[dotted][...] = value
        starts = [arena.offsets[e[2]][0] for e in entries] + [arena.size]
        for mod, first, last, prefix in spans:
            mod.arena = arena
            mod._arena_prefix = prefix
            own = [(local, dotted) for (m, local, dotted, _) in entries[first:last] if m is mod]
            mod.p = {local: arena.params[dotted] for local, dotted in own}
            mod.g = {local: arena.grads[dotted] for local, dotted in own}
            n = len(prefix)
            sub = entries[first:last]
            mod._named_p = {dotted[n:]: arena.params[dotted] for (_, _, dotted, _) in sub}
            mod._named_g = {dotted[n:]: arena.grads[dotted] for (_, _, dotted, _) in sub}
            mod._span = (starts[first], starts[last])
        guard = _Guard()
        for mod, *_ in spans:
            mod._gc_guard = guard
        for mod, *_ in spans:
            mod._bind()

    def _bind(self) -> None:
        """Hook called after the arena is (re)built: cache views here."""

    # ------------------------------------------------- caches, copy, pickle
    def _cleared(self, state: dict) -> dict:
        """``state`` (a copy of ``__dict__``) with the forward caches emptied."""
        return _state.cleared(self, state)

    def clear_cache(self) -> "Module":
        """Drop every forward cache and work buffer of the tree (memory back;
        the next ``backward`` needs a new ``forward``; another thread may use
        the model next). Returns self."""
        _state.clear_cache(self)
        return self

    def __getstate__(self):
        return _state.getstate(self)

    def __setstate__(self, state):
        _state.setstate(self, state)

    # ---------------------------------------------------------------- access
    def _require_arena(self) -> Arena:
        if self.arena is None:
            raise RuntimeError(f"{self._label()}: parameters are not in an arena yet; "
                               "call self._finalize() at the end of __init__ (after declaring "
                               "parameters and adding children)")
        return self.arena

    def parameters(self) -> Dict[str, np.ndarray]:
        """Dotted name -> parameter view (into ``self.arena.data``), layer order."""
        self._require_arena()
        assert self._named_p is not None
        return dict(self._named_p)

    def gradients(self) -> Dict[str, np.ndarray]:
        """Dotted name -> gradient view (into ``self.arena.grad``), same order
        and names as ``parameters()``."""
        self._require_arena()
        assert self._named_g is not None
        return dict(self._named_g)

    def flat_parameters(self) -> np.ndarray:
        """This module's slice of ``arena.data`` (all its parameters, one view)."""
        arena = self._require_arena()
        return arena.data[self._span[0]:self._span[1]]

    def flat_gradients(self) -> np.ndarray:
        """This module's slice of ``arena.grad``."""
        arena = self._require_arena()
        return arena.grad[self._span[0]:self._span[1]]

    def num_parameters(self) -> int:
        """Number of trainable scalars in this module's tree."""
        return self._span[1] - self._span[0] if self.arena is not None else \
            sum(v.size for _, m in self.named_modules() for v in m.p.values())

    def zero_grad(self) -> None:
        """Set this module's gradients to zero (one pass over its arena slice)."""
        arena = self._require_arena()
        arena.grad[self._span[0]:self._span[1]] = 0

    def named_modules(self, prefix: str = "") -> Iterator[Tuple[str, "Module"]]:
        """(dotted name, module) for this module (name ``prefix``, "" for the
        root) and every descendant, pre-order."""
        yield prefix, self
        for name, child in self._children.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def children(self) -> Iterator[Tuple[str, "Module"]]:
        """(name, module) of the direct children."""
        return iter(list(self._children.items()))

    def buffers(self) -> Dict[str, np.ndarray]:
        """Dotted name -> non-trainable state array (not copies)."""
        out = {}
        for mname, mod in self.named_modules():
            for b, arr in mod._buffers.items():
                out[f"{mname}.{b}" if mname else b] = arr
        return out

    # ------------------------------------------------------------ state dict
    def state_dict(self) -> Dict[str, np.ndarray]:
        """Copies of every parameter and buffer, dotted names, PyTorch order
        (per module: parameters, then buffers; modules pre-order)."""
        self._require_arena()
        return {k: v.copy() for k, v in _state.state_targets(self).items()}

    def load_state_dict(self, state, strict: bool = True):
        """Copy values from ``state`` (name -> array-like) into the parameters
        and buffers. Every entry is checked (keys, shapes, dtypes; no silent
        dtype conversion) before anything is written. With ``strict=False``
        missing and unexpected keys are allowed. Returns
        ``(missing_keys, unexpected_keys)``."""
        return _state.load_state_dict(self, state, strict)

    # ------------------------------------------------------------ mode, call
    def train(self, mode: bool = True) -> "Module":
        """Set training mode (BatchNorm uses batch statistics) on the tree."""
        for _, mod in self.named_modules():
            mod.training = bool(mode)
        return self

    def eval(self) -> "Module":
        """Set evaluation mode (BatchNorm uses running statistics) on the tree."""
        return self.train(False)

    def forward(self, x):
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def backward(self, dy):
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    def __call__(self, x):
        return self.forward(x)

    def inference(self, x):
        """Evaluation-mode forward that keeps nothing: BatchNorm uses its
        running statistics, every layer runs on fresh work buffers (a
        recurrent layer keeps no BPTT cache), and afterwards every module of
        the tree is exactly as before (mode, forward caches, work buffers),
        so it may sit between a ``forward`` and its ``backward`` and use any
        batch size. Returns a new array (the caller owns it), or for a
        module whose forward returns a tuple (the recurrent layers: ``(out,
        h_n)``, LSTM ``(out, (h_n, c_n))``) the same tuple of new arrays.

        >>> import numpy as np; from gradcore import nn
        >>> m = nn.MLP([3, 4, 1], seed=0)
        >>> m.inference(np.ones((5, 3), np.float32)).shape
        (5, 1)
        """
        saved = [(mod, dict(mod.__dict__)) for _, mod in self.named_modules()]
        try:
            for mod, state in saved:
                mod.__dict__.update(mod._cleared(dict(state)))
                mod.training = False
            return _owned(self.forward(x))
        finally:
            for mod, state in saved:
                mod.__dict__.clear()
                mod.__dict__.update(state)

    # ----------------------------------------------------------------- repr
    def extra_repr(self) -> str:
        return ""

    def _label(self) -> str:
        extra = self.extra_repr()
        return f"{type(self).__name__}({extra})"

    def _repr_tree(self) -> str:
        if not self._children:
            return self._label()
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, child in self._children.items():
            sub = child._repr_tree().replace("\n", "\n  ")
            lines.append(f"  ({name}): {sub}")
        lines.append(")")
        return "\n".join(lines)

    def __repr__(self) -> str:
        """Configuration of the tree, then the parameter count and dtype.

        >>> from gradcore import nn
        >>> nn.Dense(3, 2, activation="relu")
        Dense(3 -> 2, relu)  # 8 parameters, float32
        """
        return f"{self._repr_tree()}  # {self.num_parameters():,} parameters, {np.dtype(self.dtype).name}"
