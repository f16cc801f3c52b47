"""Reference optimizer updates over flat buffers (NumPy), PyTorch formulas.

The gradient is read as ``grad * grad_scale`` (a clipping coefficient folded
into the update) and never modified.
"""

from __future__ import annotations

import math

import numpy as np

from .._contract import check_array, check_number, check_range


def _check_flat(param, grad, *states):
    check_array(param, "param", ndim=1, writable=True)
    check_array(grad, "grad", dtype=param.dtype, shape=param.shape)
    for a, name in states:
        check_array(a, name, dtype=param.dtype, shape=param.shape, writable=True)


def sgd_step(param, grad, velocity, lr, momentum, nesterov, weight_decay, grad_scale):
    """g = grad * grad_scale + weight_decay * param; with momentum:
    velocity = momentum * velocity + g, g = g + momentum * velocity (Nesterov)
    or velocity; param -= lr * g. velocity may be None when momentum == 0."""
    lr = check_range(lr, "lr", lo=0.0, lo_open=True)
    momentum = check_range(momentum, "momentum", lo=0.0)
    weight_decay = check_range(weight_decay, "weight_decay", lo=0.0)
    grad_scale = check_range(grad_scale, "grad_scale", lo=0.0)
    if nesterov and momentum == 0.0:
        raise ValueError("nesterov: Nesterov momentum needs momentum > 0")
    states = [] if velocity is None else [(velocity, "velocity")]
    if momentum != 0.0 and velocity is None:
        raise TypeError("velocity: expected an array when momentum != 0, got None")
    _check_flat(param, grad, *states)
    with np.errstate(invalid="ignore", over="ignore"):
        _sgd_update(param, grad, velocity, lr, momentum, nesterov, weight_decay, grad_scale)


def _sgd_update(param, grad, velocity, lr, momentum, nesterov, weight_decay, grad_scale):
    t = param.dtype.type
    g = grad * t(grad_scale)
    if weight_decay != 0.0:
        g = g + t(weight_decay) * param
    if momentum != 0.0:
        velocity *= t(momentum)
        velocity += g
        g = g + t(momentum) * velocity if nesterov else velocity
    param -= t(lr) * g


def adam_step(param, grad, m, v, step, lr, beta1, beta2, eps, weight_decay, decoupled, grad_scale):
    """PyTorch Adam (decoupled=False: L2 added to the gradient) or AdamW
    (decoupled=True: param *= 1 - lr * weight_decay). step is 1-based."""
    if isinstance(step, (bool, np.bool_)) or not isinstance(step, (int, np.integer)) or step < 1:
        raise ValueError(f"step: expected an integer >= 1 (1-based step count), got {step!r}")
    lr = check_range(lr, "lr", lo=0.0, lo_open=True)
    beta1 = check_range(beta1, "beta1", lo=0.0, hi=1.0, hi_open=True)
    beta2 = check_range(beta2, "beta2", lo=0.0, hi=1.0, hi_open=True)
    eps = check_range(eps, "eps", lo=0.0)
    weight_decay = check_range(weight_decay, "weight_decay", lo=0.0)
    grad_scale = check_range(grad_scale, "grad_scale", lo=0.0)
    check_number(step, "step")
    _check_flat(param, grad, (m, "m"), (v, "v"))
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        _adam_update(param, grad, m, v, step, lr, beta1, beta2, eps, weight_decay, decoupled, grad_scale)


def _adam_update(param, grad, m, v, step, lr, beta1, beta2, eps, weight_decay, decoupled, grad_scale):
    t = param.dtype.type
    g = grad * t(grad_scale)
    if weight_decay != 0.0:
        if decoupled:
            param *= t(1.0 - lr * weight_decay)
        else:
            g = g + t(weight_decay) * param
    m += (g - m) * t(1.0 - beta1)
    v *= t(beta2)
    v += t(1.0 - beta2) * g * g
    bc1 = 1.0 - beta1**step
    bc2 = 1.0 - beta2**step
    denom = np.sqrt(v) / t(math.sqrt(bc2)) + t(eps)
    param -= t(lr / bc1) * (m / denom)
