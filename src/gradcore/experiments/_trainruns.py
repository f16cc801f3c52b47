"""What the training studies share: one :class:`RunCurve` per (setting,
seed), the :class:`TrainingComparison` result (claims, verdict, seeds, table,
plot), minibatch epochs over a fixed data set and held-out evaluation."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

from ._common import ExperimentResult, fmt, label_axes, text_table
from .claims import claim, claims_table, verdict as _verdict

#: a setting "trains" when its held-out loss ends below this x the trivial baseline in every seed
TRAINS_BELOW = 0.5
#: a setting "fails" when every seed diverges or ends above this x the trivial baseline
FAILS_ABOVE = 0.8


def fmt_list(vals) -> str:
    """``"0.1, 0.25"``: numbers of a claim's measured text."""
    return ", ".join(fmt(v) for v in vals)


def trained(runs, ratios) -> bool:
    """Every run ended finite, without diverging, with held-out / baseline
    (``ratios``, one per run) below :data:`TRAINS_BELOW`."""
    return all(not r.diverged and math.isfinite(v) and v < TRAINS_BELOW for r, v in zip(runs, ratios))


def failed(runs, ratios) -> bool:
    """Every run diverged, or ended with held-out / baseline above :data:`FAILS_ABOVE`."""
    return all(r.diverged or not math.isfinite(v) or v > FAILS_ABOVE for r, v in zip(runs, ratios))


def trains_claim(name: str, runs, ratios, paper: str, measured: Optional[str] = None, when: str = ""):
    """The claim that setting ``name`` trains (:func:`trained`); ``measured``
    defaults to the held-out / baseline ratios, ``when`` follows "in every
    seed" (e.g. " (400 steps)")."""
    return claim(f"{name}: the held-out loss ends below {TRAINS_BELOW:g} x the trivial baseline in every seed{when}",
                 paper, "held-out / baseline " + fmt_list(ratios) if measured is None else measured,
                 trained(runs, ratios))


__all__ = ["RunCurve", "TrainingComparison", "epochs", "resolve_seeds", "heldout_loss", "curve",
           "DIVERGE_FACTOR", "SEED_STYLES"]

DIVERGE_FACTOR = 1e3  # loss above this many times the first loss counts as diverged
SEED_STYLES = ("-", "--", ":", "-.")  # one line style per seed in every plot
SEED_MARKERS = ("o", "s", "^", "D", "v", "P")


@dataclass
class RunCurve:
    """One training run: ``losses`` and pre-clip ``grad_norms`` per step
    (NaN after the run stopped), ``diverged_step`` (first step whose loss was
    non-finite or above 1000 x the first loss; None if never), ``nan_step``
    (the step training stopped on a non-finite value; None if never), the
    stop message, the ``seed`` and ``heldout`` (the loss of the final
    weights on data never trained on; NaN when not measured)."""

    label: str
    losses: np.ndarray
    grad_norms: np.ndarray
    diverged_step: Optional[int]
    nan_step: Optional[int]
    message: str
    extra: Dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    heldout: float = math.nan
    group: str = ""

    @property
    def final_loss(self) -> float:
        """The last finite training (minibatch) loss."""
        fin = self.losses[np.isfinite(self.losses)]
        return float(fin[-1]) if fin.size else math.nan

    @property
    def best_loss(self) -> float:
        fin = self.losses[np.isfinite(self.losses)]
        return float(fin.min()) if fin.size else math.nan

    @property
    def diverged(self) -> bool:
        return self.diverged_step is not None


def curve(label: str, result, steps: int, extra=None, seed: int = 0, heldout: float = math.nan,
          group: str = "") -> RunCurve:
    """A :class:`RunCurve` from a :class:`gradcore.TrainResult` of ``steps`` steps."""
    losses = np.full(steps, math.nan)
    norms = np.full(steps, math.nan)
    n = len(result.losses)
    losses[:n] = result.losses
    norms[:n] = result.grad_norms
    diverged = None
    if n:
        bad = np.flatnonzero(~np.isfinite(result.losses)
                             | (result.losses > DIVERGE_FACTOR * max(result.losses[0], 1e-12)))
        if bad.size:
            diverged = int(bad[0])
    nan_step = result.stop_step if result.stopped else None
    if diverged is None and nan_step is not None:
        diverged = nan_step
    extra = dict(extra or {})
    if diverged is not None or getattr(result, "_doctor", None) is not None:
        from ..doctor.section import run_diagnosis

        extra["diagnosis"] = run_diagnosis(result)
    return RunCurve(label, losses, norms, diverged, nan_step, result.message, extra, int(seed),
                    float(heldout), group)


def resolve_seeds(seeds: Union[int, Sequence[int]], seed: int = 0) -> List[int]:
    """``seeds`` as a count (``seed, seed + 1, ...``) or an explicit list."""
    if isinstance(seeds, (bool, np.bool_)):
        raise TypeError(f"seeds: expected a count >= 1 or a list of integer seeds, got {seeds!r}")
    if isinstance(seeds, (int, np.integer)):
        if seeds < 1:
            raise ValueError(f"seeds: expected a count >= 1, got {seeds}")
        return [int(seed) + i for i in range(int(seeds))]
    out = [int(s) for s in seeds]
    if not out:
        raise ValueError("seeds: expected at least one seed")
    if len(set(out)) != len(out):
        raise ValueError(f"seeds: the seeds must differ, got {out}")
    return out


def epochs(x, y, batch_size: int, rng):
    """Endless shuffled minibatches of ``(x, y)``; the last partial batch of
    each epoch is dropped. ``batch_size`` may not exceed the number of
    samples (there would be no full batch: a clear error, not a hang)."""
    n = len(x)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size: expected an integer >= 1, got {batch_size!r}")
    if batch_size > n:
        raise ValueError(f"batch_size: {batch_size} is larger than the {n} training samples; "
                         f"use a batch_size <= {n} or more samples")
    return _epochs(x, y, int(batch_size), rng)


def _epochs(x, y, batch_size, rng):
    n = len(x)
    while True:
        perm = rng.permutation(n)
        for i in range(0, n - batch_size + 1, batch_size):
            idx = perm[i:i + batch_size]
            yield x[idx], y[idx]


def heldout_loss(model, x, y, loss, chunk: int = 1024) -> float:
    """Mean loss of ``model`` on ``(x, y)`` in eval mode (BatchNorm uses its
    running statistics), in chunks of ``chunk`` samples along the batch
    axis (0 for feature rows, 1 for time-major sequences ``(T, B, I)``; a
    sequence target on every step, ``(T * B,)``, is scored in one pass)."""
    from ..train import _loss_fn

    fn = _loss_fn(loss)
    was = getattr(model, "training", True)
    model.eval()
    try:
        seq = x.ndim == 3
        n = x.shape[1] if seq else x.shape[0]
        if len(y) != n:
            chunk = n
        total = 0.0
        with np.errstate(all="ignore"):
            for i in range(0, n, chunk):
                xb = np.ascontiguousarray(x[:, i:i + chunk] if seq else x[i:i + chunk])
                yb = y[i:i + chunk] if chunk < n else y
                L, _ = fn(model.forward(xb), yb)
                total += float(L) * min(chunk, n - i)
        return total / n
    finally:
        model.train(was)


def running_mean(v: np.ndarray, w: int) -> np.ndarray:
    """Trailing running mean over ``w`` steps (NaN where the run had stopped)."""
    if w <= 1:
        return v
    out = np.full(len(v), math.nan)
    fin = np.isfinite(v)
    n = int(np.flatnonzero(fin)[-1]) + 1 if fin.any() else 0
    if n == 0:
        return out
    c = np.cumsum(np.where(fin[:n], v[:n], 0.0))
    k = np.cumsum(fin[:n].astype(float))
    lo = np.maximum(np.arange(n) - w, -1)
    s = c - np.where(lo >= 0, c[np.maximum(lo, 0)], 0.0)
    m = k - np.where(lo >= 0, k[np.maximum(lo, 0)], 0.0)
    with np.errstate(all="ignore"):
        out[:n] = s / m
    return out


class TrainingComparison(ExperimentResult):
    """Several training runs of the same model and data: one per (setting,
    seed). ``runs`` lists every :class:`RunCurve`, ``labels`` the settings
    in order, ``seeds`` the seeds; ``claims`` / ``verdict`` say what the
    study claims and whether this run shows it. ``result[label]`` is the
    first seed's run of that setting, ``result.of(label)`` all of them."""

    # set by the studies that measure them (initialization / normalization)
    sigma_w2: Any
    profiles: Any
    theory_ratio: Any
    chi_1: Any

    def __init__(self, name: str, title: str, caption: str, runs: List[RunCurve], params,
                 baseline: Optional[float] = None, baseline_label: str = "", seeds: Sequence[int] = (0,),
                 claims: Optional[List[Dict[str, Any]]] = None, note: str = ""):
        self.name = name
        self.title = title
        self._caption = caption
        self.runs = runs
        self.params = params
        self.baseline = baseline
        self.baseline_label = baseline_label
        self.seeds = list(seeds)
        self.claims = list(claims or [])
        self.note = note
        self._figure_fn: Optional[Any] = None

    @property
    def verdict(self) -> str:
        return _verdict(self.claims)

    @property
    def labels(self) -> List[str]:
        out: List[str] = []
        for r in self.runs:
            if r.label not in out:
                out.append(r.label)
        return out

    def of(self, label: str) -> List[RunCurve]:
        """Every seed's run of the setting ``label``."""
        runs = [r for r in self.runs if r.label == label]
        if not runs:
            raise KeyError(f"no run labelled {label!r}; runs: {self.labels}")
        return runs

    def __getitem__(self, label: str) -> RunCurve:
        return self.of(label)[0]

    def rows(self):
        header = ["setting", "seed", "step", "loss", "grad_norm"]
        rows = []
        for r in self.runs:
            rows.extend([r.label, r.seed, i, r.losses[i], r.grad_norms[i]] for i in range(len(r.losses)))
        return header, rows

    def runs_table(self) -> str:
        header = ["setting", "seed", "first loss", "final train loss", "held-out loss", "max grad norm",
                  "diverged at"]
        rows = []
        for r in self.runs:
            g = r.grad_norms[np.isfinite(r.grad_norms)]
            rows.append([r.label, r.seed, r.losses[0], r.final_loss, r.heldout,
                         float(g.max()) if g.size else math.nan, r.diverged_step])
        if any("first_event_step" in r.extra for r in self.runs):
            header.append("monitor flagged")
            for row, r in zip(rows, self.runs):
                first = r.extra.get("first_event_step", {})
                row.append(", ".join(f"{k} at {v}" for k, v in sorted(first.items(), key=lambda kv: kv[1]))
                           or "nothing")
        return text_table(header, rows)

    def table(self) -> str:
        parts = [self.title, claims_table(self.claims), f"verdict: {self.verdict} (seeds {self.seeds})"]
        if self.note:
            parts.append(self.note)
        parts.append(self.runs_table())
        if self.baseline is not None:
            parts.append(f"trivial baseline ({self.baseline_label}): loss {fmt(self.baseline)}")
        return "\n".join(parts)

    def metrics(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        for label in self.labels:
            runs = self.of(label)
            key = label.replace(" ", "_").replace("=", "")
            held = [r.heldout for r in runs]
            out[f"{key}_heldout_median"] = float(np.median(held)) if all(map(math.isfinite, held)) else math.nan
            out[f"{key}_final_loss"] = runs[0].final_loss
            out[f"{key}_diverged_seeds"] = sum(r.diverged for r in runs)
        out["claims_held"] = sum(c["holds"] for c in self.claims)
        out["claims"] = len(self.claims)
        out["verdict"] = self.verdict
        return out

    def to_dict(self) -> Dict[str, Any]:
        d = super().to_dict()
        d.update(claims=self.claims, verdict=self.verdict, seeds=self.seeds,
                 runs=[{"setting": r.label, "seed": r.seed, "group": r.group, "heldout": r.heldout,
                        "diverged_step": r.diverged_step, "message": r.message} for r in self.runs])
        from ._common import jsonable
        return jsonable(d)

    def caption(self) -> str:
        return self._caption

    def _figure(self):
        return (self._figure_fn or default_figure)(self)


def style_of(seed_index: int):
    """Line style and marker of the ``seed_index``-th seed."""
    return SEED_STYLES[seed_index % len(SEED_STYLES)], SEED_MARKERS[seed_index % len(SEED_MARKERS)]


def seed_legend(ax, seeds: Sequence[int], **kw):
    """A legend on ``ax`` with one entry per line label plus one grey entry
    per seed explaining the line styles."""
    from matplotlib.lines import Line2D

    handles, labels = ax.get_legend_handles_labels()
    for i, s in enumerate(seeds):
        ls, mk = style_of(i)
        handles.append(Line2D([], [], color="0.4", ls=ls, marker=mk, markersize=4))
        labels.append(f"seed {s}")
    ax.legend(handles, labels, fontsize=7, **kw)


def loss_panel(ax, runs: Sequence[RunCurve], colors: Dict[str, str], seeds: Sequence[int], baseline, base_label,
               title: str, window: int, target: Optional[float] = None, target_label: str = ""):
    """Running-mean training loss of ``runs`` (colour per setting, line style
    and a marker every ~1/8 of the run per seed), the held-out loss as a
    marker at the last step, a cross where a run diverged, the baseline."""
    # keep the runs that trained readable: the axis ends at 10x the largest
    # value of a run that did not diverge (or of the baseline); diverged runs
    # leave the plot through the top edge, a cross marks where they diverged
    tame = [running_mean(r.losses, window) for r in runs if r.diverged_step is None]
    peaks = [float(np.nanmax(v)) for v in tame if np.isfinite(v).any()] + ([baseline] if baseline else [])
    top = 10 * max(peaks) if peaks else None
    seen = set()
    for r in runs:
        i = seeds.index(r.seed) if r.seed in seeds else 0
        ls, mk = style_of(i)
        c = colors[r.label]
        y = running_mean(r.losses, window)
        steps = np.arange(len(y))
        n = len(y)
        every = max(1, n // 8)
        label = r.label if r.label not in seen else None
        if label and r.diverged_step is not None and top is not None:
            label += " (diverged: off scale)"
        seen.add(r.label)
        with np.errstate(all="ignore"):
            ax.semilogy(steps, y, color=c, ls=ls, lw=1.2, marker=mk, markevery=(i * every // 4 + every // 2, every),
                        markersize=3.5, label=label)
        if r.diverged_step is not None:
            k = min(r.diverged_step, n - 1)
            yv = top if top is not None else (r.losses[k - 1] if k > 0 and math.isfinite(r.losses[k - 1]) else 1.0)
            ax.plot([k], [yv], marker="x", color=c, markersize=8, mew=2, ls="none", clip_on=False)
    if top is not None:
        ax.set_ylim(top=top)
    if baseline is not None:
        ax.axhline(baseline, color="k", ls="--", lw=1, label=f"trivial baseline ({base_label})")
    if target is not None:
        ax.axhline(target, color="0.5", ls=":", lw=1, label=target_label)
    if any(r.diverged_step is not None for r in runs):
        ax.plot([], [], marker="x", color="k", ls="none", label="diverged here")
    label_axes(ax, "step", f"training loss (mean of {window} steps)" if window > 1 else "training loss", title)


def default_figure(comp: TrainingComparison):
    """Two panels: running-mean training loss and pre-clip gradient norm of
    every run (colour per setting, line style per seed)."""
    from ._common import new_figure

    fig, (ax1, ax2) = new_figure(ncols=2, width=5.6, height=4.0)
    colors = {label: f"C{i}" for i, label in enumerate(comp.labels)}
    steps = max(len(r.losses) for r in comp.runs)
    what = comp.title.split(":")[0]
    loss_panel(ax1, comp.runs, colors, comp.seeds, comp.baseline, comp.baseline_label,
               f"{what}: training loss", max(1, steps // 60))
    seed_legend(ax1, comp.seeds)
    for r in comp.runs:
        ls, _ = style_of(comp.seeds.index(r.seed) if r.seed in comp.seeds else 0)
        with np.errstate(all="ignore"):
            ax2.semilogy(np.arange(len(r.grad_norms)), r.grad_norms, color=colors[r.label], ls=ls, lw=0.8,
                         label=r.label if r.seed == comp.seeds[0] else None)
    label_axes(ax2, "step", "global gradient norm", f"{what}: gradient norm")
    seed_legend(ax2, comp.seeds)
    return fig
