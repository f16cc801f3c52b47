"""What a :class:`~gradcore.nn.module.Module` does with its state: forward
caches emptied (``clear_cache``, copies and pickles), copies and pickles
that rebuild their views over their own arena, and ``state_dict`` /
``load_state_dict`` (every parameter and buffer, checked before anything is
written). :class:`Module`'s methods of those names call these."""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict

import numpy as np

from ._util import CACHE_EPOCH, ShapeCache

if TYPE_CHECKING:
    from .module import Module


def cleared(module: "Module", state: dict) -> dict:
    """``state`` (a copy of ``module.__dict__``) with the forward caches emptied."""
    CACHE_EPOCH[0] += 1
    for k, v in state.items():
        if isinstance(v, ShapeCache):
            state[k] = ShapeCache()
    for k, empty in module._forward_cache.items():
        if k in state and not isinstance(state[k], ShapeCache):
            state[k] = empty
    return state


def clear_cache(module: "Module") -> None:
    for _, mod in module.named_modules():
        mod.__dict__.update(cleared(mod, dict(mod.__dict__)))
    if module._gc_guard is not None:
        module._gc_guard.fwd = 0  # no pending forward: any thread may use the model next


def getstate(module: "Module") -> dict:
    state = cleared(module, module.__dict__.copy())
    arena = state.get("arena")
    if arena is not None:
        # views are rebuilt over the copy's arena; cached ones by _bind()
        state["_named_keys"] = list(module._named_p or ())
        for k in ("p", "g", "_named_p", "_named_g"):
            state.pop(k, None)
        for k, v in list(state.items()):
            if isinstance(v, np.ndarray) and (np.shares_memory(v, arena.data)
                                              or np.shares_memory(v, arena.grad)):
                del state[k]
    return state


def setstate(module: "Module", state: dict) -> None:
    keys = state.pop("_named_keys", None)
    module.__dict__.update(state)
    arena = module.arena
    if arena is not None and keys is not None:
        pre = getattr(module, "_arena_prefix", "")
        module.p = {k: arena.params[pre + k] for k in module._param_names}
        module.g = {k: arena.grads[pre + k] for k in module._param_names}
        module._named_p = {k: arena.params[pre + k] for k in keys}
        module._named_g = {k: arena.grads[pre + k] for k in keys}
        module._bind()


def state_targets(module: "Module") -> Dict[str, np.ndarray]:
    """Dotted name -> the live parameter or buffer array, PyTorch order (per
    module: parameters, then buffers; modules pre-order)."""
    out = {}
    for mname, mod in module.named_modules():
        pre = f"{mname}." if mname else ""
        for local in mod._param_names:
            out[pre + local] = mod.p[local]
        for b, arr in mod._buffers.items():
            out[pre + b] = arr
    return out


def load_state_dict(module: "Module", state, strict: bool):
    module._require_arena()
    if not hasattr(state, "keys"):
        raise TypeError(f"{module._label()}.load_state_dict: expected a dict name -> array, "
                        f"got {type(state).__name__}")
    targets = state_targets(module)
    missing = [k for k in targets if k not in state]
    unexpected = [k for k in state if k not in targets]
    if strict and (missing or unexpected):
        parts = []
        if missing:
            parts.append(f"missing keys {missing}")
        if unexpected:
            parts.append(f"unexpected keys {unexpected}")
        raise KeyError(f"{module._label()}.load_state_dict: " + "; ".join(parts)
                       + f" (expected keys: {list(targets)})")
    staged = []
    for key, dst in targets.items():
        if key not in state:
            continue
        src = state[key]
        if not isinstance(src, np.ndarray):
            try:
                src = np.asarray(src)
            except Exception as exc:  # noqa: BLE001 - report what could not be read
                raise TypeError(f"{module._label()}.load_state_dict: {key!r} is not array-like "
                                f"({type(state[key]).__name__}): {exc}") from None
        if src.shape != dst.shape:
            raise ValueError(f"{module._label()}.load_state_dict: {key!r} has shape {src.shape}, "
                             f"expected {dst.shape}")
        if src.dtype != dst.dtype:
            raise TypeError(f"{module._label()}.load_state_dict: {key!r} has dtype {src.dtype}, "
                            f"expected {dst.dtype} (convert it explicitly with .astype)")
        staged.append((dst, src))
    for dst, src in staged:
        dst[...] = src
    return missing, unexpected
