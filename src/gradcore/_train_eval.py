"""Losses by name and held-out evaluation for :func:`gradcore.train`
(:func:`evaluate`: any batch size, the model left exactly as it was)."""

from __future__ import annotations

from typing import Callable

import numpy as np

LOSSES = ("mse", "bce_with_logits", "softmax_cross_entropy")


def _loss_fn(loss) -> Callable:
    if callable(loss):
        return loss
    from . import losses

    if loss not in LOSSES:
        raise ValueError(f"loss: expected one of {', '.join(LOSSES)} or a callable (pred, target) -> "
                         f"(loss, dpred), got {loss!r}")
    return getattr(losses, loss)


def _eval_batches(eval_data):
    if callable(eval_data):
        return eval_data()
    if isinstance(eval_data, tuple) and len(eval_data) == 2 and isinstance(eval_data[0], np.ndarray):
        return [eval_data]
    return eval_data


def evaluate(model, data, loss="mse") -> float:
    """Mean loss of ``model`` over ``data`` (an ``(x, y)`` pair, a list of
    pairs, or a callable returning an iterable of pairs) with
    :meth:`Module.inference`: evaluation mode, no caches kept, any batch
    size, the model left exactly as it was (training caches included)."""
    loss_fn = _loss_fn(loss)
    total, n = 0.0, 0
    for i, batch in enumerate(_eval_batches(data)):
        try:
            x, y = batch
        except (TypeError, ValueError):
            raise TypeError(f"eval_data: batch {i}: expected an (x, y) pair, got {type(batch).__name__}") from None
        with np.errstate(all="ignore"):
            L, _ = loss_fn(model.inference(x), y)
        total += float(L)
        n += 1
    if n == 0:
        raise ValueError("eval_data: no batches")
    return total / n
