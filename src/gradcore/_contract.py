"""The contract: names, shapes and argument checks of gradcore, in one place.

Every choice a caller can make (activation, RNN nonlinearity, cell, dtype,
truncation) is spelled here once, and every argument check with its message
lives here once. The layers (``gradcore.nn``), the NumPy reference
(``gradcore.reference``) and the C binding's error path all call these
functions, so one fault gets one message whichever backend reports it. The
binding keeps cheap ``cdef`` checks on its fast path and calls into this
module only to raise.

Messages have one form: ``"<who>: <name>: expected <what>, got <value>"``,
where ``who`` (a layer or function label) is present only when given.

>>> check_activation("tanh")
'tanh'
>>> ACTIVATION_CODES["tanh"], NONLINEARITY_CODES["tanh"]
(3, 2)
>>> check_truncate(None), check_truncate(5)
(None, 5)
>>> check_range(0.5, "momentum", lo=0.0, hi=1.0)
0.5
>>> cell_shapes("lstm", 3, 8)["w_ih"]
(32, 3)

The checks live in two modules by job, re-exported here (import them from
here): :mod:`gradcore._contract_ranges` (messages, numbers, integers, seeds,
ranges) and :mod:`gradcore._contract_arrays` (arrays, labels, aliasing,
overlap, recurrent calls). All three import only NumPy and the standard
library (they sit below both backends).
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from ._contract_arrays import (FLOAT_DTYPES, RecurrentArgs, _extent, _same_memory, byte_range, check_array,
                               check_disjoint, check_float_array, check_labels, check_no_overlap, overlaps,
                               resolve_aliases)
from ._contract_ranges import (bounds_text, check_number, check_positive_int, check_range, check_real, check_slope,
                               describe, in_bounds, int_arg, integral, label, real_arg, seed_arg)

__all__ = [
    "ACTIVATIONS", "ACTIVATION_CODES", "RNN_NONLINEARITIES", "NONLINEARITY_CODES",
    "CELLS", "CELL_GATES", "DTYPES", "FLOAT_DTYPES",
    "describe", "bounds_text", "in_bounds", "label", "real_arg", "int_arg", "seed_arg",
    "check_float_array", "check_array", "check_labels",
    "check_number", "check_range", "check_real", "check_slope", "check_positive_int",
    "check_activation", "activation_code", "check_nonlinearity", "nonlinearity_code",
    "check_cell", "check_truncate", "check_dtype", "cell_shapes",
    "byte_range", "overlaps", "check_no_overlap", "resolve_aliases", "RecurrentArgs",
    "STACK_COLS", "check_dense_stack",
]

# ---------------------------------------------------------------- names
#: Element-wise activations of the dense kernels, in C code order (gradcore.h).
ACTIVATIONS: Tuple[str, ...] = ("identity", "relu", "leaky_relu", "tanh", "sigmoid")
ACTIVATION_CODES: Dict[str, int] = {a: i for i, a in enumerate(ACTIVATIONS)}

#: Nonlinearities of the Elman RNN, in C code order (recurrent kernels).
RNN_NONLINEARITIES: Tuple[str, ...] = ("identity", "relu", "tanh")
NONLINEARITY_CODES: Dict[str, int] = {a: i for i, a in enumerate(RNN_NONLINEARITIES)}

#: Recurrent cells and their gate count G (weights are (G*H, I) and (G*H, H)).
CELLS: Tuple[str, ...] = ("rnn", "lstm", "gru")
CELL_GATES: Dict[str, int] = {"rnn": 1, "lstm": 4, "gru": 3}

#: The float dtypes every kernel takes (both, always; never converted silently).
DTYPES: Tuple[str, ...] = tuple(d.name for d in FLOAT_DTYPES)


def cell_shapes(cell: str, I: int, H: int) -> Dict[str, Tuple[int, ...]]:
    """Parameter shapes of one recurrent layer (PyTorch layout and gate order)."""
    G = CELL_GATES[check_cell(cell)]
    return {"w_ih": (G * H, I), "w_hh": (G * H, H), "b_ih": (G * H,), "b_hh": (G * H,)}


#: Columns of a dense-stack layout row (C: GC_STACK_COLS): I, O, weight
#: offset, bias offset (-1: no bias), activation code.
STACK_COLS = 5


def check_dense_stack(layout: Any, n: int, name: str = "layout") -> Tuple[int, int, int, int]:
    """A dense-stack layout (L, STACK_COLS) int64 for a parameter buffer of
    ``n`` values: sizes >= 1 that chain (I of a row = O of the row before),
    weight (O, I) and bias (O,) inside the buffer, known activation codes.
    Returns (I of the first layer, O of the last, sum of every O, the largest I or O).

    >>> check_dense_stack(np.array([[3, 4, 0, 12, 1], [4, 2, 16, -1, 0]]), 24)
    (3, 2, 6, 4)
    """
    if not isinstance(layout, np.ndarray) or layout.dtype != np.dtype(np.int64) or layout.ndim != 2 \
            or layout.shape[0] < 1 or layout.shape[1] != STACK_COLS:
        raise TypeError(f"{name}: expected a native int64 array of shape (L >= 1, {STACK_COLS}), got "
                        f"{describe(layout)}")
    if not layout.flags.c_contiguous or not layout.flags.aligned:
        raise ValueError(f"{name}: expected a C-contiguous, aligned array (use np.ascontiguousarray)")
    rows = layout.tolist()
    for row, (I, O, wo, bo, act) in enumerate(rows):
        if I < 1 or O < 1 or (row and I != rows[row - 1][1]) or not 0 <= act < len(ACTIVATIONS) \
                or wo < 0 or wo + O * I > n or bo < -1 or (bo >= 0 and bo + O > n):
            _layout_fault(name, row, rows, n)
    return rows[0][0], rows[-1][1], sum(r[1] for r in rows), max(max(r[0], r[1]) for r in rows)


def _layout_fault(name: str, row: int, rows, n: int) -> None:
    """Raise the message for the first fault of layout row ``row``."""
    I, O, wo, bo, act = rows[row]
    where = f"{name}[{row}]"
    if I < 1 or O < 1:
        raise ValueError(f"{where}: expected sizes I, O >= 1, got {I}, {O}")
    if row and I != rows[row - 1][1]:
        raise ValueError(f"{where}: expected I = {rows[row - 1][1]} (O of the layer before), got {I}")
    if not 0 <= act < len(ACTIVATIONS):
        raise ValueError(f"{where}: expected an activation code in [0, {len(ACTIVATIONS)}), got {act}")
    if wo < 0 or wo + O * I > n:
        raise ValueError(f"{where}: weight ({O}, {I}) at offset {wo} is outside the {n} parameters")
    raise ValueError(f"{where}: bias ({O},) at offset {bo} is outside the {n} parameters (-1: no bias)")


# ---------------------------------------------------------------- choices
def _choice(value: Any, choices: Sequence[str], name: str, who: Optional[str], what: str,
            plural: str) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{label(name, who)}: unknown {what} {value!r}; "
                         f"valid {plural}: {', '.join(choices)}")
    return value


def check_activation(act: Any, name: str = "act", who: Optional[str] = None) -> str:
    """One of :data:`ACTIVATIONS`."""
    return _choice(act, ACTIVATIONS, name, who, "activation", "activations")


def activation_code(act: Any, name: str = "act", who: Optional[str] = None) -> int:
    """The C code of an activation (its index in :data:`ACTIVATIONS`)."""
    return ACTIVATION_CODES[check_activation(act, name, who)]


def check_nonlinearity(act: Any, name: str = "nonlinearity", who: Optional[str] = None) -> str:
    """One of :data:`RNN_NONLINEARITIES`."""
    return _choice(act, RNN_NONLINEARITIES, name, who, "nonlinearity", "nonlinearities")


def nonlinearity_code(act: Any, name: str = "act", who: Optional[str] = None) -> int:
    """The C code of an RNN nonlinearity (its index in :data:`RNN_NONLINEARITIES`)."""
    return NONLINEARITY_CODES[check_nonlinearity(act, name, who)]


def check_cell(cell: Any, name: str = "cell", who: Optional[str] = None) -> str:
    """One of :data:`CELLS`."""
    return _choice(cell, CELLS, name, who, "cell", "cells")


def check_truncate(truncate: Any, who: Optional[str] = None) -> Optional[int]:
    """Truncated BPTT window: ``None`` (full BPTT) or an int >= 1. The kernels
    take ``0`` for "full": pass ``check_truncate(t) or 0``."""
    if truncate is None:
        return None
    # a window longer than any sequence is full BPTT
    return min(integral(truncate, 1, f"{label('truncate', who)}: expected None (full BPTT) or an int >= 1"), 2**62)


def check_dtype(dtype: Any, name: str = "dtype", who: Optional[str] = None) -> np.dtype:
    """``np.dtype`` of ``dtype`` if it is float32 or float64 (``None`` is
    refused: NumPy would read it as float64)."""
    if dtype is None or isinstance(dtype, bool):
        raise TypeError(f"{label(name, who)}: expected 'float32' or 'float64', got {dtype!r}")
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{label(name, who)}: expected 'float32' or 'float64', got {dtype!r}") from None
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"{label(name, who)}: expected 'float32' or 'float64', got {dt}")
    return dt

