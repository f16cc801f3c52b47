"""Reference BatchNorm1d (NumPy) with PyTorch semantics: batch statistics in
training (running stats updated with momentum and the unbiased variance),
running statistics in eval."""

from __future__ import annotations

import numpy as np

from .._contract import check_array, check_range


def batchnorm_forward(y, x, gamma, beta, running_mean, running_var, save_mean, save_rstd,
                      training, momentum, eps):
    """x (B, D). training: mean/var over the batch, save_mean/save_rstd (D,)
    := batch mean and 1/sqrt(biased var + eps), running stats (may be None)
    := (1 - momentum) * running + momentum * batch (unbiased var).
    eval: save_mean/save_rstd := running_mean and 1/sqrt(running_var + eps)."""
    momentum = check_range(momentum, "momentum", lo=0.0, hi=1.0)
    eps = check_range(eps, "eps", lo=0.0)
    training = bool(training)
    check_array(x, "x", ndim=2)
    B, D = x.shape
    check_array(gamma, "gamma", dtype=x.dtype, shape=(D,), allow_none=True)
    check_array(beta, "beta", dtype=x.dtype, shape=(D,), allow_none=True)
    check_array(running_mean, "running_mean", dtype=x.dtype, shape=(D,), writable=True, allow_none=training)
    check_array(running_var, "running_var", dtype=x.dtype, shape=(D,), writable=True, allow_none=training)
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean, running_var: give both or neither")
    check_array(save_mean, "save_mean", dtype=x.dtype, shape=(D,), writable=True)
    check_array(save_rstd, "save_rstd", dtype=x.dtype, shape=(D,), writable=True)
    check_array(y, "y", dtype=x.dtype, shape=(B, D), writable=True)
    if training and B < 2:
        raise ValueError(f"x: batch statistics in training need more than 1 value per channel, got shape {x.shape}")
    xd = x.astype(np.float64)
    if training:
        mu = xd.mean(axis=0)
        var = ((xd - mu) ** 2).mean(axis=0)
        r = 1.0 / np.sqrt(var + eps)
        if running_mean is not None:
            running_mean[...] = (1.0 - momentum) * running_mean + momentum * mu
            running_var[...] = (1.0 - momentum) * running_var + momentum * var * (B / (B - 1))
    else:
        mu = running_mean.astype(np.float64)
        r = 1.0 / np.sqrt(running_var.astype(np.float64) + eps)
    out = (xd - mu) * r
    if gamma is not None:
        out = out * gamma
    if beta is not None:
        out = out + beta
    y[...] = out
    save_mean[...] = mu
    save_rstd[...] = r


def batchnorm_backward(dx, dgamma, dbeta, dy, x, save_mean, save_rstd, gamma, training):
    """dgamma += sum_B dy * xhat, dbeta += sum_B dy (None: skip).
    training: dx := gamma * rstd * (dy - mean_B(dy) - xhat * mean_B(dy * xhat));
    eval: dx := gamma * rstd * dy."""
    training = bool(training)
    check_array(x, "x", ndim=2)
    B, D = x.shape
    check_array(dy, "dy", dtype=x.dtype, shape=(B, D))
    check_array(save_mean, "save_mean", dtype=x.dtype, shape=(D,))
    check_array(save_rstd, "save_rstd", dtype=x.dtype, shape=(D,))
    check_array(gamma, "gamma", dtype=x.dtype, shape=(D,), allow_none=True)
    check_array(dgamma, "dgamma", dtype=x.dtype, shape=(D,), writable=True, allow_none=True)
    check_array(dbeta, "dbeta", dtype=x.dtype, shape=(D,), writable=True, allow_none=True)
    check_array(dx, "dx", dtype=x.dtype, shape=(B, D), writable=True, allow_none=True)
    xhat = (x - save_mean) * save_rstd
    sdy = dy.sum(axis=0)
    sdyx = (dy * xhat).sum(axis=0)
    if dgamma is not None:
        dgamma += sdyx
    if dbeta is not None:
        dbeta += sdy
    if dx is not None:
        k = save_rstd * gamma if gamma is not None else save_rstd
        if training:
            dx[...] = k * (dy - sdy / B - xhat * (sdyx / B))
        else:
            dx[...] = k * dy
