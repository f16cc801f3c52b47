"""Central finite differences for gradient checks (float64)."""

import numpy as np


def central_diff(f, flat, i, h=1e-6):
    """(f() at flat[i] + h  -  f() at flat[i] - h) / 2h, for a scalar function
    f() reading the array that ``flat`` is a view of (restored afterwards)."""
    old = flat[i]
    flat[i] = old + h
    fp = f()
    flat[i] = old - h
    fm = f()
    flat[i] = old
    return (fp - fm) / (2 * h)


def numgrad(f, x, h=1e-6):
    """d f / d x for a scalar function f() reading x (modified in place and restored)."""
    g = np.zeros_like(x, dtype=np.float64)
    flat = x.reshape(-1)
    gf = g.reshape(-1)
    for i in range(flat.size):
        gf[i] = central_diff(f, flat, i, h)
    return g
