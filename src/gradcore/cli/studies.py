"""``gradcore chain | depth | bptt | clip | normalize | init``: one experiment
with a flag for each of its knobs. The flags, their defaults, choices and
help are the experiment's own (its module's ``CLI`` spec and its function's
signature); the experiment module is imported only when its command runs."""

from __future__ import annotations

import importlib
from functools import partial

from ._args import Cmd, add_report, add_spec, add_threads, spec_kwargs

#: command: (module in gradcore.experiments, one-line help)
STUDIES = {
    "chain": ("chain", "gradient through a chain of 1x1 layers (the textbook table)"),
    "depth": ("depth", "per-layer gradient norms of a deep net against mean-field theory"),
    "bptt": ("bptt", "gradient norm through time in a recurrent net, loss on the last step"),
    "clip": ("clipping", "train the same RNN with and without gradient clipping"),
    "normalize": ("normalization",
                  "a deep net plain / LayerNorm / BatchNorm / residual, and raw 0-255 vs scaled inputs"),
    "init": ("initialization", "Xavier vs He on a deep ReLU net (or any initializers)"),
}


def spec(command: str):
    """The :class:`~gradcore.experiments._spec.Command` behind ``command``."""
    return importlib.import_module(f"gradcore.experiments.{STUDIES[command][0]}").CLI


def emit(result, args, key: str) -> None:
    """Print ``result``'s table; draw ``--plot``; write the ``--out`` report."""
    print(result.table())
    if getattr(args, "plot", None):
        try:
            print(f"plot: {result.plot(args.plot)}")
        except ImportError as exc:
            print(f"no plot: {exc}")
    if getattr(args, "out", None):
        from ..experiments.report import write_report

        rep = write_report({key: result}, args.out, title=f"gradcore {key}")
        print(f"report: {rep.index}" + ("" if rep.plots else ' (no plots: pip install "gradcore[plot]")'))


def _add(command: str, p) -> None:
    add_spec(p, spec(command))
    add_report(p)
    add_threads(p)


def _run(command: str, args) -> int:
    cmd = spec(command)
    emit(cmd.run(**spec_kwargs(cmd, args)), args, cmd.report)
    return 0


COMMANDS = {name: Cmd(help, partial(_add, name), partial(_run, name)) for name, (_, help) in STUDIES.items()}
