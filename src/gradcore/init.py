"""Parameter initializers.

Contract
--------
An initializer is a callable ``init(shape, rng, dtype) -> ndarray``: a new
C-contiguous array of ``shape`` and ``dtype`` (float32 or float64), drawn from
``rng`` (a ``numpy.random.Generator``; an int seed or ``None`` is turned into
one with ``numpy.random.default_rng``). Values are drawn in float64 and then
rounded to ``dtype``, so a float32 and a float64 model built from the same seed
hold the same numbers up to rounding.

The functions below are factories returning such callables (``he_normal()``,
``constant(2.0)``, ``orthogonal(gain=1.0)``). :func:`get` accepts an
initializer, a factory (called with its defaults), a registered name
(``"he_normal"``) or a number (``constant(number)``).

Fans follow PyTorch for a weight of shape ``(out, in, *receptive)``:
``fan_in = in * prod(receptive)``, ``fan_out = out * prod(receptive)`` (so a
Dense weight (out, in) and a recurrent weight (G*H, I) work as in PyTorch).
Fan-based initializers need at least 2 dimensions. Gains follow
``torch.nn.init.calculate_gain``.
"""

from __future__ import annotations

import math
import numbers
from typing import Callable, Dict, Tuple

import numpy as np

from . import _contract



def as_float_dtype(dtype, what: str = "dtype") -> np.dtype:
    """``np.dtype`` of ``dtype`` if it is float32 or float64, else a clear error."""
    return _contract.check_dtype(dtype, what)

__all__ = [
    "Initializer", "calculate_gain", "fans", "get", "names",
    "constant", "zeros", "ones", "normal", "uniform",
    "xavier_uniform", "xavier_normal", "he_uniform", "he_normal",
    "lecun_uniform", "lecun_normal", "orthogonal", "identity",
]

_GAIN_NAMES = ("linear", "identity", "conv1d", "conv2d", "conv3d", "sigmoid", "tanh",
               "relu", "leaky_relu", "selu")


def calculate_gain(nonlinearity: str, param=None) -> float:
    """Recommended gain for ``nonlinearity`` (as ``torch.nn.init.calculate_gain``):
    1 for linear/identity/conv/sigmoid, 5/3 for tanh, sqrt(2) for relu,
    sqrt(2 / (1 + slope^2)) for leaky_relu (slope ``param``, default 0.01), 3/4 for selu."""
    if nonlinearity in ("linear", "identity", "conv1d", "conv2d", "conv3d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, numbers.Real) and not isinstance(param, (bool, np.bool_)) \
                and math.isfinite(param):
            slope = float(param)
        else:
            raise ValueError(f"calculate_gain: param (the leaky_relu slope) must be a finite number, "
                             f"got {param!r}")
        return math.sqrt(2.0 / (1.0 + slope * slope))
    if nonlinearity == "selu":
        return 3.0 / 4.0
    raise ValueError(f"calculate_gain: unknown nonlinearity {nonlinearity!r}; valid: {', '.join(_GAIN_NAMES)}")


def fans(shape) -> Tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight shape ``(out, in, *receptive)``."""
    shape = tuple(int(s) for s in shape)
    if len(shape) < 2:
        raise ValueError(f"fan-based initializers need a weight with at least 2 dimensions "
                         f"(out, in, ...), got shape {shape}")
    receptive = int(np.prod(shape[2:], dtype=np.int64)) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def _rng(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (numbers.Integral, np.random.SeedSequence)):
        return np.random.default_rng(rng)  # type: ignore[arg-type]  # an Integral is an int seed
    raise TypeError(f"rng: expected a numpy.random.Generator, an int seed or None, got {type(rng).__name__}")


def _shape(shape) -> Tuple[int, ...]:
    if isinstance(shape, numbers.Integral):
        shape = (int(shape),)
    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__iter__") or not all(
            isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in shape):
        raise TypeError(f"shape: expected a tuple of ints, got {shape!r}")
    shp = tuple(int(s) for s in shape)
    if any(s < 0 for s in shp):
        raise ValueError(f"shape: sizes must be >= 0, got {shp}")
    return shp


def _finite(value, what: str, positive: bool = False) -> float:
    """A finite real number (> 0 with ``positive``): the contract's check."""
    return _contract.real_arg(value, what, lo=0 if positive else None, lo_open=positive)


def _checked_values(values, dt: np.dtype, shp, what: str) -> np.ndarray:
    """``values`` as a C-contiguous ``dt`` array of ``shp``; a ValueError
    (instead of NumPy's overflow warning) when a value is NaN/Inf or does not
    fit ``dt`` (float32 holds |x| <= 3.4e38)."""
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.ascontiguousarray(values, dtype=dt).reshape(shp)
    if out.size and not np.isfinite(out).all():
        src = np.asarray(values, dtype=np.float64)
        if np.isfinite(src).all():
            raise ValueError(f"{what}: values up to |{float(np.max(np.abs(src))):.4g}| overflow {dt} "
                             f"(largest finite {dt}: {float(np.finfo(dt).max):.4g}); use a smaller "
                             "value or dtype='float64'")
        raise ValueError(f"{what}: produced NaN or Inf values")
    return out


class Initializer:
    """A named initializer: ``init(shape, rng=None, dtype="float32")``."""

    def __init__(self, name: str, fn: Callable, **params):
        self.name = name
        self.params = params
        self._fn = fn

    def __call__(self, shape, rng=None, dtype="float32") -> np.ndarray:
        shp = _shape(shape)
        dt = as_float_dtype(dtype, f"{self.name} dtype")
        values = self._fn(shp, _rng(rng))
        return _checked_values(values, dt, shp, repr(self))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{self.name}({args})"


def constant(value: float) -> Initializer:
    """Every element equal to ``value`` (the w = 2.0 / w = 0.5 chain experiments)."""
    v = _finite(value, "constant value")
    return Initializer("constant", lambda shp, rng: np.full(shp, v), value=v)


def zeros() -> Initializer:
    """All zeros."""
    return Initializer("zeros", lambda shp, rng: np.zeros(shp))


def ones() -> Initializer:
    """All ones."""
    return Initializer("ones", lambda shp, rng: np.ones(shp))


def normal(std: float = 1.0, mean: float = 0.0) -> Initializer:
    """Gaussian with standard deviation ``std`` and mean ``mean``."""
    s = _finite(std, "normal std")
    if s < 0:
        raise ValueError(f"normal std: expected a finite number >= 0, got {std!r}")
    m = _finite(mean, "normal mean")
    return Initializer("normal", lambda shp, rng: rng.normal(m, s, shp), std=s, mean=m)


def uniform(a: float = 0.0, b: float = 1.0) -> Initializer:
    """Uniform on ``[a, b)``."""
    lo, hi = _finite(a, "uniform a"), _finite(b, "uniform b")
    if not lo <= hi:
        raise ValueError(f"uniform: expected a <= b, got a={a!r}, b={b!r}")
    return Initializer("uniform", lambda shp, rng: rng.uniform(lo, hi, shp), a=lo, b=hi)


def xavier_uniform(gain: float = 1.0) -> Initializer:
    """Glorot uniform: U(-bound, bound), bound = gain * sqrt(6 / (fan_in + fan_out))."""
    g = _finite(gain, "xavier_uniform gain")

    def fn(shp, rng):
        fi, fo = fans(shp)
        bound = g * math.sqrt(6.0 / max(fi + fo, 1))
        return rng.uniform(-bound, bound, shp)

    return Initializer("xavier_uniform", fn, gain=g)


def xavier_normal(gain: float = 1.0) -> Initializer:
    """Glorot normal: N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out))."""
    g = _finite(gain, "xavier_normal gain")

    def fn(shp, rng):
        fi, fo = fans(shp)
        return rng.normal(0.0, g * math.sqrt(2.0 / max(fi + fo, 1)), shp)

    return Initializer("xavier_normal", fn, gain=g)


def _mode_fan(shp, mode: str) -> int:
    fi, fo = fans(shp)
    return max(fi if mode == "fan_in" else fo, 1)


def _check_mode(mode: str, who: str) -> str:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"{who}: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    return mode


def he_uniform(mode: str = "fan_in", nonlinearity: str = "relu", a: float = 0.0) -> Initializer:
    """Kaiming/He uniform: U(-bound, bound), bound = gain * sqrt(3 / fan)
    (``a``: leaky_relu slope for the gain)."""
    _check_mode(mode, "he_uniform")
    a = _finite(a, "he_uniform a")
    g = calculate_gain(nonlinearity, a if nonlinearity == "leaky_relu" else None)

    def fn(shp, rng):
        bound = g * math.sqrt(3.0 / _mode_fan(shp, mode))
        return rng.uniform(-bound, bound, shp)

    return Initializer("he_uniform", fn, mode=mode, nonlinearity=nonlinearity, a=a)


def he_normal(mode: str = "fan_in", nonlinearity: str = "relu", a: float = 0.0) -> Initializer:
    """Kaiming/He normal: N(0, std^2), std = gain / sqrt(fan) (sqrt(2 / fan_in) for relu)."""
    _check_mode(mode, "he_normal")
    a = _finite(a, "he_normal a")
    g = calculate_gain(nonlinearity, a if nonlinearity == "leaky_relu" else None)

    def fn(shp, rng):
        return rng.normal(0.0, g / math.sqrt(_mode_fan(shp, mode)), shp)

    return Initializer("he_normal", fn, mode=mode, nonlinearity=nonlinearity, a=a)


def lecun_uniform() -> Initializer:
    """LeCun uniform: U(-bound, bound), bound = sqrt(3 / fan_in) (variance 1/fan_in)."""
    def fn(shp, rng):
        bound = math.sqrt(3.0 / _mode_fan(shp, "fan_in"))
        return rng.uniform(-bound, bound, shp)

    return Initializer("lecun_uniform", fn)


def lecun_normal() -> Initializer:
    """LeCun normal: N(0, 1/fan_in) (plain, not truncated)."""
    def fn(shp, rng):
        return rng.normal(0.0, 1.0 / math.sqrt(_mode_fan(shp, "fan_in")), shp)

    return Initializer("lecun_normal", fn)


def orthogonal(gain: float = 1.0) -> Initializer:
    """(Semi-)orthogonal matrix times ``gain``, as ``torch.nn.init.orthogonal_``:
    the weight viewed as (rows = shape[0], cols = prod(rest)) has orthonormal
    rows (rows <= cols) or orthonormal columns (rows > cols)."""
    g = _finite(gain, "orthogonal gain")

    def fn(shp, rng):
        if len(shp) < 2:
            raise ValueError(f"orthogonal: needs a weight with at least 2 dimensions, got shape {shp}")
        rows = shp[0]
        cols = int(np.prod(shp[1:], dtype=np.int64))
        if rows == 0 or cols == 0:
            return np.zeros(shp)
        a = rng.normal(0.0, 1.0, (rows, cols))
        if rows < cols:
            a = a.T
        q, r = np.linalg.qr(a)
        d = np.sign(np.diag(r))
        d[d == 0] = 1.0
        q = q * d
        if rows < cols:
            q = q.T
        return g * q

    return Initializer("orthogonal", fn, gain=g)


def identity(gain: float = 1.0) -> Initializer:
    """``gain`` times the identity (``np.eye(out, in)``) for a 2-D weight."""
    g = _finite(gain, "identity gain")

    def fn(shp, rng):
        if len(shp) != 2:
            raise ValueError(f"identity: needs a 2-D weight (out, in), got shape {shp}")
        return g * np.eye(shp[0], shp[1])

    return Initializer("identity", fn, gain=g)


_REGISTRY: Dict[str, Callable[[], Initializer]] = {
    "zeros": zeros,
    "ones": ones,
    "normal": normal,
    "uniform": uniform,
    "xavier_uniform": xavier_uniform,
    "glorot_uniform": xavier_uniform,
    "xavier_normal": xavier_normal,
    "glorot_normal": xavier_normal,
    "he_uniform": he_uniform,
    "kaiming_uniform": he_uniform,
    "he_normal": he_normal,
    "kaiming_normal": he_normal,
    "lecun_uniform": lecun_uniform,
    "lecun_normal": lecun_normal,
    "orthogonal": orthogonal,
    "identity": identity,
}
_FACTORIES = set(_REGISTRY.values()) | {constant}


def names() -> Tuple[str, ...]:
    """The names :func:`get` accepts."""
    return tuple(_REGISTRY)


def get(spec) -> Callable:
    """Resolve ``spec`` to an initializer callable ``(shape, rng, dtype) -> ndarray``.

    ``spec`` may be a registered name (``"he_normal"``; see :func:`names`), a
    number (``constant(spec)``), a factory from this module (called with its
    defaults, e.g. ``gradcore.init.he_normal``), or any callable with the
    initializer signature (returned unchanged).
    """
    if isinstance(spec, str):
        factory = _REGISTRY.get(spec)
        if factory is None:
            hint = " (use constant(value) or pass a number)" if spec == "constant" else ""
            raise ValueError(f"unknown initializer {spec!r}{hint}; valid names: {', '.join(names())}")
        return factory()
    if isinstance(spec, numbers.Real) and not isinstance(spec, bool):
        return constant(float(spec))
    if spec is constant:
        raise ValueError("constant needs a value: use constant(value) or pass a number")
    if any(spec is f for f in _FACTORIES):
        return spec()
    if callable(spec):
        return spec
    raise TypeError(f"initializer: expected a name ({', '.join(names())}), a number or a callable "
                    f"(shape, rng, dtype) -> ndarray, got {type(spec).__name__}")


def apply(spec, shape, rng, dtype, who: str = "initializer", arg: str = "init") -> np.ndarray:
    """``get(spec)(shape, rng, dtype)`` checked: the result must be an array of
    ``shape`` whose values fit ``dtype`` (finite after conversion; a clear
    ValueError naming ``who`` and the argument ``arg`` otherwise)."""
    try:
        fn = get(spec)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{who}: {arg}: {exc}") from None
    dt = as_float_dtype(dtype)
    try:
        out = fn(tuple(shape), rng, dt)
    except ValueError as exc:
        raise ValueError(f"{who}: {arg}: {exc}") from None
    out = np.asarray(out)
    if out.shape != tuple(shape):
        raise ValueError(f"{who}: {arg}: initializer {fn!r} returned shape {out.shape}, expected {tuple(shape)}")
    try:
        return _checked_values(out, dt, out.shape, f"initializer {fn!r}")
    except ValueError as exc:
        raise ValueError(f"{who}: {arg}: {exc}") from None


def scaled(init, spectral_radius) -> "Initializer":
    """An initializer drawing a square matrix from ``init`` (anything
    :func:`get` accepts) and rescaling it so that its spectral radius
    (largest |eigenvalue|) is exactly ``spectral_radius`` (recurrent weights:
    ``nn.RNN(..., recurrent_init=scaled("orthogonal", 1.05))``).

    >>> w = scaled("orthogonal", spectral_radius=0.9)((4, 4), 0, "float64")
    >>> round(float(max(abs(np.linalg.eigvals(w)))), 12)
    0.9
    """
    base = get(init)
    if isinstance(spectral_radius, bool) or not isinstance(spectral_radius, numbers.Real):
        raise TypeError(f"scaled: spectral_radius must be a real number >= 0, got {spectral_radius!r}")
    r = float(spectral_radius)
    if not (math.isfinite(r) and r >= 0):
        raise ValueError(f"scaled: spectral_radius must be a finite number >= 0, got {spectral_radius!r}")

    def fn(shape, rng=None, dtype="float32"):
        shape = tuple(shape)
        if len(shape) != 2 or shape[0] != shape[1]:
            raise ValueError(f"scaled: needs a square 2-D weight, got shape {shape}")
        w = np.asarray(base(shape, rng, np.float64), dtype=np.float64)
        rho = float(np.max(np.abs(np.linalg.eigvals(w)))) if w.size else 0.0
        if not rho > 0:
            raise ValueError(f"scaled: {base!r} drew a matrix with spectral radius {rho}; cannot rescale it")
        return np.ascontiguousarray(w * (r / rho), dtype=as_float_dtype(dtype))

    return Initializer("scaled", lambda shp, rng: fn(shp, rng, np.float64), init=base, spectral_radius=r)
