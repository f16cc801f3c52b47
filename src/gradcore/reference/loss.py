"""Reference losses (NumPy): value (mean reduction) and gradient together."""

from __future__ import annotations

import numpy as np

from .._contract import check_array, check_labels


def mse_loss(pred, target, dpred):
    """mean((pred - target)^2); dpred := 2 (pred - target) / N (None: skip)."""
    check_array(pred, "pred")
    check_array(target, "target", dtype=pred.dtype, shape=pred.shape)
    check_array(dpred, "dpred", dtype=pred.dtype, shape=pred.shape, writable=True, allow_none=True)
    d = pred.astype(np.float64) - target
    if dpred is not None:
        dpred[...] = d * (2.0 / d.size)
    return float(np.mean(d * d))


def bce_with_logits_loss(logits, target, dlogits):
    """mean(max(z, 0) - z t + log1p(exp(-|z|))); dlogits := (sigmoid(z) - t) / N."""
    check_array(logits, "logits")
    check_array(target, "target", dtype=logits.dtype, shape=logits.shape)
    check_array(dlogits, "dlogits", dtype=logits.dtype, shape=logits.shape, writable=True, allow_none=True)
    z = logits.astype(np.float64)
    t = target.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        loss = np.maximum(z, 0.0) - z * t + np.log1p(np.exp(-np.abs(z)))
        if dlogits is not None:
            e = np.exp(-np.abs(z))
            sig = np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
            dlogits[...] = (sig - t) / z.size
    return float(np.mean(loss))


def softmax_cross_entropy_loss(logits, labels, dlogits):
    """logits (B, C), labels int64 (B,) in [0, C): mean over B of
    logsumexp(z) - z[label]; dlogits := (softmax(z) - onehot) / B."""
    check_array(logits, "logits", ndim=2)
    B, C = logits.shape
    check_labels(labels, "labels", B, C)
    check_array(dlogits, "dlogits", dtype=logits.dtype, shape=(B, C), writable=True, allow_none=True)
    z = logits.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        m = z.max(axis=1, keepdims=True)
        e = np.exp(z - m)
        s = e.sum(axis=1, keepdims=True)
        lse = m[:, 0] + np.log(s[:, 0])
        loss = lse - z[np.arange(B), labels]
        if dlogits is not None:
            p = e / s
            p[np.arange(B), labels] -= 1.0
            dlogits[...] = p / B
    return float(np.mean(loss))
