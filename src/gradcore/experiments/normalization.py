"""The normalization study, in two parts on one synthetic "pixel" regression
task (smooth 8-bit patterns, a linear target of the scaled pixels):

1. *Architectures*: the same deep net (default 20 tanh layers of 32,
   Xavier init with gain 0.5, so sigma_w^2 = 0.25 and the backward signal
   halves per layer) trained with SGD as a plain stack, with LayerNorm or
   BatchNorm after every hidden Dense, and with residual (skip)
   connections. Every architecture clips the update at norm 1, so that a
   large but finite first gradient (LayerNorm, residual sums) does not
   decide the comparison; the per-layer gradient at initialization is
   recorded for each one.
2. *Inputs*: a small He/ReLU MLP on raw 0-255 pixels against the same
   pixels min-max scaled to [0, 1] (``gradcore.data.minmax_scale``), no
   clipping.

Every run is repeated for several seeds and scored on held-out samples.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Sequence, Tuple, Union

import numpy as np

from ._build import layers_of, resolve_init, seeds as _subseeds
from ._common import fmt, new_figure
from ._spec import DTYPE, SEED, SEEDS, Arg, Command
from ._trainruns import (FAILS_ABOVE, TRAINS_BELOW, TrainingComparison, curve, epochs, failed, fmt_list, heldout_loss,
                         label_axes, loss_panel, resolve_seeds, seed_legend, style_of, trains_claim)
from .claims import claim

__all__ = ["normalization_study", "ARCHITECTURES", "block_grad_norms", "pixels"]

# name -> MLP keyword arguments; the first entry is the plain net
ARCHITECTURES: Tuple[Tuple[str, Dict[str, Any]], ...] = (("plain", {}), ("LayerNorm", {"norm": "layer"}), ("BatchNorm", {"norm": "batch"}),
                 ("residual", {"residual": True}))
VANISHED_BELOW = 1e-2  # layer-1 / last-layer gradient ratio that counts as vanished


def pixels(n: int, features: int, rng):
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


def block_grad_norms(model, x, dy) -> np.ndarray:
    """``||dL/dh_l||`` for the output ``h_l`` of every hidden block of an
    :class:`gradcore.nn.MLP` (a fused Dense, a Dense-Norm-Activation unit or
    a Residual block; the output layer is left out), for ``L = sum(out * dy)``.
    The model's gradients are left zeroed."""
    from ..nn import Activation, Dense, Residual

    layers = layers_of(model)
    ends = []
    if any(isinstance(m, Residual) for m in layers):
        ends = [i for i, m in enumerate(layers) if isinstance(m, Residual)]
    elif any(isinstance(m, Activation) for m in layers):
        ends = [i for i, m in enumerate(layers) if isinstance(m, Activation)]
    else:
        ends = [i for i, m in enumerate(layers[:-1]) if isinstance(m, Dense)]
    model.zero_grad()
    h = x
    with np.errstate(all="ignore"):
        for m in layers:
            h = m.forward(h)
        g = dy
        out = {}
        for i in range(len(layers) - 1, -1, -1):
            if i in ends:
                out[i] = float(np.linalg.norm(np.asarray(g, dtype=np.float64)))
            g = layers[i].backward(g)
    model.zero_grad()
    return np.array([out[i] for i in ends])


def normalization_study(n_samples: int = 1024, features: int = 64, hidden: Sequence[int] = (64, 64),
                        steps: int = 200, lr: float = 0.01, batch_size: int = 32, seed: int = 0,
                        dtype: str = "float32", *, depth: int = 20, width: int = 32, activation: str = "tanh",
                        init="xavier_normal(gain=0.5)", arch_steps: int = 400, arch_lr: float = 0.1,
                        arch_clip_norm: float = 1.0, architectures=ARCHITECTURES,
                        seeds: Union[int, Sequence[int]] = 3, heldout: int = 512) -> TrainingComparison:
    """Part 1 (architectures): ``depth`` hidden layers of ``width``
    (``activation``, ``init``), one run per entry of ``architectures``
    (name, MLP keyword arguments; the first is the plain net) for
    ``arch_steps`` SGD steps at ``arch_lr`` clipped at ``arch_clip_norm``.
    Part 2 (inputs): an MLP ``features-hidden-1`` (He, ReLU) on raw and on
    min-max scaled pixels, ``steps`` SGD steps at ``lr``. ``n_samples``
    training samples, ``heldout`` more for scoring, ``seeds`` as a count or
    a list.

    Claims: the plain net's gradient vanishes through the depth at
    initialization (layer-1 / last-layer ratio < 0.01) and it stays at the
    trivial baseline; every other architecture ends below 0.5 x the
    baseline in every seed; raw inputs diverge in every seed; scaled inputs
    end below 0.5 x the baseline in every seed.

    >>> r = normalization_study(256, 16, (16,), 20, depth=6, width=8, arch_steps=20, seeds=1, heldout=64)
    >>> r.labels
    ['plain', 'LayerNorm', 'BatchNorm', 'residual', 'raw 0-255', 'min-max scaled']
    """
    from .. import train as _train
    from ..data import minmax_scale
    from ..nn import MLP, Dense
    from .theory import mean_field

    if isinstance(heldout, bool) or not isinstance(heldout, int) or heldout < 1:
        raise ValueError(f"heldout: expected an integer >= 1, got {heldout!r}")
    for name, v in (("n_samples", n_samples), ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name}: expected an integer >= 1, got {v!r}")
    if batch_size > n_samples:
        raise ValueError(f"batch_size: {batch_size} is larger than n_samples = {n_samples}; "
                         f"use a batch_size <= {n_samples} or more samples")
    archs = [(str(n), dict(kw)) for n, kw in architectures]
    if not archs:
        raise ValueError("architectures: expected at least one (name, MLP keyword arguments) entry")
    init_fn = resolve_init(init)
    seed_list = resolve_seeds(seeds, seed)
    dt = np.dtype(dtype)
    runs = []
    profiles: Dict[str, List[np.ndarray]] = {}
    sigma_w2: List[Any] = []
    base_list = []
    for sd in seed_list:
        s = _subseeds(sd, 4)
        raw, y = pixels(n_samples + heldout, features, np.random.default_rng(s[0]))
        scaled = minmax_scale(raw, lo=0.0, hi=255.0)
        y = y.astype(dt)
        ytr, yte = y[:n_samples], y[n_samples:]
        base = float(np.mean((yte - ytr.mean()) ** 2))
        base_list.append(base)
        xs = np.ascontiguousarray(scaled, dtype=dt)
        probe = np.random.default_rng(s[3]).standard_normal((min(batch_size, n_samples), 1)).astype(dt)
        for name, kw in archs:
            model = MLP([features] + [width] * depth + [1], activation=activation, init=init_fn, dtype=dtype,
                        seed=s[1], **kw)
            if name == archs[0][0]:
                ws = [m.p["weight"] for _, m in model.named_modules() if isinstance(m, Dense)][1:-1]
                sigma_w2.extend(w.shape[1] * float(np.mean(np.square(w, dtype=np.float64))) for w in ws)
            profiles.setdefault(name, []).append(block_grad_norms(model, xs[:len(probe)], probe))
            data = epochs(xs[:n_samples], ytr, batch_size, np.random.default_rng(s[2]))
            res = _train(model, data, loss="mse", optimizer="sgd", lr=arch_lr, steps=arch_steps,
                         clip_norm=arch_clip_norm, progress=False)
            runs.append(curve(name, res, arch_steps, seed=sd, group="architecture",
                              heldout=heldout_loss(model, xs[n_samples:], yte, "mse")))
        for name, x in (("raw 0-255", raw), ("min-max scaled", scaled)):
            x = np.ascontiguousarray(x, dtype=dt)
            model = MLP([features, *hidden, 1], activation="relu", init="he_normal", dtype=dtype, seed=s[1])
            data = epochs(x[:n_samples], ytr, batch_size, np.random.default_rng(s[2]))
            res = _train(model, data, loss="mse", optimizer="sgd", lr=lr, steps=steps, progress=False)
            runs.append(curve(name, res, steps, seed=sd, group="inputs",
                              heldout=heldout_loss(model, x[n_samples:], yte, "mse")))
    for r in runs:  # each seed draws its own data: claims compare with that seed's baseline
        r.extra["baseline"] = base_list[seed_list.index(r.seed)]
        r.extra["heldout_ratio"] = r.heldout / r.extra["baseline"]
    ratios = {n: [float(p[0] / p[-1]) if p[-1] > 0 else math.inf for p in ps] for n, ps in profiles.items()}
    for r in runs:
        if r.label in profiles:
            prof = profiles[r.label][seed_list.index(r.seed)]
            r.extra["block_grad_norms"] = prof
            r.extra["first_last_ratio"] = float(prof[0] / prof[-1]) if prof[-1] > 0 else math.inf
    sw2 = float(np.mean(sigma_w2)) if sigma_w2 else math.nan
    mf = mean_field(sw2, 0.0, activation) if math.isfinite(sw2) else None
    theory_ratio = math.sqrt(mf.chi_1) ** (depth - 1) if mf else math.nan
    plain = archs[0][0]
    cl = []
    cl.append(claim(f"{plain} {depth}-layer {activation} net: the gradient vanishes through the depth at "
                    f"initialization (||dL/dh_1|| / ||dL/dh_{depth}|| < {VANISHED_BELOW:g})",
                    f"mean-field sqrt(chi_1)^{depth - 1} = {fmt(theory_ratio)} (sigma_w^2 = {fmt(sw2)}, "
                    f"chi_1 = {fmt(mf.chi_1 if mf else math.nan)})",
                    f"ratio {fmt_list(ratios[plain])}", all(v < VANISHED_BELOW for v in ratios[plain])))

    def heldouts(label):
        return [r for r in runs if r.label == label]

    def rel(r):
        return r.extra["heldout_ratio"]

    rs = heldouts(plain)
    cl.append(claim(f"{plain} net: stays at the trivial baseline in every seed ({arch_steps} steps)",
                    f"held-out > {FAILS_ABOVE:g} x baseline, or diverges",
                    "held-out / baseline " + fmt_list([rel(r) for r in rs]), failed(rs, [rel(r) for r in rs])))
    for name, _ in archs[1:]:
        rs = heldouts(name)
        cl.append(trains_claim(name, rs, [rel(r) for r in rs],
                               f"< {TRAINS_BELOW:g} x baseline (normalization and skips keep the signal through "
                               "depth: Ioffe & Szegedy 2015, Ba et al. 2016, He et al. 2016)",
                               "held-out / baseline " + fmt_list([rel(r) for r in rs])
                               + f"; gradient ratio layer 1 / {depth}: " + fmt_list(ratios[name]),
                               when=f" ({arch_steps} steps)"))
    rs = heldouts("raw 0-255")
    cl.append(claim("raw 0-255 inputs: every seed diverges",
                    "diverges (first-layer gradients ~255 x larger than on [0, 1] inputs)",
                    "; ".join(f"seed {r.seed} " + (f"diverged at step {r.diverged_step}" if r.diverged else
                                                    f"held-out / baseline {rel(r):.4g}") for r in rs),
                    all(r.diverged for r in rs)))
    rs = heldouts("min-max scaled")
    cl.append(trains_claim("min-max scaled inputs", rs, [rel(r) for r in rs], f"< {TRAINS_BELOW:g} x baseline"))
    params = dict(n_samples=n_samples, features=features, hidden=list(hidden), steps=steps, lr=lr,
                  batch_size=batch_size, seed=seed, seeds=seed_list, dtype=dtype, depth=depth, width=width,
                  activation=activation, init=str(init), arch_steps=arch_steps, arch_lr=arch_lr,
                  arch_clip_norm=arch_clip_norm, architectures=[n for n, _ in archs], heldout=heldout)
    title = (f"Normalization study: {depth} x {width} {activation} net ({init}) plain / LayerNorm / BatchNorm / "
             f"residual, and raw vs scaled inputs, {len(seed_list)} seeds")
    caption = (f"Left: training loss of the same {depth}-layer {activation} net, plain and with LayerNorm, "
               "BatchNorm or skip connections (SGD, every update clipped at norm "
               f"{arch_clip_norm:g}); the plain net's backward signal vanishes (middle: gradient norm per "
               "block at initialization, relative to the last hidden block) and it never leaves the baseline, "
               "the normalized and residual nets keep the signal and learn. Right: raw 0-255 inputs make the "
               "first layer's gradients about 255 times larger and the loss explodes; min-max scaled inputs "
               "train. Held-out losses are relative to the trivial baseline (predict the training mean).")
    comp = TrainingComparison("normalization", title, caption, runs, params, float(np.mean(base_list)),
                              "predict the training mean; mean over seeds", seed_list, cl)
    comp.profiles = profiles
    comp.theory_ratio = theory_ratio
    comp.chi_1 = mf.chi_1 if mf else math.nan
    comp._figure_fn = _figure
    return comp


def _figure(comp: TrainingComparison):
    fig, (ax1, ax2, ax3) = new_figure(ncols=3, width=4.8, height=4.2)
    labels = comp.labels
    colors = {label: f"C{i}" for i, label in enumerate(labels)}
    arch = [r for r in comp.runs if r.group == "architecture"]
    inputs = [r for r in comp.runs if r.group == "inputs"]
    # training losses relative to each seed's baseline, like the held-out ones
    def rel(rs):
        out = []
        for r in rs:
            c = type(r)(**{**r.__dict__, "losses": r.losses / r.extra["baseline"],
                           "heldout": r.extra["heldout_ratio"]})
            out.append(c)
        return out

    p = comp.params
    loss_panel(ax1, rel(arch), colors, comp.seeds, 1.0, "predict the mean",
               f"Normalization study: {p['depth']}-layer {p['activation']} net, loss / baseline",
               max(1, p["arch_steps"] // 40), TRAINS_BELOW, f"{TRAINS_BELOW:g} x baseline (claim)")
    ax1.set_ylabel("training loss / baseline (running mean)")
    seed_legend(ax1, comp.seeds, loc="upper right")
    names = list(comp.profiles)
    for k, name in enumerate(names):
        for i, prof in enumerate(comp.profiles[name]):
            ls, mk = style_of(i)
            blocks = np.arange(1, len(prof) + 1)
            with np.errstate(all="ignore"):
                ax2.semilogy(blocks, prof / prof[-1], color=colors[name], ls=ls, marker=mk, markersize=3.5,
                             label=name if i == 0 else None)
    if math.isfinite(comp.theory_ratio):
        d = p["depth"]
        blocks = np.arange(1, d + 1)
        ax2.semilogy(blocks, math.sqrt(comp.chi_1) ** (d - blocks), "k--", lw=1,
                     label=f"theory, plain: sqrt(chi_1)^(L-l), chi_1 = {comp.chi_1:.3g}")
    label_axes(ax2, "hidden block l (1 = nearest the input)", "||dL/dh_l|| / ||dL/dh_L|| at initialization", "Normalization study: gradient per block at init, relative to the last")
    seed_legend(ax2, comp.seeds, loc="lower right")
    loss_panel(ax3, rel(inputs), colors, comp.seeds, 1.0, "predict the mean",
               "Normalization study: raw 0-255 vs min-max scaled inputs", max(1, p["steps"] // 40),
               TRAINS_BELOW, f"{TRAINS_BELOW:g} x baseline (claim)")
    ax3.set_ylabel("training loss / baseline (running mean)")
    seed_legend(ax3, comp.seeds, loc="lower left")
    return fig


#: ``gradcore normalize``
CLI = Command(normalization_study, (
    Arg("n_samples", "training samples", "count", flag="samples"),
    Arg("features", "pixels per sample", "count"),
    Arg("hidden", "hidden layer sizes of the input-scaling MLP", "count"),
    Arg("steps", "training steps of the input-scaling runs", "count"),
    Arg("lr", "SGD learning rate of the input-scaling runs", "positive"),
    Arg("batch_size", "batch size", "count"),
    Arg("depth", "hidden layers of the deep net", "count"),
    Arg("width", "width of the deep net", "count"),
    Arg("arch_steps", "training steps of the deep-net runs", "count"),
    Arg("arch_lr", "SGD learning rate of the deep-net runs", "positive"),
    SEEDS, SEED, DTYPE,
), report="normalization")
