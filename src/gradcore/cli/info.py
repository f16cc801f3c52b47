"""``gradcore info``: version, SIMD path, BLAS in use."""

from __future__ import annotations

from ._args import Cmd


def run(args) -> int:
    from ..info import format_info

    print(format_info())
    return 0


COMMANDS = {"info": Cmd("version, SIMD path, BLAS in use", lambda p: None, run)}
