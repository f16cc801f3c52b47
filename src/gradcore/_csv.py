"""One CSV writer for every table gradcore writes (experiment results,
sweeps, monitor histories): floats as ``repr`` (round-trip exact, ``nan`` /
``inf`` kept), NumPy integers as ints."""

from __future__ import annotations

import csv
import os
from typing import Any, Sequence

import numpy as np


def write_csv(path, header: Sequence[str], rows: Sequence[Sequence[Any]], bools_as_int: bool = False) -> str:
    """Write ``header`` and ``rows`` to ``path`` (``bools_as_int``: True /
    False as 1 / 0); returns the path."""
    ints = (np.integer, np.bool_, bool) if bools_as_int else (np.integer,)
    path = os.fspath(path)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for r in rows:
            w.writerow([repr(float(c)) if isinstance(c, (float, np.floating)) else
                        (int(c) if isinstance(c, ints) else c) for c in r])
    return path
