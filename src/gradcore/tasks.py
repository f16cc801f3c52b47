"""Synthetic sequence tasks for gradient-explosion experiments.

Every task is an infinite (or ``n_batches``-long) generator of ``(x, y)``
batches, reproducible from ``seed`` (a NumPy ``Generator``). Inputs are
time-major, ``x`` of shape ``(T, B, I)`` like :class:`gradcore.nn.RNN` expects.
Each task documents its trivial-predictor baseline and has a function that
returns it, so a trained model can be judged against "learned nothing":

=====================  =========================  ==========================================
task                   target                     trivial predictor (``baseline``)
=====================  =========================  ==========================================
``adding`` (le)        sum of 2 marked values     always 1.0: MSE = 1/6 ~ 0.1667
``adding`` (hochreiter) 0.5 + (X1 + X2)/4         always 0.5: MSE = 1/24 ~ 0.0417
``temporal_order``     class of 2 symbols (4)     uniform: CE = ln 4, accuracy 1/4
``temporal_order3``    class of 3 symbols (8)     uniform: CE = ln 8, accuracy 1/8
``copy``               recall K symbols after T   blank, then uniform over the symbols
=====================  =========================  ==========================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

import numpy as np

from ._contract import int_arg, seed_arg
from .init import as_float_dtype

__all__ = [
    "Baseline",
    "TaskStream",
    "TaskSpec",
    "TASKS",
    "adding",
    "adding_batch",
    "adding_baseline",
    "temporal_order",
    "temporal_order_batch",
    "temporal_order_baseline",
    "temporal_order_windows",
    "copy_task",
    "copy_batch",
    "copy_baseline",
    "get_task",
]


@dataclass(frozen=True)
class Baseline:
    """What a predictor that learned nothing achieves on a task.

    ``loss`` is in the task's own loss (MSE or mean softmax cross-entropy),
    ``accuracy`` is None for regression tasks.
    """

    loss: float
    accuracy: Optional[float]
    predictor: str


def _rng(seed):
    return seed_arg(seed, "seed")


def _dtype(dtype) -> np.dtype:
    """float32 or float64 (an integer dtype would truncate the inputs to 0/1)."""
    return as_float_dtype(dtype, "dtype")


def _n_batches(n_batches):
    return None if n_batches is None else int_arg(n_batches, "n_batches", lo=1)


def _check_int(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value}")
    return int(value)


class TaskStream:
    """The iterator every task returns: batches drawn from one NumPy
    ``Generator``, with its position saved and restored as plain data
    (``state_dict()`` -> ``{"position": batches drawn, "rng": bit-generator
    state}``; ``load_state_dict(state)`` continues exactly where that state
    was), which is how :func:`gradcore.train` resumes a task's data stream.

    >>> s = adding(T=10, batch_size=2, seed=0); _ = next(s); st = s.state_dict()
    >>> a = next(s)[0]; s2 = adding(T=10, batch_size=2, seed=5); s2.load_state_dict(st)
    >>> bool((next(s2)[0] == a).all()), s2.position
    (True, 2)
    """

    def __init__(self, make_batch, seed, n_batches):
        self._make = make_batch
        self.rng = _rng(seed)
        self.n_batches = n_batches
        self.position = 0

    def __iter__(self):
        return self

    def __next__(self):
        if self.n_batches is not None and self.position >= self.n_batches:
            raise StopIteration
        batch = self._make(self.rng)
        self.position += 1
        return batch

    def state_dict(self) -> dict:
        """``{"position": int, "rng": dict}`` (JSON-able)."""
        return {"position": self.position, "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state) -> None:
        """Continue from ``state`` (what :meth:`state_dict` returned)."""
        if not isinstance(state, dict) or set(state) != {"position", "rng"}:
            raise ValueError(f"TaskStream.load_state_dict: expected a dict with 'position' and 'rng', got {state!r}")
        pos = state["position"]
        if isinstance(pos, bool) or not isinstance(pos, (int, np.integer)) or pos < 0:
            raise ValueError(f"TaskStream.load_state_dict: 'position' must be an integer >= 0, got {pos!r}")
        rng_state = state["rng"]
        name = rng_state.get("bit_generator") if isinstance(rng_state, dict) else None
        if name != type(self.rng.bit_generator).__name__:
            raise ValueError(f"TaskStream.load_state_dict: the state is of a {name!r} generator, this stream "
                             f"uses {type(self.rng.bit_generator).__name__}")
        self.rng.bit_generator.state = rng_state
        self.position = int(pos)


def _generate(make_batch, seed, n_batches) -> Iterator:
    """Validate seed and n_batches now, then return the lazy stream."""
    return TaskStream(make_batch, _rng(seed), _n_batches(n_batches))


# --------------------------------------------------------------------------
# The adding problem
# --------------------------------------------------------------------------

_ADDING_VARIANTS = ("le", "hochreiter")


def adding_batch(rng, T: int, batch_size: int, variant: str = "le", dtype=np.float32):
    """One batch of the adding problem: ``x`` (T, B, 2), ``y`` (B, 1).

    Channel 0 holds the values, channel 1 the markers.

    * ``variant="le"`` (Le, Jaitly & Hinton 2015, after Hochreiter & Schmidhuber):
      values uniform in [0, 1], exactly two markers 1.0, one in the first half
      and one in the second half; target = the sum of the two marked values.
    * ``variant="hochreiter"`` (Hochreiter & Schmidhuber 1997, experiment 4):
      values uniform in [-1, 1]; the first marker is in the first 10 steps,
      the second in the first half (they differ); the first and last steps are
      marked -1.0 when unmarked, all other markers are 0; target
      = 0.5 + (X1 + X2) / 4, in [0, 1].
    """
    T = _check_int(T, "T", 2)
    B = _check_int(batch_size, "batch_size", 1)
    if variant not in _ADDING_VARIANTS:
        raise ValueError(f"variant: expected one of {', '.join(_ADDING_VARIANTS)}, got {variant!r}")
    x = np.zeros((T, B, 2), dtype=np.float64)
    cols = np.arange(B)
    if variant == "le":
        x[:, :, 0] = rng.uniform(0.0, 1.0, size=(T, B))
        half = T // 2
        i1 = rng.integers(0, half, size=B)
        i2 = rng.integers(half, T, size=B)
        x[i1, cols, 1] = 1.0
        x[i2, cols, 1] = 1.0
        y = x[i1, cols, 0] + x[i2, cols, 0]
    else:
        if T < 4:
            raise ValueError(f"T: the hochreiter variant needs T >= 4, got {T}")
        x[:, :, 0] = rng.uniform(-1.0, 1.0, size=(T, B))
        first_window = min(10, T // 2)
        half = max(T // 2, 2)
        i1 = rng.integers(0, first_window, size=B)
        i2 = rng.integers(0, half - 1, size=B)
        i2 = np.where(i2 >= i1, i2 + 1, i2)  # distinct from i1, still < half
        x[0, :, 1] = -1.0
        x[T - 1, :, 1] = -1.0
        x[i1, cols, 1] = 1.0
        x[i2, cols, 1] = 1.0
        y = 0.5 + (x[i1, cols, 0] + x[i2, cols, 0]) / 4.0
    dtype = _dtype(dtype)
    return x.astype(dtype, copy=False), y.reshape(B, 1).astype(dtype, copy=False)


def adding(T: int = 100, batch_size: int = 32, seed=0, variant: str = "le", dtype=np.float32,
           n_batches: Optional[int] = None) -> Iterator:
    """Generator of adding-problem batches (see :func:`adding_batch`); the trivial
    baseline is :func:`adding_baseline`.

    >>> x, y = next(adding(T=10, batch_size=4, seed=1))
    >>> x.shape, y.shape
    ((10, 4, 2), (4, 1))
    """
    dtype = _dtype(dtype)
    adding_batch(np.random.default_rng(0), T, batch_size, variant)  # validate eagerly
    return _generate(lambda rng: adding_batch(rng, T, batch_size, variant, dtype), seed, n_batches)


def adding_baseline(variant: str = "le", T: Optional[int] = None) -> Baseline:
    """MSE of the best constant predictor (independent of T).

    ``le``: predict 1.0 (the mean of a sum of two U(0,1)); MSE = 2/12 = 1/6.
    ``hochreiter``: predict 0.5; MSE = Var((X1+X2)/4) = 2 (1/3) / 16 = 1/24.
    """
    if variant == "le":
        return Baseline(1.0 / 6.0, None, "always 1.0")
    if variant == "hochreiter":
        return Baseline(1.0 / 24.0, None, "always 0.5")
    raise ValueError(f"variant: expected one of {', '.join(_ADDING_VARIANTS)}, got {variant!r}")


# --------------------------------------------------------------------------
# Temporal order (Hochreiter & Schmidhuber 1997; Pascanu, Mikolov & Bengio 2013)
# --------------------------------------------------------------------------

# alphabet: 0 = A, 1 = B (relevant), 2..5 = c, d, e, f (distractors)
_N_SYMBOLS = 6


# where the relevant symbols go, as fractions [lo, hi) of T: the papers'
# windows for their sequence length 100 (Hochreiter & Schmidhuber 1997,
# experiment 6: t1 in 10..20, t2 in 50..60 (6a); t1 in 10..20, t2 in 33..43,
# t3 in 66..76 (6b); Pascanu, Mikolov & Bengio 2013 use 6a's windows scaled to T)
_ORDER_WINDOWS = {2: ((10, 20), (50, 60)), 3: ((10, 20), (33, 43), (66, 76))}


def temporal_order_windows(T: int, bits: int = 2):
    """The half-open step windows ``[lo, hi)`` of the relevant symbols for
    sequences of length ``T``: ``bits=2``: ``[T/10, 2T/10)`` and
    ``[5T/10, 6T/10)``; ``bits=3``: ``[T/10, 2T/10)``, ``[33T/100, 43T/100)``
    and ``[66T/100, 76T/100)`` (bounds rounded down; a window is at least one
    step wide).

    >>> temporal_order_windows(100, 2)
    [(10, 20), (50, 60)]
    >>> temporal_order_windows(100, 3)
    [(10, 20), (33, 43), (66, 76)]
    """
    T = _check_int(T, "T", 10)
    if bits not in _ORDER_WINDOWS:
        raise ValueError(f"bits: expected 2 or 3, got {bits!r}")
    out = []
    for a, b in _ORDER_WINDOWS[bits]:
        lo = a * T // 100
        out.append((lo, max(b * T // 100, lo + 1)))
    return out


def temporal_order_batch(rng, T: int, batch_size: int, bits: int = 2, dtype=np.float32):
    """One batch of the temporal order problem: ``x`` (T, B, 6) one-hot,
    ``y`` (B,) int64 class labels in ``[0, 2**bits)``.

    Every step holds a random distractor symbol from {c, d, e, f} except
    ``bits`` relevant positions, each holding A or B, drawn uniformly in the
    windows of :func:`temporal_order_windows`, which are the papers' windows
    scaled to T: with 2 bits the first in ``[T/10, 2T/10)`` and the second in
    ``[5T/10, 6T/10)`` (Hochreiter & Schmidhuber 1997, task 6a; Pascanu et al.
    2013); with 3 bits ``[T/10, 2T/10)``, ``[33T/100, 43T/100)`` and
    ``[66T/100, 76T/100)`` (Hochreiter & Schmidhuber 1997, task 6b: 10..20,
    33..43 and 66..76 of 100..110 steps). The class is the binary number the
    relevant symbols spell, first symbol most significant (A = 0, B = 1). The
    sequence length is fixed at T (the 1997 paper draws it from 100..110 and
    adds start/trigger symbols, which only the windows' scale depends on).
    """
    T = _check_int(T, "T", 10)
    B = _check_int(batch_size, "batch_size", 1)
    if bits not in (2, 3):
        raise ValueError(f"bits: expected 2 or 3, got {bits!r}")
    sym = rng.integers(2, _N_SYMBOLS, size=(T, B))
    windows = temporal_order_windows(T, bits)
    cols = np.arange(B)
    label = np.zeros(B, dtype=np.int64)
    for lo, hi in windows:
        pos = rng.integers(lo, hi, size=B)
        val = rng.integers(0, 2, size=B)
        sym[pos, cols] = val
        label = label * 2 + val
    x = np.zeros((T, B, _N_SYMBOLS), dtype=_dtype(dtype))
    np.put_along_axis(x, sym[:, :, None], 1.0, axis=2)
    return x, label


def temporal_order(T: int = 100, batch_size: int = 32, seed=0, bits: int = 2, dtype=np.float32,
                   n_batches: Optional[int] = None) -> Iterator:
    """Generator of temporal-order batches (see :func:`temporal_order_batch`);
    ``bits=3`` is the 3-bit temporal order problem (8 classes). Baseline:
    :func:`temporal_order_baseline`."""
    dtype = _dtype(dtype)
    temporal_order_batch(np.random.default_rng(0), T, batch_size, bits)
    return _generate(lambda rng: temporal_order_batch(rng, T, batch_size, bits, dtype), seed, n_batches)


def temporal_order_baseline(bits: int = 2, T: Optional[int] = None) -> Baseline:
    """Uniform prediction over the ``2**bits`` classes: cross-entropy
    ln(2**bits), accuracy 1/2**bits (the classes are equally likely)."""
    if bits not in (2, 3):
        raise ValueError(f"bits: expected 2 or 3, got {bits!r}")
    k = 2 ** bits
    return Baseline(math.log(k), 1.0 / k, f"uniform over {k} classes")


# --------------------------------------------------------------------------
# Copy / memorization (Hochreiter & Schmidhuber 1997; Arjovsky et al. 2016)
# --------------------------------------------------------------------------


def copy_batch(rng, T: int, batch_size: int, n_symbols: int = 8, length: int = 10, dtype=np.float32):
    """One batch of the copy task: ``x`` (T + 2 length, B, n_symbols + 2) one-hot,
    ``y`` (T + 2 length, B) int64 labels for every step.

    Symbols 1..n_symbols are data, 0 is blank, n_symbols + 1 the delimiter.
    The first ``length`` steps hold random data symbols, then ``T - 1`` blanks,
    the delimiter, and ``length`` more blanks; the target is blank everywhere
    except the last ``length`` steps, which must repeat the data.
    """
    T = _check_int(T, "T", 1)
    B = _check_int(batch_size, "batch_size", 1)
    n_symbols = _check_int(n_symbols, "n_symbols", 1)
    length = _check_int(length, "length", 1)
    total = T + 2 * length
    data = rng.integers(1, n_symbols + 1, size=(length, B))
    sym = np.zeros((total, B), dtype=np.int64)
    sym[:length] = data
    sym[length + T - 1] = n_symbols + 1
    y = np.zeros((total, B), dtype=np.int64)
    y[total - length:] = data
    x = np.zeros((total, B, n_symbols + 2), dtype=_dtype(dtype))
    np.put_along_axis(x, sym[:, :, None], 1.0, axis=2)
    return x, y


def copy_task(T: int = 50, batch_size: int = 32, seed=0, n_symbols: int = 8, length: int = 10,
              dtype=np.float32, n_batches: Optional[int] = None) -> Iterator:
    """Generator of copy-task batches (see :func:`copy_batch`). Baseline:
    :func:`copy_baseline`."""
    dtype = _dtype(dtype)
    copy_batch(np.random.default_rng(0), T, batch_size, n_symbols, length)
    return _generate(lambda rng: copy_batch(rng, T, batch_size, n_symbols, length, dtype), seed, n_batches)


def copy_baseline(T: int = 50, n_symbols: int = 8, length: int = 10) -> Baseline:
    """Predict blank with certainty for the first ``T + length`` steps and
    uniformly over the data symbols for the last ``length``: mean cross-entropy
    per step ``length * ln(n_symbols) / (T + 2 length)`` (Arjovsky et al. 2016);
    accuracy ``(T + length + length / n_symbols) / (T + 2 length)``."""
    T = _check_int(T, "T", 1)
    n_symbols = _check_int(n_symbols, "n_symbols", 1)
    length = _check_int(length, "length", 1)
    total = T + 2 * length
    return Baseline(length * math.log(n_symbols) / total,
                    (T + length + length / n_symbols) / total,
                    "blank, then uniform over the data symbols")


# --------------------------------------------------------------------------
# Registry used by the experiments and the command line
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskSpec:
    """How an experiment drives a task: its generator, loss, sizes and baseline."""

    name: str
    make: Callable  # (T, batch_size, seed, dtype) -> generator
    baseline: Callable  # (T) -> Baseline
    loss: str  # "mse" or "softmax_cross_entropy"
    input_size: int
    output_size: int
    every_step: bool  # target on every step (copy) or on the last step only


TASKS = {
    "adding": TaskSpec("adding", lambda T, B, seed, dtype: adding(T, B, seed, "le", dtype),
                       lambda T: adding_baseline("le"), "mse", 2, 1, False),
    "adding_hochreiter": TaskSpec("adding_hochreiter",
                                  lambda T, B, seed, dtype: adding(T, B, seed, "hochreiter", dtype),
                                  lambda T: adding_baseline("hochreiter"), "mse", 2, 1, False),
    "temporal_order": TaskSpec("temporal_order",
                               lambda T, B, seed, dtype: temporal_order(T, B, seed, 2, dtype),
                               lambda T: temporal_order_baseline(2), "softmax_cross_entropy", 6, 4, False),
    "temporal_order3": TaskSpec("temporal_order3",
                                lambda T, B, seed, dtype: temporal_order(T, B, seed, 3, dtype),
                                lambda T: temporal_order_baseline(3), "softmax_cross_entropy", 6, 8, False),
    "copy": TaskSpec("copy", lambda T, B, seed, dtype: copy_task(T, B, seed, 8, 10, dtype),
                     lambda T: copy_baseline(T, 8, 10), "softmax_cross_entropy", 10, 10, True),
}


def get_task(name: str) -> TaskSpec:
    """The :class:`TaskSpec` registered under ``name`` (see ``TASKS``)."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"task: unknown task {name!r}; valid tasks: {', '.join(TASKS)}") from None
