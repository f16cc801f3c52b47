"""What every ``gradcore`` command shares: the usage error, the value types
the parser checks, the help formatter, the common flags, and the flags an
experiment's :class:`gradcore.experiments._spec.Command` describes (defaults
from the experiment function's signature)."""

from __future__ import annotations

import argparse
import inspect
import math
from typing import Any, Callable, NamedTuple


class UsageError(Exception):
    """Bad flags, values or config: printed as ``gradcore <cmd>: error: ...``, exit 2."""


class Cmd(NamedTuple):
    """A command: its one-line help, ``add(parser)`` adding its flags (may
    import what it describes) and ``run(args) -> exit code``."""

    help: str
    add: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


class Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each flag's default, except None (the help says what it means)."""

    def _get_help_string(self, action):
        if action.default is None:
            return action.help
        return super()._get_help_string(action)


# ---------------------------------------------------------------- arg types
def positive_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {s!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {s!r}")
    return v


def finite(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {s!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {s!r}")
    return v


def positive(s: str) -> float:
    v = finite(s)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {s!r}")
    return v


def nonneg(s: str) -> float:
    v = finite(s)
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {s!r}")
    return v


def clip_norm(s: str):
    if s.lower() in ("none", "off", "no"):
        return None
    return positive(s)


#: the parser type of each kind of :class:`gradcore.experiments._spec.Arg`
TYPES = {"count": positive_int, "int": int, "real": finite, "nonneg": nonneg, "positive": positive,
         "clip": clip_norm, "text": None}


# ------------------------------------------------------------- common flags
def add_threads(p) -> None:
    p.add_argument("--threads", type=positive_int, default=1,
                   help="BLAS threads (the experiments' matrices are small: one thread is fastest and "
                        "does not stall on a busy machine)")


def add_report(p) -> None:
    p.add_argument("--out", metavar="DIR", default=None,
                   help="also write a report (PNG plot, CSV, JSON, index.html) into DIR")
    p.add_argument("--plot", metavar="PATH", default=None, help="also draw the plot to PATH (needs matplotlib)")


def add_spec(p, command) -> None:
    """One flag per :class:`~gradcore.experiments._spec.Arg` of ``command``,
    its default taken from ``command.run``'s signature (dest: the parameter)."""
    sig = inspect.signature(command.run).parameters
    for a in command.args:
        default: Any = sig[a.param].default
        if default is inspect.Parameter.empty:
            raise TypeError(f"{command.run.__name__}: {a.param} has no default")
        if a.kind == "switch":
            p.add_argument(a.option, dest=a.param, action="store_true", default=default, help=a.help)
            continue
        kw: dict = {}
        if a.many or (a.many is None and isinstance(default, (tuple, list))):
            kw["nargs"] = "+"
            default = list(default) if isinstance(default, (tuple, list)) else default
        if a.choices is not None:
            kw["choices"] = tuple(a.choices)
        else:
            kw["metavar"] = a.metavar or (a.flag or a.param).upper()
        p.add_argument(a.option, dest=a.param, type=TYPES[a.kind], default=default, help=a.help, **kw)


def spec_kwargs(command, args) -> dict:
    """The keyword arguments of ``command.run`` from the parsed flags."""
    return {**{a.param: getattr(args, a.param) for a in command.args}, **command.fixed}
