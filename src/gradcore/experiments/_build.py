"""Building blocks shared by the experiments: initializer specs, seeds, layer walking."""

from __future__ import annotations

import numbers

import ast
import re
from typing import Any, Callable, Dict, List, Tuple

import numpy as np

# short names used by the experiments and the command line
INIT_ALIASES = {
    "xavier": "xavier_normal",
    "glorot": "xavier_normal",
    "he": "he_normal",
    "kaiming": "he_normal",
    "lecun": "lecun_normal",
}

_SPEC = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\((.*)\))?\s*$")


def resolve_init(spec: Any) -> Callable:
    """An initializer from a spec: a callable, a number (constant), a name
    (``"he"``, ``"xavier_uniform"``, ...) or a call string such as
    ``"normal(1.0)"``, ``"constant(0.05)"``, ``"orthogonal(gain=1.0)"``."""
    from .. import init as ginit

    if callable(spec) or isinstance(spec, numbers.Real) and not isinstance(spec, (bool, np.bool_)):
        return ginit.get(spec)
    if not isinstance(spec, str):
        raise TypeError(f"init: expected a name, a call string like 'normal(1.0)', a number or a callable, "
                        f"got {type(spec).__name__}")
    m = _SPEC.match(spec)
    if not m:
        raise ValueError(f"init: cannot parse {spec!r}; expected e.g. 'he', 'normal(1.0)', 'constant(0.5)'")
    name, argtext = m.group(1), m.group(2)
    name = INIT_ALIASES.get(name, name)
    factory = getattr(ginit, name, None)
    valid = sorted(set(ginit.names()) | set(INIT_ALIASES) | {"constant", "normal", "uniform"})
    if factory is None or name.startswith("_") or not callable(factory) or name in ("get", "apply", "names", "fans",
                                                                                   "calculate_gain", "Initializer"):
        raise ValueError(f"init: unknown initializer {spec!r}; valid: {', '.join(valid)}")
    args: List[Any] = []
    kwargs: Dict[str, Any] = {}
    if argtext is not None and argtext.strip():
        try:
            call = ast.parse(f"f({argtext})", mode="eval").body
            assert isinstance(call, ast.Call)
            args = [ast.literal_eval(a) for a in call.args]
            kwargs = {str(k.arg): ast.literal_eval(k.value) for k in call.keywords}
        except (SyntaxError, ValueError) as exc:
            raise ValueError(f"init: cannot parse the arguments of {spec!r}: {exc}") from None
    return factory(*args, **kwargs)


def init_list(inits: Any, name: str = "inits") -> list:
    """A list/tuple of initializer specs (a single string is refused: it
    would be read as a list of one-letter names)."""
    if isinstance(inits, (str, bytes)) or not isinstance(inits, (list, tuple)):
        raise TypeError(f"{name}: expected a list of initializer specs, e.g. ['xavier', 'he'], "
                        f"got {inits!r}" + (f" (write [{inits!r}] for one)" if isinstance(inits, str) else ""))
    if not inits:
        raise ValueError(f"{name}: expected at least one initializer spec, got an empty list")
    return list(inits)


def init_label(spec: Any) -> str:
    return spec if isinstance(spec, str) else getattr(spec, "name", None) or repr(spec)


def seeds(seed, n: int) -> List[int]:
    """``n`` independent integer seeds derived from ``seed``."""
    rng = np.random.default_rng(seed)
    return [int(s) for s in rng.integers(0, 2**31 - 1, size=n)]


def layers_of(model) -> List:
    """The direct children of a container, in order."""
    return [m for _, m in model.children()]


def activation_grad(act: str, y: np.ndarray, dy: np.ndarray, slope: float = 0.01) -> np.ndarray:
    """dz = dy * act'(.) computed from the activation output ``y``: the one
    definition every backend uses (``reference.activation``: relu/leaky_relu
    pass dy where y is NaN, like the C kernels and PyTorch)."""
    from ..reference.activation import activation_backward_values
    from .._contract import check_activation

    check_activation(act)
    return activation_backward_values(dy, y, act, slope)
