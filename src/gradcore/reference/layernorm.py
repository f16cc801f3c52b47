"""Reference LayerNorm over the last axis (NumPy), biased variance like PyTorch."""

from __future__ import annotations

import numpy as np

from .._contract import check_array, check_range


def _check_common(x, gamma, beta_or_none, mean, rstd):
    check_array(x, "x", ndim=2)
    B, D = x.shape
    check_array(gamma, "gamma", dtype=x.dtype, shape=(D,), allow_none=True)
    return B, D


def layernorm_forward(y, mean, rstd, x, gamma, beta, eps):
    """x (B, D); mean, rstd (B,) := row mean and 1/sqrt(var + eps);
    y := (x - mean) * rstd * gamma + beta (gamma/beta None: 1 / 0)."""
    eps = check_range(eps, "eps", lo=0.0)
    B, D = _check_common(x, gamma, beta, mean, rstd)
    check_array(beta, "beta", dtype=x.dtype, shape=(D,), allow_none=True)
    check_array(y, "y", dtype=x.dtype, shape=(B, D), writable=True)
    check_array(mean, "mean", dtype=x.dtype, shape=(B,), writable=True)
    check_array(rstd, "rstd", dtype=x.dtype, shape=(B,), writable=True)
    xd = x.astype(np.float64)
    mu = xd.mean(axis=1)
    var = ((xd - mu[:, None]) ** 2).mean(axis=1)
    r = 1.0 / np.sqrt(var + eps)
    out = (xd - mu[:, None]) * r[:, None]
    if gamma is not None:
        out = out * gamma
    if beta is not None:
        out = out + beta
    y[...] = out
    mean[...] = mu
    rstd[...] = r


def layernorm_backward(dx, dgamma, dbeta, dy, x, mean, rstd, gamma):
    """dgamma += sum_B dy * xhat, dbeta += sum_B dy (None: skip);
    dx := rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * gamma."""
    B, D = _check_common(x, gamma, None, mean, rstd)
    check_array(dy, "dy", dtype=x.dtype, shape=(B, D))
    check_array(mean, "mean", dtype=x.dtype, shape=(B,))
    check_array(rstd, "rstd", dtype=x.dtype, shape=(B,))
    check_array(dgamma, "dgamma", dtype=x.dtype, shape=(D,), writable=True, allow_none=True)
    check_array(dbeta, "dbeta", dtype=x.dtype, shape=(D,), writable=True, allow_none=True)
    check_array(dx, "dx", dtype=x.dtype, shape=(B, D), writable=True, allow_none=True)
    xhat = (x - mean[:, None]) * rstd[:, None]
    if dgamma is not None:
        dgamma += (dy * xhat).sum(axis=0)
    if dbeta is not None:
        dbeta += dy.sum(axis=0)
    if dx is not None:
        g = dy * gamma if gamma is not None else dy
        dx[...] = rstd[:, None] * (g - g.mean(axis=1, keepdims=True)
                                   - xhat * (g * xhat).mean(axis=1, keepdims=True))
