"""The initialization study: a deep MLP (default 30 ReLU layers of 32)
trained with SGD from each initializer on the same stream of fresh samples
of a smooth target (sin(x.v), x ~ N(0, I_16)), several seeds, each run
scored on held-out samples.

He (sigma_w^2 = 2) keeps the backward signal through the depth of a ReLU
net (mean-field chi_1 = sigma_w^2 / 2 = 1); Xavier (sigma_w^2 = 1 for
square layers) halves its square per layer, so at depth 30 the first layer
sees ~2^-14.5 of the last layer's gradient and the net does not leave the
baseline; a constant weight makes every unit of a layer identical (no
symmetry breaking). Every run clips the update at norm 1: at width 32 the
output scale of a 30-layer He net fluctuates enough from seed to seed that
unclipped SGD at this learning rate diverges in some seeds. About 1500 steps
are needed for He to separate clearly from Xavier at depth 30 (300, the old
default, do not).
"""

from __future__ import annotations

import math
from typing import Dict, Sequence, Union

import numpy as np

from ._build import init_label, layers_of, resolve_init, seeds as _subseeds
from .._contract import ACTIVATIONS
from ._common import fmt, new_figure
from ._spec import DTYPE, SEED, SEEDS, Arg, Command
from ._trainruns import (TRAINS_BELOW, TrainingComparison, curve, epochs, heldout_loss, label_axes, loss_panel,
                         resolve_seeds, seed_legend, style_of, trains_claim)
from .claims import claim
from .normalization import block_grad_norms

__all__ = ["initialization_study", "target"]

FREQ = 1.0  # the target is sin(FREQ x.v)
PROBE = 256  # samples of the gradient-at-initialization probe
BAND = 10.0  # measured layer-1 / last ratio within this factor of the mean-field value


def target(n: int, features: int, rng, v=None):
    """Inputs N(0, 1) and the target sin(2 x.v) (``v`` a random direction of
    unit scale, drawn from ``rng`` when not given)."""
    if v is None:
        v = rng.standard_normal((features, 1)) / math.sqrt(features)
    x = rng.standard_normal((n, features))
    return x, np.sin(x @ v * FREQ)


def _stream(features, v, batch_size, rng, dt):
    while True:
        x, y = target(batch_size, features, rng, v)
        yield x.astype(dt), y.astype(dt)


def _ratio(p):
    return float(p[0] / p[-1]) if p[-1] > 0 else math.inf


def initialization_study(depth: int = 30, width: int = 32, activation: str = "relu",
                         inits: Sequence = ("xavier", "he"), steps: int = 1500,
                         lr: float = 0.02, n_samples=None, batch_size: int = 32, seed: int = 0,
                         dtype: str = "float32", *, seeds: Union[int, Sequence[int]] = 3, heldout: int = 512,
                         features: int = 16, clip_norm=1.0) -> TrainingComparison:
    """A deep MLP (``depth`` hidden layers of ``width``, ``activation``) per
    initializer in ``inits``, ``steps`` SGD steps at ``lr`` (clipped at
    ``clip_norm``; None: no clipping) on fresh samples every step
    (``n_samples=None``) or on a fixed training set of ``n_samples``, scored
    on ``heldout`` more; ``seeds`` as a count or a list.
    Each run also records the gradient norm at every hidden block's output at
    initialization (``extra["block_grad_norms"]``) and its layer-1 / last
    ratio (``extra["first_last_ratio"]``).

    Claims (when ``inits`` holds "he" and "xavier"): He keeps the backward
    signal through the depth (ratio within 10x of 1); Xavier's decays by more
    than 10x, as mean-field predicts (within 10x of sqrt(chi_1)^(depth-1));
    He's held-out loss ends below 0.5 x the baseline and below Xavier's in
    every seed.

    >>> r = initialization_study(4, 8, steps=10, seeds=1, heldout=32)
    >>> r.labels, len(r["he"].extra["block_grad_norms"])
    (['xavier', 'he'], 4)
    """
    from .. import train as _train
    from ..nn import MLP
    from .theory import mean_field

    from .._contract import int_arg
    from ._build import init_list

    inits = init_list(inits)
    depth = int_arg(depth, "depth", lo=1)
    width = int_arg(width, "width", lo=1)
    steps = int_arg(steps, "steps", lo=1)
    for name, v in (("n_samples", n_samples), ("batch_size", batch_size), ("heldout", heldout)):
        if name == "n_samples" and v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name}: expected an integer >= 1, got {v!r}")
    if n_samples is not None and batch_size > n_samples:
        raise ValueError(f"batch_size: {batch_size} is larger than n_samples = {n_samples}; "
                         f"use a batch_size <= {n_samples} or more samples")
    seed_list = resolve_seeds(seeds, seed)
    dt = np.dtype(dtype)
    labels = [init_label(i) for i in inits]
    if len(set(labels)) != len(labels):
        raise ValueError(f"inits: the initializers must differ, got {labels}")
    fns = [resolve_init(i) for i in inits]
    runs = []
    sigma_w2: Dict[str, list] = {label: [] for label in labels}
    centred = {label: True for label in labels}  # zero-mean weights: mean-field theory applies
    bases = []
    for sd in seed_list:
        s = _subseeds(sd, 4)
        rng = np.random.default_rng(s[0])
        v = rng.standard_normal((features, 1)) / math.sqrt(features)
        xte, yte = (a.astype(dt) for a in target(heldout, features, rng, v))
        xtr, ytr = (a.astype(dt) for a in target(n_samples or batch_size, features, rng, v))
        base = float(np.mean((yte - yte.mean()) ** 2))
        bases.append(base)
        xp = target(PROBE, features, np.random.default_rng(s[3]), v)[0].astype(dt)
        probe = np.random.default_rng(s[3] + 1).standard_normal((PROBE, 1)).astype(dt)
        for label, fn in zip(labels, fns):
            model = MLP([features] + [width] * depth + [1], activation=activation, init=fn, dtype=dtype, seed=s[1])
            ws = [m.p["weight"] for m in layers_of(model)[1:-1]]
            sigma_w2[label].extend(w.shape[1] * float(np.mean(np.square(w, dtype=np.float64))) for w in ws)
            allw = np.concatenate([w.ravel() for w in ws]).astype(np.float64)
            centred[label] &= float(np.mean(allw)) ** 2 < 0.01 * float(np.mean(allw * allw))
            prof = block_grad_norms(model, xp, probe)
            data = (epochs(xtr, ytr, batch_size, np.random.default_rng(s[2])) if n_samples is not None else
                    _stream(features, v, batch_size, np.random.default_rng(s[2]), dt))
            res = _train(model, data, loss="mse", optimizer="sgd", lr=lr, steps=steps, clip_norm=clip_norm,
                          progress=False)
            held = heldout_loss(model, xte, yte, "mse")
            runs.append(curve(label, res, steps, {"block_grad_norms": prof, "first_last_ratio": _ratio(prof),
                                                  "baseline": base, "heldout_ratio": held / base},
                              seed=sd, heldout=held))
    cl = []
    by = {label: [r for r in runs if r.label == label] for label in labels}

    def at_init(label, paper):
        """The mean-field layer-1 / last ratio with the drawn weights, its
        text beside ``paper``, and the measured ratios of every seed."""
        sw = float(np.mean(sigma_w2[label]))
        mf = mean_field(sw, 0.0, activation)
        t = math.sqrt(mf.chi_1) ** (depth - 1)
        rat = [r.extra["first_last_ratio"] for r in by[label]]
        text = f"{paper}sqrt(chi_1)^{depth - 1} = {fmt(t)} (sigma_w^2 = {fmt(sw)}, chi_1 = {fmt(mf.chi_1)})"
        return t, text, "ratio " + ", ".join(fmt(v) for v in rat), rat

    if "he" in by:
        t, theory, measured, rat = at_init("he", "1 (He et al. 2015); mean-field with the drawn weights: ")
        cl.append(claim(f"He: the gradient keeps its scale through the {depth} layers at initialization "
                        f"(layer-1 / last ratio within {BAND:g}x of 1)", theory, measured,
                        all(1 / BAND < v < BAND for v in rat)))
    if "xavier" in by:
        t, theory, measured, rat = at_init("xavier", "Glorot & Bengio 2010, He et al. 2015: ")
        cl.append(claim(f"Xavier: the gradient shrinks through the {depth} layers at initialization, by more "
                        f"than {BAND:g}x and as mean-field theory predicts (within {BAND:g}x)", theory, measured,
                        all(t / BAND < v < min(BAND * t, 1 / BAND) for v in rat)))
    if "he" in by:
        cl.append(trains_claim("He", by["he"], [r.extra["heldout_ratio"] for r in by["he"]],
                               f"< {TRAINS_BELOW:g} x baseline", when=f" ({steps} steps)"))
    if "he" in by and "xavier" in by:
        pairs = [(h.extra["heldout_ratio"], x.extra["heldout_ratio"]) for h, x in zip(by["he"], by["xavier"])]
        cl.append(claim(f"He ends below Xavier on held-out data in every seed ({steps} steps, depth {depth})",
                        "He trains deep ReLU nets that Xavier stalls (He et al. 2015)",
                        "held-out / baseline he vs xavier: " + "; ".join(f"{fmt(a)} vs {fmt(b)}" for a, b in pairs),
                        all(math.isfinite(a) and (not math.isfinite(b) or a < b) for a, b in pairs)))
    params = dict(depth=depth, width=width, activation=activation, inits=labels, steps=steps, lr=lr,
                  n_samples=n_samples, batch_size=batch_size, seed=seed, seeds=seed_list, dtype=dtype,
                  heldout=heldout, features=features)
    title = (f"Initialization study: {depth} x {width} {activation} MLP, SGD lr {lr:g}, {steps} steps, "
             f"{len(seed_list)} seeds")
    caption = (f"Left: training loss of the same deep {activation} network from different initializers, "
               "with each run's held-out loss at the end (relative to the trivial baseline); right: the "
               "gradient norm at every hidden block at initialization, relative to the last, with the "
               "mean-field prediction. He keeps the gradient scale through the depth and trains; Xavier "
               "lets it shrink layer by layer and learns far more slowly; a constant weight makes every unit "
               "of a layer identical.")
    note = ""
    if steps < 600:
        note = (f"note: {steps} steps are too few to separate He from Xavier at depth {depth} reliably "
                "(about 1500 are needed at depth 30; the default run shows it).")
    comp = TrainingComparison("initialization", title, caption, runs, params, float(np.mean(bases)),
                              "predict the training mean; mean over seeds", seed_list, cl, note)
    comp.sigma_w2 = {k: float(np.mean(v)) for k, v in sigma_w2.items() if centred[k]}
    comp._figure_fn = _figure
    return comp


def _figure(comp: TrainingComparison):
    from .theory import mean_field

    fig, (ax1, ax2) = new_figure(ncols=2, width=5.6, height=4.2)
    colors = {label: f"C{i}" for i, label in enumerate(comp.labels)}
    p = comp.params
    rel = [type(r)(**{**r.__dict__, "losses": r.losses / r.extra["baseline"], "heldout": r.extra["heldout_ratio"]})
           for r in comp.runs]
    loss_panel(ax1, rel, colors, comp.seeds, 1.0, "predict the mean",
               f"Initialization study: {p['depth']}-layer {p['activation']} net, loss / baseline",
               max(1, p["steps"] // 50), TRAINS_BELOW, f"{TRAINS_BELOW:g} x baseline (claim)")
    seen = False
    for r in rel:
        if not r.diverged and math.isfinite(r.heldout) and r.heldout > 0:
            ax1.plot([p["steps"] - 1], [r.heldout], marker="*", color=colors[r.label], markersize=9, ls="none",
                     markeredgecolor="k", markeredgewidth=0.5, label=None if seen else "held-out (final weights)")
            seen = True
    ax1.set_ylabel("training loss / baseline (running mean)")
    seed_legend(ax1, comp.seeds, loc="best")
    for r in comp.runs:
        i = comp.seeds.index(r.seed)
        ls, mk = style_of(i)
        prof = r.extra["block_grad_norms"]
        with np.errstate(all="ignore"):
            ax2.semilogy(np.arange(1, len(prof) + 1), prof / prof[-1], color=colors[r.label], ls=ls, marker=mk,
                         markersize=3.5, label=r.label if i == 0 else None)
    d = p["depth"]
    blocks = np.arange(1, d + 1)
    for label, sw in comp.sigma_w2.items():
        chi = mean_field(sw, 0.0, p["activation"]).chi_1
        ax2.semilogy(blocks, math.sqrt(chi) ** (d - blocks), color=colors[label], ls=(0, (1, 1)), lw=2.2,
                     alpha=0.6, label=f"theory {label}: chi_1 = {chi:.3g}")
    label_axes(ax2, "hidden block l (1 = nearest the input)", "||dL/dh_l|| / ||dL/dh_L|| at initialization", "Initialization study: gradient per block at init, relative to the last")
    seed_legend(ax2, comp.seeds, loc="lower right")
    return fig


#: ``gradcore init``
CLI = Command(initialization_study, (
    Arg("depth", "hidden layers", "count"),
    Arg("width", "layer width", "count"),
    Arg("activation", "activation", choices=ACTIVATIONS),
    Arg("inits", "initializers, e.g. xavier he 'constant(0.02)'"),
    Arg("steps", "training steps", "count"),
    Arg("lr", "SGD learning rate", "positive"),
    Arg("n_samples", "a fixed training set of this many samples (default: fresh samples every step)", "count",
        flag="samples"),
    Arg("batch_size", "batch size", "count"),
    SEEDS, SEED, DTYPE,
), report="initialization")
