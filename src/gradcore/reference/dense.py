"""Reference dense layer (NumPy): y = act(x w^T + b), w (O, I) like PyTorch."""

from __future__ import annotations

from .._contract import check_activation, check_array, check_disjoint, check_slope
from .activation import activation_backward_values, apply_activation


def _check_common(x, w, act, slope):
    """The checks both passes start with: act, slope, x (B, I), w (O, I).
    Returns (slope, B, I, O)."""
    check_activation(act)
    slope = check_slope(slope)
    check_array(x, "x", ndim=2)
    B, I = x.shape
    check_array(w, "w", dtype=x.dtype, ndim=2)
    if w.shape[1] != I:
        raise ValueError(f"w: expected shape (O, {I}) to match x {x.shape}, got {w.shape}")
    return slope, B, I, w.shape[0]


def dense_forward(y, x, w, b, act, slope):
    """x (B, I), w (O, I), b (O,) or None, y (B, O) := act(x w^T + b)."""
    slope, B, I, O = _check_common(x, w, act, slope)
    check_array(b, "b", dtype=x.dtype, shape=(O,), allow_none=True)
    check_array(y, "y", dtype=x.dtype, shape=(B, O), writable=True)
    for a, an in ((x, "x"), (w, "w"), (b, "b")):
        check_disjoint(y, "y", a, an)
    z = x @ w.T
    if b is not None:
        z += b
    y[...] = apply_activation(z, act, slope)


def dense_backward(dx, dw, db, dy, x, w, y, act, slope, dz):
    """dz := dy * act'(y) (dz may be dy); dw += dz^T x; db += sum_B dz (None:
    no bias); dx := dz w (None: skip)."""
    slope, B, I, O = _check_common(x, w, act, slope)
    check_array(dy, "dy", dtype=x.dtype, shape=(B, O))
    check_array(y, "y", dtype=x.dtype, shape=(B, O))
    check_array(dz, "dz", dtype=x.dtype, shape=(B, O), writable=True)
    check_array(dw, "dw", dtype=x.dtype, shape=(O, I), writable=True)
    check_array(db, "db", dtype=x.dtype, shape=(O,), writable=True, allow_none=True)
    check_array(dx, "dx", dtype=x.dtype, shape=(B, I), writable=True, allow_none=True)
    check_disjoint(dz, "dz", dy, "dy", True)
    for a, an in ((x, "x"), (w, "w"), (y, "y")):
        check_disjoint(dz, "dz", a, an)
    for o, on in ((dw, "dw"), (db, "db"), (dx, "dx")):
        for a, an in ((dy, "dy"), (x, "x"), (w, "w"), (y, "y"), (dz, "dz")):
            check_disjoint(o, on, a, an)
    check_disjoint(dw, "dw", db, "db")
    check_disjoint(dw, "dw", dx, "dx")
    check_disjoint(db, "db", dx, "dx")
    dz[...] = activation_backward_values(dy, y, act, slope)
    dw += dz.T @ x
    if db is not None:
        db += dz.sum(axis=0)
    if dx is not None:
        dx[...] = dz @ w
