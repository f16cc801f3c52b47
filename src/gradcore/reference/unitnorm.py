"""Reference unit-wise (row) L2 norms (NumPy): ``np.linalg.norm`` per row,
in float64. Same name and signature as ``gradcore._kernels.unit_norms``."""

from __future__ import annotations

import numpy as np

from .._contract import FLOAT_DTYPES, check_float_array


def unit_norms(arrays, units=None, name="arrays"):
    """L2 norm of each of ``units[i]`` rows of ``arrays[i]`` (C order); default
    ``shape[0]`` for 2-D and higher, 1 otherwise. List of float64 arrays."""
    arrays = list(arrays)
    n = len(arrays)
    if units is None:
        units = [a.shape[0] if isinstance(a, np.ndarray) and a.ndim >= 2 else 1 for a in arrays]
    elif len(units) != n:
        raise ValueError(f"units: expected {n} entries (one per array), got {len(units)}")
    out = []
    for i, a in enumerate(arrays):
        if not (isinstance(a, np.ndarray) and a.dtype in FLOAT_DTYPES and a.dtype.isnative and a.flags.aligned):
            check_float_array(a, f"{name}[{i}]", False)
        u = units[i]
        if isinstance(u, bool) or not isinstance(u, (int, np.integer)) or u < 1 or a.size % u != 0:
            raise ValueError(f"units[{i}]: expected an integer >= 1 dividing {name}[{i}].size ({a.size}), "
                             f"got {u!r}")
        rows = np.asarray(a, np.float64).reshape(int(u), -1)
        with np.errstate(over="ignore", invalid="ignore"):
            out.append(np.linalg.norm(rows, axis=1) if rows.shape[1] else np.zeros(int(u)))
    return out
