"""``gradcore demo``: the six experiments and a report (``--full``: every
paper reproduction too); ``gradcore reproduce NAME|all``: a classic paper's
setup with its claims checked against the paper's numbers."""

from __future__ import annotations

import time
from typing import Dict

from ._args import Cmd, UsageError, add_threads, positive_int

DEFAULT_OUT = "gradcore-report"


def demo_plan(quick: bool, seed: int = 0):
    """The demo's experiments: (key, description, zero-argument callable).
    The full plan is every experiment at its defaults; ``quick`` shrinks the
    sizes (about 4x faster)."""
    from .. import experiments as ex

    small: Dict[str, dict] = {}
    if quick:
        small = dict(depth=dict(depth=20, width=128, inits=("normal(1.0)", "xavier", "he"), batch=16),
                     bptt=dict(radii=(0.9, 1.0, 1.01, 1.1), lengths=(50, 100), hidden=16),
                     clipping=dict(T=10, steps=1200),
                     normalization=dict(n_samples=512, features=32, hidden=(32, 32), steps=100, depth=12, width=16,
                                        arch_steps=200, heldout=256),
                     initialization=dict(steps=600, heldout=256))
    return [
        ("chain", "1x1 chains", lambda: ex.chain_table()),
        ("depth", "deep-net gradient profiles", lambda: ex.depth_sweep(seed=seed, **small.get("depth", {}))),
        ("bptt", "BPTT profiles", lambda: ex.bptt_sweep(seed=seed, **small.get("bptt", {}))),
        ("clipping", "clipping study", lambda: ex.clipping_study(seed=seed, **small.get("clipping", {}))),
        ("normalization", "normalization study",
         lambda: ex.normalization_study(seed=seed, **small.get("normalization", {}))),
        ("initialization", "initialization study",
         lambda: ex.initialization_study(seed=seed, **small.get("initialization", {}))),
    ]


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def add_demo(p) -> None:
    p.add_argument("--out", metavar="DIR", default=DEFAULT_OUT, help="report directory")
    p.add_argument("--quick", action="store_true", help="smaller sizes (about 4x faster)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots even when matplotlib is installed")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--full", action="store_true",
                   help="also run every paper reproduction (quick budget; says how long up front) into the report")
    add_threads(p)


def run_demo(args) -> int:
    from ..experiments._common import PLOT_HINT, have_matplotlib
    from ..experiments.report import ReportWriter
    from . import demo_plan as plan  # looked up on the package, so it can be replaced there

    t0 = time.perf_counter()
    timings: Dict[str, float] = {}
    plots = not args.no_plots
    # the report directory is made first and each section written as it completes,
    # so a file-system problem shows before any experiment runs and a late failure
    # loses nothing finished
    writer = ReportWriter(args.out, title="gradcore: exploding and vanishing gradients, measured",
                          plots=plots, extra={"quick": bool(args.quick), "full": bool(args.full), "seconds": timings})
    print(f"gradcore demo{' --quick' if args.quick else ''}: six experiments on exploding and vanishing gradients\n")
    for i, (key, what, run) in enumerate(plan(args.quick, args.seed), 1):
        t = time.perf_counter()
        res = run()
        timings[key] = time.perf_counter() - t
        print(f"[{i}/6] {what} ({timings[key]:.1f} s)")
        print(res.table())
        print()
        writer.update_extra({"seconds": timings})
        writer.add(key, res)
    from ..doctor.section import doctor_text

    print(doctor_text({k: r for k, r, _, _ in writer.sections}))
    print()
    if getattr(args, "full", False):
        _demo_reproductions(writer, timings)
    rep = writer.report
    total = time.perf_counter() - t0
    print(f"report written to {rep.out_dir}/ ({len(rep.files)} files): open {rep.index}")
    if plots and not have_matplotlib():
        print(f"no plots drawn: {PLOT_HINT}")
    for key, err in rep.plot_errors.items():
        print(f"plot {key} failed: {err}")
    print(f"total {total:.1f} s")
    return 0


def _demo_reproductions(writer, timings) -> None:
    """``gradcore demo --full``: every paper reproduction at the quick budget,
    each written into the demo's report as soon as it is done."""
    from ..experiments.reproduce import expected_seconds, reproduce_all

    print(f"paper reproductions (quick budget): about {duration(expected_seconds('all', 'quick'))} "
          "on 2 idle cores\n")

    def done(r):
        timings[r.name] = r.seconds
        print(r.table())
        print()
        writer.update_extra({"seconds": timings})
        writer.add(r.name, r)

    reproduce_all("quick", on_done=done)


def add_reproduce(p) -> None:
    from ..experiments.reproduce import PAPERS

    p.add_argument("name", choices=PAPERS + ("all",), metavar="NAME",
                   help=f"the paper: {', '.join(PAPERS)}, or all")
    p.add_argument("--full", action="store_true",
                   help="the paper's longer setup (says how long up front) instead of the quick budget")
    p.add_argument("--seeds", type=positive_int, default=None, help="number of seeds (default: the budget's)")
    p.add_argument("--n-jobs", type=int, default=None, help="worker processes (default: all cores)")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="also write a report (claims, PNG plots, CSV, JSON, index.html) into DIR")
    add_threads(p)


def run_reproduce(args) -> int:
    from ..experiments.reproduce import PAPERS, expected_seconds, reproduce_all

    budget = "full" if args.full else "quick"
    names = PAPERS if args.name == "all" else (args.name,)
    if args.n_jobs == 0:
        raise UsageError("--n-jobs: expected a non-zero integer (-1 = all cores)")
    est = sum(expected_seconds(n, budget) for n in names)
    print(f"gradcore reproduce {args.name} ({budget} budget): about {duration(est)} on 2 idle cores\n")

    def show(r):
        print(r.table())
        print()

    results = reproduce_all(budget, args.seeds, args.n_jobs, names=names, on_done=show)
    if len(results) > 1:
        print("summary:")
        for r in results:
            print(f"  {r.name:16s} {r.verdict:15s} {sum(c['holds'] for c in r.claims)}/{len(r.claims)} claims, "
                  f"{r.seconds:.1f} s")
    if args.out:
        from ..experiments.report import write_report

        rep = write_report({r.name: r for r in results}, args.out, title=f"gradcore reproduce {args.name}")
        print(f"report: {rep.index}" + ("" if rep.plots else ' (no plots: pip install "gradcore[plot]")'))
    return 0


COMMANDS = {
    "demo": Cmd("run all six explosion experiments, print their tables and write a report", add_demo, run_demo),
    "reproduce": Cmd("run a classic paper's own setup and check its claims against the paper's numbers",
                     add_reproduce, run_reproduce),
}
