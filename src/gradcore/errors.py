"""Exceptions raised by gradcore."""

from __future__ import annotations


class NonFiniteGradientError(FloatingPointError, RuntimeError):
    """A gradient holds NaN or Inf.

    Also a ``RuntimeError``, so code written for PyTorch's
    ``clip_grad_norm_(..., error_if_nonfinite=True)`` catches it unchanged.

    Attributes: ``norm`` (the non-finite norm), ``array_index`` (position in the
    list, or the key when a dict was given), ``flat_index`` (index into the
    flattened array), ``n_nan``, ``n_inf``.
    """

    def __init__(self, norm, array_index, flat_index, n_nan, n_inf, what="gradient"):
        self.norm = norm
        self.array_index = array_index
        self.flat_index = flat_index
        self.n_nan = n_nan
        self.n_inf = n_inf
        kind = "NaN" if n_nan else "Inf"
        super().__init__(
            f"non-finite {what} (norm={norm}): {n_nan} NaN and {n_inf} Inf values; "
            f"first is {kind} at array {array_index!r}, flat index {flat_index}"
        )


class ConcurrentUseError(RuntimeError):
    """A model was used from two threads at once (or ``backward`` followed a
    ``forward`` from another thread). Layers own reused buffers (outputs,
    caches), so one model serves one thread at a time: give each thread its
    own model; separate models are independent and safe to run in parallel."""
