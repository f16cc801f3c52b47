"""``gradcore bench``: time the workloads shipped in :mod:`gradcore.benchmarks`
(its options and defaults are the report's own, ``report.build_parser``)."""

from __future__ import annotations

from ._args import Cmd, add_threads

HELP = ("time the shipped workloads (gradcore.benchmarks): gradcore vs NumPy reference vs torch/JAX when "
        "installed, one thread per library")


def add(p) -> None:
    from ..benchmarks.report import build_parser

    build_parser(p)
    add_threads(p)


def run(args) -> int:
    from ..benchmarks.report import run as run_report

    return run_report(args.group, args.only, args.budget, args.json, threads=args.threads, list_groups=args.list)


COMMANDS = {"bench": Cmd(HELP, add, run)}
