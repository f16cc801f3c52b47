"""The clipping study: the same recurrent net, trained with plain SGD from
the same seeds and batches, once per *arm* (a way of clipping, or none).

An arm is one declarative :class:`ClipArm` entry: a name, the clip settings
(``clip_norm``, ``clip_value``, or ``clipper``: a factory building a
per-step gradient transform) and what the arm is expected to show
(``expect="trains"``: its held-out loss ends below half the trivial baseline
in every seed; ``"fails"``: every seed diverges or stays near the baseline).
Each arm's claim is computed from its runs.

>>> arms = DEFAULT_ARMS + (ClipArm("clip value 0.1", clip_value=0.1),)
>>> [a.name for a in arms]
['no clipping', 'clip norm 1', 'clip value 0.1']
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import numpy as np

from .._contract import CELLS, RNN_NONLINEARITIES
from ..tasks import TASKS, get_task
from ._build import seeds as _subseeds
from ._common import new_figure
from ._spec import DTYPE, SEED, SEEDS, Arg, Command
from ._trainruns import (FAILS_ABOVE, TRAINS_BELOW, TrainingComparison, curve, failed, fmt_list, heldout_loss,
                         label_axes, loss_panel, resolve_seeds, seed_legend, trains_claim)
from .claims import claim

__all__ = ["ClipArm", "DEFAULT_ARMS", "ADAPTIVE_ARMS", "autoclip_arm", "agc_arm", "clipping_study", "TRAINS_BELOW",
           "FAILS_ABOVE"]



@dataclass(frozen=True)
class ClipArm:
    """One arm of the clipping study.

    ``clip_norm``: clip the global gradient norm to this value (folded into
    the update); ``clip_value``: clamp every gradient element first;
    ``clipper``: a factory ``clipper(model) -> transform`` called once per
    run, where ``transform(grad)`` rescales the flat gradient buffer ``grad``
    in place before each update and returns the pre-clip global norm
    (adaptive schemes keep their history in the transform). ``expect``:
    ``"trains"`` or ``"fails"``; by default an arm that clips trains and one
    that does not fails.
    """

    name: str
    clip_norm: Optional[float] = None
    clip_value: Optional[float] = None
    clipper: Optional[Callable] = None
    expect: Optional[str] = None

    @property
    def clips(self) -> bool:
        return self.clip_norm is not None or self.clip_value is not None or self.clipper is not None

    @property
    def expected(self) -> str:
        e = self.expect or ("trains" if self.clips else "fails")
        if e not in ("trains", "fails"):
            raise ValueError(f"ClipArm {self.name!r}: expect must be 'trains' or 'fails', got {e!r}")
        return e

    @property
    def threshold(self) -> Optional[float]:
        """The norm threshold drawn on the gradient-norm plot (clip_norm)."""
        return self.clip_norm


DEFAULT_ARMS = (ClipArm("no clipping"), ClipArm("clip norm 1", clip_norm=1.0))


def autoclip_arm(percentile: float = 10, history=None, name=None, expect=None) -> ClipArm:
    """An arm clipping at the ``percentile``-th percentile of the norms seen
    so far (:class:`gradcore.AutoClip`, a fresh history per run)."""
    from ..adaptive import AutoClip

    AutoClip(percentile, history)  # validates now

    def clipper(model):
        ac = AutoClip(percentile, history)
        return ac.clip_

    return ClipArm(name or f"autoclip p{percentile:g}", clipper=clipper, expect=expect)


def agc_arm(clipping: float = 0.01, eps: float = 1e-3, name=None, expect=None) -> ClipArm:
    """An arm with unit-wise adaptive gradient clipping
    (:func:`gradcore.adaptive_clip_`: each unit's gradient at most
    ``clipping`` x its weight norm)."""
    from ..adaptive import adaptive_clip_
    from ..clip import global_norm

    def clipper(model):
        params, grads = model.parameters(), model.gradients()

        def transform(grad):
            norm = global_norm(grad)
            adaptive_clip_(params, grads, clipping, eps)
            return norm
        return transform

    return ClipArm(name or f"agc {clipping:g}", clipper=clipper, expect=expect)


#: the adaptive arms, next to fixed clipping: AutoClip (Seetharaman et al.
#: 2020) and unit-wise AGC (Brock et al. 2021); ``gradcore clip --adaptive``.
#: Measured on the default setting (tanh RNN, radius 1.2, adding T = 30, SGD
#: lr 0.1, 3000 steps, seeds 0-2): clip norm 1 held-out 0.033 / 0.047 / 0.052;
#: autoclip p10 2.0e4 (diverged at step 194) / 0.171 / 36 -- its percentile is
#: taken over a history that already holds the first exploding norms, so the
#: threshold climbs with them; agc 0.01 0.127 / 0.157 / 0.147 (finite, but
#: each update is at most 1% of a unit's weight norm: it does not get below
#: half the 0.167 baseline in 3000 steps); agc 0.1 0.066 / 0.139 / 0.043.
#: Their "trains" claims therefore do not hold there.
ADAPTIVE_ARMS = (autoclip_arm(10), agc_arm(0.01))


def _label_clip(c, clip_value):
    if c is None and clip_value is None:
        return "no clipping"
    if c is None:
        return f"clip value {clip_value:g}"
    s = f"clip norm {c:g}"
    return s + (f" + value {clip_value:g}" if clip_value is not None else "")


def arms_from(clip_norms, clip_value=None) -> List[ClipArm]:
    """Arms for a list of clip norms (None = no clipping), each also
    clamping at ``clip_value`` when given."""
    if isinstance(clip_norms, numbers.Real) or clip_norms is None:
        clip_norms = [clip_norms]
    return [ClipArm(_label_clip(c, clip_value), c, clip_value) for c in clip_norms]


class _ClippingOptimizer:
    """An optimizer whose ``step`` first applies an arm's ``clipper``
    transform to the gradient buffer (what :func:`gradcore.train` calls)."""

    def __init__(self, opt, transform, grad):
        self._opt, self._transform, self._grad = opt, transform, grad

    def step(self, clip_norm=None):
        norm = float(self._transform(self._grad))
        self._opt.step(clip_norm=clip_norm)
        return norm


def clipping_study(task: str = "adding", T: int = 30, steps: int = 3000, clip_norms=None,
                   clip_value: Optional[float] = None, hidden: int = 32, cell: str = "rnn",
                   nonlinearity: str = "tanh", spectral_radius: float = 1.2, lr: float = 0.1,
                   batch_size: int = 32, seed: int = 0, dtype: str = "float32", *,
                   arms: Optional[Sequence[ClipArm]] = None, seeds: Union[int, Sequence[int]] = 3,
                   eval_size: int = 1000, adaptive: bool = False) -> TrainingComparison:
    """Train the same recurrent model (same seed, same batches) once per arm
    and seed with plain SGD; the recurrent weight starts at
    ``spectral_radius`` x an orthogonal matrix (above 1: gradients explode).

    ``arms``: :class:`ClipArm` entries (default :data:`DEFAULT_ARMS`: none
    vs clip norm 1); ``clip_norms`` (+ ``clip_value``) builds arms from a
    list of norms instead; ``adaptive`` appends :data:`ADAPTIVE_ARMS`. ``seeds``: a count (``seed``, ``seed + 1``, ...)
    or a list. Each run's final weights are scored on ``eval_size`` fresh
    sequences (``heldout``). Claims: every ``expect="trains"`` arm ends below
    0.5 x the task's trivial baseline in every seed; every ``"fails"`` arm
    diverges or ends above 0.8 x the baseline in every seed.

    >>> r = clipping_study(T=10, steps=20, hidden=8, seeds=2, eval_size=64)
    >>> r.labels, r.seeds, len(r.claims)
    (['no clipping', 'clip norm 1'], [0, 1], 2)
    """
    from .. import optim, train as _train
    from ..monitor import GradMonitor
    from ..nn import Dense
    from ._seq import SequenceModel, make_rnn

    spec = get_task(task)
    if arms is not None and clip_norms is not None:
        raise ValueError("clipping_study: give either arms or clip_norms, not both")
    if arms is None:
        arms = arms_from(clip_norms, clip_value) if clip_norms is not None else (
            arms_from([a.clip_norm for a in DEFAULT_ARMS], clip_value) if clip_value is not None else DEFAULT_ARMS)
    arms = list(arms) + (list(ADAPTIVE_ARMS) if adaptive else [])
    if not arms or not all(isinstance(a, ClipArm) for a in arms):
        raise TypeError("arms: expected a non-empty list of ClipArm entries")
    names = [a.name for a in arms]
    if len(set(names)) != len(names):
        raise ValueError(f"arms: the names must differ, got {names}")
    for a in arms:
        a.expected  # noqa: B018 - validates expect
    if isinstance(eval_size, bool) or not isinstance(eval_size, numbers.Integral) or eval_size < 1:
        raise ValueError(f"eval_size: expected an integer >= 1, got {eval_size!r}")
    seed_list = resolve_seeds(seeds, seed)
    dt = np.dtype(dtype)
    runs = []
    for sd in seed_list:
        s = _subseeds(sd, 4)
        xe, ye = next(spec.make(T, eval_size, s[3], dt))
        if spec.every_step:
            ye = ye.reshape(-1)
        for arm in arms:
            cellm = make_rnn(cell, spec.input_size, hidden, nonlinearity, dtype, s[0], spectral_radius)
            head = Dense(hidden, spec.output_size, dtype=dtype, seed=s[1])
            model = SequenceModel(cellm, head, every_step=spec.every_step)
            data = spec.make(T, batch_size, s[2], dt)
            if spec.every_step:
                data = ((x, y.reshape(-1)) for x, y in data)
            opt: Any = optim.SGD(model, lr=lr)
            if arm.clipper is not None:
                opt = _ClippingOptimizer(opt, arm.clipper(model), model.flat_gradients())
            mon = GradMonitor(model)
            res = _train(model, data, loss=spec.loss, optimizer=opt, steps=steps, clip_norm=arm.clip_norm,
                         clip_value=arm.clip_value, monitor=mon, progress=False)
            first: Dict[str, int] = {}
            for e in mon.events:
                first.setdefault(e.kind, e.step)
            held = heldout_loss(model, xe, ye, spec.loss)
            runs.append(curve(arm.name, res, steps, {"events": [str(e) for e in mon.events],
                                                      "first_event_step": first}, seed=sd, heldout=held))
    base = spec.baseline(T).loss
    result_claims = []
    for arm in arms:
        rs = [r for r in runs if r.label == arm.name]
        ratios = [r.heldout / base for r in rs]
        if arm.expected == "trains":
            result_claims.append(trains_claim(
                arm.name, rs, ratios,
                f"< {TRAINS_BELOW * base:.4g} ({TRAINS_BELOW:g} x baseline {base:.4g}); clipping lets SGD train "
                "through exploding gradients (Pascanu et al. 2013)",
                f"held-out {fmt_list([r.heldout for r in rs])}"
                + "".join(f"; seed {r.seed} diverged at step {r.diverged_step}" for r in rs if r.diverged)))
        else:
            what = [f"seed {r.seed} diverged at step {r.diverged_step}" if r.diverged else
                    f"seed {r.seed} held-out {r.heldout:.4g}" for r in rs]
            result_claims.append(claim(
                f"{arm.name}: every seed diverges or stays at the trivial baseline",
                f"diverges, or held-out > {FAILS_ABOVE * base:.4g} ({FAILS_ABOVE:g} x baseline {base:.4g})",
                "; ".join(what), failed(rs, ratios)))
    params = dict(task=task, T=T, steps=steps, arms=[a.name for a in arms],
                  clip_norms=[a.clip_norm for a in arms], clip_value=clip_value, hidden=hidden, cell=cell,
                  nonlinearity=nonlinearity, spectral_radius=spectral_radius, lr=lr, batch_size=batch_size,
                  seed=seed, seeds=seed_list, dtype=dtype, eval_size=eval_size)
    title = (f"Clipping study: {cell} ({nonlinearity}, radius {spectral_radius:g}) on {task}, T = {T}, "
             f"SGD lr {lr:g}, {steps} steps, {len(seed_list)} seeds")
    caption = ("Training loss and pre-clip gradient norm of the same recurrent net from the same seeds, "
               "with and without gradient clipping: without it the exploding gradient throws the weights "
               "off until the loss is Inf/NaN (a cross marks the step); clipping by norm bounds every update "
               "and the net learns the task, ending well below the trivial baseline on held-out sequences. "
               "The dashed horizontal lines on the norm plot are the clip thresholds.")
    note = ""
    if steps < 2000 and any(a.expected == "trains" for a in arms):
        note = (f"note: {steps} steps are too few for SGD to learn {task} at T = {T}; the clipped runs stay "
                "finite but need about 3000 steps to beat the baseline (the default run shows it).")
    comp = TrainingComparison("clipping", title, caption, runs, params, base, spec.baseline(T).predictor,
                              seed_list, result_claims, note)
    comp._figure_fn = lambda c: _figure(c, arms)
    return comp


def _figure(comp: TrainingComparison, arms: Sequence[ClipArm]):
    fig, (ax1, ax2) = new_figure(ncols=2, width=5.6, height=4.0)
    colors = {a.name: f"C{i}" for i, a in enumerate(arms)}
    steps = comp.params["steps"]
    window = max(1, steps // 60)
    assert comp.baseline is not None
    loss_panel(ax1, comp.runs, colors, comp.seeds, comp.baseline, comp.baseline_label,
               "Clipping study: training loss; held-out loss at the end", window,
               TRAINS_BELOW * comp.baseline, f"{TRAINS_BELOW:g} x baseline (claim)")
    seen = set()
    for r in comp.runs:
        i = comp.seeds.index(r.seed)
        if not r.diverged and math.isfinite(r.heldout) and r.heldout > 0:
            held_label = "held-out loss (final weights)" if "held" not in seen else None
            seen.add("held")
            ax1.plot([steps - 1], [r.heldout], marker="*", color=colors[r.label], markersize=9, ls="none",
                     markeredgecolor="k", markeredgewidth=0.5, label=held_label)
    seed_legend(ax1, comp.seeds, loc="lower left")
    from ._trainruns import style_of
    for r in comp.runs:
        i = comp.seeds.index(r.seed)
        ls, mk = style_of(i)
        with np.errstate(all="ignore"):
            ax2.semilogy(np.arange(len(r.grad_norms)), r.grad_norms, color=colors[r.label], ls=ls, lw=0.8,
                         alpha=0.8, label=r.label if i == 0 else None)
    for a in arms:
        if a.threshold is not None:
            ax2.axhline(a.threshold, color=colors[a.name], ls="--", lw=1.5,
                        label=f"{a.name}: threshold {a.threshold:g}")
    label_axes(ax2, "step", "global gradient norm (before clipping)", "Clipping study: gradient norm before clipping, clip thresholds")
    seed_legend(ax2, comp.seeds, loc="upper right")
    return fig


#: ``gradcore clip``
CLI = Command(clipping_study, (
    Arg("task", "sequence task", choices=tuple(TASKS)),
    Arg("T", "sequence length", "count"),
    Arg("steps", "training steps", "count"),
    Arg("clip_norms", "clip norms to compare ('none' = no clipping; default: "
        + ", ".join(a.name for a in DEFAULT_ARMS) + ")", "clip", many=True, metavar="C"),
    Arg("clip_value", "also clamp gradient elements", "positive"),
    Arg("adaptive", "add the adaptive arms: " + ", ".join(a.name for a in ADAPTIVE_ARMS), "switch"),
    Arg("hidden", "hidden size", "count"),
    Arg("cell", "recurrent cell", choices=CELLS),
    Arg("nonlinearity", "RNN nonlinearity", choices=RNN_NONLINEARITIES),
    Arg("spectral_radius", "initial spectral radius of the recurrent weight", "nonneg", flag="radius"),
    Arg("lr", "SGD learning rate", "positive"),
    Arg("batch_size", "batch size", "count"),
    SEEDS, SEED, DTYPE,
), report="clipping")
