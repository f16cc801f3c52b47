"""Mean-field theory of signal propagation in deep random networks.

For a layer ``z_l = W_l phi(z_{l-1}) + b_l`` with ``W ~ (0, sigma_w^2 / fan_in)``
and ``b ~ (0, sigma_b^2)`` (Poole et al. 2016, Schoenholz et al. 2017):

* the pre-activation variance follows the *variance map*
  ``q_l = sigma_w^2 E[phi(sqrt(q_{l-1}) z)^2] + sigma_b^2``, z ~ N(0, 1), whose
  fixed point is ``q*``;
* backward, the squared norm of the gradient with respect to the
  pre-activations is multiplied per layer by
  ``chi_1 = sigma_w^2 E[phi'(sqrt(q) z)^2]`` (evaluated at ``q*``; per layer at
  ``q_l`` before the fixed point is reached). ``chi_1 > 1`` explodes,
  ``chi_1 < 1`` vanishes; for ReLU ``chi_1 = sigma_w^2 / 2`` for every q (so He,
  sigma_w^2 = 2, is critical and Xavier, sigma_w^2 = 1, halves the squared
  norm per layer).

Gaussian expectations use Gauss-Hermite quadrature with an even number of
nodes (no node at 0, where ReLU' jumps): ``E[f(z)] = pi^-1/2 sum_i w_i
f(sqrt(2) x_i)``. For wide Gaussians (q > 2) the nodes of ``f(sqrt(q) z)``
would step over the unit-scale structure of phi (tanh' is a spike of width
~1/sqrt(q) in z), so there the expectation is taken in ``u = sqrt(q) z`` with a
composite 8-point Gauss-Legendre rule: panels of width 1/2 (a panel edge at
0) for ``|u| <= 20``, then panels growing by 1.25x out to ``10 sqrt(q)``.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Dict, Sequence, Union

import numpy as np

__all__ = ["ACTIVATIONS", "phi", "dphi", "gaussian_expectation", "variance_map", "fixed_point",
           "FixedPoint", "FixedPointWarning", "chi1", "MeanField", "mean_field", "layer_predictions"]

from .._contract import ACTIVATIONS, check_activation as _check
LEAKY_SLOPE = 0.01


def _check_activation(activation: str) -> str:
    return _check(activation, "activation")


def phi(activation: str) -> Callable[[np.ndarray], np.ndarray]:
    """The activation function as a NumPy callable."""
    a = _check_activation(activation)
    fns: Dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "identity": lambda x: x,
        "relu": lambda x: np.maximum(x, 0.0),
        "leaky_relu": lambda x: np.where(x > 0, x, LEAKY_SLOPE * x),
        "tanh": np.tanh,
        "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    }
    return fns[a]


def dphi(activation: str) -> Callable[[np.ndarray], np.ndarray]:
    """The derivative of the activation as a NumPy callable."""
    a = _check_activation(activation)

    def sig_d(x):
        s = 1.0 / (1.0 + np.exp(-x))
        return s * (1.0 - s)

    return {
        "identity": lambda x: np.ones_like(x),
        "relu": lambda x: (x > 0).astype(float),
        "leaky_relu": lambda x: np.where(x > 0, 1.0, LEAKY_SLOPE),
        "tanh": lambda x: 1.0 - np.tanh(x) ** 2,
        "sigmoid": sig_d,
    }[a]


@lru_cache(maxsize=8)
def _nodes(n: int):
    x, w = np.polynomial.hermite.hermgauss(n)
    return math.sqrt(2.0) * x, w / math.sqrt(math.pi)


GH_MAX_Q = 2.0


@lru_cache(maxsize=256)
def _panel_nodes(q: float):
    # panels of width 1/2 for |u| <= 20 (where phi has its unit-scale
    # structure), then widths growing by 1.25x out to 10 sqrt(q), where only the
    # smooth Gaussian tail is left
    half = 10.0 * math.sqrt(q)
    edges = [0.0]
    while edges[-1] < half:
        e = edges[-1]
        edges.append(e + (0.5 if e < 20.0 else 0.25 * e))
    pos = np.asarray(edges)
    ends = np.concatenate([-pos[:0:-1], pos])
    x, w = np.polynomial.legendre.leggauss(8)
    mid = 0.5 * (ends[:-1] + ends[1:])
    hw = 0.5 * np.diff(ends)
    u = (mid[:, None] + hw[:, None] * x[None, :]).ravel()
    wu = (hw[:, None] * w[None, :]).ravel() * np.exp(-u * u / (2.0 * q)) / math.sqrt(2.0 * math.pi * q)
    return u, wu


def gaussian_expectation(f: Callable[[np.ndarray], np.ndarray], q: float = 1.0, n: int = 100) -> float:
    """``E[f(sqrt(q) z)]`` for z ~ N(0, 1): ``n``-point Gauss-Hermite
    quadrature (``n`` even) for ``q <= 2``, a composite Gauss-Legendre rule in
    ``u = sqrt(q) z`` beyond (see the module docstring)."""
    if n < 2 or n % 2:
        raise ValueError(f"n: expected an even number of nodes >= 2, got {n}")
    q = min(max(float(q), 0.0), 1e300)
    if q > GH_MAX_Q:
        u, w = _panel_nodes(q)
        return float(np.dot(w, f(u)))
    z, w = _nodes(n)
    return float(np.dot(w, f(math.sqrt(q) * z)))


def variance_map(q: float, sigma_w2: float, sigma_b2: float, activation: str, n: int = 100) -> float:
    """``sigma_w^2 E[phi(sqrt(q) z)^2] + sigma_b^2``."""
    f = phi(activation)
    return sigma_w2 * gaussian_expectation(lambda x: f(x) ** 2, q, n) + sigma_b2


def chi1(sigma_w2: float, activation: str, q: float, n: int = 100) -> float:
    """Per-layer factor of the squared backward norm:
    ``sigma_w^2 E[phi'(sqrt(q) z)^2]``."""
    d = dphi(activation)
    return sigma_w2 * gaussian_expectation(lambda x: d(x) ** 2, q, n)


class FixedPointWarning(RuntimeWarning):
    """``fixed_point`` could not reach its tolerance: the value returned is
    the best estimate, not a converged ``q*``."""


@dataclass(frozen=True)
class FixedPoint:
    """What :func:`fixed_point` found: ``q`` (``q*``; 0 when the variance dies
    out, inf when it grows without bound), whether it ``converged`` to the
    relative tolerance, the map iterations and the final relative change
    (``rel_error``: |q_new - q| / q of the last step or bracket)."""

    q: float
    converged: bool
    iterations: int
    rel_error: float
    method: str


def _solve_fixed_point(sigma_w2, sigma_b2, activation, q0, tol, max_iter, n) -> FixedPoint:
    vm = lambda q: variance_map(q, sigma_w2, sigma_b2, activation, n)  # noqa: E731
    q = float(q0)
    if not (math.isfinite(q) and q >= 0):
        raise ValueError(f"q0: expected a finite number >= 0, got {q0!r}")
    prev = q
    big = max(1.0, q, float(sigma_b2))
    dprev = 0.0
    for it in range(1, max_iter + 1):
        nq = vm(q)
        if not math.isfinite(nq) or nq > 1e300 or (nq > q and nq > 1e30 * big):
            # only an unbounded activation grows this far (tanh/sigmoid keep
            # q <= sigma_w^2 + sigma_b^2), and its map is then linear in q
            return FixedPoint(math.inf, True, it, 0.0, "iteration")
        if nq < 1e-300:
            return FixedPoint(0.0, True, it, 0.0, "iteration")
        d = abs(nq - q)
        # distance to q* of a linearly converging sequence: d r / (1 - r),
        # r the contraction rate estimated from the last two steps
        r = d / dprev if dprev > 0 else 1.0
        err = d * r / (1.0 - r) if r < 1.0 else math.inf
        if d == 0.0 or (d <= tol * nq and err <= tol * nq):
            return FixedPoint(nq, True, it, max(d, err if math.isfinite(err) else d) / nq, "iteration")
        dprev = d
        prev, q = q, nq
    # slow convergence (a contraction rate near 1, e.g. near the critical line
    # at sigma_b^2 = 0): bracket the root of V(q) - q on the side the iterates
    # move to and solve it with Brent's method to the tolerance
    from scipy.optimize import brentq

    h = lambda v: vm(v) - v  # noqa: E731
    lo = hi = q
    if q > prev:  # still growing: the fixed point (if any) is above
        while h(hi) > 0:
            lo, hi = hi, hi * 2.0
            if hi > 1e30 * big:
                return FixedPoint(math.inf, True, max_iter, 0.0, "bracket")
    else:  # decreasing: it is below, or the variance dies out (q* = 0)
        while h(lo) < 0:
            hi, lo = lo, lo * 0.5
            if lo < 1e-14 * big:  # q* = 0 up to rounding (V(q) - q is O(q^2) there)
                return FixedPoint(0.0, True, max_iter, 0.0, "bracket")
    if lo == hi:
        return FixedPoint(q, True, max_iter, 0.0, "bracket")
    rtol = max(min(tol, 1e-3) * 1e-2, 4 * np.finfo(float).eps)
    root, res = brentq(h, lo, hi, xtol=1e-300, rtol=rtol, maxiter=500, full_output=True)
    # the bracket shrank to rtol around the root: that is the error on q*
    rel = abs(vm(root) - root) / root if root > 0 else 0.0
    ok = bool(res.converged) and rtol <= tol
    return FixedPoint(float(root), ok, max_iter + res.iterations, max(rel, rtol if ok else rel), "brent")


def fixed_point(sigma_w2: float, sigma_b2: float, activation: str, q0: float = 1.0,
                tol: float = 1e-12, max_iter: int = 200, n: int = 100, info: bool = False):
    """The fixed point ``q*`` of the variance map reached from ``q0``, to a
    relative tolerance ``tol``: ``inf`` when the variance keeps growing, 0
    when it dies out. Iterates the map (at most ``max_iter`` times); where that
    converges too slowly (rate near 1, e.g. tanh at sigma_b^2 = 0 just above sigma_w^2 = 1) it
    brackets the root of ``V(q) - q`` and solves it with Brent's method.
    When the tolerance cannot be reached it warns (:class:`FixedPointWarning`)
    and returns the best estimate. ``info=True`` returns a
    :class:`FixedPoint` (q, converged, iterations, rel_error, method).

    >>> q = fixed_point(1.001, 0.0, "tanh")
    >>> round(chi1(1.001, "tanh", q), 7)
    1.0000003
    """
    import warnings

    if isinstance(max_iter, bool) or not isinstance(max_iter, numbers.Integral) or max_iter < 1:
        raise ValueError(f"max_iter: expected an integer >= 1, got {max_iter!r}")
    if not (isinstance(tol, numbers.Real) and not isinstance(tol, bool) and 0 < tol < 1):
        raise ValueError(f"tol: expected a number in (0, 1), got {tol!r}")
    fp = _solve_fixed_point(float(sigma_w2), float(sigma_b2), activation, q0, float(tol), max_iter, n)
    if not fp.converged:
        warnings.warn(f"fixed_point: q* for sigma_w^2 = {sigma_w2:g}, sigma_b^2 = {sigma_b2:g}, {activation} did "
                      f"not converge to the relative tolerance {tol:g} (reached {fp.rel_error:.2g}); "
                      f"returning the best estimate {fp.q:.17g}", FixedPointWarning, stacklevel=2)
    return fp if info else fp.q


@dataclass(frozen=True)
class MeanField:
    """Mean-field summary of one (sigma_w^2, sigma_b^2, activation) setting."""

    sigma_w2: float
    sigma_b2: float
    activation: str
    q_star: float
    chi_1: float

    @property
    def regime(self) -> str:
        """"exploding", "vanishing" or "critical" (|chi_1 - 1| < 0.05: within
        the sampling error of a measured sigma_w^2 at moderate width)."""
        if abs(self.chi_1 - 1.0) < 0.05:
            return "critical"
        return "exploding" if self.chi_1 > 1.0 else "vanishing"


def mean_field(sigma_w2: float, sigma_b2: float = 0.0, activation: str = "relu", q0: float = 1.0,
               n: int = 100) -> MeanField:
    """``q*`` and ``chi_1`` at ``q*``. Where ``q*`` is infinite (the variance
    explodes) or 0 (it dies out) chi_1 is taken in the limit of large or of
    small (positive) q.

    >>> round(mean_field(2.0, 0.0, "relu").chi_1, 12)
    1.0
    """
    q = fixed_point(sigma_w2, sigma_b2, activation, q0, n=n)
    qe = 1e12 if not math.isfinite(q) else (q if q > 0 else 1e-30)
    return MeanField(float(sigma_w2), float(sigma_b2), activation, q, chi1(sigma_w2, activation, qe, n))


def layer_predictions(sigma_w2: Union[Sequence[float], np.ndarray], sigma_b2: float, activation: str, q_first: float,
                      n: int = 100):
    """Per-layer theory for a finite net: ``q_l`` (pre-activation variance,
    starting from ``q_first`` for layer 1) and ``chi_l`` (the backward factor of
    the squared gradient norm from layer ``l+1`` to layer ``l``, evaluated at
    ``q_l`` with layer ``l+1``'s sigma_w^2). Returns ``(q, chi)`` arrays of the
    depth's length (``chi[-1]`` is 1: nothing above the last layer)."""
    depth = len(sigma_w2)
    q = np.empty(depth)
    q[0] = q_first
    for l in range(1, depth):
        q[l] = variance_map(q[l - 1], sigma_w2[l], sigma_b2, activation, n)
    d = dphi(activation)
    chi = np.ones(depth)
    for l in range(depth - 1):
        chi[l] = sigma_w2[l + 1] * gaussian_expectation(lambda x: d(x) ** 2, q[l], n)
    return q, chi
