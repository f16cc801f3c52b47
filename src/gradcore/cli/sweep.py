"""``gradcore sweep CONFIG.toml``: a grid of experiment runs described by a
TOML file (checked key by key against the experiment's signature), run
through :func:`gradcore.experiments.sweep`."""

from __future__ import annotations

import argparse
import functools
import inspect
import os
import sys
from typing import Any, Dict

from ._args import Cmd, UsageError

HELP = "run a grid of experiment runs described by a TOML file"

#: the functions of gradcore.experiments a sweep may name
EXPERIMENTS = ("chain", "depth_profile", "depth_sweep", "bptt_profile", "bptt_sweep", "clipping_study",
               "normalization_study", "initialization_study")
_TOP_KEYS = ("experiment", "n_jobs", "backend", "scheduler", "out", "params", "grid")

SWEEP_HELP = f"""\
CONFIG.toml format:

  experiment = "depth_profile"  # {', '.join(EXPERIMENTS[:5])},
                                # {', '.join(EXPERIMENTS[5:])}
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


def add(p) -> None:
    from ..experiments.sweep import BACKENDS

    p.add_argument("config", metavar="CONFIG.toml", help="the sweep description (see gradcore sweep --help)")
    p.add_argument("--n-jobs", type=int, default=None, help="parallel jobs (overrides the config; -1 = all cores)")
    p.add_argument("--backend", choices=BACKENDS, default=None, help="joblib backend (overrides the config)")
    p.add_argument("--scheduler", default=None, help="Dask scheduler address (or env GRADCORE_DASK_SCHEDULER)")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="write each run to DIR/runs.jsonl as it finishes, then sweep.csv and sweep.json")
    p.add_argument("--resume", action="store_true", help="skip the points DIR/runs.jsonl already holds")
    p.epilog = SWEEP_HELP
    p.formatter_class = argparse.RawDescriptionHelpFormatter


def _experiments():
    from .. import experiments as ex

    return {name: getattr(ex, name) for name in EXPERIMENTS}


def _read_toml(path: str) -> Dict[str, Any]:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib
        except ImportError:
            raise UsageError("reading TOML on Python 3.10 needs tomli: pip install tomli") from None
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: invalid TOML: {exc}") from None


def _check_tables(path: str, name: str, fn, params, grid) -> None:
    valid = list(inspect.signature(fn).parameters)
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


def load_sweep_config(path: str) -> Dict[str, Any]:
    """Read and check a sweep TOML file; raise UsageError naming the bad key."""
    cfg = _read_toml(path)
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
    params = cfg.get("params", {})
    grid = cfg.get("grid", {})
    _check_tables(path, name, fn, params, grid)
    n_jobs = cfg.get("n_jobs", -1)
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0:
        raise UsageError(f"{path}: n_jobs: expected a non-zero integer (-1 = all cores), got {n_jobs!r}")
    backend = cfg.get("backend", "loky")
    from ..experiments.sweep import BACKENDS

    if backend not in BACKENDS:
        raise UsageError(f"{path}: backend: expected one of {', '.join(BACKENDS)}, got {backend!r}")
    for key in ("scheduler", "out"):
        if key in cfg and not isinstance(cfg[key], str):
            raise UsageError(f"{path}: {key}: expected a string, got {cfg[key]!r}")
    return dict(name=name, fn=fn, params=params, grid=grid, n_jobs=n_jobs, backend=backend,
                scheduler=cfg.get("scheduler"), out=cfg.get("out"))


def run(args) -> int:
    from ..experiments.sweep import expand_grid, sweep

    cfg = load_sweep_config(args.config)
    n_jobs = args.n_jobs if args.n_jobs is not None else cfg["n_jobs"]
    backend = args.backend or cfg["backend"]
    out = args.out or cfg["out"]
    if args.resume and not out:
        raise UsageError("--resume needs --out DIR (or out = in the config)")
    points = expand_grid(cfg["grid"])
    print(f"sweep: {cfg['name']} over {len(points)} points, backend {backend}, n_jobs {n_jobs}", flush=True)
    fn = functools.partial(cfg["fn"], **cfg["params"]) if cfg["params"] else cfg["fn"]
    res = sweep(fn, points, n_jobs=n_jobs, backend=backend, scheduler=args.scheduler or cfg["scheduler"], out=out,
                resume=args.resume)
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


COMMANDS = {"sweep": Cmd(HELP, add, run)}
