"""PyTorch interop: a drop-in ``clip_grad_norm_`` for CPU float32/float64
parameters, running gradcore's kernels on the gradients' own memory.

``.numpy()`` of a CPU tensor shares its storage, so the norm is computed and
the gradients are scaled in place without a copy. Differences from
``torch.nn.utils.clip_grad_norm_`` (deliberate):

- the norm of float32 gradients is accumulated in float64 and is overflow-safe
  (torch returns inf for float32 gradients of 1e20);
- with a non-finite norm and ``error_if_nonfinite=False`` the gradients are
  left unchanged (torch multiplies them by NaN); the non-finite norm is still
  returned;
- when no clipping is needed nothing is written.

The error raised for a non-finite norm with ``error_if_nonfinite=True`` is
:class:`gradcore.NonFiniteGradientError`, which is also a ``RuntimeError``
like torch's, and says which parameter and element hold the first NaN/Inf.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Union

if TYPE_CHECKING:  # annotations only; torch is imported lazily
    import torch

from .. import clip as _clip

__all__ = ["clip_grad_norm_", "grad_arrays"]


def _torch():
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "gradcore.interop.torch needs PyTorch: pip install 'gradcore[torch]'"
        ) from exc
    return torch


def grad_arrays(parameters, name: str = "parameters"):
    """The ``.grad`` of every parameter that has one, as NumPy arrays sharing
    the gradients' memory (parameters without a gradient are skipped, like
    torch does). Raises a clear error for gradients that are not dense,
    C-contiguous CPU float32/float64 tensors."""
    torch = _torch()
    if isinstance(parameters, torch.Tensor):
        parameters = [parameters]
    arrays = []
    for i, p in enumerate(parameters):
        if not isinstance(p, torch.Tensor):
            raise TypeError(f"{name}[{i}]: expected a torch.Tensor, got {type(p).__name__}")
        g = p.grad
        if g is None:
            continue
        label = f"{name}[{i}].grad"
        if g.layout != torch.strided:
            raise TypeError(f"{label}: expected a dense (strided) tensor, got layout {g.layout}")
        if g.device.type != "cpu":
            raise ValueError(
                f"{label}: expected a CPU tensor, got device {g.device}; gradcore runs on the CPU "
                "(use torch.nn.utils.clip_grad_norm_ for other devices)"
            )
        if g.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"{label}: expected dtype torch.float32 or torch.float64, got {g.dtype}")
        if not g.is_contiguous():
            raise ValueError(
                f"{label}: expected a contiguous gradient (in-place clipping works on its memory), "
                f"got strides {tuple(g.stride())}"
            )
        arrays.append(g.detach().numpy())
    return arrays


def clip_grad_norm_(
    parameters: Union["torch.Tensor", Iterable["torch.Tensor"]],  # noqa: F821
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach=None,
):
    """Drop-in for ``torch.nn.utils.clip_grad_norm_`` on CPU float32/float64
    parameters: clips the gradients' global ``norm_type``-norm to ``max_norm``
    in place (coefficient ``max_norm / (norm + 1e-6)``, applied only when < 1)
    and returns the norm before clipping as a 0-d tensor (float64 if any
    gradient is float64, else float32). ``foreach`` is accepted and ignored.

    >>> import torch
    >>> from gradcore.interop.torch import clip_grad_norm_
    >>> w = torch.zeros(3, requires_grad=True)
    >>> w.grad = torch.tensor([16.0, 12.0, -8.0])
    >>> clip_grad_norm_([w], max_norm=5.0)
    tensor(21.5407)
    """
    torch = _torch()
    # Materialize once: ``parameters`` may be a generator (model.parameters()).
    if not isinstance(parameters, torch.Tensor):
        parameters = list(parameters)
    arrays = grad_arrays(parameters)
    try:
        p = float(norm_type)
    except (TypeError, ValueError):
        raise TypeError(f"norm_type: expected a number (2, 1, inf or any finite p > 0), got {norm_type!r}") from None
    norm = _clip.clip_grad_norm_(arrays, max_norm, ord=p, error_if_nonfinite=error_if_nonfinite)
    dtype = torch.float64 if any(a.dtype.itemsize == 8 for a in arrays) else torch.float32
    return torch.tensor(norm, dtype=dtype)
