"""Reference dense layer (NumPy): y = act(x w^T + b), w (O, I) like PyTorch."""

from __future__ import annotations

from .._contract import ACTIVATIONS, check_activation, check_array, check_dense_stack, check_disjoint, check_slope
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
    _forward(y, x, w, b, act, slope)


def _forward(y, x, w, b, act, slope):
    """The maths of dense_forward (arguments already checked)."""
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
    _backward(dx, dw, db, dy, x, w, y, act, slope, dz)


def _backward(dx, dw, db, dy, x, w, y, act, slope, dz):
    """The maths of dense_backward (arguments already checked)."""
    dz[...] = activation_backward_values(dy, y, act, slope)
    dw += dz.T @ x
    if db is not None:
        db += dz.sum(axis=0)
    if dx is not None:
        dx[...] = dz @ w


def _stack_layers(layout, theta, B):
    """(w, b, act, I, O, start of y_l in ys, weight offset, bias offset) of every layout row."""
    out, pos = [], 0
    for I, O, wo, bo, act in layout.tolist():
        w = theta[wo:wo + O * I].reshape(O, I)
        b = None if bo < 0 else theta[bo:bo + O]
        out.append((w, b, ACTIVATIONS[act], I, O, pos, wo, bo))
        pos += B * O
    return out


def _stack_checks(x, theta, layout, slope):
    slope = check_slope(slope)
    check_array(x, "x", ndim=2)
    check_array(theta, "theta", dtype=x.dtype, ndim=1)
    I0, O_last, sum_o, maxdim = check_dense_stack(layout, theta.size)
    if x.shape[1] != I0:
        raise ValueError(f"x: expected shape (B, {I0}) (I of the first layer), got {x.shape}")
    return slope, x.shape[0], O_last, sum_o, maxdim


def dense_stack_forward(ys, x, theta, layout, slope):
    """A chain of dense layers (rows of ``layout``: I, O, weight offset, bias
    offset or -1, activation code) over the flat parameters ``theta``; ys
    (B * sum of O,) := every layer's output, back to back."""
    slope, B, _, sum_o, _ = _stack_checks(x, theta, layout, slope)
    check_array(ys, "ys", dtype=x.dtype, shape=(B * sum_o,), writable=True)
    for a, an in ((x, "x"), (theta, "theta")):
        check_disjoint(ys, "ys", a, an)
    h = x
    for w, b, act, I, O, pos, _, _ in _stack_layers(layout, theta, B):
        y = ys[pos:pos + B * O].reshape(B, O)
        _forward(y, h, w, b, act, slope)  # the call was checked as a whole
        h = y


def dense_stack_backward(dx, grad, work, dy, x, theta, ys, layout, slope):
    """Backward of :func:`dense_stack_forward` from dy (B, O of the last
    layer): grad (theta's layout) += every dw, db; dx (B, I_0) := the input
    gradient (None: skip); work (>= 2 * B * the largest size) is scratch."""
    slope, B, O_last, sum_o, maxdim = _stack_checks(x, theta, layout, slope)
    check_array(ys, "ys", dtype=x.dtype, shape=(B * sum_o,))
    check_array(dy, "dy", dtype=x.dtype, shape=(B, O_last))
    check_array(grad, "grad", dtype=x.dtype, shape=theta.shape, writable=True)
    check_array(dx, "dx", dtype=x.dtype, shape=(B, x.shape[1]), writable=True, allow_none=True)
    check_array(work, "work", dtype=x.dtype, ndim=1, writable=True)
    if work.size < 2 * B * maxdim:
        raise ValueError(f"work: expected a 1-D array of at least {2 * B * maxdim} values "
                         f"(2 * B * the largest layer size), got shape {work.shape}")
    for o, on in ((grad, "grad"), (dx, "dx"), (work, "work")):
        for a, an in ((dy, "dy"), (x, "x"), (theta, "theta"), (ys, "ys")):
            check_disjoint(o, on, a, an)
    check_disjoint(grad, "grad", dx, "dx")
    check_disjoint(grad, "grad", work, "work")
    check_disjoint(dx, "dx", work, "work")
    layers = _stack_layers(layout, theta, B)
    halves = (work[:B * maxdim], work[B * maxdim:2 * B * maxdim])
    g, k = dy, 0  # k: the half holding this layer's dz
    for l in range(len(layers) - 1, -1, -1):
        w, b, act, I, O, pos, wo, bo = layers[l]
        dz = halves[k][:B * O].reshape(B, O) if l == len(layers) - 1 else g  # then in place
        dxl = dx if l == 0 else halves[1 - k][:B * I].reshape(B, I)
        xin = x if l == 0 else ys[layers[l - 1][5]:pos].reshape(B, I)
        _backward(dxl, grad[wo:wo + O * I].reshape(O, I), None if bo < 0 else grad[bo:bo + O], g, xin, w,
                  ys[pos:pos + B * O].reshape(B, O), act, slope, dz)
        g, k = dxl, 1 - k
