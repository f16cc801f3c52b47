"""The ``gradcore`` command line (also ``python -m gradcore``).

``gradcore demo`` runs the six experiments and writes a report;
``gradcore chain | depth | bptt | clip | normalize | init`` run one experiment
with a flag for every knob; ``gradcore sweep CONFIG.toml`` runs a grid;
``gradcore reproduce NAME|all`` runs a classic paper's setup and checks its
claims; ``gradcore bench`` times the canonical workloads against the installed peers;
``gradcore info`` describes the build; ``gradcore doctor CHECKPOINT``
says why a saved model's gradient explodes or vanishes. Exit codes: 0 success, 1 a run failed,
2 bad usage (flags, values or config file).
"""

from __future__ import annotations

import argparse
import inspect
import math
import os
import sys
import time
from typing import Any, Dict, List, Optional

from . import _contract

DEFAULT_OUT = "gradcore-report"


class UsageError(Exception):
    """Bad flags, values or config: printed as ``gradcore <cmd>: error: ...``, exit 2."""


# ---------------------------------------------------------------- arg types
def _positive_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {s!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {s!r}")
    return v


def _finite(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {s!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {s!r}")
    return v


def _positive(s: str) -> float:
    v = _finite(s)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {s!r}")
    return v


def _nonneg(s: str) -> float:
    v = _finite(s)
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {s!r}")
    return v


def _clip_norm(s: str):
    if s.lower() in ("none", "off", "no"):
        return None
    return _positive(s)


ACTS = _contract.ACTIVATIONS
DTYPES = _contract.DTYPES


# ------------------------------------------------------------------- parser
def _add_common(p, dtype="float64", seed=True):
    if seed:
        p.add_argument("--seed", type=int, default=0, help="random seed")
    if dtype:
        p.add_argument("--dtype", choices=DTYPES, default=dtype, help="float32 or float64")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="also write a report (PNG plot, CSV, JSON, index.html) into DIR")
    p.add_argument("--plot", metavar="PATH", default=None, help="also draw the plot to PATH (needs matplotlib)")
    _add_threads(p)


def _add_seeds(p):
    p.add_argument("--seeds", type=_positive_int, default=3, help="number of seeds (--seed, --seed + 1, ...)")


def _add_threads(p):
    p.add_argument("--threads", type=_positive_int, default=1,
                   help="BLAS threads (the experiments' matrices are small: one thread is fastest and "
                        "does not stall on a busy machine)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gradcore",
        description="Study and tame exploding gradients on the CPU. Start with: gradcore demo",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name, help, **kw):
        return sub.add_parser(name, help=help, description=help, formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                              **kw)

    p = add("demo", "run all six explosion experiments, print their tables and write a report")
    p.add_argument("--out", metavar="DIR", default=DEFAULT_OUT, help="report directory")
    p.add_argument("--quick", action="store_true", help="smaller sizes (about 4x faster)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots even when matplotlib is installed")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--full", action="store_true",
                   help="also run every paper reproduction (quick budget; says how long up front) into the report")
    _add_threads(p)

    p = add("chain", "gradient through a chain of 1x1 layers (the textbook table)")
    p.add_argument("--w", type=_finite, nargs="+", default=[0.5, 1.0, 2.0], metavar="W", help="weight(s)")
    p.add_argument("--layers", type=_positive_int, default=5, help="number of layers")
    p.add_argument("--x", type=_finite, default=1.0, help="input value")
    p.add_argument("--activation", choices=ACTS, default="identity", help="activation")
    p.add_argument("--bias", type=_finite, default=0.0, help="bias of every layer")
    p.add_argument("--engine", choices=("auto", "dense", "scalar"), default="auto",
                   help="gradcore.nn.Dense layers (checked against scalar maths) or scalar maths only")
    _add_common(p, dtype=None, seed=False)

    p = add("depth", "per-layer gradient norms of a deep net against mean-field theory")
    p.add_argument("--depth", type=_positive_int, default=30, help="number of layers")
    p.add_argument("--width", type=_positive_int, default=512, help="layer width")
    p.add_argument("--activation", choices=ACTS, nargs="+", default=["relu", "tanh"], help="activation(s)")
    p.add_argument("--init", nargs="+", default=["normal(1.0)", "xavier", "he", "lecun", "orthogonal"],
                   help="initializer(s): a gradcore.init name or call, e.g. he, xavier_uniform, 'normal(1.0)'")
    p.add_argument("--batch", type=_positive_int, default=64, help="batch size")
    _add_common(p)

    p = add("bptt", "gradient norm through time in a recurrent net, loss on the last step")
    p.add_argument("--cell", choices=_contract.CELLS, default="rnn", help="recurrent cell")
    p.add_argument("--T", type=_positive_int, nargs="+", default=[50, 100, 200], help="sequence length(s)")
    p.add_argument("--radius", type=_nonneg, nargs="+", default=[0.9, 0.99, 1.0, 1.01, 1.1],
                   help="spectral radius (radii) of the recurrent weight")
    p.add_argument("--hidden", type=_positive_int, default=32, help="hidden size")
    p.add_argument("--nonlinearity", choices=_contract.RNN_NONLINEARITIES, default="identity",
                   help="RNN nonlinearity")
    p.add_argument("--batch", type=_positive_int, default=1, help="batch size")
    p.add_argument("--input-size", type=_positive_int, default=4, help="input features per step")
    p.add_argument("--engine", choices=("auto", "cell", "numpy"), default="auto",
                   help="gradcore.nn cell or explicit NumPy maths (rnn only)")
    _add_common(p)

    p = add("clip", "train the same RNN with and without gradient clipping")
    p.add_argument("--task", choices=("adding", "adding_hochreiter", "temporal_order", "temporal_order3", "copy"),
                   default="adding", help="sequence task")
    p.add_argument("--T", type=_positive_int, default=30, help="sequence length")
    p.add_argument("--steps", type=_positive_int, default=3000, help="training steps")
    p.add_argument("--clip-norms", type=_clip_norm, nargs="+", default=[None, 1.0], metavar="C",
                   help="clip norms to compare ('none' = no clipping)")
    p.add_argument("--clip-value", type=_positive, default=None, help="also clamp gradient elements")
    p.add_argument("--adaptive", action="store_true",
                   help="add the adaptive arms: AutoClip at the 10th percentile and unit-wise AGC 0.01")
    p.add_argument("--hidden", type=_positive_int, default=32, help="hidden size")
    p.add_argument("--cell", choices=_contract.CELLS, default="rnn", help="recurrent cell")
    p.add_argument("--nonlinearity", choices=_contract.RNN_NONLINEARITIES, default="tanh", help="RNN nonlinearity")
    p.add_argument("--radius", type=_nonneg, default=1.2, help="initial spectral radius of the recurrent weight")
    p.add_argument("--lr", type=_positive, default=0.1, help="SGD learning rate")
    p.add_argument("--batch-size", type=_positive_int, default=32, help="batch size")
    _add_seeds(p)
    _add_common(p, dtype="float32")

    p = add("normalize", "a deep net plain / LayerNorm / BatchNorm / residual, and raw 0-255 vs scaled inputs")
    p.add_argument("--samples", type=_positive_int, default=1024, help="training samples")
    p.add_argument("--features", type=_positive_int, default=64, help="pixels per sample")
    p.add_argument("--hidden", type=_positive_int, nargs="+", default=[64, 64],
                   help="hidden layer sizes of the input-scaling MLP")
    p.add_argument("--steps", type=_positive_int, default=200, help="training steps of the input-scaling runs")
    p.add_argument("--lr", type=_positive, default=0.01, help="SGD learning rate of the input-scaling runs")
    p.add_argument("--batch-size", type=_positive_int, default=32, help="batch size")
    p.add_argument("--depth", type=_positive_int, default=20, help="hidden layers of the deep net")
    p.add_argument("--width", type=_positive_int, default=32, help="width of the deep net")
    p.add_argument("--arch-steps", type=_positive_int, default=400, help="training steps of the deep-net runs")
    p.add_argument("--arch-lr", type=_positive, default=0.1, help="SGD learning rate of the deep-net runs")
    _add_seeds(p)
    _add_common(p, dtype="float32")

    p = add("init", "Xavier vs He on a deep ReLU net (or any initializers)")
    p.add_argument("--depth", type=_positive_int, default=30, help="hidden layers")
    p.add_argument("--width", type=_positive_int, default=32, help="layer width")
    p.add_argument("--activation", choices=ACTS, default="relu", help="activation")
    p.add_argument("--inits", nargs="+", default=["xavier", "he"], help="initializers, e.g. xavier he 'constant(0.02)'")
    p.add_argument("--steps", type=_positive_int, default=1500, help="training steps")
    p.add_argument("--lr", type=_positive, default=0.02, help="SGD learning rate")
    p.add_argument("--samples", type=_positive_int, default=None,
                   help="a fixed training set of this many samples (default: fresh samples every step)")
    p.add_argument("--batch-size", type=_positive_int, default=32, help="batch size")
    _add_seeds(p)
    _add_common(p, dtype="float32")

    from .experiments.reproduce import PAPERS

    p = add("reproduce", "run a classic paper's own setup and check its claims against the paper's numbers")
    p.add_argument("name", choices=PAPERS + ("all",), metavar="NAME",
                   help=f"the paper: {', '.join(PAPERS)}, or all")
    p.add_argument("--full", action="store_true",
                   help="the paper's longer setup (says how long up front) instead of the quick budget")
    p.add_argument("--seeds", type=_positive_int, default=None, help="number of seeds (default: the budget's)")
    p.add_argument("--n-jobs", type=int, default=None, help="worker processes (default: all cores)")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="also write a report (claims, PNG plots, CSV, JSON, index.html) into DIR")
    _add_threads(p)

    p = add("sweep", "run a grid of experiment runs described by a TOML file")
    p.add_argument("config", metavar="CONFIG.toml", help="the sweep description (see gradcore sweep --help)")
    p.add_argument("--n-jobs", type=int, default=None, help="parallel jobs (overrides the config; -1 = all cores)")
    p.add_argument("--backend", choices=("loky", "processes", "threads", "sequential", "dask"), default=None,
                   help="joblib backend (overrides the config)")
    p.add_argument("--scheduler", default=None, help="Dask scheduler address (or env GRADCORE_DASK_SCHEDULER)")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="write each run to DIR/runs.jsonl as it finishes, then sweep.csv and sweep.json")
    p.add_argument("--resume", action="store_true", help="skip the points DIR/runs.jsonl already holds")
    p.epilog = SWEEP_HELP
    p.formatter_class = argparse.RawDescriptionHelpFormatter

    p = add("bench", "time the shipped workloads (gradcore.benchmarks): gradcore vs NumPy reference vs torch/JAX "
                     "when installed, one thread per library")
    from .benchmarks.report import build_parser as add_bench_options

    add_bench_options(p)
    _add_threads(p)

    add("info", "version, SIMD path, BLAS in use")

    p = add("doctor", "why does the gradient explode or vanish? diagnose a checkpoint from gradcore.save on a batch")
    p.add_argument("checkpoint", help="a checkpoint written by gradcore.save (with model_spec metadata, or --model)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--task", choices=sorted(_task_names()), help="draw the batch from a gradcore.tasks task")
    src.add_argument("--data", metavar="FILE.npz", help="an .npz with arrays x and y")
    p.add_argument("--T", type=_positive_int, default=100, help="sequence length (--task)")
    p.add_argument("--batch", type=_positive_int, default=32, help="batch size (--task)")
    p.add_argument("--seed", type=int, default=0, help="task seed (--task)")
    p.add_argument("--model", metavar="JSON", help="model spec (gradcore.doctor.model_spec) when the checkpoint has none")
    p.add_argument("--loss", default=None, help="loss (default: the task's, else mse)")
    p.add_argument("--lr", type=_positive, default=None, help="learning rate to judge (default: the saved optimizer's)")
    p.add_argument("--clip-norm", type=_positive, default=None, help="the clip norm in use, if any")
    p.add_argument("--json", action="store_true", help="print the diagnosis as JSON")
    return parser


def _task_names():
    from .tasks import TASKS

    return list(TASKS)


SWEEP_HELP = """\
CONFIG.toml format:

  experiment = "depth_profile"  # chain, depth_profile, depth_sweep, bptt_profile, bptt_sweep,
                                # clipping_study, normalization_study, initialization_study
  n_jobs = 2                    # optional (default -1: all cores)
  backend = "loky"              # optional: loky (processes), threads, sequential, dask
  scheduler = "tcp://host:8786" # optional, for backend = "dask"
  out = "sweep-results"         # optional: write sweep.csv / sweep.json here

  [params]                      # fixed arguments of the experiment
  depth = 30

  [grid]                        # lists: every combination is run, in order
  init = ["he", "xavier"]
  activation = ["relu", "tanh"]
"""


def _version() -> str:
    try:
        from . import __version__
    except Exception:  # pragma: no cover
        return "gradcore"
    return f"gradcore {__version__}"


# ----------------------------------------------------------------- commands
def _emit(result, args, key: str) -> None:
    print(result.table())
    if getattr(args, "plot", None):
        try:
            print(f"plot: {result.plot(args.plot)}")
        except ImportError as exc:
            print(f"no plot: {exc}")
    if getattr(args, "out", None):
        from .experiments.report import write_report

        rep = write_report({key: result}, args.out, title=f"gradcore {key}")
        print(f"report: {rep.index}" + ("" if rep.plots else ' (no plots: pip install "gradcore[plot]")'))


def cmd_chain(args) -> int:
    from .experiments.chain import ChainTable, chain

    results = [chain(w, args.layers, args.x, args.activation, args.bias, args.engine) for w in args.w]
    _emit(ChainTable(results), args, "chain")
    return 0


def cmd_depth(args) -> int:
    from .experiments.depth import depth_sweep

    _emit(depth_sweep(args.depth, args.width, args.init, args.activation, args.batch, args.seed, args.dtype),
          args, "depth")
    return 0


def cmd_bptt(args) -> int:
    from .experiments.bptt import bptt_sweep

    _emit(bptt_sweep(args.cell, args.radius, args.T, args.hidden, args.nonlinearity, args.batch, args.seed,
                     args.dtype, args.engine, args.input_size), args, "bptt")
    return 0


def cmd_clip(args) -> int:
    from .experiments.training import clipping_study

    arms = None
    if getattr(args, "adaptive", False):
        from .experiments.clipping import ADAPTIVE_ARMS, arms_from

        arms = arms_from(args.clip_norms, args.clip_value) + list(ADAPTIVE_ARMS)
    _emit(clipping_study(args.task, args.T, args.steps, None if arms else args.clip_norms,
                         None if arms else args.clip_value, args.hidden, args.cell,
                         args.nonlinearity, args.radius, args.lr, args.batch_size, args.seed, args.dtype,
                         seeds=args.seeds, arms=arms), args, "clipping")
    return 0


def cmd_normalize(args) -> int:
    from .experiments.training import normalization_study

    _emit(normalization_study(args.samples, args.features, args.hidden, args.steps, args.lr, args.batch_size,
                              args.seed, args.dtype, depth=args.depth, width=args.width, arch_steps=args.arch_steps,
                              arch_lr=args.arch_lr, seeds=args.seeds), args, "normalization")
    return 0


def cmd_init(args) -> int:
    from .experiments.training import initialization_study

    _emit(initialization_study(args.depth, args.width, args.activation, args.inits, args.steps, args.lr,
                               args.samples, args.batch_size, args.seed, args.dtype, seeds=args.seeds),
          args, "initialization")
    return 0


def demo_plan(quick: bool, seed: int = 0):
    """The demo's experiments: (key, description, zero-argument callable)."""
    from . import experiments as ex

    if quick:
        return [
            ("chain", "1x1 chains", lambda: ex.chain_table()),
            ("depth", "deep-net gradient profiles",
             lambda: ex.depth_sweep(20, 128, ("normal(1.0)", "xavier", "he"), ("relu", "tanh"), 16, seed)),
            ("bptt", "BPTT profiles", lambda: ex.bptt_sweep("rnn", (0.9, 1.0, 1.01, 1.1), (50, 100), 16, seed=seed)),
            ("clipping", "clipping study", lambda: ex.clipping_study("adding", 10, 1200, seed=seed)),
            ("normalization", "normalization study",
             lambda: ex.normalization_study(512, 32, (32, 32), 100, seed=seed, depth=12, width=16, arch_steps=200,
                                            heldout=256)),
            ("initialization", "initialization study",
             lambda: ex.initialization_study(30, 32, steps=600, seed=seed, heldout=256)),
        ]
    return [
        ("chain", "1x1 chains", lambda: ex.chain_table()),
        ("depth", "deep-net gradient profiles",
         lambda: ex.depth_sweep(30, 512, ex.depth.DEFAULT_INITS, ("relu", "tanh"), 64, seed)),
        ("bptt", "BPTT profiles", lambda: ex.bptt_sweep("rnn", (0.9, 0.99, 1.0, 1.01, 1.1), (50, 100, 200), 32,
                                                         seed=seed)),
        ("clipping", "clipping study", lambda: ex.clipping_study(seed=seed)),
        ("normalization", "normalization study", lambda: ex.normalization_study(seed=seed)),
        ("initialization", "initialization study", lambda: ex.initialization_study(seed=seed)),
    ]


def cmd_demo(args) -> int:
    from .experiments._common import PLOT_HINT, have_matplotlib
    from .experiments.report import ReportWriter

    t0 = time.perf_counter()
    timings: Dict[str, float] = {}
    plots = not args.no_plots
    # the report directory is made first and each section written as it completes,
    # so a file-system problem shows before any experiment runs and a late failure
    # loses nothing finished
    writer = ReportWriter(args.out, title="gradcore: exploding and vanishing gradients, measured",
                          plots=plots, extra={"quick": bool(args.quick), "full": bool(args.full), "seconds": timings})
    print(f"gradcore demo{' --quick' if args.quick else ''}: six experiments on exploding and vanishing gradients\n")
    for i, (key, what, run) in enumerate(demo_plan(args.quick, args.seed), 1):
        t = time.perf_counter()
        res = run()
        timings[key] = time.perf_counter() - t
        print(f"[{i}/6] {what} ({timings[key]:.1f} s)")
        print(res.table())
        print()
        writer.update_extra({"seconds": timings})
        writer.add(key, res)
    from .doctor.section import doctor_text

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
    from .experiments.reproduce import expected_seconds, reproduce_all

    print(f"paper reproductions (quick budget): about {_duration(expected_seconds('all', 'quick'))} "
          "on 2 idle cores\n")

    def done(r):
        timings[r.name] = r.seconds
        print(r.table())
        print()
        writer.update_extra({"seconds": timings})
        writer.add(r.name, r)

    reproduce_all("quick", on_done=done)


def cmd_reproduce(args) -> int:
    from .experiments.reproduce import PAPERS, expected_seconds, reproduce_all

    budget = "full" if args.full else "quick"
    names = PAPERS if args.name == "all" else (args.name,)
    if args.n_jobs == 0:
        raise UsageError("--n-jobs: expected a non-zero integer (-1 = all cores)")
    est = sum(expected_seconds(n, budget) for n in names)
    print(f"gradcore reproduce {args.name} ({budget} budget): about {_duration(est)} on 2 idle cores\n")

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
        from .experiments.report import write_report

        rep = write_report({r.name: r for r in results}, args.out, title=f"gradcore reproduce {args.name}")
        print(f"report: {rep.index}" + ("" if rep.plots else ' (no plots: pip install "gradcore[plot]")'))
    return 0


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


# -------------------------------------------------------------------- sweep
_TOP_KEYS = ("experiment", "n_jobs", "backend", "scheduler", "out", "params", "grid")


def _experiments():
    from . import experiments as ex

    return {name: getattr(ex, name) for name in ("chain", "depth_profile", "depth_sweep", "bptt_profile",
                                                 "bptt_sweep", "clipping_study", "normalization_study",
                                                 "initialization_study")}


def load_sweep_config(path: str) -> Dict[str, Any]:
    """Read and check a sweep TOML file; raise UsageError naming the bad key."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib
        except ImportError:
            raise UsageError("reading TOML on Python 3.10 needs tomli: pip install tomli") from None
    try:
        with open(path, "rb") as fh:
            cfg = tomllib.load(fh)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: invalid TOML: {exc}") from None
    for key in cfg:
        if key not in _TOP_KEYS:
            raise UsageError(f"{path}: unknown key {key!r}; valid keys: {', '.join(_TOP_KEYS)}")
    exps = _experiments()
    if "experiment" not in cfg:
        raise UsageError(f"{path}: missing key 'experiment' (one of {', '.join(exps)})")
    name = cfg["experiment"]
    if name not in exps:
        raise UsageError(f"{path}: experiment: unknown experiment {name!r}; valid: {', '.join(exps)}")
    fn = exps[name]
    valid = list(inspect.signature(fn).parameters)
    params = cfg.get("params", {})
    grid = cfg.get("grid", {})
    for section, table in (("params", params), ("grid", grid)):
        if not isinstance(table, dict):
            raise UsageError(f"{path}: {section}: expected a table [{section}], got {type(table).__name__}")
        for k, v in table.items():
            if k not in valid:
                raise UsageError(f"{path}: [{section}].{k}: {name} has no parameter {k!r}; valid: {', '.join(valid)}")
            if section == "grid" and (not isinstance(v, list) or not v):
                raise UsageError(f"{path}: [grid].{k}: expected a non-empty list of values, got {v!r}")
    both = set(params) & set(grid)
    if both:
        k = sorted(both)[0]
        raise UsageError(f"{path}: [grid].{k}: also set in [params]; give it in one place")
    if not grid:
        raise UsageError(f"{path}: missing table [grid] (at least one parameter with a list of values)")
    n_jobs = cfg.get("n_jobs", -1)
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0:
        raise UsageError(f"{path}: n_jobs: expected a non-zero integer (-1 = all cores), got {n_jobs!r}")
    backend = cfg.get("backend", "loky")
    from .experiments.sweep import BACKENDS

    if backend not in BACKENDS:
        raise UsageError(f"{path}: backend: expected one of {', '.join(BACKENDS)}, got {backend!r}")
    for key in ("scheduler", "out"):
        if key in cfg and not isinstance(cfg[key], str):
            raise UsageError(f"{path}: {key}: expected a string, got {cfg[key]!r}")
    return dict(name=name, fn=fn, params=params, grid=grid, n_jobs=n_jobs, backend=backend,
                scheduler=cfg.get("scheduler"), out=cfg.get("out"))


def _bind_fixed(fn, params):
    import functools

    return functools.partial(fn, **params) if params else fn


def cmd_sweep(args) -> int:
    from .experiments.sweep import expand_grid, sweep

    cfg = load_sweep_config(args.config)
    n_jobs = args.n_jobs if args.n_jobs is not None else cfg["n_jobs"]
    backend = args.backend or cfg["backend"]
    out = args.out or cfg["out"]
    if args.resume and not out:
        raise UsageError("--resume needs --out DIR (or out = in the config)")
    points = expand_grid(cfg["grid"])
    print(f"sweep: {cfg['name']} over {len(points)} points, backend {backend}, n_jobs {n_jobs}", flush=True)
    res = sweep(_bind_fixed(cfg["fn"], cfg["params"]), points, n_jobs=n_jobs, backend=backend,
                scheduler=args.scheduler or cfg["scheduler"], out=out, resume=args.resume)
    print(res.table())
    if out:
        res.to_csv(os.path.join(out, "sweep.csv"))
        res.to_json(os.path.join(out, "sweep.json"))
        print(f"written: {os.path.join(out, 'runs.jsonl')}, {os.path.join(out, 'sweep.csv')}, "
              f"{os.path.join(out, 'sweep.json')}")
    for r in res.errors:
        print(f"run {r.index} {r.params} failed: {r.error}", file=sys.stderr)
    if res.interrupted:
        kept = f" (kept in {os.path.join(out, 'runs.jsonl')}; run again with --resume)" if out else ""
        print(f"gradcore sweep: interrupted, {len(res)} of {len(points)} runs finished{kept}", file=sys.stderr)
        return 130
    return 1 if res.errors else 0


def cmd_bench(args) -> int:
    from .benchmarks.report import run

    return run(args.group, args.only, args.budget, args.json, threads=args.threads, list_groups=args.list)


def cmd_info(args) -> int:
    from .info import format_info

    print(format_info())
    return 0


def cmd_doctor(args) -> int:
    import numpy as np

    from . import doctor

    if not os.path.exists(args.checkpoint):
        raise UsageError(f"checkpoint {args.checkpoint!r} does not exist")
    model, opt, meta = doctor.from_checkpoint(args.checkpoint, args.model)
    dtype = np.dtype(model.dtype)
    if args.task is not None:
        from .tasks import get_task

        spec = get_task(args.task)
        x, y = next(spec.make(args.T, args.batch, args.seed, dtype))
        if spec.every_step:
            y = y.reshape(-1)
        loss = args.loss or spec.loss
    else:
        try:
            with np.load(args.data, allow_pickle=False) as z:
                if "x" not in z.files or "y" not in z.files:
                    raise UsageError(f"--data {args.data}: expected arrays 'x' and 'y', found {sorted(z.files)}")
                x, y = z["x"], z["y"]
        except (OSError, ValueError) as exc:
            raise UsageError(f"--data {args.data}: cannot read it ({exc})") from None
        x = np.ascontiguousarray(x, dtype=dtype)
        y = np.ascontiguousarray(y, dtype=dtype) if np.issubdtype(y.dtype, np.floating) else y
        loss = args.loss or "mse"
    d = doctor.diagnose(model, x, y, loss=loss, lr=args.lr, optimizer=opt, clipping=args.clip_norm)
    print(d.to_json() if args.json else d.report())
    return 0


COMMANDS = {"doctor": cmd_doctor, "demo": cmd_demo, "chain": cmd_chain, "depth": cmd_depth, "bptt": cmd_bptt, "clip": cmd_clip,
            "normalize": cmd_normalize, "init": cmd_init, "reproduce": cmd_reproduce, "sweep": cmd_sweep, "bench": cmd_bench, "info": cmd_info}


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        threads = getattr(args, "threads", None)
        if threads is None:
            return COMMANDS[args.command](args)
        from .experiments._threads import blas_threads

        with blas_threads(threads):
            return COMMANDS[args.command](args)
    except UsageError as exc:
        print(f"gradcore {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, TypeError) as exc:
        print(f"gradcore {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:
        print(f"gradcore {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except MemoryError as exc:  # sizes too large for this machine (e.g. --T 10000000000)
        print(f"gradcore {args.command}: error: out of memory ({exc or 'allocation failed'}); "
              "use smaller sizes", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gradcore {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`: stop quietly
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 141
    except OSError as exc:  # file-system errors (--out is a file, no permission, disk full): one line
        where = f": {exc.filename}" if exc.filename else ""
        print(f"gradcore {args.command}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
