"""Experiments 4-6: training runs that explode, or not.

* ``clipping_study``: the same RNN, same seed, trained on a sequence task
  without clipping and with each clip norm (or a clip value): loss and
  gradient-norm curves and the step where training diverged or went NaN.
* ``normalization_study``: the same MLP and seed on raw 0-255 "pixel" inputs
  against the same inputs min-max scaled to [0, 1].
* ``initialization_study``: Xavier vs He vs a constant weight on a deep
  ReLU (or tanh) MLP, same data and seed.

Each returns a :class:`TrainingComparison`: one :class:`RunCurve` per
setting, a table, metrics and a two-panel plot (loss, gradient norm).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from ..tasks import get_task
from ._build import init_label, resolve_init, seeds
from ._common import ExperimentResult, new_figure, text_table

__all__ = ["clipping_study", "normalization_study", "initialization_study", "TrainingComparison", "RunCurve"]

DIVERGE_FACTOR = 1e3  # loss above this many times the first loss counts as diverged


@dataclass
class RunCurve:
    """One training run: ``losses`` and pre-clip ``grad_norms`` per step
    (NaN after the run stopped), ``diverged_step`` (first step whose loss was
    non-finite or above 1000 x the first loss; None if never), ``nan_step``
    (the step training stopped on a non-finite value; None if never) and the
    stop message."""

    label: str
    losses: np.ndarray
    grad_norms: np.ndarray
    diverged_step: Optional[int]
    nan_step: Optional[int]
    message: str
    extra: Dict[str, Any] = field(default_factory=dict)

    @property
    def final_loss(self) -> float:
        fin = self.losses[np.isfinite(self.losses)]
        return float(fin[-1]) if fin.size else math.nan

    @property
    def best_loss(self) -> float:
        fin = self.losses[np.isfinite(self.losses)]
        return float(fin.min()) if fin.size else math.nan


def _curve(label: str, result, steps: int, extra=None) -> RunCurve:
    losses = np.full(steps, math.nan)
    norms = np.full(steps, math.nan)
    n = len(result.losses)
    losses[:n] = result.losses
    norms[:n] = result.grad_norms
    diverged = None
    if n:
        bad = np.flatnonzero(~np.isfinite(result.losses) | (result.losses > DIVERGE_FACTOR * max(result.losses[0], 1e-12)))
        if bad.size:
            diverged = int(bad[0])
    nan_step = result.stop_step if result.stopped else None
    if diverged is None and nan_step is not None:
        diverged = nan_step
    return RunCurve(label, losses, norms, diverged, nan_step, result.message, dict(extra or {}))


class TrainingComparison(ExperimentResult):
    """Several training runs of the same model and data, one per setting."""

    def __init__(self, name: str, title: str, caption: str, runs: List[RunCurve], params,
                 baseline: Optional[float] = None, baseline_label: str = ""):
        self.name = name
        self.title = title
        self._caption = caption
        self.runs = runs
        self.params = params
        self.baseline = baseline
        self.baseline_label = baseline_label

    def __getitem__(self, label: str) -> RunCurve:
        for r in self.runs:
            if r.label == label:
                return r
        raise KeyError(f"no run labelled {label!r}; runs: {[r.label for r in self.runs]}")

    def rows(self):
        header = ["setting", "step", "loss", "grad_norm"]
        rows = []
        for r in self.runs:
            rows.extend([r.label, i, r.losses[i], r.grad_norms[i]] for i in range(len(r.losses)))
        return header, rows

    def table(self) -> str:
        header = ["setting", "first loss", "final loss", "best loss", "max grad norm", "diverged at", "NaN stop at"]
        rows = []
        for r in self.runs:
            g = r.grad_norms[np.isfinite(r.grad_norms)]
            rows.append([r.label, r.losses[0], r.final_loss, r.best_loss, float(g.max()) if g.size else math.nan,
                         r.diverged_step, r.nan_step])
        if any("first_event_step" in r.extra for r in self.runs):
            header.append("monitor flagged")
            for row, r in zip(rows, self.runs):
                first = r.extra.get("first_event_step", {})
                row.append(", ".join(f"{k} at {v}" for k, v in sorted(first.items(), key=lambda kv: kv[1]))
                           or "nothing")
        t = text_table(header, rows, self.title)
        if self.baseline is not None:
            t += f"\ntrivial baseline ({self.baseline_label}): loss {self.baseline:.4g}"
        return t

    def metrics(self) -> Dict[str, Any]:
        out = {}
        for r in self.runs:
            key = r.label.replace(" ", "_").replace("=", "")
            out[f"{key}_final_loss"] = r.final_loss
            out[f"{key}_diverged_step"] = -1 if r.diverged_step is None else r.diverged_step
        return out

    def caption(self) -> str:
        return self._caption

    def _figure(self):
        fig, (ax1, ax2) = new_figure(ncols=2)
        # keep the runs that trained readable: when a run explodes, cap the
        # loss axis at 30x the baseline (or the others' largest loss) and say so
        top = None
        peaks = {r.label: float(np.nanmax(np.where(np.isfinite(r.losses), r.losses, np.nan)))
                 if np.any(np.isfinite(r.losses)) else math.nan for r in self.runs}
        tame = [v for r in self.runs for v in [peaks[r.label]] if math.isfinite(v) and r.diverged_step is None]
        ref = max([self.baseline or 0.0] + tame)
        if ref > 0 and any(math.isfinite(v) and v > 100 * ref for v in peaks.values()):
            firsts = [float(r.losses[0]) for r in self.runs
                      if len(r.losses) and math.isfinite(r.losses[0]) and peaks[r.label] > 100 * ref]
            top = max([30 * ref] + [10 * f for f in firsts])  # every run's start stays visible
        for r in self.runs:
            steps = np.arange(len(r.losses))
            label = r.label
            if top is not None and math.isfinite(peaks[r.label]) and peaks[r.label] > top:
                label += f" (off scale, up to {peaks[r.label]:.2g})"
            with np.errstate(all="ignore"):
                ax1.semilogy(steps, r.losses, label=label)
                color = ax1.lines[-1].get_color()
                ax2.semilogy(steps, r.grad_norms, color=color, label=r.label)
            if r.diverged_step is not None:
                ax1.axvline(r.diverged_step, color=color, ls=":", lw=1)
        if self.baseline is not None:
            ax1.axhline(self.baseline, color="k", ls="--", lw=1, label=f"baseline ({self.baseline_label})")
        if top is not None:
            ax1.set_ylim(top=top)
        ax1.set_xlabel("step")
        ax1.set_ylabel("training loss")
        ax1.set_title("loss (dotted: diverged)")
        ax1.legend(fontsize=8)
        ax2.set_xlabel("step")
        ax2.set_ylabel("gradient norm (before clipping)")
        ax2.set_title("global gradient norm")
        return fig


def _label_clip(c, clip_value):
    if c is None and clip_value is None:
        return "no clipping"
    if c is None:
        return f"clip value {clip_value:g}"
    s = f"clip norm {c:g}"
    return s + (f" + value {clip_value:g}" if clip_value is not None else "")


def clipping_study(task: str = "adding", T: int = 50, steps: int = 300, clip_norms: Sequence = (None, 1.0, 10.0),
                   clip_value: Optional[float] = None, hidden: int = 32, cell: str = "rnn",
                   nonlinearity: str = "tanh", spectral_radius: float = 1.5, lr: float = 0.1,
                   batch_size: int = 32, seed: int = 0, dtype: str = "float32") -> TrainingComparison:
    """Train the same recurrent model (same seed, same batches) once per
    entry of ``clip_norms`` (None = no clipping; ``clip_value`` applies to
    every run), plain SGD. The recurrent weight starts at
    ``spectral_radius`` x an orthogonal matrix (above 1: gradients explode)."""
    from .. import train as _train
    from ..monitor import GradMonitor
    from ..nn import Dense
    from ._seq import SequenceModel, make_rnn

    spec = get_task(task)
    if isinstance(clip_norms, (int, float)) or clip_norms is None:
        clip_norms = [clip_norms]
    runs = []
    s = seeds(seed, 3)
    for c in clip_norms:
        cellm = make_rnn(cell, spec.input_size, hidden, nonlinearity, dtype, s[0], spectral_radius)
        head = Dense(hidden, spec.output_size, dtype=dtype, seed=s[1])
        model = SequenceModel(cellm, head, every_step=spec.every_step)
        data = spec.make(T, batch_size, s[2], np.dtype(dtype))
        if spec.every_step:
            data = ((x, y.reshape(-1)) for x, y in data)
        mon = GradMonitor(model)
        res = _train(model, data, loss=spec.loss, optimizer="sgd", lr=lr, steps=steps,
                     clip_norm=c, clip_value=clip_value, monitor=mon, progress=False)
        first = {}
        for e in mon.events:
            first.setdefault(e.kind, e.step)
        runs.append(_curve(_label_clip(c, clip_value), res, steps,
                           {"events": [str(e) for e in mon.events], "first_event_step": first}))
    base = spec.baseline(T)
    params = dict(task=task, T=T, steps=steps, clip_norms=list(clip_norms), clip_value=clip_value, hidden=hidden,
                  cell=cell, nonlinearity=nonlinearity, spectral_radius=spectral_radius, lr=lr,
                  batch_size=batch_size, seed=seed, dtype=dtype)
    title = (f"Gradient clipping: {cell} ({nonlinearity}, radius {spectral_radius:g}) on {task}, T = {T}, "
             f"SGD lr {lr:g}, {steps} steps")
    caption = ("Training loss and pre-clip gradient norm of the same recurrent net from the same seed, "
               "with and without gradient clipping: without it the exploding gradient throws the weights "
               "far off until the loss is Inf/NaN; clipping by norm bounds every update (a tight clip "
               "trains steadily, a loose one still lets large steps through).")
    return TrainingComparison("clipping", title, caption, runs, params, base.loss, base.predictor)


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
