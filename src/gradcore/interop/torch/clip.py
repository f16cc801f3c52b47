"""Drop-ins for ``torch.nn.utils``' gradient clipping on CPU tensors, running
gradcore's norm / scale / clamp kernels on the gradients' own memory.

``clip_grad_norm_``, ``get_total_norm``, ``clip_grads_with_norm_`` and
``clip_grad_value_`` take the arguments of their torch namesakes and give
torch's results for every ``norm_type`` torch accepts (p > 0, ``inf``, and
also 0, p < 0 and ``-inf``: torch applies the order to each tensor and then
to the vector of those per-tensor norms; for 0 that counts the tensors
holding a nonzero value, which is what these return too). Differences, each
deliberate:

- a buffer passed twice (a tied parameter listed twice, or the same tensor)
  is counted in the norm and scaled once; tensors that overlap partly are
  refused with a ``ValueError`` naming both (torch counts and scales shared
  memory twice);
- the norm is accumulated in float64 and is overflow-safe (torch returns
  inf for float32 gradients of 1e20 and for float16 gradients above 256);
  the norm of float16/bfloat16 gradients is returned as a float32 tensor
  (float64 if any gradient is float64, like torch's type promotion);
- with a non-finite norm and ``error_if_nonfinite=False`` the gradients are
  left unchanged (torch multiplies them by NaN or 0); the norm is returned;
- nothing is written when no clipping is needed;
- negative ``max_norm`` / ``clip_value``, NaN and ``bool``/``str`` numbers are
  refused with an error naming the argument (``"inf"``/``"-inf"`` strings
  are accepted for ``norm_type``, as torch documents).

Memory: C-contiguous float32/float64 gradients are read and scaled in place
by the C kernels (zero-copy). Non-contiguous and float16/bfloat16 gradients
are read through a contiguous float32/float64 copy and written in place
through their own strides (torch's ``mul_`` / ``clamp_``), so every
gradient object and its storage stay the same.

The error raised for a non-finite norm with ``error_if_nonfinite=True`` is
:class:`gradcore.NonFiniteGradientError` (also a ``RuntimeError``, like
torch's), naming the position of the tensor and the flat index of the first
NaN/Inf.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ...clip import buffers
from ...errors import NonFiniteGradientError
from ._grads import as_list, fast, gather, result_dtype, torch_module

__all__ = ["clip_grad_norm_", "clip_grad_value_", "get_total_norm", "clip_grads_with_norm_", "check_norm_type"]

_EPS = 1e-6  # torch's: coefficient max_norm / (total_norm + 1e-6)


def _result(f):
    """The norm's dtype for a :func:`fast` gather ``f``: float64 if any gradient is."""
    torch = torch_module()
    return torch.float64 if f[1] else torch.float32


def check_norm_type(norm_type) -> float:
    """``norm_type`` as a float: any real number but NaN, or ``"inf"``/``"-inf"``."""
    if type(norm_type) is float and norm_type == norm_type:  # the common case, without the ABC test
        return norm_type
    if isinstance(norm_type, str) and norm_type.strip().lower() in ("inf", "+inf", "-inf"):
        return float(norm_type)
    if isinstance(norm_type, bool) or not isinstance(norm_type, numbers.Real):
        raise TypeError(f"norm_type: expected a real number (p > 0, 0, p < 0, inf, -inf or 'inf'), got {norm_type!r}")
    p = float(norm_type)
    if math.isnan(p):
        raise ValueError(f"norm_type: expected a real number, got {norm_type!r}")
    return p


def _check_limit(value, name: str, allow_inf: bool = True) -> float:
    if type(value) is float and value >= 0.0 and (allow_inf or value != math.inf):  # the common case
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a number >= 0, got {value!r}")
    v = float(value)
    if math.isnan(v) or v < 0.0 or (not allow_inf and math.isinf(v)):
        raise ValueError(f"{name}: expected a number >= 0{'' if allow_inf else ' (finite)'}, got {value!r}")
    return v


def _check_foreach(foreach) -> None:
    if foreach is not None and not isinstance(foreach, bool):
        raise TypeError(f"foreach: expected None, True or False, got {foreach!r}")


# ----------------------------------------------------------------- norms
def _first_nonfinite(arrays):
    for i, a in enumerate(arrays):
        bad = np.flatnonzero(~np.isfinite(a.reshape(-1)))
        if bad.size:
            return i, int(bad[0])
    return None


def _counts(arrays):
    n_nan = sum(int(np.count_nonzero(np.isnan(a))) for a in arrays)
    n_inf = sum(int(np.count_nonzero(np.isinf(a))) for a in arrays)
    return n_nan, n_inf


def _neg_norm(absvals: np.ndarray, p: float) -> float:
    """(sum |x|^p)^(1/p) for p < 0 over float64 |x| values, scaled by the
    smallest |x| so no power overflows (0 if any |x| is 0, inf if empty)."""
    if absvals.size == 0:
        return math.inf
    if np.isnan(absvals).any():
        return math.nan
    m = float(absvals.min())
    if m == 0.0:
        return 0.0
    if math.isinf(m):
        return math.inf
    s = float(np.sum((absvals / m) ** p))
    return m * s ** (1.0 / p)


def norms(g, p: float, per_array: bool = False):
    """``(total, per_array or None, n_nan, n_inf, first)`` of the gathered
    gradients ``g`` with torch's definition for the order ``p``; ``first`` is
    ``(position in g, flat index)`` of the first NaN/Inf or None."""
    arrays = g.reads
    if not arrays:
        return 0.0, (np.empty(0) if per_array else None), 0, 0, None
    if p > 0.0:
        total, per, _, n_nan, n_inf, first = buffers(arrays).norm(p, per_array, False)
        return float(total), per, int(n_nan), int(n_inf), first
    absvals = [np.abs(a.reshape(-1), dtype=np.float64) for a in arrays]
    if p == 0.0:
        per = np.array([float(np.count_nonzero(a)) for a in absvals])  # NaN != 0 counts, like torch
        total = float(np.count_nonzero(per))
    elif p == -math.inf:
        per = np.array([float(a.min()) if a.size else math.inf for a in absvals])
        total = float(per.min())
    else:
        per = np.array([_neg_norm(a, p) for a in absvals])
        total = _neg_norm(per, p)
    n_nan, n_inf = _counts(arrays)
    first = _first_nonfinite(arrays) if (n_nan or n_inf) else None
    return total, (per if per_array else None), n_nan, n_inf, first


def _raise_nonfinite(g, total, n_nan, n_inf, first, name):
    if first is None:
        where, flat = None, None
    else:
        where, flat = g.index[first[0]], first[1]
    err = NonFiniteGradientError(total, where, flat, n_nan, n_inf)
    err.args = (f"{name}: {err.args[0]}",)
    raise err


def _total(g, p, error_if_nonfinite, name):
    total, _, n_nan, n_inf, first = norms(g, p)
    if error_if_nonfinite and not math.isfinite(total):
        _raise_nonfinite(g, total, n_nan, n_inf, first, name)
    return total


def _scale(g, coef: float) -> None:
    views = g.write_views()
    if views:
        buffers(views, writable=True).scale_(coef)
    for t in g.others():
        t.mul_(coef)


# ------------------------------------------------------------ public API
def get_total_norm(tensors, norm_type=2.0, error_if_nonfinite: bool = False, foreach=None):
    """Drop-in for ``torch.nn.utils.get_total_norm``: the ``norm_type``-norm
    of ``tensors`` (the gradients themselves) taken together, as a 0-d
    tensor. ``foreach`` is accepted and ignored (one C pass either way).

    >>> import torch
    >>> from gradcore.interop.torch import get_total_norm
    >>> get_total_norm([torch.tensor([3.0, 0.0]), torch.tensor([4.0])])
    tensor(5.)
    >>> get_total_norm([torch.tensor([3.0, 0.0]), torch.tensor([0.0])], norm_type=0)
    tensor(1.)
    """
    torch = torch_module()
    items = as_list(tensors, "tensors")
    p = check_norm_type(norm_type)
    _check_foreach(foreach)
    f = fast(items, grads=False, writable=False) if p > 0.0 else None
    if f is not None and f[2]:
        total = f[0].norm(p, False, False)[0]
        if math.isfinite(total) or not error_if_nonfinite:  # (else the full path names the value)
            return torch.scalar_tensor(total, dtype=_result(f))
    g = gather(items, "tensors", grads=False)
    if not items:
        return torch.tensor(0.0)
    total = _total(g, p, error_if_nonfinite, "tensors")
    return torch.tensor(total, dtype=result_dtype(g.dtypes))


def _coefficient(max_norm: float, total: float):
    """torch's clipping coefficient ``max_norm / (total + 1e-6)``, or None when
    nothing is to be written (``total`` NaN/Inf, or the coefficient >= 1).
    ``clip_grad_norm_`` passes the returned (rounded) norm, as torch does, so
    ``get_total_norm`` + ``clip_grads_with_norm_`` give the same bits."""
    if not math.isfinite(total):
        return None
    coef = max_norm / (total + _EPS)
    return coef if coef < 1.0 else None


def clip_grads_with_norm_(parameters, max_norm, total_norm, foreach=None) -> None:
    """Drop-in for ``torch.nn.utils.clip_grads_with_norm_``: scale every
    ``.grad`` in place by ``min(1, max_norm / (total_norm + 1e-6))``.
    ``total_norm`` is a number or a one-element tensor; when it is NaN/Inf,
    or the coefficient is 1, nothing is written.

    >>> import torch
    >>> from gradcore.interop.torch import clip_grads_with_norm_, get_total_norm
    >>> w = torch.zeros(2, requires_grad=True)
    >>> w.grad = torch.tensor([30.0, 40.0])
    >>> clip_grads_with_norm_([w], 5.0, get_total_norm([w.grad]))
    >>> w.grad
    tensor([3., 4.])
    """
    torch = torch_module()
    items = as_list(parameters, "parameters")
    max_norm = _check_limit(max_norm, "max_norm")
    _check_foreach(foreach)
    if isinstance(total_norm, torch.Tensor):
        if total_norm.numel() != 1:
            raise ValueError(f"total_norm: expected a one-element tensor, got shape {tuple(total_norm.shape)}")
        total = float(total_norm.detach().cpu().reshape(()).item())
    elif isinstance(total_norm, numbers.Real) and not isinstance(total_norm, bool):
        total = float(total_norm)
    else:
        raise TypeError(f"total_norm: expected a tensor or a number, got {type(total_norm).__name__}")
    if total < 0.0:
        raise ValueError(f"total_norm: expected a norm >= 0, got {total!r}")
    coef = _coefficient(max_norm, total)
    f = fast(items)
    if f is not None:
        if f[2] and coef is not None:
            f[0].scale_(coef)
        return None
    g = gather(items, "parameters")
    if g.tensors and coef is not None:
        _scale(g, coef)
    return None


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite: bool = False, foreach=None):
    """Drop-in for ``torch.nn.utils.clip_grad_norm_``: clip the gradients'
    global ``norm_type``-norm to ``max_norm`` in place (coefficient
    ``max_norm / (norm + 1e-6)``, applied only when < 1) and return the norm
    before clipping as a 0-d tensor. See the module docstring for what
    differs from torch.

    >>> import torch
    >>> from gradcore.interop.torch import clip_grad_norm_
    >>> w = torch.zeros(3, requires_grad=True)
    >>> w.grad = torch.tensor([16.0, 12.0, -8.0])
    >>> clip_grad_norm_([w], max_norm=5.0)
    tensor(21.5407)
    """
    torch = torch_module()
    items = as_list(parameters, "parameters")
    max_norm = _check_limit(max_norm, "max_norm")
    p = check_norm_type(norm_type)
    _check_foreach(foreach)
    f = fast(items) if p > 0.0 else None
    if f is not None and f[2]:  # one validated buffer list for the norm and the scaling
        bl = f[0]
        total = bl.norm(p, False, False)[0]
        if math.isfinite(total) or not error_if_nonfinite:  # (else the full path names the value)
            out = torch.scalar_tensor(total, dtype=_result(f))
            coef = _coefficient(max_norm, float(out))
            if coef is not None:
                bl.scale_(coef)
            return out
    g = gather(items, "parameters")
    if not g.tensors:
        return torch.tensor(0.0)
    total = _total(g, p, error_if_nonfinite, "parameters")
    out = torch.tensor(total, dtype=result_dtype(g.dtypes))
    coef = _coefficient(max_norm, float(out))
    if coef is not None:
        _scale(g, coef)
    return out


def clip_grad_value_(parameters, clip_value, foreach=None) -> None:
    """Drop-in for ``torch.nn.utils.clip_grad_value_``: clamp every
    ``.grad`` element to ``[-clip_value, clip_value]`` in place (NaN stays
    NaN). ``clip_value`` must be >= 0 (torch's clamp with a negative bound
    sets every element to it).

    >>> import torch
    >>> from gradcore.interop.torch import clip_grad_value_
    >>> w = torch.zeros(3, requires_grad=True)
    >>> w.grad = torch.tensor([-5.0, 0.5, 3.0])
    >>> clip_grad_value_([w], 1.0)
    >>> w.grad
    tensor([-1.0000,  0.5000,  1.0000])
    """
    items = as_list(parameters, "parameters")
    c = _check_limit(clip_value, "clip_value")
    _check_foreach(foreach)
    f = fast(items)
    if f is not None:
        if f[2] and not math.isinf(c):
            f[0].clamp_(c)
        return None
    g = gather(items, "parameters")
    if not g.tensors or math.isinf(c):
        return None
    views = g.write_views()
    if views:
        buffers(views, writable=True).clamp_(c)
    for t in g.others():
        t.clamp_(-c, c)
    return None
