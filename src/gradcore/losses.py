"""Losses with their gradient, computed together in one kernel call.

Each returns ``(loss, dpred)``: the mean loss as a Python float and a new
array with d loss / d pred (same shape and dtype as the prediction), ready
for ``model.backward(dpred)``. Inputs are checked first (no silent dtype
conversion: target must have the prediction's dtype).
"""

from __future__ import annotations

import numpy as np

from .backend import kernels

__all__ = ["mse", "bce_with_logits", "softmax_cross_entropy"]


def _check_pred(pred, name: str, ndim=None) -> np.ndarray:
    if not isinstance(pred, np.ndarray):
        raise TypeError(f"{name}: expected a float32 or float64 numpy array, got {type(pred).__name__}")
    if pred.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name}: expected dtype float32 or float64, got {pred.dtype}")
    if ndim is not None and pred.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array, got shape {pred.shape}")
    if pred.size == 0:
        raise ValueError(f"{name}: expected a non-empty array, got shape {pred.shape}")
    return np.ascontiguousarray(pred)


def _check_target(target, pred: np.ndarray, pname: str) -> np.ndarray:
    if not isinstance(target, np.ndarray):
        raise TypeError(f"target: expected a {pred.dtype} numpy array of shape {pred.shape}, "
                        f"got {type(target).__name__}")
    if target.dtype != pred.dtype:
        raise TypeError(f"target: expected dtype {pred.dtype} ({pname}'s dtype), got {target.dtype} "
                        "(convert it explicitly with .astype)")
    if target.shape != pred.shape:
        raise ValueError(f"target: expected shape {pred.shape} ({pname}'s shape), got {target.shape}")
    return np.ascontiguousarray(target)


def _elementwise(kernel: str, pred, target, pname: str):
    """(loss, gradient) of an element-wise loss kernel: ``target`` has
    ``pred``'s shape and dtype, the gradient is a fresh array."""
    pred = _check_pred(pred, pname)
    target = _check_target(target, pred, pname)
    dpred = np.empty_like(pred)
    loss = getattr(kernels(), kernel)(pred, target, dpred)
    return float(loss), dpred


def mse(pred, target):
    """Mean squared error mean((pred - target)^2) and its gradient 2 (pred - target) / N."""
    return _elementwise("mse_loss", pred, target, "pred")


def bce_with_logits(logits, target):
    """Binary cross-entropy on logits (sigmoid folded in, stable for large
    |logits|), mean over all elements; gradient (sigmoid(z) - t) / N."""
    return _elementwise("bce_with_logits_loss", logits, target, "logits")


def softmax_cross_entropy(logits, labels):
    """Softmax cross-entropy of logits (B, C) against integer class labels
    (B,) in [0, C), mean over B (stable log-sum-exp); gradient
    (softmax(z) - onehot(labels)) / B."""
    logits = _check_pred(logits, "logits", ndim=2)
    B, C = logits.shape
    if not isinstance(labels, np.ndarray):
        raise TypeError(f"labels: expected an integer numpy array of shape ({B},), got {type(labels).__name__}")
    if labels.dtype.kind not in "iu":
        raise TypeError(f"labels: expected integer class indices, got dtype {labels.dtype}")
    if labels.shape != (B,):
        raise ValueError(f"labels: expected shape ({B},) (one label per row of logits {logits.shape}), "
                         f"got {labels.shape}")
    if B and (labels.min() < 0 or labels.max() >= C):
        bad = int(np.flatnonzero((labels < 0) | (labels >= C))[0])
        raise ValueError(f"labels: class index {int(labels[bad])} at position {bad} is out of range [0, {C})")
    labels = np.ascontiguousarray(labels, dtype=np.int64)
    dlogits = np.empty_like(logits)
    loss = kernels().softmax_cross_entropy_loss(logits, labels, dlogits)
    return float(loss), dlogits
