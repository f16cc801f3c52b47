"""Experiments 4-6: training runs that explode, or not (several seeds each,
with claims and a verdict computed from the runs).

* :func:`clipping_study` (:mod:`.clipping`): the same RNN trained with and
  without gradient clipping, one declarative arm per way of clipping.
* :func:`normalization_study`: the same MLP and seed on raw 0-255 "pixel"
  inputs against the same inputs min-max scaled to [0, 1].
* :func:`initialization_study`: Xavier vs He vs a constant weight on a deep
  ReLU (or tanh) MLP, same data and seed.

Each returns a :class:`TrainingComparison` (:mod:`._trainruns`).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .._contract import int_arg
from ._build import init_label, init_list, resolve_init, seeds
from ._trainruns import DIVERGE_FACTOR, RunCurve, TrainingComparison, curve as _curve, epochs as _epochs
from .clipping import ClipArm, DEFAULT_ARMS, clipping_study

__all__ = ["clipping_study", "normalization_study", "initialization_study", "TrainingComparison", "RunCurve",
           "ClipArm", "DEFAULT_ARMS", "DIVERGE_FACTOR"]


def _pixels(n: int, features: int, rng):
    """Synthetic 8-bit "images": smooth random patterns in 0..255 and a
    regression target that is a fixed linear function of the scaled pixels."""
    t = np.linspace(0.0, 1.0, features)
    freq = rng.uniform(1.0, 4.0, size=(n, 1))
    phase = rng.uniform(0.0, 2 * math.pi, size=(n, 1))
    img = 127.5 + 127.5 * np.sin(2 * math.pi * freq * t + phase) * rng.uniform(0.3, 1.0, size=(n, 1))
    img = np.clip(np.round(img + rng.normal(0.0, 8.0, size=img.shape)), 0, 255)
    w = rng.standard_normal(features) / math.sqrt(features)
    y = ((img / 255.0) @ w).reshape(n, 1)
    return img, y


def _epochs(x, y, batch_size, rng):
    n = len(x)
    while True:
        perm = rng.permutation(n)
        for i in range(0, n - batch_size + 1, batch_size):
            idx = perm[i:i + batch_size]
            yield x[idx], y[idx]


def normalization_study(n_samples: int = 512, features: int = 64, hidden: Sequence[int] = (64, 64),
                        steps: int = 200, lr: float = 0.01, batch_size: int = 32, seed: int = 0,
                        dtype: str = "float32") -> TrainingComparison:
    """The same MLP (He init, ReLU), same seed and batches, trained with SGD
    on raw 0-255 pixel values and on the same pixels min-max scaled to
    [0, 1] (``gradcore.data.minmax_scale``)."""
    from .. import train as _train
    from ..data import minmax_scale
    from ..nn import MLP

    s = seeds(seed, 3)
    raw, y = _pixels(n_samples, features, np.random.default_rng(s[0]))
    dt = np.dtype(dtype)
    scaled = minmax_scale(raw, lo=0.0, hi=255.0)
    runs = []
    for label, x in (("raw 0-255", raw), ("min-max scaled", scaled)):
        model = MLP([features, *hidden, 1], activation="relu", init="he_normal", dtype=dtype, seed=s[1])
        data = _epochs(np.ascontiguousarray(x, dtype=dt), y.astype(dt), batch_size, np.random.default_rng(s[2]))
        res = _train(model, data, loss="mse", optimizer="sgd", lr=lr, steps=steps, progress=False)
        runs.append(_curve(label, res, steps))
    base = float(np.mean((y - y.mean()) ** 2))
    params = dict(n_samples=n_samples, features=features, hidden=list(hidden), steps=steps, lr=lr,
                  batch_size=batch_size, seed=seed, dtype=dtype)
    title = f"Input scaling: MLP {features}-{'-'.join(map(str, hidden))}-1 on raw vs scaled pixels, SGD lr {lr:g}"
    caption = ("Training loss of the same network, seed and batches on raw 0-255 pixel inputs and on the same "
               "inputs min-max scaled to [0, 1]: raw inputs make the first layer's gradients about 255 times "
               "larger, the first update overshoots and the loss explodes to Inf/NaN.")
    return TrainingComparison("normalization", title, caption, runs, params, base, "predict the mean")


def initialization_study(depth: int = 20, width: int = 64, activation: str = "relu",
                         inits: Sequence = ("xavier", "he", "constant(0.02)"), steps: int = 300,
                         lr: float = 0.01, n_samples: int = 512, batch_size: int = 32, seed: int = 0,
                         dtype: str = "float32") -> TrainingComparison:
    """A deep MLP (``depth`` hidden layers of ``width``, ``activation``)
    trained with SGD on a smooth regression target from each initializer,
    same seed and batches. Also records each run's initial per-layer bias
    gradient norms of the hidden layers (``extra["layer_grad_norms"]``; the
    bias gradient is the batch sum of dL/dz) and their first/last ratio."""
    from .. import grad_stats, train as _train
    from ..losses import mse
    from ..nn import MLP

    inits = init_list(inits)
    depth = int_arg(depth, "depth", lo=1)
    s = seeds(seed, 3)
    rng = np.random.default_rng(s[0])
    features = 16
    x = rng.standard_normal((n_samples, features))
    y = np.sin(x @ (rng.standard_normal((features, 1)) / math.sqrt(features)) * 2.0)
    dt = np.dtype(dtype)
    x, y = x.astype(dt), y.astype(dt)
    runs = []
    for spec in inits:
        model = MLP([features] + [width] * depth + [1], activation=activation, init=resolve_init(spec),
                    dtype=dtype, seed=s[1])
        model.zero_grad()
        with np.errstate(all="ignore"):
            _, dpred = mse(model.forward(x[:batch_size]), y[:batch_size])
            model.backward(dpred)
        # bias gradients = batch sums of dL/dz: how the backward signal scales
        # through the hidden layers (the output layer is left out)
        biases = [k for k in model.gradients() if k.endswith("bias")][:-1]
        per = grad_stats({k: model.gradients()[k] for k in biases}).per_array
        per = np.asarray(per, dtype=np.float64)
        data = _epochs(x, y, batch_size, np.random.default_rng(s[2]))
        res = _train(model, data, loss="mse", optimizer="sgd", lr=lr, steps=steps, progress=False)
        with np.errstate(all="ignore"):
            ratio = float(per[0] / per[-1]) if per[-1] > 0 else math.inf
        runs.append(_curve(init_label(spec), res, steps, {"layer_grad_norms": per, "first_last_ratio": ratio}))
    base = float(np.mean((y - y.mean()) ** 2))
    params = dict(depth=depth, width=width, activation=activation, inits=[init_label(i) for i in inits],
                  steps=steps, lr=lr, n_samples=n_samples, batch_size=batch_size, seed=seed, dtype=dtype)
    title = f"Initialization: {depth} x {width} {activation} MLP, SGD lr {lr:g}, {steps} steps"
    caption = (f"Training loss and gradient norm of the same deep {activation} network from different "
               "initializers: He keeps the gradient scale through the depth and trains; Xavier lets it "
               "shrink layer by layer and stalls near the baseline; a constant weight starts with a large "
               "gradient and, every unit being identical, can learn no more than the mean.")
    comp = TrainingComparison("initialization", title, caption, runs, params, base, "predict the mean")
    return comp
