"""Central finite differences for gradient checks (float64)."""

import numpy as np


def numgrad(f, x, h=1e-6):
    """d f / d x for a scalar function f() reading x (modified in place and restored)."""
    g = np.zeros_like(x, dtype=np.float64)
    flat = x.reshape(-1)
    gf = g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        fp = f()
        flat[i] = old - h
        fm = f()
        flat[i] = old
        gf[i] = (fp - fm) / (2 * h)
    return g
