"""The ``gradcore`` command line (also ``python -m gradcore``).

``gradcore demo`` runs the six experiments and writes a report;
``gradcore chain | depth | bptt | clip | normalize | init`` run one experiment
with a flag for every knob (:mod:`.studies`: the experiments' own specs);
``gradcore sweep CONFIG.toml`` runs a grid; ``gradcore reproduce NAME|all``
runs a classic paper's setup and checks its claims; ``gradcore bench`` times
the canonical workloads against the installed peers; ``gradcore info``
describes the build; ``gradcore doctor CHECKPOINT`` says why a saved model's
gradient explodes or vanishes. Exit codes: 0 success, 1 a run failed, 2 bad
usage (flags, values or config file), 130 interrupted.

Only the command being run gets its flags (and imports what they describe),
so ``gradcore --help`` does not import the experiments.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Dict, Iterable, List, Optional

from . import bench, demo, doctor, info, studies, sweep
from ._args import Cmd, Formatter, UsageError
from .demo import DEFAULT_OUT, demo_plan
from .sweep import SWEEP_HELP, load_sweep_config

__all__ = ["main", "build_parser", "demo_plan", "load_sweep_config", "UsageError", "COMMANDS", "DEFAULT_OUT",
           "SWEEP_HELP"]

#: every command, in the order ``gradcore --help`` lists them
_ALL = {**demo.COMMANDS, **studies.COMMANDS, **sweep.COMMANDS, **bench.COMMANDS, **info.COMMANDS, **doctor.COMMANDS}
COMMANDS: Dict[str, Cmd] = {name: _ALL[name] for name in ("demo", *studies.STUDIES, "reproduce", "sweep", "bench",
                                                          "info", "doctor")}


def _version() -> str:
    try:
        from .. import __version__
    except Exception:  # pragma: no cover
        return "gradcore"
    return f"gradcore {__version__}"


def build_parser(commands: Optional[Iterable[str]] = None) -> argparse.ArgumentParser:
    """The parser; only the flags of ``commands`` are added (None: all)."""
    wanted = set(COMMANDS) if commands is None else set(commands)
    parser = argparse.ArgumentParser(
        prog="gradcore", description="Study and tame exploding gradients on the CPU. Start with: gradcore demo",
        formatter_class=Formatter)
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, cmd in COMMANDS.items():
        p = sub.add_parser(name, help=cmd.help, description=cmd.help, formatter_class=Formatter)
        if name in wanted:
            cmd.add(p)
    return parser


def _command_of(argv: List[str]) -> Optional[str]:
    """The command word of ``argv`` (the first word that is not an option)."""
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser([c for c in (_command_of(argv),) if c])
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        threads = getattr(args, "threads", None)
        if threads is None:
            return COMMANDS[args.command].run(args)
        from ..experiments._threads import blas_threads

        with blas_threads(threads):
            return COMMANDS[args.command].run(args)
    except (UsageError, ValueError, TypeError) as exc:
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
