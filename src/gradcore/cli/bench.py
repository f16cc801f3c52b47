"""``gradcore bench``: time the canonical workloads (:mod:`gradcore._bench`)."""

from __future__ import annotations

from ._args import Cmd, add_threads, positive, positive_int

HELP = "time the canonical workloads: gradcore vs NumPy reference vs torch/JAX when installed"


def add(p) -> None:
    p.add_argument("--group", action="append", default=None,
                   help="registry workload group (clip, dense, mlp, ...); repeatable; default all")
    p.add_argument("--only", default=None, help="run only workloads whose name contains this text")
    p.add_argument("--budget", type=positive, default=None,
                   help="seconds of timed calls per implementation (registry; default 0.4, --quick 0.1)")
    p.add_argument("--quick", action="store_true", help="shorter timings / smaller built-in workloads")
    p.add_argument("--builtin", action="store_true",
                   help="use the small built-in workload set even when benchmarks/ is available")
    p.add_argument("--repeat", type=positive_int, default=5, help="timed repetitions of the built-in set")
    add_threads(p)


def run(args) -> int:
    from .._bench import run_bench

    return run_bench(repeat=args.repeat, quick=args.quick, only=args.only, groups=args.group,
                     builtin=args.builtin, budget=args.budget)


COMMANDS = {"bench": Cmd(HELP, add, run)}
