"""How an experiment offers itself on the command line.

Each experiment module exports ``CLI``, a :class:`Command`: the function the
``gradcore <command>`` run calls, the parameters it exposes as flags (help
text, kind of value, choices) and the keyword arguments it fixes. A flag's
default is the parameter's default in the function's signature, so it is
written once, in the experiment. The kinds are checked by the parser:
``count`` (integer >= 1), ``int``, ``real`` (finite), ``nonneg`` (finite,
>= 0), ``positive`` (finite, > 0), ``clip`` (``positive`` or ``none``),
``text``, ``switch`` (a flag without a value).

>>> a = Arg("batch_size", "batch size", "count")
>>> a.option, a.kind
('--batch-size', 'count')
"""

from __future__ import annotations

from typing import Any, Callable, Dict, NamedTuple, Optional, Sequence, Tuple

from .._contract import DTYPES

KINDS = ("count", "int", "real", "nonneg", "positive", "clip", "text", "switch")


class Arg(NamedTuple):
    """One parameter of an experiment function as a command-line flag."""

    param: str
    help: str
    kind: str = "text"
    flag: Optional[str] = None  #: the flag's name without ``--`` (default: ``param`` with ``-`` for ``_``)
    choices: Optional[Sequence[str]] = None
    many: Optional[bool] = None  #: one or more values (default: when the signature's default is a tuple or list)
    metavar: Optional[str] = None

    @property
    def option(self) -> str:
        return "--" + (self.flag or self.param.replace("_", "-"))


class Command(NamedTuple):
    """An experiment's command: ``run(**flags, **fixed)``, its result
    reported under ``report``."""

    run: Callable[..., Any]
    args: Tuple[Arg, ...]
    report: str
    fixed: Dict[str, Any] = {}


#: flags shared by the experiments that take them
SEED = Arg("seed", "random seed", "int")
DTYPE = Arg("dtype", "float32 or float64", choices=DTYPES)
SEEDS = Arg("seeds", "number of seeds (--seed, --seed + 1, ...)", "count")
