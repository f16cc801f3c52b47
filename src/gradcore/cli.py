"""The ``gradcore`` command line."""

from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="gradcore", description="Study and tame exploding gradients on the CPU.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="version, SIMD path, BLAS in use")
    args = parser.parse_args(argv)
    if args.command == "info":
        from .info import format_info

        print(format_info())
        return 0
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
