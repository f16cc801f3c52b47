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
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np

__all__ = ["ACTIVATIONS", "phi", "dphi", "gaussian_expectation", "variance_map", "fixed_point",
           "chi1", "MeanField", "mean_field", "layer_predictions"]

from .._contract import ACTIVATIONS, check_activation as _check
LEAKY_SLOPE = 0.01


def _check_activation(activation: str) -> str:
    return _check(activation, "activation")


def phi(activation: str) -> Callable[[np.ndarray], np.ndarray]:
    """The activation function as a NumPy callable."""
    a = _check_activation(activation)
    return {
        "identity": lambda x: x,
        "relu": lambda x: np.maximum(x, 0.0),
        "leaky_relu": lambda x: np.where(x > 0, x, LEAKY_SLOPE * x),
        "tanh": np.tanh,
        "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    }[a]


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
    e = np.asarray(edges)
    edges = np.concatenate([-e[:0:-1], e])
    x, w = np.polynomial.legendre.leggauss(8)
    mid = 0.5 * (edges[:-1] + edges[1:])
    hw = 0.5 * np.diff(edges)
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


def fixed_point(sigma_w2: float, sigma_b2: float, activation: str, q0: float = 1.0,
                tol: float = 1e-10, max_iter: int = 1000, n: int = 100) -> float:
    """The fixed point ``q*`` reached by iterating the variance map from ``q0``:
    ``inf`` when the variance keeps growing (it has not converged after
    ``max_iter`` steps and is still increasing), 0 when it dies out."""
    q = float(q0)
    prev = q
    for _ in range(max_iter):
        nq = variance_map(q, sigma_w2, sigma_b2, activation, n)
        if not math.isfinite(nq) or nq > 1e300:
            return math.inf
        if abs(nq - q) <= tol * max(1.0, abs(q)):
            return nq
        if nq < 1e-300:
            return 0.0
        prev, q = q, nq
    if q > prev:
        return math.inf
    return 0.0 if q < 1e-12 else q


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
    explodes) chi_1 is taken in the limit of large q.

    >>> round(mean_field(2.0, 0.0, "relu").chi_1, 12)
    1.0
    """
    q = fixed_point(sigma_w2, sigma_b2, activation, q0, n=n)
    qe = q if math.isfinite(q) else 1e12
    return MeanField(float(sigma_w2), float(sigma_b2), activation, q, chi1(sigma_w2, activation, qe, n))


def layer_predictions(sigma_w2: Sequence[float], sigma_b2: float, activation: str, q_first: float,
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
