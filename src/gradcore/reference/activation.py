"""Reference activations (NumPy): forward y = act(x) and backward
dx = dy * act', with the derivative computed from the output y
(tanh' = 1 - y^2, sigmoid' = y (1 - y); relu / leaky_relu select
dy where y > 0 or y is NaN, 0 / slope * dy where y <= 0, like PyTorch's
threshold_backward). relu(x) = 0 only for x < 0, so NaN and -0.0 pass
through."""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from .._contract import ACTIVATIONS, check_activation, check_array, check_disjoint, check_slope


def apply_activation(z: np.ndarray, act: str, slope: float) -> np.ndarray:
    """act(z) as a new array of z's dtype."""
    if act == "identity":
        return z.copy()
    if act == "relu":
        return np.where(z < 0, z.dtype.type(0), z)
    if act == "leaky_relu":
        return np.where(z < 0, z * z.dtype.type(slope), z)
    if act == "tanh":
        return np.tanh(z)
    return expit(z)


def activation_backward_values(dy: np.ndarray, y: np.ndarray, act: str, slope: float) -> np.ndarray:
    """dy * act' with act' evaluated from the activation output y."""
    one = y.dtype.type(1)
    if act == "identity":
        return dy.copy()
    if act == "relu":
        return np.where(y <= 0, y.dtype.type(0), dy)
    if act == "leaky_relu":
        return np.where(y <= 0, dy * y.dtype.type(slope), dy)
    if act == "tanh":
        return dy * (one - y * y)
    return dy * (y * (one - y))


def activation_forward(y, x, act, slope=0.01):
    """y = act(x) (y may be x)."""
    check_activation(act)
    slope = check_slope(slope)
    check_array(x, "x")
    check_array(y, "y", dtype=x.dtype, shape=x.shape, writable=True)
    check_disjoint(y, "y", x, "x", True)
    y[...] = apply_activation(x, act, slope)


def activation_backward(dx, dy, y, act, slope=0.01):
    """dx = dy * act'(y) (dx may be dy)."""
    check_activation(act)
    slope = check_slope(slope)
    check_array(dy, "dy")
    check_array(y, "y", dtype=dy.dtype, shape=dy.shape)
    check_array(dx, "dx", dtype=dy.dtype, shape=dy.shape, writable=True)
    check_disjoint(dx, "dx", dy, "dy", True)
    check_disjoint(dx, "dx", y, "y", True)
    dx[...] = activation_backward_values(dy, y, act, slope)


__all__ = ["ACTIVATIONS", "activation_forward", "activation_backward"]
